//! Addresses: the one parser of the values watchbot passes between programs (`$ProgressTable`, `$WorkTopic`,
//! queue URLs), so a local path or `file:` URL means the same file everywhere. [`open`] gets a progress store for
//! one; `watchbot send` uses the same [`Address`] for its `--topic` and `--queue-url`.
//!
//! - `arn:<partition>:dynamodb:<region>:<account>:table/<name>` → DynamoDB table `<name>` in `<region>`.
//! - `arn:<partition>:sns:<region>:<account>:<name>` → an SNS topic.
//! - `https://…` or `http://…` → an SQS queue URL.
//! - a bare DynamoDB table name (`[A-Za-z0-9_.-]{3,255}`, not starting with `.`) → DynamoDB, in the SDK's region.
//! - an absolute path, a path containing `/`, a path starting with `.`, or a `file:` URL (`file:///abs`,
//!   `file://localhost/abs`, `file:relative`, `%`-escapes decoded) → a local path (the embedded store, a local
//!   queue's folder).

use crate::{AnyStore, DynamoStore, EmbeddedStore, Error};
use std::path::PathBuf;
use std::str::FromStr;

/// Where progress is stored, work is sent or a queue is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A DynamoDB table (hash key `id`, string), with the region of its ARN when given as one.
    DynamoDb {
        /// The table name.
        table: String,
        /// The region from the ARN; `None` for a bare name (the SDK config's region applies).
        region: Option<String>,
    },
    /// An SNS topic.
    SnsTopic {
        /// The topic's ARN.
        arn: String,
    },
    /// An SQS queue.
    SqsQueue {
        /// The queue's URL.
        url: String,
    },
    /// A file or folder on this machine: the embedded progress store's SQLite file, or a local queue's folder.
    Local {
        /// The path.
        path: PathBuf,
    },
}

/// An address that is none of the forms [`Address`] knows: one line naming it and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{address:?}: {reason}")]
pub struct AddressError {
    /// The address as given.
    pub address: String,
    /// Why it was rejected.
    pub reason: String,
}

impl From<AddressError> for Error {
    fn from(error: AddressError) -> Error {
        Error::Address { address: error.address, reason: error.reason }
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(address: &str) -> Result<Address, AddressError> {
        let invalid = |reason: &str| AddressError { address: address.to_owned(), reason: reason.to_owned() };
        if address.is_empty() {
            return Err(invalid("empty"));
        }
        if let Some(rest) = address.strip_prefix("arn:") {
            // partition:service:region:account:resource
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            if parts.len() == 5 && parts[1] == "sns" {
                if parts[4].is_empty() || parts[4].contains(':') {
                    return Err(invalid("expected arn:aws:sns:<region>:<account>:<topic name>"));
                }
                return Ok(Address::SnsTopic { arn: address.to_owned() });
            }
            if parts.len() != 5 || parts[1] != "dynamodb" {
                return Err(invalid(
                    "an ARN of neither a DynamoDB table (arn:aws:dynamodb:<region>:<account>:table/<name>) nor an \
                     SNS topic (arn:aws:sns:<region>:<account>:<name>)",
                ));
            }
            let Some(table) = parts[4].strip_prefix("table/") else {
                return Err(invalid("the ARN is not a table's (expected `table/<name>`)"));
            };
            // A stream or index ARN (`table/x/stream/...`) is not a table.
            if table.contains('/') || !is_table_name(table) {
                return Err(invalid("the ARN does not end in a valid table name"));
            }
            let region = (!parts[2].is_empty()).then(|| parts[2].to_owned());
            return Ok(Address::DynamoDb { table: table.to_owned(), region });
        }
        if let Some(rest) = address.strip_prefix("file:") {
            // file:///abs/path, file://localhost/abs/path, file:relative/path
            let path = match rest.strip_prefix("//") {
                Some(authority_and_path) => {
                    let slash = authority_and_path.find('/').ok_or_else(|| invalid("a file: URL needs a path"))?;
                    let (host, path) = authority_and_path.split_at(slash);
                    if !host.is_empty() && host != "localhost" {
                        return Err(invalid("a file: URL must name a local file (no host)"));
                    }
                    path
                }
                None => rest,
            };
            if path.is_empty() {
                return Err(invalid("a file: URL needs a path"));
            }
            return Ok(Address::Local {
                path: PathBuf::from(percent_decode(path).ok_or_else(|| invalid("bad %-escape"))?),
            });
        }
        if address.starts_with("https://") || address.starts_with("http://") {
            return Ok(Address::SqsQueue { url: address.to_owned() });
        }
        if address.starts_with('/') || address.starts_with('.') || address.contains('/') {
            return Ok(Address::Local { path: PathBuf::from(address) });
        }
        if is_table_name(address) {
            return Ok(Address::DynamoDb { table: address.to_owned(), region: None });
        }
        Err(invalid(
            "not a DynamoDB table name ([A-Za-z0-9_.-], 3 to 255 characters) or ARN, nor a file path (use ./name for a \
             file in this folder)",
        ))
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::DynamoDb { table, region: Some(region) } => write!(f, "DynamoDB table {table} in {region}"),
            Address::DynamoDb { table, region: None } => write!(f, "DynamoDB table {table}"),
            Address::SnsTopic { arn } => write!(f, "SNS topic {arn}"),
            Address::SqsQueue { url } => write!(f, "SQS queue {url}"),
            Address::Local { path } => write!(f, "local path {}", path.display()),
        }
    }
}

fn is_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl Address {
    /// Opens the progress store at this address. A DynamoDB address needs `sdk_config` (the caller loads it, e.g.
    /// from `aws-config`'s standard chain); a local one ignores it and creates the file if missing; a topic or queue
    /// is not a progress table.
    pub async fn open(&self, sdk_config: Option<&aws_config::SdkConfig>) -> Result<AnyStore, Error> {
        match self {
            Address::DynamoDb { table, region } => {
                let Some(sdk_config) = sdk_config else {
                    return Err(Error::Invalid(format!("{self} needs an AWS configuration")));
                };
                let mut config = aws_sdk_dynamodb::config::Builder::from(sdk_config);
                if let Some(region) = region {
                    config = config.region(aws_sdk_dynamodb::config::Region::new(region.clone()));
                }
                let client = aws_sdk_dynamodb::Client::from_conf(config.build());
                Ok(AnyStore::DynamoDb(DynamoStore::new(client, table.clone())))
            }
            Address::Local { path } => Ok(AnyStore::Embedded(EmbeddedStore::open(path.clone()).await?)),
            Address::SnsTopic { arn: address } | Address::SqsQueue { url: address } => Err(Error::Address {
                address: address.clone(),
                reason: "a topic or queue is not a progress table (a DynamoDB table, or a file path)".to_owned(),
            }),
        }
    }

    /// Whether opening needs an AWS configuration.
    pub fn needs_aws(&self) -> bool {
        matches!(self, Address::DynamoDb { .. })
    }
}

/// Opens the store an address string names (`$ProgressTable`'s value): the one entry point the CLI and local mode
/// share. See [`Address`] for the forms.
pub async fn open(address: &str, sdk_config: Option<&aws_config::SdkConfig>) -> Result<AnyStore, Error> {
    address.parse::<Address>()?.open(sdk_config).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Address, Error> {
        Ok(s.parse::<Address>()?)
    }

    fn dynamo(table: &str, region: Option<&str>) -> Address {
        Address::DynamoDb { table: table.into(), region: region.map(Into::into) }
    }

    fn file(path: &str) -> Address {
        Address::Local { path: path.into() }
    }

    #[test]
    fn dynamodb_addresses() {
        assert_eq!(
            parse("arn:aws:dynamodb:eu-west-1:123456789012:table/my-stack-ProgressTable-1X").unwrap(),
            dynamo("my-stack-ProgressTable-1X", Some("eu-west-1"))
        );
        assert_eq!(parse("arn:aws-cn:dynamodb:cn-north-1:1:table/t_1.x").unwrap(), dynamo("t_1.x", Some("cn-north-1")));
        assert_eq!(parse("my-stack-ProgressTable-1X").unwrap(), dynamo("my-stack-ProgressTable-1X", None));
    }

    #[test]
    fn embedded_addresses() {
        assert_eq!(parse("/abs/.watchbot/progress.sqlite").unwrap(), file("/abs/.watchbot/progress.sqlite"));
        assert_eq!(parse("./progress.db").unwrap(), file("./progress.db"));
        assert_eq!(parse(".progress").unwrap(), file(".progress"));
        assert_eq!(parse("state/progress.db").unwrap(), file("state/progress.db"));
        assert_eq!(parse("file:///tmp/a%20b.db").unwrap(), file("/tmp/a b.db"));
        assert_eq!(parse("file://localhost/tmp/p.db").unwrap(), file("/tmp/p.db"));
        assert_eq!(parse("file:p.db").unwrap(), file("p.db"));
    }

    #[test]
    fn topics_and_queues() {
        let arn = "arn:aws:sns:us-east-1:123456789012:work";
        assert_eq!(parse(arn).unwrap(), Address::SnsTopic { arn: arn.into() });
        let url = "https://sqs.us-east-1.amazonaws.com/123456789012/q";
        assert_eq!(parse(url).unwrap(), Address::SqsQueue { url: url.into() });
        assert!(parse("arn:aws:sns:us-east-1:1:").is_err());
        assert!(parse("arn:aws:sqs:us-east-1:1:q").unwrap_err().to_string().contains("neither a DynamoDB table"));
    }

    #[test]
    fn bad_addresses_say_why() {
        for bad in [
            "",
            "ab",
            "has space",
            "arn:aws:sqs:us-east-1:1:queue",
            "arn:aws:dynamodb:us-east-1:1:table/t/stream/2020",
            "file://host/x",
            "file:",
        ] {
            let error = parse(bad).unwrap_err().to_string();
            assert!(error.starts_with("invalid progress table address"), "{bad:?}: {error}");
        }
    }
}
