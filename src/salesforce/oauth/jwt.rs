//! JWT bearer assertions (RS256): `iss` the consumer key, `sub` the
//! username, `aud` the login or test host, `exp` three minutes out.

use secrecy::SecretString;
use serde::Serialize;

use crate::salesforce::SalesforceError;

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
}

/// Salesforce accepts an `exp` up to three minutes ahead.
const VALID_FOR_SECS: u64 = 180;

/// Read a PEM RSA private key (PKCS#1 or PKCS#8).
pub fn load_key(pem: &[u8]) -> Result<jsonwebtoken::EncodingKey, String> {
    jsonwebtoken::EncodingKey::from_rsa_pem(pem)
        .map_err(|e| format!("not an RSA private key in PEM form ({e})"))
}

pub(super) fn assertion(
    connection: &str,
    client_id: &str,
    username: &str,
    audience: &str,
    key: &jsonwebtoken::EncodingKey,
) -> Result<SecretString, SalesforceError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = Claims {
        iss: client_id,
        sub: username,
        aud: audience,
        exp: now + VALID_FOR_SECS,
    };
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    jsonwebtoken::encode(&header, &claims, key)
        .map(SecretString::from)
        .map_err(|e| SalesforceError::LoginFailed {
            connection: connection.to_string(),
            error: "jwt".into(),
            description: format!("cannot sign the assertion: {e}"),
        })
}
