//! SNS: publishing to a topic (follow-up work) and the SNS notifier.
