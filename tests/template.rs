//! End-to-end tests of `watchbot template`.
