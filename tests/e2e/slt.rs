//! Runs every `tests/slt/*.slt` file over a real Postgres connection, each
//! against a fresh demo (with the folder reports of tests/fixtures/reports),
//! with sqllogictest.
//!
//! Two harness statements talk to the simulator over HTTP, so a file can
//! prove what reached "Salesforce" independently of sfsql:
//! `SIM <org> <counter>` returns a counter of `GET /__sim/stats` (`writes`
//! sums every write request; otherwise a request kind such as
//! `collections_update`, `sub.<kind>` for subrequests of composite
//! requests such as `sub.query`, `records_written`, `records_returned`,
//! `report_rows_returned`, or `duplicate_ids`: records of a Collections
//! request repeating an Id named before in it), and
//! `SIM RESET` zeroes the counters, and
//! `SIM FAIL_RECORDS <org> <statusCode> <count>` makes the next records
//! written fail with that per-record error (`POST /__sim/fail_records`),
//! `SIM FAIL_NEXT <org> <status> <count> [<errorCode> [<kind> [<message>]]]`
//! makes the next requests (of that kind, such as `collections_update`)
//! fail as a whole (`POST /__sim/fail_next`), and
//! `SIM DROP_NEXT <org> <count> [<kind>]` makes the next requests be served
//! and their answer lost, the connection cut (`POST
//! /__sim/drop_next_response`).
//!
//! Two more run the repository's saved statements against changing
//! reports: `FILE sql/<name>.sql` sends that file of the repository, as
//! saved, over the connection (so the `.slt` tests the job itself, not a
//! copy of it), and `REPORT <path>` followed by CSV lines replaces the
//! demo catalog's report file at `<path>` (a report changed between runs).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::common::start_demo_with_fixture_reports;

struct Pg {
    client: Client,
    /// The simulator's base URL, for `SIM` statements.
    sim: String,
    /// The demo's own copy of the catalog, for `REPORT` statements.
    catalog: PathBuf,
}

/// `SQLSTATE: message`, so `.slt` files can match on either.
#[derive(Debug)]
struct PgError(String);

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PgError {}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => PgError(format!("{}: {}", db.code().code(), db.message())),
            None => PgError(e.to_string()),
        }
    }
}

#[async_trait]
impl AsyncDB for Pg {
    type Error = PgError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, PgError> {
        let sql = sql.trim();
        if let Some(args) = sql.strip_prefix("SIM ") {
            return sim_statement(&self.sim, args).await;
        }
        if let Some(path) = sql.strip_prefix("FILE ") {
            let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(path.trim());
            let text = std::fs::read_to_string(&file)
                .map_err(|e| PgError(format!("{}: {e}", file.display())))?;
            return self.query(&text).await;
        }
        if let Some(rest) = sql.strip_prefix("REPORT ") {
            let (path, csv) = rest.split_once('\n').unwrap_or((rest, ""));
            let file = self.catalog.join(path.trim());
            std::fs::write(&file, format!("{csv}\n"))
                .map_err(|e| PgError(format!("{}: {e}", file.display())))?;
            return Ok(DBOutput::StatementComplete(0));
        }
        self.query(sql).await
    }

    async fn shutdown(&mut self) {}

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }
}

impl Pg {
    async fn query(&self, sql: &str) -> Result<DBOutput<DefaultColumnType>, PgError> {
        let messages = self.client.simple_query(sql).await?;
        let mut rows = Vec::new();
        let mut columns = None;
        let mut count = 0;
        for m in messages {
            match m {
                SimpleQueryMessage::RowDescription(cols) => columns = Some(cols.len()),
                SimpleQueryMessage::Row(r) => {
                    columns = Some(r.len());
                    rows.push(
                        (0..r.len())
                            .map(|i| match r.get(i) {
                                None => "NULL".to_string(),
                                Some("") => "(empty)".to_string(),
                                Some(v) => v.to_string(),
                            })
                            .collect(),
                    );
                }
                SimpleQueryMessage::CommandComplete(n) => count = n,
                _ => {}
            }
        }
        match columns {
            Some(n) => Ok(DBOutput::Rows {
                types: vec![DefaultColumnType::Any; n],
                rows,
            }),
            None => Ok(DBOutput::StatementComplete(count)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slt_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/slt")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        // `SLT=upsert cargo test --test e2e slt::` runs the files whose
        // name contains "upsert" (while writing one; CI runs them all).
        .filter(|p| match std::env::var("SLT") {
            Ok(part) => p.to_string_lossy().contains(&part),
            Err(_) => true,
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    let duplicates_csv = "account_email,nps_score\n".to_string() + &duplicate_keys_csv();
    for file in files {
        let demo =
            start_demo_with_fixture_reports(300, &[("nps_duplicates", duplicates_csv.clone())])
                .await;
        let port = demo.port();
        let sim = demo.demo.sim.base_url();
        let catalog = demo.catalog_dir().to_path_buf();
        let mut runner = sqllogictest::Runner::new(move || {
            let sim = sim.clone();
            let catalog = catalog.clone();
            async move {
                let conn_str =
                    format!("host=127.0.0.1 port={port} user=demo password=demo dbname=demo");
                let (client, connection) =
                    tokio_postgres::connect(&conn_str, tokio_postgres::NoTls).await?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok::<_, PgError>(Pg {
                    client,
                    sim,
                    catalog,
                })
            }
        });
        runner.with_column_validator(|_, _| true);
        if let Err(e) = runner.run_file_async(&file).await {
            panic!("{}: {}", file.display(), e.display(true));
        }
    }
}

/// A `SIM ...` harness statement (see the module doc).
async fn sim_statement(base: &str, args: &str) -> Result<DBOutput<DefaultColumnType>, PgError> {
    let words: Vec<&str> = args.split_whitespace().collect();
    let http = reqwest::Client::new();
    let fail = |e: reqwest::Error| PgError(format!("simulator: {e}"));
    match words.as_slice() {
        ["RESET"] => {
            post(&http, format!("{base}/__sim/stats/reset")).await?;
            Ok(DBOutput::StatementComplete(0))
        }
        ["FAIL_RECORDS", org, code, count] => {
            post(
                &http,
                format!("{base}/__sim/fail_records?org={org}&code={code}&count={count}"),
            )
            .await?;
            Ok(DBOutput::StatementComplete(0))
        }
        ["FAIL_NEXT", org, status, count, rest @ ..] => {
            let mut url = format!("{base}/__sim/fail_next?org={org}&status={status}&count={count}");
            let names = ["code", "kind"];
            for (name, value) in names.iter().zip(rest) {
                url.push_str(&format!("&{name}={value}"));
            }
            if rest.len() > names.len() {
                let message = rest[names.len()..].join(" ");
                let message: String =
                    url::form_urlencoded::byte_serialize(message.as_bytes()).collect();
                url.push_str(&format!("&message={message}"));
            }
            post(&http, url).await?;
            Ok(DBOutput::StatementComplete(0))
        }
        ["DROP_NEXT", org, count, rest @ ..] if rest.len() <= 1 => {
            let mut url = format!("{base}/__sim/drop_next_response?org={org}&count={count}");
            if let Some(kind) = rest.first() {
                url.push_str(&format!("&kind={kind}"));
            }
            post(&http, url).await?;
            Ok(DBOutput::StatementComplete(0))
        }
        [org, counter] => {
            let stats: serde_json::Value = http
                .get(format!("{base}/__sim/stats"))
                .send()
                .await
                .map_err(fail)?
                .json()
                .await
                .map_err(fail)?;
            let org = &stats[*org];
            let value = match *counter {
                "writes" => crate::common::write_requests(org),
                "records_written" => org["records_written"].as_u64().unwrap_or(0),
                "duplicate_ids" => org["duplicate_ids"].as_u64().unwrap_or(0),
                "records_returned" => org["records_returned"].as_u64().unwrap_or(0),
                "report_rows_returned" => org["report_rows_returned"].as_u64().unwrap_or(0),
                kind => match kind.strip_prefix("sub.") {
                    Some(sub) => org["composite_subrequests"][sub].as_u64().unwrap_or(0),
                    None => org["requests"][kind].as_u64().unwrap_or(0),
                },
            };
            Ok(DBOutput::Rows {
                types: vec![DefaultColumnType::Integer],
                rows: vec![vec![value.to_string()]],
            })
        }
        _ => Err(PgError(format!("unknown harness statement: SIM {args}"))),
    }
}

/// POST to a simulator test endpoint.
async fn post(http: &reqwest::Client, url: String) -> Result<(), PgError> {
    http.post(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| PgError(format!("simulator: {e}")))?;
    Ok(())
}

/// Report rows whose keys each match two contacts (the seeded duplicates
/// that differ only in case).
fn duplicate_keys_csv() -> String {
    let mut out = String::new();
    let mut n = 0;
    for i in 1..300 {
        let (Some(a), Some(b)) = (
            sfsql::simulator::contact_email("sandbox", i - 1),
            sfsql::simulator::contact_email("sandbox", i),
        ) else {
            continue;
        };
        if a.eq_ignore_ascii_case(&b) {
            out.push_str(&format!("{},7\n", a.to_lowercase()));
            n += 1;
        }
        if n == 2 {
            break;
        }
    }
    out
}
