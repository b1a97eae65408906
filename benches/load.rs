//! Benchmark: the Postgres front door under load, and streaming a large
//! report to psql next to PostgreSQL 15 serving the same rows.
//!
//! 1. C concurrent tokio-postgres clients run a mix of catalog queries,
//!    SELECTs (sObject and report) and UPDATE dry runs against the demo for
//!    S seconds: statements, errors, p50/p99/max latency per kind, and the
//!    process's peak RSS (simulator included: it runs in this process).
//! 2. `psql -c "SELECT * FROM reports.big" > /dev/null` for a report of R
//!    rows, timed over three runs, and the same rows from a throwaway
//!    PostgreSQL 15 cluster (Debian's `postgresql-15`, skipped when absent)
//!    to the same psql.
//!
//! `cargo bench --profile dev --bench load -- [C] [S] [R]` (defaults 32 60 1000000).

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sfsql::simulator::SimConfig;
use tokio::sync::Mutex;
use tokio_postgres::NoTls;

use common::Error;

/// What each client cycles through: (kind, statements sent as one simple query).
const MIX: &[(&str, &str)] = &[
    (
        "catalog",
        "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'sandbox' ORDER BY 2",
    ),
    (
        "catalog",
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'reports'",
    ),
    (
        "select sObject",
        "SELECT id, email, title FROM sandbox.contact WHERE email LIKE 'a%' LIMIT 50",
    ),
    (
        "select report",
        "SELECT count(*), avg(nps_score) FROM reports.nps_score",
    ),
    (
        "dry run",
        "SET sfsql.dry_run = on; \
         UPDATE sandbox.contact SET wm_nps_score__c = r.nps_score FROM reports.nps_score r \
         WHERE lower(contact.email) = lower(r.account_email); \
         SET sfsql.dry_run = off",
    ),
];

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<usize> = common::args();
    let clients = args.first().copied().unwrap_or(32);
    let seconds = args.get(1).copied().unwrap_or(60) as u64;
    let big_rows = args.get(2).copied().unwrap_or(1_000_000);

    let dir = tempfile::tempdir()?;
    let catalog = dir.path();
    copy_catalog(catalog)?;
    write_big_report(catalog, big_rows).await?;

    // The demo org's 15,000 daily API requests run out within the first
    // minute of 32 clients; the load measured here is sfsql's, not the quota.
    let sim = SimConfig {
        daily_api_limit: 100_000_000,
        ..SimConfig::default()
    };
    let (d, _client) = common::start(catalog, sim).await?;
    let port = d.server.addr.port();
    let conn = common::conn_str(port);
    println!(
        "demo up (1,000 contacts per org); peak RSS so far {:.0} MB",
        peak_rss_mb()
    );

    // 1. Load.
    let samples: Arc<Mutex<Vec<(usize, Duration)>>> = Arc::default();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (conn, samples, errors) = (conn.clone(), Arc::clone(&samples), Arc::clone(&errors));
        tasks.push(tokio::spawn(async move {
            let (client, connection) = match tokio_postgres::connect(&conn, NoTls).await {
                Ok(pair) => pair,
                Err(e) => {
                    errors.lock().await.push(format!("connect: {e}"));
                    return;
                }
            };
            tokio::spawn(connection);
            let mut i = c;
            while Instant::now() < until {
                let which = i % MIX.len();
                let t = Instant::now();
                match client.simple_query(MIX[which].1).await {
                    Ok(_) => samples.lock().await.push((which, t.elapsed())),
                    Err(e) => errors.lock().await.push(format!("{}: {e:?}", MIX[which].0)),
                }
                i += 1;
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let samples = samples.lock().await;
    let errors = errors.lock().await;
    println!(
        "\n{clients} clients for {seconds} s: {} statements ({:.0}/s), {} errors",
        samples.len(),
        samples.len() as f64 / seconds as f64,
        errors.len()
    );
    for e in errors.iter().take(5) {
        println!("  error: {e}");
    }
    println!("| kind | statements | p50 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- |");
    let mut kinds: Vec<&str> = MIX.iter().map(|(k, _)| *k).collect();
    kinds.dedup();
    for kind in kinds {
        let mut lat: Vec<Duration> = samples
            .iter()
            .filter(|(w, _)| MIX[*w].0 == kind)
            .map(|(_, d)| *d)
            .collect();
        lat.sort();
        println!(
            "| {kind} | {} | {:.1} | {:.1} | {:.1} |",
            lat.len(),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            percentile(&lat, 1.0)
        );
    }
    println!("peak RSS after the load: {:.0} MB", peak_rss_mb());

    // 2. Streaming a big report to psql, next to PostgreSQL 15.
    let select = "SELECT * FROM reports.big";
    let mut sfsql_runs = Vec::new();
    for _ in 0..3 {
        sfsql_runs.push(time_psql(port, "demo", "demo", "demo", select)?);
    }
    println!(
        "\npsql, {big_rows} rows of a Parquet report from sfsql: {} s (peak RSS {:.0} MB)",
        runs_text(&sfsql_runs),
        peak_rss_mb()
    );
    match postgres_baseline(catalog, big_rows)? {
        Some(pg_runs) => {
            let best = |r: &[f64]| r.iter().cloned().fold(f64::INFINITY, f64::min);
            println!(
                "psql, the same rows from PostgreSQL 15: {} s; ratio sfsql/PostgreSQL (best of 3) {:.2}",
                runs_text(&pg_runs),
                best(&sfsql_runs) / best(&pg_runs)
            );
        }
        None => println!(
            "PostgreSQL 15 baseline skipped: no /usr/lib/postgresql/15/bin/initdb (apt-get install postgresql-15)"
        ),
    }
    Ok(())
}

fn runs_text(runs: &[f64]) -> String {
    runs.iter()
        .map(|s| format!("{s:.2}"))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn copy_catalog(to: &Path) -> Result<(), Error> {
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog"), to)
}

/// Copy a folder with its subfolders (report folders are directories).
fn copy_dir(from: &Path, to: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()))?;
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// `big.csv`: id, email, score, signed_up, for R rows (what PostgreSQL
/// loads), and the same rows as `big.parquet`, registered as report `big`.
async fn write_big_report(catalog: &Path, rows: usize) -> Result<(), Error> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(catalog.join("big.csv"))?);
    writeln!(out, "id,email,score,signed_up")?;
    for i in 0..rows {
        writeln!(
            out,
            "{i},user{i}@example.com,{},2024-{:02}-{:02}",
            i % 11,
            i % 12 + 1,
            i % 28 + 1
        )?;
    }
    out.flush()?;
    drop(out);
    let ctx = datafusion::prelude::SessionContext::new();
    let csv = catalog.join("big.csv");
    let parquet = catalog.join("big.parquet");
    ctx.read_csv(
        csv.to_string_lossy().as_ref(),
        datafusion::prelude::CsvReadOptions::new(),
    )
    .await?
    .write_parquet(
        parquet.to_string_lossy().as_ref(),
        datafusion::dataframe::DataFrameWriteOptions::new().with_single_file_output(true),
        None,
    )
    .await?;
    let mut toml = std::fs::read_to_string(catalog.join("reports.toml"))?;
    toml.push_str("\n[big]\nformat = \"parquet\"\npath = \"big.parquet\"\n");
    std::fs::write(catalog.join("reports.toml"), toml)?;
    Ok(())
}

/// Seconds for psql to fetch `sql`'s rows and throw them away.
fn time_psql(port: u16, user: &str, password: &str, db: &str, sql: &str) -> Result<f64, Error> {
    let t = Instant::now();
    let out = Command::new("psql")
        .args(["-X", "-q", "-At", "-h", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .args(["-U", user, "-d", db, "-c", sql])
        .env("PGPASSWORD", password)
        .stdout(std::process::Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(format!("psql: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(t.elapsed().as_secs_f64())
}

/// The same rows served by a throwaway PostgreSQL 15 cluster (run as the
/// `postgres` user when this is root), three timed runs.
fn postgres_baseline(catalog: &Path, rows: usize) -> Result<Option<Vec<f64>>, Error> {
    let bin = Path::new("/usr/lib/postgresql/15/bin");
    if !bin.join("initdb").exists() {
        return Ok(None);
    }
    let data = tempfile::Builder::new()
        .prefix("sfsql-pg-")
        .tempdir_in("/tmp")?;
    let as_root = std::env::var("USER").map(|u| u == "root").unwrap_or(true);
    let run = |args: &[&str]| -> Result<(), Error> {
        let mut cmd = if as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]);
            c
        } else {
            Command::new(args[0])
        };
        let cmd = if as_root {
            cmd.args(args)
        } else {
            cmd.args(&args[1..])
        };
        let out = cmd.output()?;
        if !out.status.success() {
            return Err(format!("{}: {}", args[0], String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(())
    };
    let data_dir = data.path().join("data");
    let csv = data.path().join("big.csv");
    std::fs::copy(catalog.join("big.csv"), &csv)?;
    if as_root {
        Command::new("chown")
            .args(["-R", "postgres"])
            .arg(data.path())
            .status()?;
    }
    let initdb = bin.join("initdb");
    let pg_ctl = bin.join("pg_ctl");
    let data_s = data_dir.to_string_lossy().to_string();
    run(&[
        initdb.to_str().unwrap_or("initdb"),
        "-D",
        &data_s,
        "-A",
        "trust",
        "-U",
        "postgres",
    ])?;
    // Below the ephemeral range (32768-60999 on Linux): a port there can be
    // held in TIME-WAIT by one of the load's own client sockets, and
    // PostgreSQL then fails to bind it.
    let port = (25_432u16..25_532)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .ok_or("no free port in 25432..25532 for PostgreSQL")?;
    let opts = format!("-p {port} -k /tmp -c listen_addresses=127.0.0.1");
    run(&[
        pg_ctl.to_str().unwrap_or("pg_ctl"),
        "-D",
        &data_s,
        "-o",
        &opts,
        "-w",
        "-l",
        &format!("{}/log", data.path().display()),
        "start",
    ])?;
    // One -c per statement: psql sends a single -c as one transaction,
    // where VACUUM cannot run.
    let load = [
        "CREATE TABLE big (id bigint, email text, score bigint, signed_up date)".to_string(),
        format!("COPY big FROM '{}' CSV HEADER", csv.display()),
        "VACUUM ANALYZE big".to_string(),
    ];
    let loaded = {
        let mut cmd = Command::new("psql");
        cmd.args(["-X", "-q", "-h", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .args(["-U", "postgres", "-d", "postgres"]);
        for sql in &load {
            cmd.args(["-c", sql]);
        }
        cmd.output()?
    };
    let result = if loaded.status.success() {
        let mut runs = Vec::new();
        for _ in 0..3 {
            runs.push(time_psql(
                port,
                "postgres",
                "",
                "postgres",
                "SELECT * FROM big",
            )?);
        }
        println!("(PostgreSQL loaded {rows} rows)");
        Ok(Some(runs))
    } else {
        Err(format!(
            "loading PostgreSQL: {}",
            String::from_utf8_lossy(&loaded.stderr)
        )
        .into())
    };
    let _ = run(&[
        pg_ctl.to_str().unwrap_or("pg_ctl"),
        "-D",
        &data_s,
        "-m",
        "fast",
        "stop",
    ]);
    result
}
