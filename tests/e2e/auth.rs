//! Password authentication over a real socket: SCRAM-SHA-256 against the
//! catalog's verifiers for tokio-postgres and psql, 28P01 for a wrong
//! password or an unknown user, and cleartext only when the catalog asks.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

use sfsql::config::{AuthMethod, Role, ServerConfig, UserConfig};
use sfsql::scheduler::CronHook;
use sfsql::server::{self, ServerHandle, Verifier};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::NoTls;

use crate::common::{TestDemo, rows, start_demo};

/// A server on the demo's engine (with its `cron.*` hook) for `users`:
/// (name, password, role).
pub async fn serve_users(
    demo: &TestDemo,
    auth: AuthMethod,
    users: &[(&str, &str, Role)],
) -> ServerHandle {
    let users = users
        .iter()
        .map(|(name, password, role)| {
            let user = UserConfig {
                password_hash: Verifier::new(password).to_string(),
                role: *role,
            };
            (name.to_string(), user)
        })
        .collect::<BTreeMap<_, _>>();
    let config = ServerConfig {
        auth,
        users,
        ..ServerConfig::default()
    };
    serve_config(demo, &config).await
}

/// A server on the demo's engine (with its `cron.*` hook) for `config`.
pub async fn serve_config(demo: &TestDemo, config: &ServerConfig) -> ServerHandle {
    let cron = CronHook::new(Arc::clone(&demo.demo.jobs.scheduler));
    server::start_with_hooks(
        Arc::clone(&demo.demo.engine),
        config,
        "127.0.0.1:0",
        vec![Arc::new(cron)],
    )
    .await
    .expect("server")
}

async fn serve(demo: &TestDemo, auth: AuthMethod) -> ServerHandle {
    serve_users(demo, auth, &[("alice", "s3cret pass", Role::Reader)]).await
}

async fn login(port: u16, user: &str, password: &str) -> Result<(), tokio_postgres::Error> {
    let conn = format!("host=127.0.0.1 port={port} user={user} password='{password}' dbname=demo");
    let (client, connection) = tokio_postgres::connect(&conn, NoTls).await?;
    tokio::spawn(connection);
    assert_eq!(
        rows(&client, "SELECT 1").await,
        vec![vec![Some("1".into())]]
    );
    Ok(())
}

fn refused(result: Result<(), tokio_postgres::Error>) -> (String, String) {
    let err = result.expect_err("login must be refused");
    let db = err
        .as_db_error()
        .expect("an ErrorResponse, not a dropped socket");
    (db.code().code().to_string(), db.message().to_string())
}

/// The authentication request the server answers a StartupMessage with:
/// its code (10 = SASL, 3 = cleartext) and payload.
async fn auth_request(port: u16) -> (i32, Vec<u8>) {
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let body = b"\x00\x03\x00\x00user\x00alice\x00database\x00demo\x00\x00";
    let mut startup = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    startup.extend_from_slice(body);
    socket.write_all(&startup).await.expect("startup");
    assert_eq!(socket.read_u8().await.expect("type"), b'R');
    let len = socket.read_u32().await.expect("len") as usize;
    let code = socket.read_i32().await.expect("code");
    let mut payload = vec![0; len - 8];
    socket.read_exact(&mut payload).await.expect("payload");
    (code, payload)
}

/// `psql -c "SELECT 42"` as `user` with `password` and `sslmode`: whether
/// it succeeded, and its output.
pub fn psql_login(port: u16, user: &str, password: &str, sslmode: &str) -> (bool, String) {
    psql_with(port, user, password, &[("PGSSLMODE", sslmode)])
}

/// `psql -c "SELECT 42"` as `user`, with libpq settings in `env`:
/// (success, stdout and stderr).
pub fn psql_with(port: u16, user: &str, password: &str, env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", user])
        .args(["-d", "demo", "-X", "-w", "-c", "SELECT 42"])
        .env("PGPASSWORD", password)
        .envs(env.iter().copied())
        .output()
        .expect("psql must be installed (Debian: postgresql-client; .ci/run installs it)");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_logs_in_with_the_right_password_only() {
    let demo = start_demo(50, &[]).await;
    let server = serve(&demo, AuthMethod::ScramSha256).await;
    let port = server.addr.port();

    let (code, payload) = auth_request(port).await;
    assert_eq!(code, 10, "SASL, not cleartext or md5");
    assert_eq!(payload, b"SCRAM-SHA-256\0\0");

    login(port, "alice", "s3cret pass")
        .await
        .expect("right password");
    let (code, message) = refused(login(port, "alice", "wrong").await);
    assert_eq!(code, "28P01");
    assert!(
        message.contains("authentication failed for user \"alice\""),
        "{message}"
    );
    // An unknown user fails the same way, so user names cannot be probed.
    let (code, message) = refused(login(port, "mallory", "s3cret pass").await);
    assert_eq!(code, "28P01");
    assert!(message.contains("\"mallory\""), "{message}");

    let (ok, out) =
        tokio::task::spawn_blocking(move || psql_login(port, "alice", "s3cret pass", "prefer"))
            .await
            .expect("join");
    assert!(ok && out.contains("42"), "{out}");
    let (ok, out) =
        tokio::task::spawn_blocking(move || psql_login(port, "alice", "nope", "prefer"))
            .await
            .expect("join");
    assert!(
        !ok && out.contains("authentication failed for user \"alice\""),
        "{out}"
    );

    // The server is still up for everyone else.
    login(port, "alice", "s3cret pass")
        .await
        .expect("still serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleartext_only_when_the_catalog_says_so() {
    let demo = start_demo(50, &[]).await;
    let server = serve(&demo, AuthMethod::Password).await;
    let port = server.addr.port();
    let (code, _) = auth_request(port).await;
    assert_eq!(code, 3, "cleartext password request");
    login(port, "alice", "s3cret pass")
        .await
        .expect("right password");
    let (code, _) = refused(login(port, "alice", "s3cret").await);
    assert_eq!(code, "28P01");
}

#[test]
fn a_bad_password_hash_is_an_error_at_start_naming_the_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("server.toml"),
        "[users.bob]\npassword_hash = \"md5c514c91e4ed341f263e458d44b3bb0a7\"\n",
    )
    .expect("write");
    let err = sfsql::config::Catalog::load(dir.path(), &sfsql::config::Env::default())
        .expect_err("md5 hashes are refused");
    let message = err.to_string();
    assert!(
        message.contains("server.toml")
            && message.contains("user bob")
            && message.contains("sfsql hash-password"),
        "{message}"
    );
}
