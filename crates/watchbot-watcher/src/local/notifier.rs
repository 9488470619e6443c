//! The local notifier: notifications to stderr and a JSON-lines file in the state folder.
