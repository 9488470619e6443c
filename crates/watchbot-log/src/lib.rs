//! Worker log lines prefixed with the time and the message id: `[<RFC 1123 time>] [worker] [<MessageId>] text`.
