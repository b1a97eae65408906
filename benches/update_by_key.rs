//! Benchmark: an UPDATE ... FROM of an R-row report into an org of N
//! contacts, over a real Postgres connection against the simulator.
//! Reports API calls by kind, records transferred, and wall time per run,
//! next to the minimum possible and a full-scan baseline measured in the
//! same run.
//!
//! `cargo bench --bench update_by_key -- [N] [R] [RUNS]` (defaults 200000 5000 3).

mod common;

use std::time::Instant;

use serde_json::Value;
use sfsql::simulator::{SimConfig, contact_email};

fn req(stats: &Value, kind: &str) -> u64 {
    stats["production"]["requests"][kind].as_u64().unwrap_or(0)
}

fn returned(stats: &Value) -> u64 {
    stats["production"]["records_returned"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<usize> = common::args();
    let n = args.first().copied().unwrap_or(200_000);
    let r = args.get(1).copied().unwrap_or(5_000);
    let runs = args.get(2).copied().unwrap_or(3);

    // A report of r keys that each match exactly one contact.
    let dir = tempfile::tempdir()?;
    let catalog = dir.path();
    for f in ["connections.toml", "server.toml"] {
        std::fs::copy(
            format!("{}/catalog/{f}", env!("CARGO_MANIFEST_DIR")),
            catalog.join(f),
        )?;
    }
    let mut csv = String::from("account_email,nps_score\n");
    let mut keys = 0;
    let mut i = 1;
    while keys < r && i + 1 < n {
        let (p, t, x) = (
            contact_email("production", i - 1),
            contact_email("production", i),
            contact_email("production", i + 1),
        );
        let same = |a: &Option<String>, b: &Option<String>| matches!((a, b), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b));
        if let Some(e) = &t
            && !same(&p, &t)
            && !same(&t, &x)
        {
            csv.push_str(&format!("{e},{}\n", keys % 11));
            keys += 1;
        }
        i += n / r / 2 + 1;
    }
    std::fs::write(catalog.join("report.csv"), csv)?;
    std::fs::write(
        catalog.join("reports.toml"),
        "[report]\nformat = \"csv\"\npath = \"report.csv\"\n",
    )?;

    let t0 = Instant::now();
    let (d, client) = common::start(
        catalog,
        SimConfig {
            contacts: n,
            ..SimConfig::default()
        },
    )
    .await?;
    println!(
        "seeded org of {n} contacts, report of {keys} keys in {:.1}s",
        t0.elapsed().as_secs_f64()
    );

    let update = "UPDATE production.contact SET wm_nps_score__c = r.nps_score FROM reports.report r \
                  WHERE lower(contact.email) = lower(r.account_email)";
    let reset = "UPDATE production.contact SET wm_nps_score__c = NULL FROM reports.report r \
                 WHERE lower(contact.email) = lower(r.account_email)";
    println!(
        "| run | statement | query calls | queryMore calls | composite calls | records returned | write calls | updated | seconds |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for run in 1..=runs {
        for (label, sql) in [
            ("reset to NULL", reset),
            ("update from report", update),
            ("rerun (no change)", update),
        ] {
            let before = d.sim.stats();
            let t = Instant::now();
            let msgs = client.simple_query(sql).await?;
            let secs = t.elapsed().as_secs_f64();
            let after = d.sim.stats();
            let updated = msgs.iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::CommandComplete(c) => Some(*c),
                _ => None,
            });
            println!(
                "| {run} | {label} | {} | {} | {} | {} | {} | {} | {secs:.2} |",
                req(&after, "query") - req(&before, "query"),
                req(&after, "query_more") - req(&before, "query_more"),
                req(&after, "composite") - req(&before, "composite"),
                returned(&after) - returned(&before),
                req(&after, "collections_update") - req(&before, "collections_update"),
                updated.unwrap_or(0),
            );
        }
    }
    // Baseline: what a full scan of the object costs (the approach of a
    // query_all-then-merge script).
    let before = d.sim.stats();
    let t = Instant::now();
    client
        .simple_query("SELECT id, email, wm_nps_score__c FROM production.contact")
        .await?;
    let secs = t.elapsed().as_secs_f64();
    let after = d.sim.stats();
    println!(
        "| - | baseline: full scan of contact | {} | {} | {} | {} | 0 | - | {secs:.2} |",
        req(&after, "query") - req(&before, "query"),
        req(&after, "query_more") - req(&before, "query_more"),
        req(&after, "composite") - req(&before, "composite"),
        returned(&after) - returned(&before)
    );
    println!(
        "minimum possible for the update: write calls = ceil(changed / 200) = {}",
        (keys as u64).div_ceil(200)
    );
    Ok(())
}
