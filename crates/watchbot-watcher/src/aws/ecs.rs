//! The ECS task runner: RunTask with container overrides, `startedBy` = message id.
