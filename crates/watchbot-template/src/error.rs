//! Errors of the template generator and of `merge`: one line each, naming the option or the section and key.

/// Why options could not become a template. Every variant names the option at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The config is not JSON, or not a JSON object.
    #[error("config is not valid JSON: {0}")]
    Json(String),
    /// The config is JSON but not an object of options.
    #[error("config must be a JSON object of options, got {0}")]
    NotAnObject(&'static str),
    /// An option name we do not know (often a typo).
    #[error("unknown option \"{name}\"{hint} (expected one of: {expected})")]
    UnknownOption {
        /// The option as written.
        name: String,
        /// A suggestion (` (did you mean "x"?)`), or empty.
        hint: String,
        /// The options there are.
        expected: String,
    },
    /// A required option is missing.
    #[error("missing option \"{0}\"")]
    Missing(&'static str),
    /// An option has the wrong type or an invalid value.
    #[error("option \"{option}\": {message}")]
    Invalid {
        /// The option (a path such as `reservation.memory` for a nested one).
        option: String,
        /// What is wrong with its value.
        message: String,
    },
    /// Two options that cannot be used together, or one that needs another.
    #[error("options \"{first}\" and \"{second}\": {message}")]
    Conflict {
        /// One option.
        first: &'static str,
        /// The other.
        second: &'static str,
        /// Why they do not go together.
        message: String,
    },
}

impl Error {
    pub(crate) fn invalid(option: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Invalid { option: option.into(), message: message.into() }
    }
}

/// Why templates could not be merged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MergeError {
    /// An input is not a JSON object.
    #[error("template {index} is not a JSON object")]
    NotATemplate {
        /// The input's position (0-based).
        index: usize,
    },
    /// A top-level key that is not a CloudFormation template section.
    #[error("template {index} has an unknown section \"{section}\"")]
    UnknownSection {
        /// The input's position (0-based).
        index: usize,
        /// The key.
        section: String,
    },
    /// A section that must hold an object holds something else.
    #[error("template {index}: section \"{section}\" is not a JSON object")]
    SectionNotAnObject {
        /// The input's position (0-based).
        index: usize,
        /// The section.
        section: String,
    },
    /// The same key defined twice with different values.
    #[error("conflicting {section} key \"{key}\": template {index} defines it differently from an earlier template")]
    Conflict {
        /// The section (`Resources`, ...).
        section: String,
        /// The key defined twice.
        key: String,
        /// The input that defines it differently (0-based).
        index: usize,
    },
    /// A logical id used in two sections that share one namespace (CloudFormation rejects that).
    #[error("logical id \"{key}\" is both in {first} and in {second}")]
    DuplicateLogicalId {
        /// The logical id.
        key: String,
        /// One section.
        first: String,
        /// The other.
        second: String,
    },
}
