//! Runs every `tests/slt/*.slt` file over a real Postgres connection, each
//! against a fresh demo, with sqllogictest.

use std::path::Path;

use async_trait::async_trait;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::common::start_demo;

struct Pg {
    client: Client,
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

    async fn shutdown(&mut self) {}

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slt_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/slt")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    let duplicates_csv = "account_email,nps_score\n".to_string() + &duplicate_keys_csv();
    for file in files {
        let demo = start_demo(300, &[("nps_duplicates", duplicates_csv.clone())]).await;
        let port = demo.port();
        let mut runner = sqllogictest::Runner::new(move || async move {
            let conn_str =
                format!("host=127.0.0.1 port={port} user=demo password=demo dbname=demo");
            let (client, connection) =
                tokio_postgres::connect(&conn_str, tokio_postgres::NoTls).await?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok::<_, PgError>(Pg { client })
        });
        runner.with_column_validator(|_, _| true);
        if let Err(e) = runner.run_file_async(&file).await {
            panic!("{}: {}", file.display(), e.display(true));
        }
    }
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
