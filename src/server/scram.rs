//! SCRAM-SHA-256 (RFC 5802 and 7677) as PostgreSQL does it: password
//! verifiers in pg_authid's format (`SCRAM-SHA-256$iter:salt$StoredKey:ServerKey`),
//! the server side of the SASL exchange, and cleartext checks against the same
//! verifier. The catalog never holds a password or anything that logs in by
//! itself (pgwire's own SCRAM wants the salted password, which does).

use std::borrow::Cow;
use std::fmt;
use std::num::NonZeroU32;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::{digest, hmac, pbkdf2};
use thiserror::Error;

/// PostgreSQL's default `scram_iterations`.
pub const DEFAULT_ITERATIONS: u32 = 4096;
const SALT_LEN: usize = 16;
const KEY_LEN: usize = 32;

#[derive(Debug, Error, PartialEq)]
pub enum ScramError {
    #[error(
        "password_hash is not a SCRAM-SHA-256 verifier ({0}); make one with `sfsql hash-password`"
    )]
    BadVerifier(&'static str),
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error(
        "SCRAM channel binding needs a TLS connection to a server with a certificate; connect with sslmode=require, or channel_binding=disable or prefer"
    )]
    ChannelBindingUnsupported,
    #[error(
        "SCRAM channel binding negotiation error: the client supports channel binding but thinks the server does not, while this server offered SCRAM-SHA-256-PLUS (a connection tampered with on the way?)"
    )]
    Downgrade,
    #[error("unsupported SCRAM channel-binding type {0:?}: only tls-server-end-point is offered")]
    BindingType(String),
    #[error("SCRAM channel binding or nonce does not match the exchange")]
    Mismatch,
    #[error("wrong password")]
    WrongPassword,
}

/// What the server keeps per user: enough to check a proof, not to forge one.
#[derive(Clone, PartialEq)]
pub struct Verifier {
    iterations: u32,
    salt: Vec<u8>,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys are not secrets in the password sense, but they stay out of logs anyway.
        f.debug_struct("Verifier")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for `password` with a fresh random salt.
    pub fn new(password: &str) -> Verifier {
        let salt: [u8; SALT_LEN] = rand::random();
        Verifier::from_password(password, &salt, DEFAULT_ITERATIONS)
    }

    pub fn from_password(password: &str, salt: &[u8], iterations: u32) -> Verifier {
        let salted = salted_password(password, salt, iterations);
        let client_key = hmac_sha256(&salted, b"Client Key");
        Verifier {
            iterations,
            salt: salt.to_vec(),
            stored_key: sha256(&client_key),
            server_key: hmac_sha256(&salted, b"Server Key"),
        }
    }

    /// For a user the catalog does not know: the exchange runs to the end
    /// and fails like a wrong password, so a client cannot probe user names.
    pub fn mock() -> Verifier {
        let salt: [u8; SALT_LEN] = rand::random();
        let keys: [u8; KEY_LEN] = rand::random();
        Verifier {
            iterations: DEFAULT_ITERATIONS,
            salt: salt.to_vec(),
            stored_key: keys.to_vec(),
            server_key: keys.to_vec(),
        }
    }

    pub fn parse(text: &str) -> Result<Verifier, ScramError> {
        let rest = text
            .strip_prefix("SCRAM-SHA-256$")
            .ok_or(ScramError::BadVerifier("it must start with SCRAM-SHA-256$"))?;
        let (params, keys) = rest.split_once('$').ok_or(ScramError::BadVerifier(
            "expected iterations:salt$StoredKey:ServerKey",
        ))?;
        let (iterations, salt) = params
            .split_once(':')
            .ok_or(ScramError::BadVerifier("expected iterations:salt"))?;
        let (stored_key, server_key) = keys
            .split_once(':')
            .ok_or(ScramError::BadVerifier("expected StoredKey:ServerKey"))?;
        let iterations: u32 =
            iterations
                .parse()
                .ok()
                .filter(|i| *i > 0)
                .ok_or(ScramError::BadVerifier(
                    "iterations must be a positive number",
                ))?;
        let decode = |s: &str, what| {
            STANDARD
                .decode(s)
                .map_err(|_| ScramError::BadVerifier(what))
        };
        let salt = decode(salt, "salt is not base64")?;
        let stored_key = decode(stored_key, "StoredKey is not base64")?;
        let server_key = decode(server_key, "ServerKey is not base64")?;
        if stored_key.len() != KEY_LEN || server_key.len() != KEY_LEN {
            return Err(ScramError::BadVerifier("keys must be 32 bytes"));
        }
        Ok(Verifier {
            iterations,
            salt,
            stored_key,
            server_key,
        })
    }

    /// Cleartext password authentication (`auth = "password"`), checked
    /// against the same verifier.
    pub fn check_password(&self, password: &str) -> bool {
        let salted = salted_password(password, &self.salt, self.iterations);
        equal(
            &sha256(&hmac_sha256(&salted, b"Client Key")),
            &self.stored_key,
        )
    }

    /// The server's answer to the client-first message, with a fresh nonce.
    pub fn client_first(
        &self,
        message: &[u8],
        binding: Binding<'_>,
    ) -> Result<(String, Exchange), ScramError> {
        let nonce: [u8; 18] = rand::random();
        self.client_first_with_nonce(message, binding, &STANDARD.encode(nonce))
    }

    fn client_first_with_nonce(
        &self,
        message: &[u8],
        binding: Binding<'_>,
        server_nonce: &str,
    ) -> Result<(String, Exchange), ScramError> {
        let message =
            std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        // gs2-header = cbind-flag "," [authzid] ","; the bare message follows.
        let (flag, rest) = message
            .split_once(',')
            .ok_or(ScramError::Malformed("no GS2 header"))?;
        let (_authzid, bare) = rest
            .split_once(',')
            .ok_or(ScramError::Malformed("no GS2 header"))?;
        // As PostgreSQL's read_client_first_message decides.
        let bound: &[u8] = match (flag, binding.plus) {
            ("n", false) => &[],
            // The client could bind but believes we cannot: right unless
            // -PLUS was offered, when someone removed it on the way.
            ("y", false) if binding.end_point.is_none() => &[],
            ("y", false) => return Err(ScramError::Downgrade),
            ("n" | "y", true) => {
                return Err(ScramError::Malformed(
                    "the client chose SCRAM-SHA-256-PLUS but sent no channel binding",
                ));
            }
            (f, true) if f.starts_with("p=") => {
                let kind = &f[2..];
                if kind != "tls-server-end-point" {
                    return Err(ScramError::BindingType(kind.to_string()));
                }
                binding
                    .end_point
                    .ok_or(ScramError::ChannelBindingUnsupported)?
            }
            (f, false) if f.starts_with("p=") => {
                return Err(ScramError::Malformed(
                    "the client chose SCRAM-SHA-256 without channel binding but sent binding data",
                ));
            }
            _ => return Err(ScramError::Malformed("unknown channel binding flag")),
        };
        let client_nonce = bare
            .split(',')
            .find_map(|part| part.strip_prefix("r="))
            .filter(|n| !n.is_empty())
            .ok_or(ScramError::Malformed("client-first has no nonce"))?;
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!(
            "r={nonce},s={},i={}",
            STANDARD.encode(&self.salt),
            self.iterations
        );
        let gs2_header = &message[..message.len() - bare.len()];
        let mut cbind_input = gs2_header.as_bytes().to_vec();
        cbind_input.extend_from_slice(bound);
        Ok((
            server_first.clone(),
            Exchange {
                verifier: self.clone(),
                cbind_input,
                client_first_bare: bare.to_string(),
                server_first,
                nonce,
            },
        ))
    }
}

impl fmt::Display for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(&self.stored_key),
            STANDARD.encode(&self.server_key)
        )
    }
}

/// Channel binding (RFC 5929 `tls-server-end-point`) for one exchange:
/// the hash of the server's certificate when the connection is TLS, and
/// whether the client chose `SCRAM-SHA-256-PLUS`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Binding<'a> {
    pub end_point: Option<&'a [u8]>,
    pub plus: bool,
}

/// The exchange after server-first: waiting for the client's proof.
#[derive(Debug)]
pub struct Exchange {
    verifier: Verifier,
    /// The GS2 header and, with -PLUS, the certificate hash: what the
    /// client-final's `c=` must carry.
    cbind_input: Vec<u8>,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

impl Exchange {
    /// Check the client-final message's proof; on success, the
    /// server-final message that proves the server knew the verifier.
    pub fn client_final(&self, message: &[u8]) -> Result<String, ScramError> {
        let message =
            std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = message
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("client-final has no proof"))?;
        let mut parts = without_proof.split(',');
        let binding = parts
            .next()
            .and_then(|p| p.strip_prefix("c="))
            .ok_or(ScramError::Malformed("client-final has no channel binding"))?;
        let nonce = parts
            .next()
            .and_then(|p| p.strip_prefix("r="))
            .ok_or(ScramError::Malformed("client-final has no nonce"))?;
        if binding != STANDARD.encode(&self.cbind_input) || nonce != self.nonce {
            return Err(ScramError::Mismatch);
        }
        let proof = STANDARD
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let client_signature = hmac_sha256(&self.verifier.stored_key, auth_message.as_bytes());
        if proof.len() != KEY_LEN {
            return Err(ScramError::WrongPassword);
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        if !equal(&sha256(&client_key), &self.verifier.stored_key) {
            return Err(ScramError::WrongPassword);
        }
        let server_signature = hmac_sha256(&self.verifier.server_key, auth_message.as_bytes());
        Ok(format!("v={}", STANDARD.encode(server_signature)))
    }
}

fn salted_password(password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    // PostgreSQL uses the raw bytes when SASLprep rejects a password.
    let normalized = stringprep::saslprep(password).unwrap_or(Cow::Borrowed(password));
    let mut out = vec![0u8; KEY_LEN];
    let iterations = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        normalized.as_bytes(),
        &mut out,
    );
    out
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message)
        .as_ref()
        .to_vec()
}

fn sha256(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, data).as_ref().to_vec()
}

/// Constant-time comparison, so timing does not leak how much of a key matched.
fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7677, section 3: user "user", password "pencil".
    const SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
    const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

    fn rfc_verifier(password: &str) -> Verifier {
        Verifier::from_password(password, &STANDARD.decode(SALT).unwrap(), 4096)
    }

    #[test]
    fn rfc7677_exchange() {
        let verifier = rfc_verifier("pencil");
        let (server_first, exchange) = verifier
            .client_first_with_nonce(CLIENT_FIRST.as_bytes(), Binding::default(), SERVER_NONCE)
            .unwrap();
        assert_eq!(
            server_first,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        assert_eq!(
            exchange.client_final(CLIENT_FINAL.as_bytes()).unwrap(),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn wrong_password_and_tampering_fail() {
        let (_, exchange) = rfc_verifier("pen")
            .client_first_with_nonce(CLIENT_FIRST.as_bytes(), Binding::default(), SERVER_NONCE)
            .unwrap();
        assert_eq!(
            exchange.client_final(CLIENT_FINAL.as_bytes()),
            Err(ScramError::WrongPassword)
        );
        let (_, exchange) = rfc_verifier("pencil")
            .client_first_with_nonce(CLIENT_FIRST.as_bytes(), Binding::default(), SERVER_NONCE)
            .unwrap();
        let other_nonce = CLIENT_FINAL.replace("k0,p=", "k1,p=");
        assert_eq!(
            exchange.client_final(other_nonce.as_bytes()),
            Err(ScramError::Mismatch)
        );
        assert!(matches!(
            rfc_verifier("pencil")
                .client_first(b"p=tls-server-end-point,,n=,r=abc", Binding::default()),
            Err(ScramError::Malformed(_))
        ));
    }

    /// What a client sends last: `c=` over `cbind_input`, and its proof.
    fn client_final(
        password: &str,
        client_first: &str,
        server_first: &str,
        cbind: &[u8],
    ) -> String {
        let bare = client_first.splitn(3, ',').nth(2).unwrap();
        let nonce = server_first.split(',').next().unwrap();
        let without_proof = format!("c={},{nonce}", STANDARD.encode(cbind));
        let auth_message = format!("{bare},{server_first},{without_proof}");
        let salted = salted_password(password, &STANDARD.decode(SALT).unwrap(), 4096);
        let client_key = hmac_sha256(&salted, b"Client Key");
        let signature = hmac_sha256(&sha256(&client_key), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        format!("{without_proof},p={}", STANDARD.encode(proof))
    }

    #[test]
    fn plus_binds_the_exchange_to_the_certificate() {
        let hash = [7u8; 32];
        let plus = Binding {
            end_point: Some(&hash),
            plus: true,
        };
        let first = "p=tls-server-end-point,,n=,r=abc";
        let (server_first, exchange) = rfc_verifier("pencil")
            .client_first_with_nonce(first.as_bytes(), plus, "xyz")
            .unwrap();
        let mut cbind = b"p=tls-server-end-point,,".to_vec();
        cbind.extend_from_slice(&hash);
        let good = client_final("pencil", first, &server_first, &cbind);
        assert!(
            exchange
                .client_final(good.as_bytes())
                .unwrap()
                .starts_with("v=")
        );
        // A client that saw another certificate (a man in the middle's) fails.
        let (server_first, exchange) = rfc_verifier("pencil")
            .client_first_with_nonce(first.as_bytes(), plus, "xyz")
            .unwrap();
        let mut other = b"p=tls-server-end-point,,".to_vec();
        other.extend_from_slice(&[8u8; 32]);
        let bad = client_final("pencil", first, &server_first, &other);
        assert_eq!(
            exchange.client_final(bad.as_bytes()),
            Err(ScramError::Mismatch)
        );
    }

    #[test]
    fn binding_flags_are_checked_as_postgres_does() {
        let hash = [7u8; 32];
        let offered = |plus| Binding {
            end_point: Some(&hash),
            plus,
        };
        let v = rfc_verifier("pencil");
        // -PLUS offered, the client says it could bind but thinks we cannot.
        assert_eq!(
            v.client_first(b"y,,n=,r=abc", offered(false)).unwrap_err(),
            ScramError::Downgrade
        );
        // Over plain TCP (nothing offered) "y" is fine, "n" always is without -PLUS.
        assert!(v.client_first(b"y,,n=,r=abc", Binding::default()).is_ok());
        assert!(v.client_first(b"n,,n=,r=abc", offered(false)).is_ok());
        assert!(matches!(
            v.client_first(b"n,,n=,r=abc", offered(true)),
            Err(ScramError::Malformed(_))
        ));
        assert_eq!(
            v.client_first(b"p=tls-unique,,n=,r=abc", offered(true))
                .unwrap_err(),
            ScramError::BindingType("tls-unique".into())
        );
    }

    #[test]
    fn verifier_round_trips_in_postgres_format() {
        let verifier = rfc_verifier("pencil");
        let text = verifier.to_string();
        assert!(text.starts_with("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"));
        assert_eq!(Verifier::parse(&text).unwrap(), verifier);
        assert!(verifier.check_password("pencil"));
        assert!(!verifier.check_password("pencil "));
        assert!(Verifier::parse("md5c514c91e4ed341f263e458d44b3bb0a7").is_err());
        assert!(Verifier::parse("SCRAM-SHA-256$0:c2FsdA==$a:b").is_err());
        let fresh = Verifier::new("demo");
        assert_ne!(fresh, Verifier::new("demo"), "salts are random");
        assert!(fresh.check_password("demo"));
    }
}
