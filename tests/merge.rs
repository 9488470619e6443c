//! End-to-end tests of `watchbot merge`.
