//! The watcher configuration from environment variables.
