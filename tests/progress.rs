//! End-to-end tests of `watchbot progress`.
