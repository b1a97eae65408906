//! Start a demo (simulator + catalog + server) on free ports, optionally
//! with extra report files, and connect to it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use sfsql::demo::{self, Demo, DemoOptions};
use sfsql::scheduler::{Clock, SchedulerOptions, SystemClock};
use sfsql::simulator::SimConfig;
use tokio_postgres::{AsyncMessage, Client, NoTls, SimpleQueryMessage};

pub struct TestDemo {
    pub demo: Demo,
    /// Keeps the copied catalog alive for the life of the demo.
    _dir: tempfile::TempDir,
}

impl TestDemo {
    pub fn port(&self) -> u16 {
        self.demo.server.addr.port()
    }

    pub async fn connect(&self) -> Client {
        connect_port(self.port()).await
    }

    /// The demo's own copy of the catalog directory (reports included).
    pub fn catalog_dir(&self) -> &Path {
        self._dir.path()
    }

    /// Request counters of the simulator, by org.
    pub fn stats(&self) -> serde_json::Value {
        self.demo.sim.stats()
    }

    /// Stop this demo, keeping its directory (catalog, job files, state)
    /// for [`launch`] to start it again: a server stopped.
    pub fn stop(self) -> tempfile::TempDir {
        let TestDemo { demo, _dir: dir } = self;
        demo.server.task.abort();
        drop(demo);
        dir
    }
}

/// Connect as the demo user to an sfsql server on `port`.
pub async fn connect_port(port: u16) -> Client {
    let conn_str = format!("host=127.0.0.1 port={port} user=demo password=demo dbname=demo");
    let (client, connection) = tokio_postgres::connect(&conn_str, NoTls)
        .await
        .expect("connect to sfsql");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A connection whose NOTICE messages are collected.
pub async fn connect_with_notices(
    demo: &TestDemo,
) -> (Client, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let conn_str = format!(
        "host=127.0.0.1 port={} user=demo password=demo dbname=demo",
        demo.port()
    );
    let (client, mut connection) = tokio_postgres::connect(&conn_str, NoTls)
        .await
        .expect("connect to sfsql");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(m)) = messages.next().await {
            if let AsyncMessage::Notice(n) = m {
                let _ = tx.send(n.message().to_string());
            }
        }
    });
    (client, rx)
}

/// The notices received so far, one a line.
pub fn drain(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    let mut all = Vec::new();
    while let Ok(n) = rx.try_recv() {
        all.push(n);
    }
    all.join("\n")
}

/// The SQLSTATE and message of a statement that must fail.
pub async fn error_of(client: &Client, sql: &str) -> (String, String) {
    let err = client.simple_query(sql).await.expect_err(sql);
    let db = err.as_db_error().expect("a database error");
    (db.code().code().to_string(), db.message().to_string())
}

/// The simulator's `org` answers its next `count` data requests with
/// `status` and Salesforce error `code` (503 SERVER_UNAVAILABLE, 403
/// REQUEST_LIMIT_EXCEEDED when the org's API requests are used up...).
pub async fn fail_next(demo: &TestDemo, org: &str, status: u16, count: u32, code: &str) {
    let url = format!(
        "{}/__sim/fail_next?org={org}&status={status}&count={count}&code={code}",
        demo.demo.sim.base_url()
    );
    let r = reqwest::Client::new().post(url).send().await.expect("sim");
    assert!(r.status().is_success());
}

/// Make the simulator's `org` refuse the next `count` records written with
/// a validation rule's error (FIELD_CUSTOM_VALIDATION_EXCEPTION).
pub async fn fail_records(base_url: &str, org: &str, count: usize) {
    reqwest::Client::new()
        .post(format!(
            "{base_url}/__sim/fail_records?org={org}&code=FIELD_CUSTOM_VALIDATION_EXCEPTION&count={count}"
        ))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("inject failures");
}

pub fn repo_catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog")
}

/// A demo over a copy of the repository's catalog plus `extra_reports`
/// (name, CSV text), with a fresh state directory and no job files.
pub async fn start_demo(contacts: usize, extra_reports: &[(&str, String)]) -> TestDemo {
    start_demo_with_jobs(contacts, extra_reports, None).await
}

/// [`start_demo`] whose catalog also serves the folder reports of
/// tests/fixtures/reports: that folder is copied in as `fixtures/` and its
/// reports.toml appended to the catalog's.
pub async fn start_demo_with_fixture_reports(
    contacts: usize,
    extra_reports: &[(&str, String)],
) -> TestDemo {
    let dir = tempfile::tempdir().expect("tempdir");
    write_catalog(dir.path(), extra_reports, None);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reports");
    let target = dir.path().join("fixtures");
    std::fs::create_dir_all(&target).expect("mkdir fixtures");
    copy_dir(&fixtures, &target);
    let mut toml = std::fs::read_to_string(dir.path().join("reports.toml")).expect("reports.toml");
    toml.push('\n');
    toml.push_str(&std::fs::read_to_string(target.join("reports.toml")).expect("fixture reports"));
    std::fs::write(dir.path().join("reports.toml"), toml).expect("write reports.toml");
    let sim = SimConfig {
        contacts,
        ..SimConfig::default()
    };
    launch(dir, sim, Arc::new(SystemClock)).await
}

/// [`start_demo`] that also loads job files: `job_files` are (file name,
/// text) written to a `sql/` directory of the demo's own. The state
/// directory is `<demo dir>/.sfsql`.
pub async fn start_demo_with_jobs(
    contacts: usize,
    extra_reports: &[(&str, String)],
    job_files: Option<&[(&str, String)]>,
) -> TestDemo {
    let sim = SimConfig {
        contacts,
        ..SimConfig::default()
    };
    start_demo_with_clock(sim, extra_reports, job_files, Arc::new(SystemClock)).await
}

/// [`start_demo_with_jobs`] whose scheduler reads time from `clock` (a
/// [`sfsql::scheduler::ManualClock`] drives the loop without sleeping).
pub async fn start_demo_with_clock(
    sim: SimConfig,
    extra_reports: &[(&str, String)],
    job_files: Option<&[(&str, String)]>,
    clock: Arc<dyn Clock>,
) -> TestDemo {
    let dir = tempfile::tempdir().expect("tempdir");
    write_catalog(dir.path(), extra_reports, job_files);
    launch(dir, sim, clock).await
}

/// Copy the repository's catalog into `dir`, with `extra_reports` (name, CSV
/// text) and `job_files` (see [`start_demo_with_jobs`]).
fn write_catalog(
    dir: &Path,
    extra_reports: &[(&str, String)],
    job_files: Option<&[(&str, String)]>,
) {
    copy_dir(&repo_catalog(), dir);
    if !extra_reports.is_empty() {
        let mut toml = std::fs::read_to_string(dir.join("reports.toml")).expect("reports.toml");
        for (name, csv) in extra_reports {
            let file = format!("{name}.csv");
            std::fs::write(dir.join(&file), csv).expect("write csv");
            toml.push_str(&format!(
                "\n[{name}]\nformat = \"csv\"\npath = \"{file}\"\n"
            ));
        }
        std::fs::write(dir.join("reports.toml"), toml).expect("write reports.toml");
    }
    if let Some(files) = job_files {
        let sql = dir.join("sql");
        std::fs::create_dir_all(&sql).expect("mkdir sql");
        for (name, text) in files {
            std::fs::write(sql.join(name), text).expect("write job file");
        }
    }
}

/// Start a demo over the catalog already in `dir` (and its `sql/`, if
/// there is one), with the state directory `<dir>/.sfsql`.
pub async fn launch(dir: tempfile::TempDir, sim: SimConfig, clock: Arc<dyn Clock>) -> TestDemo {
    let catalog_dir = dir.path().to_path_buf();
    let sql_dir = Some(dir.path().join("sql")).filter(|d| d.is_dir());
    let jobs = SchedulerOptions {
        state_dir: dir.path().join(".sfsql"),
        sql_dir,
        run_loop: true,
        clock,
        config: Default::default(),
        alerts: None,
    };
    let demo = demo::start_with_jobs(
        DemoOptions {
            catalog: catalog_dir,
            listen: "127.0.0.1:0".into(),
            sim_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            sim,
        },
        jobs,
    )
    .await
    .expect("start demo");
    TestDemo { demo, _dir: dir }
}

pub fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read catalog") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Run one statement with the simple protocol; rows as text.
pub async fn rows(client: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

/// The count of a command tag (`UPDATE n`).
pub async fn command_count(client: &Client, sql: &str) -> u64 {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    messages
        .into_iter()
        .find_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(n),
            _ => None,
        })
        .expect("a command tag")
}

/// Write requests (Collections and Bulk ingest) in one org's simulator
/// counters (`stats[org]`).
pub fn write_requests(org: &serde_json::Value) -> u64 {
    org["requests"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.starts_with("collections_") || k.contains("ingest"))
                .filter_map(|(_, v)| v.as_u64())
                .sum()
        })
        .unwrap_or(0)
}
