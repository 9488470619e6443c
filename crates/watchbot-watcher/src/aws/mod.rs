//! Adapters of the ports on the AWS SDK. Only this module imports `aws_sdk_*`; adapters receive built clients.

pub mod ecs;
pub mod sns;
pub mod sqs;
