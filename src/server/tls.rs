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

/// The acceptor for `cert` and `key` (PEM files), or `None` when neither is set.
pub fn acceptor(cert: Option<&Path>, key: Option<&Path>) -> Result<Option<TlsAcceptor>, TlsError> {
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
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
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
}
