//! Watchbot options → a CloudFormation template, and `merge` of templates. Pure: no AWS SDK, deterministic output.
