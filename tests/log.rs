//! End-to-end tests of `watchbot log`.
