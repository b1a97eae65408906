//! Benchmark: `UPDATE production.contact SET title = ... ` of every contact
//! in orgs of 1,000 / 100,000 / 1,000,000 contacts, over a real Postgres
//! connection, with the simulator and `sfsql serve` each in its own process
//! (children of the bench), so that what is measured is sfsql alone.
//!
//! Reports the write method, API calls against the minimum (ceil(n/200) for
//! Collections; one job + polls for Bulk), wall time, the simulated latency
//! (per-call latency x requests: the least the calls can take), sfsql's CPU
//! time during the statement (utime + stime of the `sfsql serve` process:
//! the "engine time"), its share of the wall time, and the sfsql process's
//! RSS before the statement and its peak during it (VmHWM, reset before each
//! statement through /proc/PID/clear_refs). The baseline, in the same run
//! and org: the update as a Python user writes it today with
//! simple-salesforce's bulk2 query and bulk2 update
//! (benches/python/write_baseline.py).
//!
//! `cargo bench --profile dev --bench bulk_update -- [LATENCY_MS] [N...]`
//! (defaults 80 1000 100000). Collections is also measured for N <= 100000.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::procs;
use serde_json::Value;
use sfsql::simulator;
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
async fn main() -> Result<(), common::Error> {
    let args: Vec<u64> = common::args();
    let latency_ms = args.first().copied().unwrap_or(80);
    let sizes: Vec<usize> = if args.len() > 1 {
        args[1..].iter().map(|n| *n as usize).collect()
    } else {
        vec![1_000, 100_000]
    };
    println!(
        "| contacts | method | query calls | write calls | minimum write calls | polls | wall s | latency s | sfsql CPU s | engine % | sfsql RSS before MB | sfsql peak RSS MB |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for n in sizes {
        let dir = tempfile::tempdir()?;
        let (_sim, sim_url) = procs::simulator(n, latency_ms, dir.path())?;
        let (sfsql, port) = procs::serve(dir.path(), &sim_url)?;
        let client = common::connect(port).await?;
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
            sfsql.reset_peak()?;
            let (_, rss_before) = sfsql.rss_mb();
            let cpu_before = sfsql.cpu_seconds();
            let before = procs::sim_stats(&sim_url).await?;
            let t = Instant::now();
            let msgs = client
                .simple_query(&format!(
                    "UPDATE production.contact SET title = '{title}' WHERE lastname IS NOT NULL"
                ))
                .await?;
            let wall = t.elapsed().as_secs_f64();
            let cpu = sfsql.cpu_seconds() - cpu_before;
            let (peak, _) = sfsql.rss_mb();
            let after = procs::sim_stats(&sim_url).await?;
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
                // One job: create, upload, close, successfulResults, and
                // the polls until the org has processed it (the issue's
                // "one job plus polls").
                let polls = delta("bulk_ingest_info");
                format!("{} (1 job: 4 + {polls} polls)", 4 + polls)
            } else {
                updated.div_ceil(200).to_string()
            };
            let total = requests(&after) - requests(&before);
            let simulated = latency_ms as f64 * total as f64 / 1000.0;
            println!(
                "| {n} ({updated} updated) | {method} | {queries} | {writes} | {minimum} | {} | {wall:.2} | {simulated:.2} | {cpu:.2} | {:.1}% | {rss_before} | {peak} |",
                delta("bulk_ingest_info"),
                100.0 * cpu / wall.max(1e-9),
            );
        }
        // The baseline: simple-salesforce's bulk2 query + bulk2 update of the
        // same records, in its own Python process, against the same org.
        let python = common::bench_python()?;
        let before = procs::sim_stats(&sim_url).await?;
        let out = Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python/write_baseline.py"))
            .arg(&sim_url)
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
        let after = procs::sim_stats(&sim_url).await?;
        let delta = |k: &str| req(&after, k) - req(&before, k);
        let queries = query_calls(&before, &after);
        let total = requests(&after) - requests(&before);
        let wall = result["seconds"].as_f64().unwrap_or(0.0);
        let simulated = latency_ms as f64 * total as f64 / 1000.0;
        println!(
            "| {n} ({} updated, {} failed) | baseline: simple-salesforce bulk2 | {queries} | {} | - | {} | {wall:.2} | {simulated:.2} | - | - | - | {} (Python process) |",
            result["processed"],
            result["failed"],
            total - queries,
            delta("bulk_ingest_info"),
            result["peak_rss_mb"],
        );
    }
    println!(
        "latency s = per-call latency x requests (calls are sequential: the least they can take); \
         sfsql CPU s = user + system time of the `sfsql serve` process during the statement \
         (the engine's own time; the simulator runs in another process); engine % = sfsql CPU s / wall s"
    );
    Ok(())
}
