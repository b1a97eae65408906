//! Ctrl-C and `statement_timeout` stop a SELECT while its rows stream, and
//! with it the Salesforce pages behind it; `max_connections` refuses one
//! connection too many with 53300. Over real sockets, counted at the
//! simulator.

use std::sync::Arc;
use std::time::Duration;

use sfsql::config::{ServerConfig, UserConfig};
use sfsql::scheduler::SystemClock;
use sfsql::server::Verifier;
use sfsql::simulator::SimConfig;
use tokio_postgres::NoTls;

use crate::common::{TestDemo, rows, start_demo_with_clock};
use crate::scheduler_cutoff::until_sim;

/// 20,000 contacts is ten 2,000-record pages; at 200 ms a page, a full
/// scan takes two seconds, long enough to stop in the middle.
async fn slow_demo() -> TestDemo {
    let sim = SimConfig {
        contacts: 20_000,
        latency: Duration::from_millis(200),
        ..SimConfig::default()
    };
    start_demo_with_clock(sim, &[], Some(&[]), Arc::new(SystemClock)).await
}

fn query_more(demo: &TestDemo) -> u64 {
    demo.stats()["sandbox"]["requests"]["query_more"]
        .as_u64()
        .unwrap_or(0)
}

/// Waits long enough for more pages to have been fetched, were the scan
/// still going, and checks none were.
async fn assert_no_more_pages(demo: &TestDemo, after_stop: u64) {
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let now = query_more(demo);
    assert!(
        now <= after_stop + 1,
        "the scan went on after the statement ended: {after_stop} queryMore calls at the stop, {now} a second later"
    );
}

/// Scan every contact on `client` and, once the simulator counted one
/// `counter` request, cancel it as psql's Ctrl-C does (a CancelRequest on a
/// new socket); the statement's error.
async fn cancel_contact_scan(
    demo: &TestDemo,
    client: &Arc<tokio_postgres::Client>,
    counter: &str,
) -> tokio_postgres::Error {
    let cancel = client.cancel_token();
    let running = {
        let client = Arc::clone(client);
        tokio::spawn(async move {
            client
                .simple_query("SELECT id, email FROM sandbox.contact")
                .await
        })
    };
    until_sim(&demo.demo.sim, counter, 1).await;
    cancel.cancel_query(NoTls).await.expect("send cancel");
    let result = tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the cancel ended the statement")
        .expect("join");
    result.expect_err("a cancelled SELECT fails")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_request_stops_a_streaming_select_and_its_pages() {
    let demo = slow_demo().await;
    let client = demo.connect().await;
    let client = Arc::new(client);
    // The first page is in and the scan is paging: cancel.
    let err = cancel_contact_scan(&demo, &client, "query_more").await;
    let db = err.as_db_error().expect("a database error");
    assert_eq!(db.code().code(), "57014", "{db:?}");
    assert_eq!(db.message(), "canceling statement due to user request");
    let at_stop = query_more(&demo);
    assert!(at_stop < 9, "all pages were fetched before the cancel took");
    assert_no_more_pages(&demo, at_stop).await;

    // The connection is usable again, and a cancel sent earlier does not
    // touch the next statement.
    assert_eq!(
        rows(&client, "SELECT count(*) FROM sandbox.account").await,
        vec![vec![Some("2000".to_string())]]
    );
}

/// Reads a contact scan's ids and checks they reached the client as the
/// pages arrived: the first before the last queryMore call, then all 20,000.
async fn assert_streamed(demo: &TestDemo, ids: impl futures::Stream<Item = String>) {
    use futures::StreamExt;
    futures::pin_mut!(ids);
    let mut at_first = None;
    let mut n = 0;
    while let Some(id) = ids.next().await {
        if at_first.is_none() {
            assert!(id.starts_with("003"), "{id}");
            at_first = Some(query_more(demo));
        }
        n += 1;
    }
    let at_first = at_first.expect("a first row");
    assert!(
        at_first < 9,
        "the first row waited for every page: {at_first} queryMore calls before it"
    );
    assert_eq!(n, 20_000);
    assert_eq!(
        query_more(demo),
        9,
        "ten 2,000-record pages: one query, nine queryMore"
    );
}

/// Rows reach the client as Salesforce's pages arrive: the first row of a
/// ten-page scan is in the client's hands before the last page is fetched,
/// and the rest follow as the pages do. The simple protocol, as psql sends
/// a query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_reach_the_client_while_pages_still_arrive() {
    use futures::StreamExt;
    let demo = slow_demo().await;
    let client = demo.connect().await;
    let stream = client
        .simple_query_raw("SELECT id, email FROM sandbox.contact")
        .await
        .expect("query");
    let ids = stream.filter_map(|message| async move {
        match message.expect("a row") {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        }
    });
    assert_streamed(&demo, ids).await;
}

/// The same through the extended protocol (JDBC, psycopg, tokio-postgres):
/// Execute sends rows as the pages arrive, not after the last one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_protocol_rows_reach_the_client_while_pages_still_arrive() {
    use futures::StreamExt;
    let demo = slow_demo().await;
    let client = demo.connect().await;
    let stream = client
        .query_raw("SELECT id, email FROM sandbox.contact", Vec::<i32>::new())
        .await
        .expect("query");
    let ids = stream.map(|row| row.expect("a row").get::<_, String>(0));
    assert_streamed(&demo, ids).await;
}

/// A portal executed a few rows at a time (Execute with max_rows, as JDBC's
/// setFetchSize does) is suspended after each batch with the rest of the
/// scan still to come, and resumes where it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_fetched_in_batches_stops_after_each_and_resumes() {
    let demo = slow_demo().await;
    let mut client = demo.connect().await;
    let tx = client.transaction().await.expect("begin");
    let portal = tx
        .bind("SELECT id FROM sandbox.contact", &[])
        .await
        .expect("bind");
    let first = tx.query_portal(&portal, 100).await.expect("first batch");
    assert_eq!(first.len(), 100);
    let at_first = query_more(&demo);
    assert!(
        at_first < 9,
        "the first batch waited for every page: {at_first} queryMore calls before it"
    );
    let second = tx.query_portal(&portal, 100).await.expect("second batch");
    assert_eq!(second.len(), 100);
    let rest = tx.query_portal(&portal, 0).await.expect("the rest");
    assert_eq!(rest.len(), 19_800);
    let mut ids: Vec<String> = first
        .iter()
        .chain(&second)
        .chain(&rest)
        .map(|row| row.get(0))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20_000, "every contact once");
    assert!(
        tx.query_portal(&portal, 10)
            .await
            .expect("a finished portal")
            .is_empty()
    );
    tx.commit().await.expect("commit");
    assert_eq!(query_more(&demo), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_aborts_the_bulk_query_job_of_a_large_scan() {
    let demo = slow_demo().await;
    let client = demo.connect().await;
    client
        .batch_execute("SET sfsql.bulk_query_threshold = 1000")
        .await
        .expect("set threshold");
    // The job exists and is being polled: cancel.
    let err = cancel_contact_scan(&demo, &Arc::new(client), "bulk_query_info").await;
    assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err:?}");
    // sfsql asked Salesforce to abort the job (PATCH state Aborted).
    until_sim(&demo.demo.sim, "bulk_query_state", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_stops_a_streaming_select_in_either_protocol() {
    let demo = slow_demo().await;
    let client = demo.connect().await;
    client
        .batch_execute("SET statement_timeout = '700ms'")
        .await
        .expect("set statement_timeout");

    // Extended protocol (what JDBC and psycopg use).
    let started = std::time::Instant::now();
    let err = client
        .query("SELECT id, email FROM sandbox.contact", &[])
        .await
        .expect_err("the timeout ends the scan");
    let db = err.as_db_error().expect("a database error");
    assert_eq!(db.code().code(), "57014", "{db:?}");
    assert_eq!(db.message(), "canceling statement due to statement timeout");
    assert!(started.elapsed() < Duration::from_secs(5));
    let at_stop = query_more(&demo);
    assert!(at_stop < 9, "all pages were fetched before the timeout");
    assert_no_more_pages(&demo, at_stop).await;

    // Simple protocol (psql).
    let err = client
        .simple_query("SELECT id, email FROM sandbox.contact")
        .await
        .expect_err("the timeout ends the scan");
    assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err:?}");

    // A statement that finishes in time is untouched; 0 turns it off.
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .expect("reset");
    let all = client
        .query("SELECT id FROM sandbox.contact", &[])
        .await
        .expect("no timeout");
    assert_eq!(all.len(), 20_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_over_max_connections_is_refused_with_53300() {
    let demo = crate::common::start_demo(20, &[]).await;
    let user = UserConfig {
        password_hash: Verifier::new("demo").to_string(),
        role: Default::default(),
    };
    let config = ServerConfig {
        max_connections: 2,
        users: [("demo".to_string(), user)].into(),
        ..ServerConfig::default()
    };
    let server = crate::auth::serve_config(&demo, &config).await;
    let port = server.addr.port();
    let first = crate::common::connect_port(port).await;
    let second = crate::common::connect_port(port).await;

    let conn_str = format!("host=127.0.0.1 port={port} user=demo password=demo dbname=demo");
    let err = tokio_postgres::connect(&conn_str, NoTls)
        .await
        .err()
        .expect("a third connection is refused");
    let db = err.as_db_error().expect("a database error");
    assert_eq!(db.code().code(), "53300", "{db:?}");
    assert!(db.message().contains("max_connections"), "{}", db.message());

    // The two served go on; closing one makes room.
    assert_eq!(rows(&first, "SELECT 1").await, vec![vec![Some("1".into())]]);
    drop(second);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio_postgres::connect(&conn_str, NoTls).await {
            Ok(_) => break,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "no room after a close: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_mid_select_stops_its_pages() {
    let demo = slow_demo().await;
    let conn_str = format!(
        "host=127.0.0.1 port={} user=demo password=demo dbname=demo",
        demo.port()
    );
    let (client, connection) = tokio_postgres::connect(&conn_str, NoTls)
        .await
        .expect("connect");
    let socket = tokio::spawn(connection);
    let running = tokio::spawn(async move {
        let _ = client
            .simple_query("SELECT id, email FROM sandbox.contact")
            .await;
    });
    until_sim(&demo.demo.sim, "query_more", 1).await;
    // The client process dies: its socket closes mid-stream.
    socket.abort();
    running.abort();
    let at_stop = query_more(&demo);
    assert_no_more_pages(&demo, at_stop).await;

    // The server is still up for everyone else.
    let other = demo.connect().await;
    assert_eq!(rows(&other, "SELECT 1").await, vec![vec![Some("1".into())]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_closes_idle_connections_but_not_busy_ones() {
    let demo = slow_demo().await;
    let user = UserConfig {
        password_hash: Verifier::new("demo").to_string(),
        role: Default::default(),
    };
    let config = ServerConfig {
        idle_timeout: Some("1s".into()),
        users: [("demo".to_string(), user)].into(),
        ..ServerConfig::default()
    };
    let server = crate::auth::serve_config(&demo, &config).await;
    let client = crate::common::connect_port(server.addr.port()).await;

    // Two seconds of paging: busy the whole time, not idle.
    let all = client
        .query("SELECT id FROM sandbox.contact", &[])
        .await
        .expect("a statement longer than idle_timeout runs to the end");
    assert_eq!(all.len(), 20_000);

    // Then nothing for longer than the timeout: the server closes it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !client.is_closed() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "an idle connection stayed open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Saying why, as PostgreSQL does: FATAL 57P05.
    let conn_str = format!(
        "host=127.0.0.1 port={} user=demo password=demo dbname=demo",
        server.addr.port()
    );
    let (_idle, connection) = tokio_postgres::connect(&conn_str, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let ended = tokio::time::timeout(Duration::from_secs(10), connection)
        .await
        .expect("the idle connection is closed");
    let err = ended.expect_err("closed with an error");
    let db = err
        .as_db_error()
        .expect("an ErrorResponse before the close");
    assert_eq!(db.code().code(), "57P05", "{db:?}");
    assert_eq!(db.severity(), "FATAL");
    assert!(db.message().contains("idle"), "{}", db.message());
    // Others connect as before.
    let again = crate::common::connect_port(server.addr.port()).await;
    assert_eq!(rows(&again, "SELECT 1").await, vec![vec![Some("1".into())]]);
}
