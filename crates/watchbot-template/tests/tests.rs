//! The template generator's integration tests, one test binary with a module per concern: merging, snapshots of
//! generated templates (`tests/snapshots/tests__snapshots__*.snap`), and validation of options.

mod capacity;
mod merge;
mod metrics;
mod snapshots;
mod validation;
