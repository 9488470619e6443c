//! The embedded, durable queue: SQLite with SQS semantics.
