//! The progress stores' integration tests, one test binary with a module per concern: the scenario suite on both
//! stores (DynamoDB on moto, the embedded SQLite file) and the DynamoDB store on `aws-smithy-mocks`.

mod dynamo_mocks;
mod scenarios;
