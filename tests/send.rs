//! End-to-end tests of `watchbot send`.
