//! No secret reaches a log, an error, EXPLAIN or a table. The real binary
//! serves two connections (client credentials, and a refresh token from
//! the environment) with every log at debug, a full session runs against it
//! (queries, EXPLAIN, a dry run, an UPDATE, a job and its run log, a token
//! expiring mid-session, a failed login, a bad statement, the CLI's
//! status commands), and then every token the simulator ever issued, the
//! client secret and the user's password are looked for in everything the
//! user or an operator can see: the server's log, each result and error,
//! CLI output and the state directory's files (tokens.json aside: it is the
//! token store, and is checked to be the owner's only).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sfsql::simulator::{self, DEMO_CLIENT_SECRET, SimConfig};
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::common::{connect_port, repo_catalog};

const CONNECTIONS: &str = r#"
[production]
login_url = "${SFSQL_SIM_URL}/production"
auth = { flow = "client_credentials", client_id_env = "SFSQL_DEMO_CLIENT_ID", client_secret_env = "SFSQL_DEMO_CLIENT_SECRET" }

[sandbox]
login_url = "${SFSQL_SIM_URL}/sandbox"
auth = { flow = "refresh_token", client_id_env = "SFSQL_DEMO_CLIENT_ID", client_secret_env = "SFSQL_DEMO_CLIENT_SECRET", refresh_token_env = "SFSQL_TEST_SANDBOX_REFRESH" }
"#;

/// The demo user's password (catalog/server.toml).
const PASSWORD: &str = "demo";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The server process; killed when dropped, so a failed assertion leaves
/// nothing running.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run `sfsql` with `args` and the test's environment; its output.
fn sfsql(args: &[&str], env: &[(&str, String)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sfsql"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run sfsql");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every cell and command tag of `sql`'s result, or its error, as text.
async fn transcript(client: &Client, sql: &str) -> String {
    match client.simple_query(sql).await {
        Ok(messages) => {
            let mut out = String::new();
            for m in messages {
                match m {
                    SimpleQueryMessage::Row(row) => {
                        for i in 0..row.len() {
                            out.push_str(row.get(i).unwrap_or("NULL"));
                            out.push('|');
                        }
                        out.push('\n');
                    }
                    SimpleQueryMessage::CommandComplete(n) => out.push_str(&format!("({n})\n")),
                    _ => {}
                }
            }
            out
        }
        Err(e) => match e.as_db_error() {
            Some(db) => format!(
                "ERROR {} {} {:?} {:?}\n",
                db.code().code(),
                db.message(),
                db.detail(),
                db.hint()
            ),
            None => format!("ERROR {e}\n"),
        },
    }
}

/// Every file under `dir` but the token store, as (path, bytes).
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if path.file_name().is_some_and(|n| n != "tokens.json") {
            let bytes = std::fs::read(&path).expect("read state file");
            out.push((path, bytes));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn sim_post(base: &str, path: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .send()
        .await
        .expect("simulator control");
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.expect("body")
}

#[tokio::test]
async fn no_secret_in_logs_errors_explain_or_tables() {
    let sim = simulator::start(SimConfig::default(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("simulator");
    let base = sim.base_url();
    let refresh: serde_json::Value =
        serde_json::from_str(&sim_post(&base, "/__sim/refresh_token?org=sandbox").await)
            .expect("json");
    let refresh = refresh["refresh_token"]
        .as_str()
        .expect("token")
        .to_string();

    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = dir.path().join("catalog");
    std::fs::create_dir_all(catalog.join("demo")).expect("mkdir");
    std::fs::write(catalog.join("connections.toml"), CONNECTIONS).expect("write");
    for file in ["server.toml", "reports.toml"] {
        std::fs::copy(repo_catalog().join(file), catalog.join(file)).expect("copy");
    }
    // Every report file reports.toml names, whatever reports there are.
    crate::common::copy_dir(&repo_catalog().join("demo"), &catalog.join("demo"));
    let state = dir.path().join("state");
    let port = free_port();
    let env = vec![
        ("SFSQL_SIM_URL", base.clone()),
        (
            "SFSQL_DEMO_CLIENT_ID",
            simulator::DEMO_CLIENT_ID.to_string(),
        ),
        ("SFSQL_DEMO_CLIENT_SECRET", DEMO_CLIENT_SECRET.to_string()),
        ("SFSQL_TEST_SANDBOX_REFRESH", refresh.clone()),
        ("SFSQL_LOG", "debug,sfsql=trace".to_string()),
    ];
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let (catalog_arg, state_arg) = (catalog.display().to_string(), state.display().to_string());
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_sfsql"))
        .args([
            "serve",
            "--catalog",
            &catalog_arg,
            "--state-dir",
            &state_arg,
        ])
        .args(["--listen", &listen])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn sfsql serve");
    let _server = Server(child);
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(&listen).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let client = connect_port(port).await;
    let mut seen = String::new();
    let session = [
        "SELECT id, email, title FROM production.contact LIMIT 5",
        "SELECT count(*) FROM sandbox.contact",
        "EXPLAIN SELECT id FROM production.contact WHERE email LIKE 'a%'",
        "EXPLAIN UPDATE sandbox.contact SET wm_nps_score__c = r.nps_score \
         FROM reports.nps_score r WHERE lower(contact.email) = lower(r.account_email)",
        "SET sfsql.dry_run = on",
        "UPDATE sandbox.contact SET wm_nps_score__c = r.nps_score \
         FROM reports.nps_score r WHERE lower(contact.email) = lower(r.account_email)",
        "SET sfsql.dry_run = off",
        "SELECT cron.schedule('nps', '0 9 * * *', $$UPDATE sandbox.contact \
         SET wm_nps_score__c = r.nps_score FROM reports.nps_score r \
         WHERE lower(contact.email) = lower(r.account_email)$$)",
        "SELECT cron.run('nps')",
        "UPDATE production.contact SET title = 'VP' WHERE email = 'nobody@nowhere.example'",
        "SELECT * FROM production.no_such_object",
        "UPDATE production.contact SET no_such_field__c = 1 WHERE id = '003000000000001AAA'",
        "SHOW ALL",
    ];
    for sql in session {
        seen.push_str(&transcript(&client, sql).await);
    }
    // Tokens expire mid-session: both connections renew theirs.
    sim_post(&base, "/__sim/expire_tokens").await;
    for sql in [
        "SELECT id FROM production.account LIMIT 3",
        "SELECT id FROM sandbox.account LIMIT 3",
        "SELECT * FROM cron.job",
        "SELECT * FROM cron.job_run_details",
        "SELECT * FROM cron.job_run_records",
        "SELECT * FROM pg_catalog.pg_settings",
    ] {
        seen.push_str(&transcript(&client, sql).await);
    }
    // A wrong password is refused without echoing anything secret.
    let bad = format!("host=127.0.0.1 port={port} user=demo password=wrong-{PASSWORD} dbname=demo");
    if let Err(e) = tokio_postgres::connect(&bad, tokio_postgres::NoTls).await {
        seen.push_str(&format!("{e:?}\n"));
    }
    let cli = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--catalog", &catalog_arg, "--state-dir", &state_arg]);
        sfsql(&all, &env)
    };
    seen.push_str(&cli(&["connections"]));
    seen.push_str(&cli(&["jobs", "list"]));
    seen.push_str(&cli(&["jobs", "logs", "nps"]));
    drop(client);
    drop(_server);

    // The session did what it says, so that the search below means something.
    assert!(seen.contains("(5)") || seen.contains("SELECT 5"), "{seen}");
    assert!(seen.contains("ERROR 42P01"), "{seen}");
    assert!(seen.contains("succeeded"), "the job ran: {seen}");
    let log = std::fs::read(&log_path).expect("server log");
    let log_text = String::from_utf8_lossy(&log);
    for line in [
        "DEBUG sfsql::salesforce::client: salesforce request",
        "DEBUG sfsql::salesforce::oauth: token request",
        "grant=refresh_token",
        "grant=client_credentials",
        "status=401",
    ] {
        assert!(
            log_text.contains(line),
            "the server logged {line:?} at debug"
        );
    }
    let tokens = sim.issued_tokens();
    let access = tokens.iter().filter(|t| t.contains("!AQ")).count();
    assert!(access >= 4, "both connections got tokens twice: {tokens:?}");

    let mut secrets: Vec<(String, &str)> = tokens.into_iter().map(|t| (t, "a token")).collect();
    secrets.push((refresh, "the sandbox refresh token"));
    secrets.push((DEMO_CLIENT_SECRET.to_string(), "the client secret"));
    // Token prefixes too: a token cut short in a message is still a leak.
    secrets.push(("!AQ".to_string(), "an access token's prefix"));
    secrets.push(("5Aep861".to_string(), "a refresh token's prefix"));
    let password = format!("wrong-{PASSWORD}");
    secrets.push((password, "a password"));

    let mut places: Vec<(String, Vec<u8>)> = vec![
        ("the server log".into(), log),
        ("results, errors and CLI output".into(), seen.into_bytes()),
    ];
    for (path, bytes) in files_under(&state) {
        places.push((path.display().to_string(), bytes));
    }
    assert!(
        places.len() >= 3,
        "the state store has files: {}",
        places.len()
    );
    for (place, bytes) in &places {
        for (secret, what) in &secrets {
            assert!(!contains(bytes, secret), "{what} is in {place}");
        }
    }
    let store = state.join("tokens.json");
    if store.exists() {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&store)
            .expect("store")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "tokens.json is the owner's only");
    }
}
