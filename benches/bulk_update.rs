//! Benchmark: `UPDATE production.contact SET title = ... ` of every contact
//! in orgs of 1,000 / 100,000 / 1,000,000 contacts, over a real Postgres
//! connection against the simulator with a per-call latency. Reports the
//! write method, API calls against the minimum (ceil(n/200) for
//! Collections; one job + polls for Bulk), wall time, the time spent in
//! simulated latency, the rest ("engine" time: sfsql plus the in-process
//! simulator's own work) and peak RSS of the process. The baseline, in the
//! same run and org: the update as a Python user writes it today with
//! simple-salesforce's bulk2 query and bulk2 update
//! (benches/python/write_baseline.py).
//!
//! `cargo bench --profile dev --bench bulk_update -- [LATENCY_MS] [N...]`
//! (defaults 80 1000 100000). Collections is also measured for N <= 100000.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use sfsql::simulator::{self, SimConfig};
use tokio_postgres::SimpleQueryMessage;

fn requests(stats: &Value) -> u64 {
    stats["production"]["requests"]
        .as_object()
        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum())
}

fn req(stats: &Value, kind: &str) -> u64 {
    stats["production"]["requests"][kind].as_u64().unwrap_or(0)
}

/// Calls that read records (REST pages and Bulk query jobs) between two
/// snapshots of the simulator's counters.
fn query_calls(before: &Value, after: &Value) -> u64 {
    [
        "query",
        "query_more",
        "bulk_query_create",
        "bulk_query_info",
        "bulk_query_results",
    ]
    .iter()
    .map(|k| req(after, k) - req(before, k))
    .sum()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<u64> = common::args();
    let latency = Duration::from_millis(args.first().copied().unwrap_or(80));
    let sizes: Vec<usize> = if args.len() > 1 {
        args[1..].iter().map(|n| *n as usize).collect()
    } else {
        vec![1_000, 100_000]
    };
    println!(
        "| contacts | method | query calls | write calls | minimum write calls | polls | wall s | latency s | engine s | engine % | RSS before MB | peak RSS MB |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for n in sizes {
        let dir = tempfile::tempdir()?;
        for f in ["connections.toml", "server.toml"] {
            std::fs::copy(
                format!("{}/catalog/{f}", env!("CARGO_MANIFEST_DIR")),
                dir.path().join(f),
            )?;
        }
        let (d, client) = common::start(
            dir.path(),
            SimConfig {
                contacts: n,
                latency,
                daily_api_limit: 1_000_000,
                ..SimConfig::default()
            },
        )
        .await?;
        // Every contact is written on purpose: raise the session's guard.
        client
            .simple_query(&format!("SET sfsql.max_rows = {n}"))
            .await?;
        let mut runs = vec![("bulk (default threshold)", "2000", "Bench Bulk")];
        if n <= 100_000 {
            runs.push(("collections", "1000000000", "Bench Collections"));
        }
        for (method, threshold, title) in runs {
            client
                .simple_query(&format!("SET sfsql.bulk_threshold = {threshold}"))
                .await?;
            let (_, rss_before) = common::rss_mb();
            let before = d.sim.stats();
            let t = Instant::now();
            let msgs = client
                .simple_query(&format!(
                    "UPDATE production.contact SET title = '{title}' WHERE lastname IS NOT NULL"
                ))
                .await?;
            let wall = t.elapsed();
            let after = d.sim.stats();
            let (peak, _) = common::rss_mb();
            let updated = msgs
                .iter()
                .find_map(|m| match m {
                    SimpleQueryMessage::CommandComplete(c) => Some(*c),
                    _ => None,
                })
                .unwrap_or(0);
            let delta = |k: &str| req(&after, k) - req(&before, k);
            let queries = query_calls(&before, &after);
            let bulk = delta("bulk_ingest_create")
                + delta("bulk_ingest_upload")
                + delta("bulk_ingest_state")
                + delta("bulk_ingest_info")
                + delta("bulk_ingest_results");
            let writes = delta("collections_update") + bulk;
            let minimum = if bulk > 0 {
                // create, upload, close, one poll, successfulResults
                "5 (1 job)".to_string()
            } else {
                updated.div_ceil(200).to_string()
            };
            let total = requests(&after) - requests(&before);
            let simulated = latency * total as u32;
            let engine = wall.saturating_sub(simulated);
            println!(
                "| {n} ({updated} updated) | {method} | {queries} | {writes} | {minimum} | {} | {:.2} | {:.2} | {:.2} | {:.0}% | {rss_before} | {peak} |",
                delta("bulk_ingest_info"),
                wall.as_secs_f64(),
                simulated.as_secs_f64(),
                engine.as_secs_f64(),
                100.0 * engine.as_secs_f64() / wall.as_secs_f64().max(1e-9),
            );
        }
        // The baseline: simple-salesforce's bulk2 query + bulk2 update of the
        // same records, in its own Python process, against the same org.
        let python = common::bench_python()?;
        let before = d.sim.stats();
        let out = Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python/write_baseline.py"))
            .arg(d.sim.base_url())
            .arg(simulator::DEMO_CLIENT_ID)
            .arg(simulator::DEMO_CLIENT_SECRET)
            .arg("Bench Python")
            .output()?;
        if !out.status.success() {
            return Err(
                format!("baseline failed: {}", String::from_utf8_lossy(&out.stderr)).into(),
            );
        }
        let result: Value = serde_json::from_slice(&out.stdout)?;
        let after = d.sim.stats();
        let delta = |k: &str| req(&after, k) - req(&before, k);
        let queries = query_calls(&before, &after);
        let total = requests(&after) - requests(&before);
        let wall = result["seconds"].as_f64().unwrap_or(0.0);
        let simulated = (latency * total as u32).as_secs_f64();
        println!(
            "| {n} ({} updated, {} failed) | baseline: simple-salesforce bulk2 | {queries} | {} | - | {} | {wall:.2} | {simulated:.2} | {:.2} | {:.0}% | - | {} (Python process) |",
            result["processed"],
            result["failed"],
            total - queries,
            delta("bulk_ingest_info"),
            (wall - simulated).max(0.0),
            100.0 * (wall - simulated).max(0.0) / wall.max(1e-9),
            result["peak_rss_mb"],
        );
    }
    println!(
        "latency s = per-call latency x requests (calls are sequential); engine s = wall - latency s, \
         which includes the in-process simulator's own processing and the client's poll waits"
    );
    Ok(())
}
