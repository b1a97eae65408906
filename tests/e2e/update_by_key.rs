//! The UPDATE fetches target records by key: its query calls grow with the
//! report's size, not the org's, and its writes are ceil(changed / 200).
//! A key list longer than one URI goes as composite requests (five
//! statements of about 1,800 keys each per call), as a join's lookup does.

use serde_json::Value;

use crate::common::{command_count, rows, start_demo};

fn count(stats: &Value, org: &str, kind: &str) -> u64 {
    stats[org]["requests"][kind].as_u64().unwrap_or(0)
}

fn report_csv(contacts: usize, wanted: usize) -> (String, usize) {
    let mut csv = String::from("account_email,nps_score\n");
    let mut emails = Vec::new();
    let mut i = 1;
    while emails.len() < wanted && i + 1 < contacts {
        // Skip the seeded case-duplicates (and their originals) and nulls.
        let prev = sfsql::simulator::contact_email("production", i - 1);
        let this = sfsql::simulator::contact_email("production", i);
        let next = sfsql::simulator::contact_email("production", i + 1);
        let dup = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        };
        if let Some(e) = &this
            && !dup(&prev, &this)
            && !dup(&this, &next)
        {
            emails.push(e.clone());
        }
        i += 7;
    }
    for (n, e) in emails.iter().enumerate() {
        // Upper-case some keys: lower() on both sides still matches.
        let key = if n % 3 == 0 {
            e.to_uppercase()
        } else {
            e.clone()
        };
        csv.push_str(&format!("{key},{}\n", n % 11));
    }
    (csv, emails.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_fetches_by_key_and_writes_only_changes() {
    let contacts = 20_000;
    let (csv, r) = report_csv(contacts, 1_000);
    let demo = start_demo(contacts, &[("big_report", csv)]).await;
    let client = demo.connect().await;
    let sql = "UPDATE production.contact SET wm_nps_score__c = r.nps_score \
               FROM reports.big_report r WHERE lower(contact.email) = lower(r.account_email)";

    // EXPLAIN says how the target is fetched before anything is sent.
    let explain = rows(&client, &format!("EXPLAIN {sql}")).await;
    let physical: Vec<&str> = explain
        .iter()
        .filter(|r| r[0].as_deref() == Some("physical_plan"))
        .filter_map(|r| r[1].as_deref())
        .collect();
    assert!(
        physical.iter().any(|p| p.contains("FROM Contact WHERE Email IN (")
            && p.contains("method=composite query, 1 statements of up to 1800 keys in 1 composite requests")),
        "{physical:?}"
    );

    let before = demo.stats();
    let updated = command_count(&client, sql).await;
    let after = demo.stats();
    let queries = count(&after, "production", "query") - count(&before, "production", "query");
    let more =
        count(&after, "production", "query_more") - count(&before, "production", "query_more");
    let composite =
        count(&after, "production", "composite") - count(&before, "production", "composite");
    let writes = count(&after, "production", "collections_update")
        - count(&before, "production", "collections_update");
    let returned = after["production"]["records_returned"]
        .as_u64()
        .unwrap_or(0)
        - before["production"]["records_returned"]
            .as_u64()
            .unwrap_or(0);

    // Fetched by key: the keys (one GET for the report's keys aside) in
    // composite requests of five statements of up to 1,800 keys, no
    // paging through 20,000 rows.
    eprintln!("{r} keys: {queries} query GETs, {composite} composite requests, {returned} records");
    assert_eq!(queries, 0, "no GET per URI-sized piece of the key list");
    assert_eq!(
        composite,
        (r as u64).div_ceil(1_800).div_ceil(5),
        "composite requests for {r} keys"
    );
    assert_eq!(more, 0, "no queryMore: nothing was scanned");
    assert!(
        returned <= r as u64 + 5,
        "{returned} records returned for {r} keys"
    );
    assert!(updated > 0 && updated <= r as u64, "updated {updated}");
    // Some records already hold the value (seeded scores), so changed <= matched.
    assert_eq!(
        writes,
        updated.div_ceil(200),
        "writes for {updated} changed records"
    );

    // Values landed: read back one of them.
    let check = rows(
        &client,
        "SELECT count(*) FROM production.contact WHERE wm_nps_score__c IS NOT NULL",
    )
    .await;
    assert!(
        check[0][0]
            .as_deref()
            .unwrap_or("0")
            .parse::<u64>()
            .unwrap_or(0)
            >= updated
    );

    // Running it again changes nothing and writes nothing.
    let before = demo.stats();
    assert_eq!(command_count(&client, sql).await, 0);
    let after = demo.stats();
    assert_eq!(
        count(&after, "production", "collections_update"),
        count(&before, "production", "collections_update")
    );
}
