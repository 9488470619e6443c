//! End-to-end tests of `watchbot local`.
