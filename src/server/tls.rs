//! TLS for the front door with rustls: the certificate chain and key named
//! in `server.toml`, loaded once at start. A missing or unreadable file is
//! an error naming it, never a silent fallback to plain text.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pgwire::tokio::TlsAcceptor;
use pgwire::tokio::tokio_rustls::rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("server.toml: tls_cert and tls_key go together; set both or neither")]
    Half,
    #[error("server.toml: tls_only needs tls_cert and tls_key")]
    OnlyWithout,
    #[error("TLS certificate {path}: {message}")]
    Cert { path: PathBuf, message: String },
    #[error("TLS key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("TLS certificate {cert} and key {key} do not form a usable pair: {message}")]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
}

/// A loaded certificate and key.
pub struct Tls {
    pub acceptor: TlsAcceptor,
    /// The certificate's `tls-server-end-point` hash for SCRAM channel
    /// binding (`None` when its signature names no usable hash).
    pub end_point: Option<Vec<u8>>,
}

/// TLS for `cert` and `key` (PEM files), or `None` when neither is set.
pub fn acceptor(cert: Option<&Path>, key: Option<&Path>) -> Result<Option<Tls>, TlsError> {
    let (cert, key) = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        _ => return Err(TlsError::Half),
    };
    let cert_error = |message: String| TlsError::Cert {
        path: cert.to_path_buf(),
        message,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_error(read_message(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(read_message(e)))?;
    if chain.is_empty() {
        return Err(cert_error("no PEM CERTIFICATE block in the file".into()));
    }
    let end_point = server_end_point(&chain[0]);
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_path_buf(),
        message: read_message(e),
    })?;
    // ring explicitly: more than one rustls provider is compiled in.
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private_key))
    .map_err(|e| TlsError::Pair {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut config = config;
    // PostgreSQL 17's direct TLS (sslnegotiation=direct) asks for this ALPN.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(Some(Tls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        end_point,
    }))
}

/// RFC 5929's `tls-server-end-point`: the certificate hashed with its
/// signature's hash, MD5 and SHA-1 raised to SHA-256 (what PostgreSQL and
/// libpq compute). `None` for signatures without one (Ed25519, RSA-PSS):
/// then SCRAM-SHA-256-PLUS is not offered.
fn server_end_point(cert: &CertificateDer<'_>) -> Option<Vec<u8>> {
    use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};
    use x509_cert::der::Decode;
    use x509_cert::der::oid::db::rfc5912 as oid;
    let algorithm = x509_cert::Certificate::from_der(cert.as_ref())
        .ok()?
        .signature_algorithm
        .oid;
    let der = cert.as_ref();
    let is = |names: &[x509_cert::der::oid::ObjectIdentifier]| names.contains(&algorithm);
    if is(&[
        oid::MD_5_WITH_RSA_ENCRYPTION,
        oid::SHA_1_WITH_RSA_ENCRYPTION,
        oid::DSA_WITH_SHA_1,
        oid::SHA_256_WITH_RSA_ENCRYPTION,
        oid::ECDSA_WITH_SHA_256,
    ]) {
        Some(Sha256::digest(der).to_vec())
    } else if is(&[oid::SHA_224_WITH_RSA_ENCRYPTION, oid::ECDSA_WITH_SHA_224]) {
        Some(Sha224::digest(der).to_vec())
    } else if is(&[oid::SHA_384_WITH_RSA_ENCRYPTION, oid::ECDSA_WITH_SHA_384]) {
        Some(Sha384::digest(der).to_vec())
    } else if is(&[oid::SHA_512_WITH_RSA_ENCRYPTION, oid::ECDSA_WITH_SHA_512]) {
        Some(Sha512::digest(der).to_vec())
    } else {
        None
    }
}

fn read_message(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => format!("cannot read it: {io}"),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM block of the expected kind".into(),
        other => format!("not valid PEM: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    fn error(cert: &Path, key: &Path) -> String {
        match acceptor(Some(cert), Some(key)) {
            Ok(_) => panic!("{} with {} must fail", cert.display(), key.display()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn loads_the_test_pair_and_names_the_bad_file() {
        let (cert, key) = (fixture("tls-test-only.crt"), fixture("tls-test-only.key"));
        assert!(acceptor(Some(&cert), Some(&key)).unwrap().is_some());
        assert!(acceptor(None, None).unwrap().is_none());
        assert!(matches!(acceptor(Some(&cert), None), Err(TlsError::Half)));
        let missing = fixture("no-such.crt");
        let err = error(&missing, &key);
        assert!(
            err.contains("no-such.crt") && err.contains("cannot read"),
            "{err}"
        );
        // A certificate where the key should be.
        let err = error(&cert, &cert);
        assert!(
            err.contains("TLS key") && err.contains("tls-test-only.crt"),
            "{err}"
        );
        let other = fixture("jwt-test-only.key");
        let err = error(&cert, &other);
        assert!(err.contains("do not form a usable pair"), "{err}");
    }

    #[test]
    fn the_end_point_is_the_certificate_hashed_as_its_signature_says() {
        let (cert, key) = (fixture("tls-test-only.crt"), fixture("tls-test-only.key"));
        let tls = acceptor(Some(&cert), Some(&key)).unwrap().unwrap();
        // ecdsa-with-SHA256: `openssl x509 -outform DER | sha256sum`.
        let hex: String = tls
            .end_point
            .expect("an ECDSA P-256 certificate binds")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "ce02ab78f728e50b71dad0d793ec9ac39859c62c526373197711ca2e096bf26d"
        );
    }
}
