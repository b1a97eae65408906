//! Joins fetch the sObject side by key: the simulator's counters show one
//! GET for a few keys, composite requests of five statements of about 1,800
//! keys for many, and exactly the records that match, for 5 keys and for
//! 50,000 keys, and for parent lookups.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use tokio_postgres::Client;

use crate::common::{TestDemo, rows, start_demo};

fn requests(stats: &Value, org: &str, kind: &str) -> u64 {
    stats[org]["requests"][kind].as_u64().unwrap_or(0)
}

fn subrequests(stats: &Value, org: &str, kind: &str) -> u64 {
    stats[org]["composite_subrequests"][kind]
        .as_u64()
        .unwrap_or(0)
}

fn returned(stats: &Value, org: &str) -> u64 {
    stats[org]["records_returned"].as_u64().unwrap_or(0)
}

/// A report of `wanted` distinct (case-insensitively) contact emails, some
/// upper-cased, and how many contacts each key matches case-insensitively.
fn report(contacts: usize, wanted: usize) -> (String, u64) {
    let mut per_key: HashMap<String, u64> = HashMap::new();
    for i in 0..contacts {
        if let Some(e) = sfsql::simulator::contact_email("production", i) {
            *per_key.entry(e.to_lowercase()).or_default() += 1;
        }
    }
    let mut csv = String::from("email,score\n");
    let mut seen = HashSet::new();
    let mut matches = 0;
    for i in (0..contacts)
        .step_by(contacts / wanted.max(1))
        .take(wanted * 2)
    {
        let Some(e) = sfsql::simulator::contact_email("production", i) else {
            continue;
        };
        if seen.len() == wanted || !seen.insert(e.to_lowercase()) {
            continue;
        }
        matches += per_key[&e.to_lowercase()];
        let key = if i % 3 == 0 { e.to_uppercase() } else { e };
        csv.push_str(&format!("{key},{}\n", i % 10));
    }
    assert_eq!(seen.len(), wanted, "not enough distinct emails");
    (csv, matches)
}

struct Measured {
    queries: u64,
    more: u64,
    /// Composite requests, and the query and queryMore subrequests in them.
    composite: u64,
    sub_queries: u64,
    sub_more: u64,
    records: u64,
    rows: u64,
}

async fn measure(demo: &TestDemo, sql: &str) -> Measured {
    let client = demo.connect().await;
    let before = demo.stats();
    let out = rows(&client, sql).await;
    let after = demo.stats();
    Measured {
        queries: requests(&after, "production", "query") - requests(&before, "production", "query"),
        more: requests(&after, "production", "query_more")
            - requests(&before, "production", "query_more"),
        composite: requests(&after, "production", "composite")
            - requests(&before, "production", "composite"),
        sub_queries: subrequests(&after, "production", "query")
            - subrequests(&before, "production", "query"),
        sub_more: subrequests(&after, "production", "query_more")
            - subrequests(&before, "production", "query_more"),
        records: returned(&after, "production") - returned(&before, "production"),
        rows: out[0][0]
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    }
}

/// A join of `production.contact c` (filtered) to a parent `p` on its Id.
struct ParentLookup {
    /// `<parent table> p ON c.<key> = p.id`
    join: &'static str,
    key: &'static str,
    /// A field of the parent that the query reads.
    field: &'static str,
    /// The start of the SOQL the parent is fetched by.
    soql: &'static str,
}

impl ParentLookup {
    /// EXPLAIN shows the lookup by key; running it costs two queries (the
    /// contacts, then their parents by Id) and returns each contact and
    /// each distinct parent once. `filtered` is `FROM production.contact c
    /// WHERE ...`, matching `contacts` records.
    async fn check(&self, demo: &TestDemo, client: &Client, filtered: &str, contacts: u64) {
        let ParentLookup {
            join,
            key,
            field,
            soql,
        } = self;
        let (from, filter) = filtered.split_once(" WHERE ").expect("a WHERE");
        let counts = rows(
            client,
            &format!("SELECT count(c.{key}), count(DISTINCT c.{key}) {filtered}"),
        )
        .await;
        let count = |i: usize| -> u64 {
            counts[0][i]
                .as_deref()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let (linked, parents) = (count(0), count(1));
        assert!(linked > 0 && parents > 0, "{key}");
        let plan = rows(
            client,
            &format!("EXPLAIN SELECT c.id, p.{field} {from} JOIN {join} WHERE {filter}"),
        )
        .await;
        let plan = plan[1][1].clone().unwrap_or_default();
        assert!(
            plan.contains(&format!("KeyCollectExec: keys={key}@"))
                && plan.contains(&format!(
                    "lookup by key=[{soql} WHERE Id IN (<keys from {key}@"
                )),
            "{plan}"
        );
        let m = measure(
            demo,
            &format!("SELECT count(p.{field}) {from} JOIN {join} WHERE {filter}"),
        )
        .await;
        assert_eq!(m.rows, linked, "{key}");
        assert_eq!((m.queries, m.more), (2, 0), "{key}");
        assert_eq!(m.records, contacts + parents, "{key}");
    }
}

async fn report_join(contacts: usize, keys: usize) {
    let (csv, matches) = report(contacts, keys);
    let demo = start_demo(contacts, &[("keys", csv)]).await;
    let joins = [
        "SELECT count(*) FROM reports.keys r JOIN production.contact c \
         ON lower(c.email) = lower(r.email)",
        // The sObject written first: the rule still makes the report the
        // build side.
        "SELECT count(*) FROM production.contact c JOIN reports.keys r \
         ON lower(r.email) = lower(c.email)",
    ];
    for sql in joins {
        let m = measure(&demo, sql).await;
        assert_eq!(m.rows, matches, "{sql}");
        assert_eq!(m.more, 0, "no queryMore: nothing was scanned ({sql})");
        // Exactly the matching records cross the wire.
        assert_eq!(m.records, matches, "{sql}");
        if keys <= 100 {
            // One GET.
            assert_eq!((m.queries, m.composite), (1, 0), "{sql}");
        } else {
            // Statements of at most 1,800 keys, five to a composite call;
            // a statement whose keys match more than a page of records
            // costs a further page, sent with others in one call.
            assert_eq!(m.queries, 0, "{sql}");
            assert_eq!(m.sub_queries, (keys as u64).div_ceil(1800), "{sql}");
            let fewest = matches.div_ceil(5 * 2000);
            assert!(
                m.composite <= fewest + 1 && m.composite >= fewest,
                "{} composite calls for {matches} records, {} statements, {} further pages ({sql})",
                m.composite,
                m.sub_queries,
                m.sub_more
            );
        }
    }
    // Plain (case-sensitive) equality: the same lookup, SQL semantics kept.
    let m = measure(
        &demo,
        "SELECT count(*) FROM reports.keys r JOIN production.contact c ON c.email = r.email",
    )
    .await;
    assert_eq!(m.more, 0);
    assert!(m.rows < matches && m.records == matches, "{}", m.rows);
    // EXPLAIN says how the lookup is sent, before and as run.
    let client = demo.connect().await;
    let sql = "SELECT count(*) FROM reports.keys r JOIN production.contact c \
               ON lower(c.email) = lower(r.email)";
    let plan = rows(&client, &format!("EXPLAIN {sql}")).await;
    let plan = plan[1][1].clone().unwrap_or_default();
    assert!(
        plan.contains("method=one GET while the IN list fits in a URI, else composite requests of 5 statements of up to 1800 keys"),
        "{plan}"
    );
    let analyzed = rows(&client, &format!("EXPLAIN ANALYZE {sql}")).await;
    let analyzed = analyzed
        .iter()
        .filter_map(|r| r.last().cloned().flatten())
        .collect::<Vec<_>>()
        .join("\n");
    let expected = if keys <= 100 {
        "method=GET key lookup, 1 statement (as run)".to_string()
    } else {
        let n = keys.div_ceil(1800);
        format!(
            "method=composite key lookup, {n} statements ({} composite requests for their first pages) (as run)",
            n.div_ceil(5)
        )
    };
    assert!(analyzed.contains(&expected), "{analyzed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_join_of_5_keys_fetches_5_records() {
    report_join(2_000, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_join_of_50_000_keys_fetches_by_key() {
    report_join(60_000, 50_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_object_and_parent_lookups_fetch_by_key() {
    let demo = start_demo(3_000, &[]).await;
    let client = demo.connect().await;
    let filtered = "FROM production.contact c WHERE c.lastname = 'Smith'";
    let smiths = rows(&client, &format!("SELECT count(*) {filtered}")).await[0][0]
        .clone()
        .unwrap_or_default();
    let smiths: u64 = smiths.parse().unwrap_or(0);
    assert!(smiths > 0);

    // Parent lookups: the Smiths' owners (users) and, through accountid,
    // their accounts, each fetched by Id; the user writes plain joins.
    let by_owner = ParentLookup {
        join: "production.user p ON c.ownerid = p.id",
        key: "ownerid",
        field: "email",
        soql: "SELECT Id, Email FROM User",
    };
    by_owner.check(&demo, &client, filtered, smiths).await;
    let by_account = ParentLookup {
        join: "production.account p ON c.accountid = p.id",
        key: "accountid",
        field: "name",
        soql: "SELECT Id, Name FROM Account",
    };
    by_account.check(&demo, &client, filtered, smiths).await;

    // A filtered sObject as the small side of a join to another sObject.
    let m = measure(
        &demo,
        "SELECT count(*) FROM production.contact c JOIN production.contact d \
         ON lower(d.email) = lower(c.email) WHERE c.lastname = 'Smith'",
    )
    .await;
    assert!(m.rows >= smiths);
    assert_eq!((m.queries, m.more), (2, 0));
    assert!(m.records <= smiths + m.rows, "{}", m.records);
}
