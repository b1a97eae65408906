//! Real client libraries against the demo over TCP: psycopg 3, psycopg2,
//! asyncpg, SQLAlchemy + pandas, pgcli, psqlODBC, Node `pg`, PostgreSQL JDBC, and
//! psql's catalog and `\copy` commands. Each test spawns the client's own
//! process (scripts in tests/clients/); `.ci/run` installs the clients into
//! `<target>/clients` (Python venv, node_modules) and via apt.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use crate::common::start_demo;

/// Where `.ci/run` installs the clients: beside the build output, so every
/// checkout sharing a target directory shares one install.
fn clients_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("SFSQL_CLIENTS_DIR") {
        return PathBuf::from(dir);
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_sfsql"));
    // <target>/debug/sfsql -> <target>/clients
    bin.ancestors()
        .nth(2)
        .expect("binary lives in <target>/<profile>/")
        .join("clients")
}

fn script(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(relative)
}

/// Run a client to completion (two minutes at most) and return its output;
/// fails the test with the client's output when it exits non-zero.
async fn run_client(mut command: Command, what: &str) -> String {
    command.kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish in 120 s (a hang in the server?)"))
        .unwrap_or_else(|e| panic!("{what} could not start ({e}); run .ci/run to install it"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{stderr}");
    stdout
}

async fn python(script_name: &str) -> String {
    let demo = start_demo(300, &[]).await;
    let mut cmd = Command::new(clients_dir().join("venv/bin/python"));
    cmd.arg(script(&format!("python/{script_name}")))
        .arg(demo.port().to_string());
    run_client(cmd, script_name).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg3_extended_protocol_prepared_and_binary() {
    let out = python("psycopg3_client.py").await;
    assert!(out.contains("psycopg3 ok rows=3"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg2_simple_protocol_and_error_codes() {
    let out = python("psycopg2_client.py").await;
    assert!(out.contains("psycopg2 ok rows=4"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asyncpg_prepared_statements_binary_format() {
    let out = python("asyncpg_client.py").await;
    assert!(out.contains("asyncpg ok rows=3"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlalchemy_inspector_and_pandas_read_sql() {
    let out = python("sqlalchemy_client.py").await;
    assert!(
        out.contains("sqlalchemy ok") && out.contains("frame=5"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgcli_command_line_and_completion_metadata() {
    let out = python("pgcli_client.py").await;
    assert!(out.contains("pgcli ok"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odbc_tables_columns_and_a_query() {
    let out = python("odbc_client.py").await;
    assert!(out.contains("odbc ok") && out.contains("rows=3"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_pg_parameters_and_named_statements() {
    let demo = start_demo(300, &[]).await;
    let mut cmd = Command::new("node");
    cmd.arg(script("node/pg_client.js"))
        .arg(demo.port().to_string())
        .env("NODE_PATH", clients_dir().join("node/node_modules"));
    let out = run_client(cmd, "node pg").await;
    assert!(out.contains("node-pg ok rows=3"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jdbc_metadata_and_prepared_query() {
    let demo = start_demo(300, &[]).await;
    let mut cmd = Command::new("java");
    cmd.args(["-cp", "/usr/share/java/postgresql.jar"])
        .arg(script("java/JdbcClient.java"))
        .arg(demo.port().to_string());
    let out = run_client(cmd, "java JdbcClient").await;
    assert!(out.contains("jdbc ok") && out.contains("rows=4"), "{out}");
    assert!(out.contains("pk=[id/1/contact_pkey]"), "{out}");
    // getColumns(sandbox, contact), getPrimaryKeys and the query describe
    // that one sObject.
    assert_eq!(describes(&demo, "sandbox"), 1);
    assert_eq!(describes(&demo, "production"), 0);
}

/// Describe calls the simulator of `org` has served.
fn describes(demo: &crate::common::TestDemo, org: &str) -> u64 {
    demo.stats()[org]["requests"]["describe"]
        .as_u64()
        .unwrap_or(0)
}

fn psql(port: u16, args: &[&str]) -> Command {
    let mut cmd = Command::new("psql");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-U", "demo", "-d", "demo", "-X", "-v", "ON_ERROR_STOP=1"])
        .args(args)
        .env("PGPASSWORD", "demo");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_catalog_commands_expanded_output_and_copy() {
    let demo = start_demo(300, &[]).await;
    let port = demo.port();

    let l = run_client(psql(port, &["-c", "\\l"]), "psql \\l").await;
    assert!(l.contains("List of databases"), "{l}");
    // The database is sfsql's, not DataFusion's default catalog name.
    assert!(l.contains(" sfsql ") && !l.contains("datafusion"), "{l}");

    let dn = run_client(psql(port, &["-c", "\\dn"]), "psql \\dn").await;
    for schema in ["sandbox", "production", "reports", "cron"] {
        assert!(dn.contains(schema), "{dn}");
    }

    let d = run_client(psql(port, &["-c", "\\d+ sandbox.contact"]), "psql \\d+").await;
    assert!(
        d.contains("Table \"sandbox.contact\"") && d.contains("email"),
        "{d}"
    );
    // Its primary key is listed under Indexes (pg_class has the index).
    assert!(
        d.contains("Indexes:") && d.contains("\"contact_pkey\" PRIMARY KEY"),
        "{d}"
    );
    // `\d` describes the one sObject it shows.
    assert_eq!(describes(&demo, "sandbox"), 1);
    assert_eq!(describes(&demo, "production"), 0);

    let x = run_client(
        psql(
            port,
            &[
                "-c",
                "\\x",
                "-c",
                "select id, email from sandbox.contact limit 1",
            ],
        ),
        "psql \\x",
    )
    .await;
    assert!(x.contains("-[ RECORD 1 ]") && x.contains("email"), "{x}");

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("contacts.csv");
    let copy = format!(
        "\\copy (select id, email from sandbox.contact order by email limit 7) to '{}' csv header",
        file.display()
    );
    let out = run_client(psql(port, &["-c", &copy]), "psql \\copy").await;
    assert!(out.contains("COPY 7"), "{out}");
    let csv = std::fs::read_to_string(&file).expect("copy wrote the file");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 8, "{csv}");
    assert_eq!(lines[0], "id,email");
    assert!(lines[1..].iter().all(|l| l.contains('@')), "{csv}");
}
