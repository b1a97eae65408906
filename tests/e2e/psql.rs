//! The real `psql` client against the server: catalog commands and the
//! walk-through of the README.

use std::process::Command;

use crate::common::start_demo;

fn psql(port: u16, command: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "demo",
            "-d",
            "demo",
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            command,
        ])
        .env("PGPASSWORD", "demo")
        .output()
        .expect("psql must be installed (Debian: postgresql-client; .ci/run installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "psql -c {command:?} failed:\n{stdout}\n{stderr}"
    );
    stdout + &stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_lists_and_describes_tables_and_runs_the_walkthrough() {
    let demo = start_demo(300, &[]).await;
    let port = demo.port();
    let run = move |c: &'static str| tokio::task::spawn_blocking(move || psql(port, c));

    let describes = || {
        demo.stats()["sandbox"]["requests"]["describe"]
            .as_u64()
            .unwrap_or(0)
    };
    let before = describes();
    let dt = run("\\dt sandbox.*").await.expect("join");
    assert!(
        dt.contains("contact") && dt.contains("campaignmember"),
        "{dt}"
    );
    // Listing describes nothing; `\d contact` describes contact only.
    assert_eq!(describes(), before, "\\dt described sObjects");

    let d = run("\\d sandbox.contact").await.expect("join");
    assert!(d.contains("wm_nps_score__c") && d.contains("email"), "{d}");
    // A reference field with one target is a foreign key; `user` is
    // quoted as PostgreSQL quotes a reserved word.
    assert!(
        d.contains("Foreign-key constraints:")
            && d.contains(
                "\"contact_accountid_fkey\" FOREIGN KEY (accountid) REFERENCES sandbox.account(id)"
            )
            && d.contains("FOREIGN KEY (ownerid) REFERENCES sandbox.\"user\"(id)"),
        "{d}"
    );
    assert_eq!(
        describes(),
        before + 1,
        "\\d contact described more than contact"
    );
    run("\\d sandbox.contact").await.expect("join");
    assert_eq!(describes(), before + 1, "the describe is cached");
    // `contact_all` (deleted and archived records too) is described from
    // contact's cached describe, and listed as a view: `\\dt` shows each
    // sObject once.
    let d_all = run("\\d sandbox.contact_all").await.expect("join");
    assert!(
        d_all.contains("View \"sandbox.contact_all\"") && d_all.contains("wm_nps_score__c"),
        "{d_all}"
    );
    assert_eq!(
        describes(),
        before + 1,
        "contact_all shares contact's describe"
    );
    assert!(!dt.contains("contact_all"), "{dt}");
    let dv = run("\\dv sandbox.contact*").await.expect("join");
    assert!(dv.contains("contact_all"), "{dv}");

    // `\d+` shows each field's Salesforce label as the column's description.
    let d_plus = run("\\d+ sandbox.contact").await.expect("join");
    let nps_line = d_plus
        .lines()
        .find(|l| l.trim_start().starts_with("wm_nps_score__c"))
        .unwrap_or_else(|| panic!("no wm_nps_score__c row:\n{d_plus}"));
    assert!(nps_line.trim_end().ends_with("| WM NPS Score"), "{d_plus}");
    assert!(d_plus.contains("| Email"), "{d_plus}");
    // `\dt+` shows the object's label, from describeGlobal: no describe.
    let dt_plus = run("\\dt+ sandbox.*").await.expect("join");
    assert!(dt_plus.contains("| Campaign Member"), "{dt_plus}");
    assert_eq!(describes(), before + 1, "\\dt+ described sObjects");

    let select = run("select id, email from sandbox.contact where email like 'a%' limit 5")
        .await
        .expect("join");
    assert!(
        select.contains("rows)") || select.contains("row)"),
        "{select}"
    );

    let explain = run("explain select id from sandbox.contact where email = 'x@example.com'")
        .await
        .expect("join");
    assert!(
        explain.contains("SELECT Id, Email FROM Contact WHERE Email = 'x@example.com'")
            || explain.contains("FROM Contact WHERE Email = 'x@example.com'"),
        "{explain}"
    );

    let update = "update sandbox.contact set wm_nps_score__c = r.nps_score from reports.nps_score r where lower(contact.email) = lower(r.account_email)";
    let dry = run(Box::leak(
        format!("set sfsql.dry_run = on; {update}").into_boxed_str(),
    ))
    .await
    .expect("join");
    assert!(
        dry.contains("new_value") && dry.contains("dry run"),
        "{dry}"
    );

    let wet = run(update).await.expect("join");
    assert!(
        wet.contains("UPDATE ") && !wet.contains("UPDATE 0"),
        "{wet}"
    );
    let again = run(update).await.expect("join");
    assert!(again.contains("UPDATE 0"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_of_several_calls_reports_progress_as_notices() {
    let demo = start_demo(1000, &[]).await;
    let port = demo.port();
    let out = tokio::task::spawn_blocking(move || {
        psql(port, "UPDATE sandbox.contact SET title = 'Progress'")
    })
    .await
    .expect("join");
    // 1,000 changed records are five Collections calls of 200: a line after
    // each, then the statement's summary.
    let progress: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("NOTICE:  progress: "))
        .collect();
    assert_eq!(
        progress,
        [
            "200 of 1000 records sent (20%) in 1 call",
            "400 of 1000 records sent (40%) in 2 calls",
            "600 of 1000 records sent (60%) in 3 calls",
            "800 of 1000 records sent (80%) in 4 calls",
            "1000 of 1000 records sent (100%) in 5 calls",
        ],
        "{out}"
    );
    assert!(out.contains("UPDATE 1000"), "{out}");

    // One call: the summary alone.
    let out = tokio::task::spawn_blocking(move || {
        psql(
            port,
            "UPDATE sandbox.contact SET title = 'One' WHERE email LIKE 'a%'",
        )
    })
    .await
    .expect("join");
    assert!(!out.contains("progress:"), "{out}");

    // Through Bulk API 2.0: a line each time a poll finds the job moved.
    let out = tokio::task::spawn_blocking(move || {
        psql(
            port,
            "SET sfsql.bulk_threshold = 100; UPDATE sandbox.contact SET title = 'Bulk'",
        )
    })
    .await
    .expect("join");
    let jobs: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("NOTICE:  progress: Bulk job "))
        .collect();
    assert!(
        jobs.last()
            .is_some_and(|l| l.ends_with(" JobComplete: 1000 of 1000 records processed (100%)")),
        "{out}"
    );
    assert!(out.contains("UPDATE 1000"), "{out}");
}

/// psql prints the command tag a write sends: `INSERT 0 n` (the 0 is the
/// oid PostgreSQL no longer assigns), `UPDATE n`, `DELETE n`, also when
/// the write returns rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_prints_the_command_tags_of_writes() {
    let demo = start_demo(50, &[]).await;
    let port = demo.port();
    let run = move |c: &'static str| tokio::task::spawn_blocking(move || psql(port, c));

    let insert = run("INSERT INTO sandbox.task (subject, status, priority) \
         VALUES ('Tag one', 'Completed', 'Low'), ('Tag two', 'Completed', 'Low')")
    .await
    .expect("join");
    assert!(insert.lines().any(|l| l == "INSERT 0 2"), "{insert}");

    let returning = run("INSERT INTO sandbox.task (subject, status, priority) \
         VALUES ('Tag three', 'Completed', 'Low') RETURNING subject")
    .await
    .expect("join");
    assert!(
        returning.contains("Tag three") && returning.lines().any(|l| l == "INSERT 0 1"),
        "{returning}"
    );

    let update = run("UPDATE sandbox.task SET priority = 'High' WHERE subject LIKE 'Tag %'")
        .await
        .expect("join");
    assert!(update.lines().any(|l| l == "UPDATE 3"), "{update}");

    let delete = run("DELETE FROM sandbox.task WHERE subject LIKE 'Tag %'")
        .await
        .expect("join");
    assert!(delete.lines().any(|l| l == "DELETE 3"), "{delete}");
    let none = run("DELETE FROM sandbox.task WHERE subject LIKE 'Tag %'")
        .await
        .expect("join");
    assert!(none.lines().any(|l| l == "DELETE 0"), "{none}");
}
