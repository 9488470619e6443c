//! Reduce-mode progress: a map-reduce job's parts, tracked in DynamoDB in production and in an embedded SQLite
//! store locally, behind one store trait.
