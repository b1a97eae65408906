//! Benchmark: a full scan of the contacts of an org over Bulk API 2.0 query
//! jobs and over REST query pages, at each of several org sizes (issue 3's
//! "Large scans" and "Streaming"): API calls, records transferred, rows,
//! wall time, and how much the process's resident memory grew during the
//! scan (peak RSS, `VmHWM`, reset before each scan through
//! `/proc/self/clear_refs`, minus `VmRSS` before it). The process holds
//! the simulator's org too; the growth is what the scan itself costs on
//! both sides, so it should stay flat as the result grows.
//!
//! The client is `psql` in its own process (rows counted as they arrive),
//! so the memory measured is sfsql's and the simulator's only; an
//! in-process client would add its own receive buffers to the figures.
//!
//! `cargo bench --profile dev --bench large_scan -- [LATENCY_MS] [N...]`
//! (defaults 80 100000 1000000).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Error;
use serde_json::Value;
use sfsql::simulator::SimConfig;

/// Start a new peak: writing 5 to clear_refs resets VmHWM to VmRSS.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Data requests (every kind but OAuth) and records returned of one org.
fn calls_and_records(stats: &Value) -> (u64, u64) {
    let org = &stats["production"];
    let calls = org["requests"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "token" | "authorize" | "revoke"))
                .filter_map(|(_, v)| v.as_u64())
                .sum()
        })
        .unwrap_or(0);
    (calls, org["records_returned"].as_u64().unwrap_or(0))
}

/// Rows of `sql` through `psql` in its own process, counted as they come
/// (none kept here), so this process's memory is the server's and the
/// simulator's only.
async fn psql_rows(port: u16, settings: &str, sql: &str) -> Result<u64, Error> {
    use tokio::io::AsyncReadExt;
    let mut child = tokio::process::Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-h",
            "127.0.0.1",
            "-U",
            "demo",
            "-d",
            "demo",
        ])
        .args(["-p", &port.to_string(), "-c", settings, "-c", sql])
        .env("PGPASSWORD", "demo")
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut out = child.stdout.take().ok_or("psql has no stdout")?;
    let mut buf = vec![0u8; 1 << 16];
    let mut lines = 0u64;
    loop {
        let n = out.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
    }
    if !child.wait().await?.success() {
        return Err(format!("psql failed on {sql}").into());
    }
    Ok(lines)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<usize> = common::args();
    let latency = args.first().copied().unwrap_or(80) as u64;
    let sizes: Vec<usize> = match args.get(1..) {
        Some(rest) if !rest.is_empty() => rest.to_vec(),
        _ => vec![100_000, 1_000_000],
    };
    println!(
        "| contacts | method | API calls | records transferred | rows | seconds | RSS before MB | peak RSS MB | growth MB |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for n in sizes {
        let dir = tempfile::tempdir()?;
        for f in ["connections.toml", "server.toml"] {
            std::fs::copy(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("catalog")
                    .join(f),
                dir.path().join(f),
            )?;
        }
        std::fs::write(dir.path().join("reports.toml"), "")?;
        let t0 = Instant::now();
        let (d, client) = common::start(
            dir.path(),
            SimConfig {
                contacts: n,
                latency: Duration::from_millis(latency),
                ..SimConfig::default()
            },
        )
        .await?;
        eprintln!(
            "org of {n} contacts, {latency} ms per call; up in {:.1}s",
            t0.elapsed().as_secs_f64()
        );
        // Describe once, so neither run pays for it.
        client
            .simple_query("SELECT id FROM production.contact LIMIT 1")
            .await?;
        let port = d.server.addr.port();
        let sql = "SELECT id, email, lastname, leadsource, createddate, birthdate FROM production.contact";
        for (method, threshold) in [("Bulk query", 50_000), ("REST query", 0)] {
            let set = format!("SET sfsql.bulk_query_threshold = {threshold}");
            let (calls0, records0) = calls_and_records(&d.sim.stats());
            let (_, before) = common::rss_mb();
            reset_peak();
            let t = Instant::now();
            let rows = psql_rows(port, &set, sql).await?;
            let secs = t.elapsed().as_secs_f64();
            let (peak, _) = common::rss_mb();
            let (calls1, records1) = calls_and_records(&d.sim.stats());
            println!(
                "| {n} | {method} | {} | {} | {rows} | {secs:.1} | {before} | {peak} | {} |",
                calls1 - calls0,
                records1 - records0,
                peak.saturating_sub(before)
            );
        }
    }
    Ok(())
}
