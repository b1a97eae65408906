//! EXPLAIN shows the exact SOQL of every scan: COUNT() for `count(*)`,
//! ORDER BY ... LIMIT for a top-n by a number or date, date and datetime
//! literals unquoted, and nothing for filters SOQL cannot answer (the
//! results and call counts are pinned in tests/slt/pushdown.slt).

use crate::common::{rows, start_demo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_the_soql_sent() {
    let demo = start_demo(50, &[]).await;
    let client = demo.connect().await;
    let plan = |sql: &'static str| {
        let client = &client;
        async move {
            let out = rows(client, &format!("EXPLAIN {sql}")).await;
            out.get(1)
                .and_then(|r| r.get(1).cloned().flatten())
                .unwrap_or_default()
        }
    };
    let cases = [
        (
            "SELECT count(*) FROM sandbox.contact WHERE wm_nps_score__c >= 9",
            "soql=[SELECT COUNT() FROM Contact WHERE WM_NPS_Score__c >= 9]",
        ),
        (
            "SELECT id FROM sandbox.contact WHERE createddate >= TIMESTAMP '2023-01-31 00:00:00' AND birthdate < DATE '1990-01-01'",
            "soql=[SELECT Id FROM Contact WHERE CreatedDate >= 2023-01-31T00:00:00Z AND Birthdate < 1990-01-01]",
        ),
        (
            "SELECT id, birthdate FROM sandbox.contact ORDER BY birthdate DESC LIMIT 3",
            "soql=[SELECT Id, Birthdate FROM Contact ORDER BY Birthdate DESC NULLS FIRST LIMIT 3]",
        ),
        (
            "SELECT id FROM sandbox.contact ORDER BY createddate LIMIT 5",
            "soql=[SELECT Id, CreatedDate FROM Contact ORDER BY CreatedDate ASC NULLS LAST LIMIT 5]",
        ),
        // Text order is SQL's, not SOQL's: the sort stays with DataFusion.
        (
            "SELECT email FROM sandbox.contact ORDER BY email LIMIT 2",
            "soql=[SELECT Email FROM Contact]",
        ),
        // (DataFusion turns IN lists of up to 3 values into `=`s.)
        // Inexact conditions (SOQL's NOT IN and `= false` also return
        // nulls; text compares case-insensitively) are sent, and their
        // columns fetched for DataFusion to apply the filter again.
        (
            "SELECT id FROM sandbox.contact WHERE wm_nps_score__c NOT IN (8, 9, 10, 11)",
            "soql=[SELECT Id, WM_NPS_Score__c FROM Contact WHERE WM_NPS_Score__c NOT IN (8, 9, 10, 11)]",
        ),
        (
            "SELECT id FROM sandbox.contact WHERE NOT hasoptedoutofemail",
            "soql=[SELECT Id, HasOptedOutOfEmail FROM Contact WHERE HasOptedOutOfEmail = false]",
        ),
        (
            "SELECT id FROM sandbox.contact WHERE email LIKE 'chloe%'",
            "soql=[SELECT Id, Email FROM Contact WHERE Email LIKE 'chloe%']",
        ),
        (
            "SELECT id FROM sandbox.contact WHERE email IN ('a@x.example', 'b@x.example', 'c@x.example', 'd@x.example')",
            "soql=[SELECT Id, Email FROM Contact WHERE Email IN ('a@x.example', 'b@x.example', 'c@x.example', 'd@x.example')]",
        ),
        // Exact: SOQL answers these as SQL does.
        (
            "SELECT id FROM sandbox.contact WHERE email IS NULL",
            "soql=[SELECT Id FROM Contact WHERE Email = null]",
        ),
        (
            "SELECT id FROM sandbox.contact WHERE birthdate IS NOT NULL AND wm_nps_score__c IN (8, 9, 10, 11)",
            "soql=[SELECT Id FROM Contact WHERE Birthdate != null AND WM_NPS_Score__c IN (8, 9, 10, 11)]",
        ),
        // A cast to text around a key (as DataFusion puts around a column
        // compared to a Utf8View value) still reaches SOQL.
        (
            "SELECT id FROM sandbox.contact WHERE CAST(email AS VARCHAR) = arrow_cast('x@y.example', 'Utf8View')",
            "soql=[SELECT Id, Email FROM Contact WHERE Email = 'x@y.example']",
        ),
        // Description is not filterable: DataFusion filters it.
        (
            "SELECT count(*) FROM sandbox.task WHERE description LIKE '%quote%'",
            "soql=[SELECT Description FROM Task]",
        ),
    ];
    for (sql, soql) in cases {
        let p = plan(sql).await;
        assert!(p.contains(soql), "{sql}\nwanted {soql}\n{p}");
    }
    // The top-n sort stays above the ordered scan.
    let p = plan("SELECT id, birthdate FROM sandbox.contact ORDER BY birthdate DESC LIMIT 3").await;
    assert!(p.contains("SortExec: TopK(fetch=3)"), "{p}");

    // How each scan reads: REST pages, or a Bulk query job when large
    // (tests/slt/bulk_query.slt pins the calls); `_all` through queryAll.
    let methods = [
        (
            "SELECT email FROM sandbox.contact",
            "soql=[SELECT Email FROM Contact], method=REST query, Bulk query if more than 50000 records match",
        ),
        (
            "SELECT email FROM sandbox.contact LIMIT 10",
            "soql=[SELECT Email FROM Contact LIMIT 10], method=REST query",
        ),
        (
            "SELECT id, isdeleted FROM sandbox.contact_all",
            "soql=[SELECT Id, IsDeleted FROM Contact], method=REST queryAll, Bulk queryAll if more than 50000 records match",
        ),
    ];
    for (sql, wanted) in methods {
        let p = plan(sql).await;
        assert!(p.contains(wanted), "{sql}\nwanted {wanted}\n{p}");
    }
    client
        .simple_query("SET sfsql.bulk_query_threshold = 0")
        .await
        .expect("set");
    let p = plan("SELECT email FROM sandbox.contact").await;
    assert!(
        p.trim_end()
            .ends_with("soql=[SELECT Email FROM Contact], method=REST query"),
        "{p}"
    );
}
