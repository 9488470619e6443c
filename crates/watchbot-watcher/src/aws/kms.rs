//! KMS Decrypt of the `secure:<base64 ciphertext>` values that deployments put in a worker's environment, for
//! `watchbot decrypt-env` (the original's `decrypt-kms-env`). SDK-free signatures: base64 text in, bytes out, a
//! [`PortError`] on failure; the walk over the environment and the shell quoting are the CLI's, pure.

use super::error::port_error;
use super::sdk::Aws;
use crate::ports::PortError;

/// The prefix of an encrypted value: `secure:` then the KMS ciphertext in standard base64.
pub const SECURE_PREFIX: &str = "secure:";

/// The ciphertext of a `secure:` value's base64 text (standard alphabet, padded), or `None` when it is not valid
/// base64 or is empty. Checked before any request, so a mistyped value fails without reaching KMS.
pub fn decode_ciphertext(base64: &str) -> Option<Vec<u8>> {
    aws_smithy_types::base64::decode(base64.trim()).ok().filter(|bytes| !bytes.is_empty())
}

/// KMS through a client with the standard timeouts.
#[derive(Debug, Clone)]
pub struct Kms {
    client: aws_sdk_kms::Client,
}

impl Aws {
    /// KMS in the configured region (the ciphertext names its key, so no key id is needed to decrypt).
    pub fn kms(&self) -> Kms {
        Kms { client: aws_sdk_kms::Client::new(self.sdk_config()) }
    }
}

impl Kms {
    /// The plaintext of `ciphertext` (KMS `Decrypt`; the caller needs `kms:Decrypt` on the key that encrypted it).
    pub async fn decrypt(&self, ciphertext: Vec<u8>) -> Result<Vec<u8>, PortError> {
        let output = self
            .client
            .decrypt()
            .ciphertext_blob(aws_smithy_types::Blob::new(ciphertext))
            .send()
            .await
            .map_err(|e| port_error("kms Decrypt", &e))?;
        output.plaintext.map(aws_smithy_types::Blob::into_inner).ok_or_else(|| {
            PortError::new(crate::ports::PortErrorKind::Rejected, "kms Decrypt: the answer has no plaintext")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ciphertexts_are_standard_padded_base64_and_never_empty() {
        assert_eq!(decode_ciphertext("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(decode_ciphertext(" aGVsbG8=\n"), Some(b"hello".to_vec()));
        for bad in ["", "not base64!", "aGVsbG8", "aGV sbG8=", "invalid!@#$%^&*()base64"] {
            assert_eq!(decode_ciphertext(bad), None, "{bad:?}");
        }
    }
}
