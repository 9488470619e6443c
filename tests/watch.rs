//! End-to-end tests of `watchbot watch`.
