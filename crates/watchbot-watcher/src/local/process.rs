//! The process runner: the worker command as a child process with the task environment.
