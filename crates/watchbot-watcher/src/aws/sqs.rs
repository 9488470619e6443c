//! The SQS queue adapter.
