//! TLS with rustls over a real socket: tokio-postgres (verifying the test
//! certificate) and psql with `sslmode=require` log in with SCRAM over TLS;
//! a server without a certificate refuses `sslmode=require` rather than
//! pretending; a missing key file stops the start and names the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sfsql::config::{ServerConfig, UserConfig};
use sfsql::server::{self, Verifier};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::auth::{psql_login, psql_with, serve_config};
use crate::common::{rows, start_demo};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn config(tls: bool) -> ServerConfig {
    let user = UserConfig {
        password_hash: Verifier::new("demo").to_string(),
        role: Default::default(),
    };
    ServerConfig {
        users: [("demo".to_string(), user)].into(),
        tls_cert: tls.then(|| fixture("tls-test-only.crt")),
        tls_key: tls.then(|| fixture("tls-test-only.key")),
        ..ServerConfig::default()
    }
}

/// A rustls client that trusts only the test CA.
fn trusting_the_test_cert() -> MakeRustlsConnect {
    let pem = std::fs::read(fixture("tls-test-only-ca.crt")).expect("test CA");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.expect("PEM")).expect("add root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    MakeRustlsConnect::new(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_works_with_a_certificate_and_fails_without() {
    let demo = start_demo(50, &[]).await;
    let server = serve_config(&demo, &config(true)).await;
    let port = server.addr.port();

    let conn =
        format!("host=localhost port={port} user=demo password=demo dbname=demo sslmode=require");
    let (client, connection) = tokio_postgres::connect(&conn, trusting_the_test_cert())
        .await
        .expect("TLS login");
    tokio::spawn(connection);
    assert_eq!(
        rows(&client, "SELECT count(*) FROM sandbox.contact").await,
        vec![vec![Some("50".into())]]
    );

    let (ok, out) =
        tokio::task::spawn_blocking(move || psql_login(port, "demo", "demo", "require"))
            .await
            .expect("join");
    assert!(ok && out.contains("42"), "{out}");

    let plain = serve_config(&demo, &config(false)).await;
    let plain_port = plain.addr.port();
    let (ok, out) =
        tokio::task::spawn_blocking(move || psql_login(plain_port, "demo", "demo", "require"))
            .await
            .expect("join");
    assert!(!ok && out.contains("does not support SSL"), "{out}");
}

/// psql as demo with `PGSSLMODE` and `PGCHANNELBINDING`: (success, output).
async fn psql_binding(port: u16, sslmode: &'static str, binding: &'static str) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        psql_with(
            port,
            "demo",
            "demo",
            &[("PGSSLMODE", sslmode), ("PGCHANNELBINDING", binding)],
        )
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_binding_require_logs_in_with_scram_sha_256_plus_over_tls() {
    let demo = start_demo(50, &[]).await;
    let server = serve_config(&demo, &config(true)).await;
    let port = server.addr.port();

    // tokio-postgres binds to the certificate it was shown.
    let conn = format!(
        "host=localhost port={port} user=demo dbname=demo sslmode=require channel_binding=require"
    );
    let (client, connection) =
        tokio_postgres::connect(&format!("{conn} password=demo"), trusting_the_test_cert())
            .await
            .expect("SCRAM-SHA-256-PLUS login");
    tokio::spawn(connection);
    assert_eq!(
        rows(&client, "SELECT 1").await,
        vec![vec![Some("1".into())]]
    );
    let wrong = tokio_postgres::connect(&format!("{conn} password=nope"), trusting_the_test_cert())
        .await
        .err()
        .expect("a wrong password fails with binding too");
    assert_eq!(wrong.code().map(|c| c.code()), Some("28P01"), "{wrong:?}");

    // libpq (psql): channel_binding=require succeeds only because the
    // server offered -PLUS and proved the binding.
    let (ok, out) = psql_binding(port, "require", "require").await;
    assert!(ok && out.contains("42"), "{out}");

    // Over plain TCP there is nothing to bind to: libpq refuses to go on.
    let plain = serve_config(&demo, &config(false)).await;
    let plain_port = plain.addr.port();
    let (ok, out) = psql_binding(plain_port, "disable", "require").await;
    assert!(!ok && out.contains("channel binding"), "{out}");
    // ...and without binding the same server still logs in with SCRAM-SHA-256.
    let (ok, out) = psql_binding(plain_port, "disable", "prefer").await;
    assert!(ok && out.contains("42"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_only_refuses_plain_connections_with_28000() {
    let demo = start_demo(50, &[]).await;
    let mut only = config(true);
    only.tls_only = true;
    let server = serve_config(&demo, &only).await;
    let port = server.addr.port();

    let (ok, out) =
        tokio::task::spawn_blocking(move || psql_login(port, "demo", "demo", "disable"))
            .await
            .expect("join");
    assert!(
        !ok && out.contains("accepts TLS connections only") && out.contains("sslmode=require"),
        "{out}"
    );
    let (ok, out) =
        tokio::task::spawn_blocking(move || psql_login(port, "demo", "demo", "require"))
            .await
            .expect("join");
    assert!(ok && out.contains("42"), "{out}");

    // Without a certificate, tls_only is an error at start, not plain text.
    let mut half = config(false);
    half.tls_only = true;
    let err = server::start(Arc::clone(&demo.demo.engine), &half, "127.0.0.1:0")
        .await
        .err()
        .expect("no server");
    assert!(err.to_string().contains("tls_only needs tls_cert"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_is_an_error_at_start_naming_the_file() {
    let demo = start_demo(50, &[]).await;
    let mut bad = config(true);
    bad.tls_key = Some(fixture("missing-tls.key"));
    let err = server::start(Arc::clone(&demo.demo.engine), &bad, "127.0.0.1:0")
        .await
        .err()
        .expect("no server without its key");
    assert!(err.to_string().contains("missing-tls.key"), "{err}");
}
