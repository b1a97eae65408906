//! The JWT bearer flow end to end: RS256 assertions signed with the
//! test-only key in tests/fixtures, verified by the simulator against its
//! public half, with the audience of each connection's kind.

use std::path::Path;

use sfsql::session::Engine;
use sfsql::simulator::SimConfig;

use crate::common::{error_of, rows};
use crate::oauth::{connect, web_org};

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn sim_with_public_key() -> SimConfig {
    SimConfig {
        jwt_public_key_pem: Some(
            std::fs::read_to_string(fixture("jwt-test-only.pub.pem")).expect("public key"),
        ),
        ..SimConfig::default()
    }
}

fn jwt_connection(name: &str, kind: &str, username: &str) -> String {
    format!(
        r#"
[{name}]
kind = "{kind}"
login_url = "${{SFSQL_SIM_URL}}/{name}"
auth = {{ flow = "jwt", client_id_env = "SFSQL_DEMO_CLIENT_ID", username = "{username}", private_key_file = "{}" }}
"#,
        fixture("jwt-test-only.key")
    )
}

#[tokio::test]
async fn jwt_bearer_queries_production_and_sandbox() {
    let connections = jwt_connection("production", "production", "integration@sfsql-demo.example")
        + &jwt_connection(
            "sandbox",
            "sandbox",
            "integration@sfsql-demo.example.sandbox",
        );
    let org = web_org(sim_with_public_key(), &connections).await;
    let line = sfsql::login::login(&org.catalog, &org.env, "sandbox", |_| {
        panic!("the JWT flow opens no browser")
    })
    .await
    .expect("jwt login");
    assert!(line.contains("logged in (jwt)"), "{line}");
    let (_engine, server) = org.serve().await;
    let client = connect(&server).await;
    for schema in ["production", "sandbox"] {
        let count = rows(&client, &format!("SELECT count(*) FROM {schema}.contact")).await;
        assert_eq!(count[0][0].as_deref(), Some("1000"), "{schema}");
    }
    // The token refreshes the same way when it expires.
    let expire = format!("{}/__sim/expire_tokens", org.sim.base_url());
    reqwest::Client::new()
        .post(expire)
        .send()
        .await
        .expect("expire");
    let count = rows(&client, "SELECT count(*) FROM production.account").await;
    assert_eq!(count[0][0].as_deref(), Some("100"));
    let listing = sfsql::login::connections(&org.catalog).expect("connections");
    assert!(
        listing
            .lines()
            .filter(|l| l.contains("jwt") && l.contains("connected"))
            .count()
            == 2,
        "{listing}"
    );
    // A disconnected check is only for the web flow; errors stay 28000.
    let (code, _) = error_of(&client, "SELECT * FROM production.nosuchobject").await;
    assert_eq!(code, "42P01");
}

#[tokio::test]
async fn jwt_with_the_wrong_audience_user_or_key_is_refused() {
    let user = "integration@sfsql-demo.example";
    let cases = [
        // A production org asked with the sandbox audience.
        (
            sim_with_public_key(),
            "sandbox",
            user,
            "invalid_grant: audience is invalid",
        ),
        (
            sim_with_public_key(),
            "production",
            "someone@else.example",
            "invalid_grant: user hasn't approved this consumer",
        ),
        // A simulator without the public key refuses every assertion.
        (
            SimConfig::default(),
            "production",
            user,
            "invalid_grant: invalid assertion",
        ),
    ];
    for (sim, kind, username, expected) in cases {
        let org = web_org(sim, &jwt_connection("production", kind, username)).await;
        match Engine::start(&org.catalog, &org.env).await {
            Ok(_) => panic!("the engine started ({expected})"),
            Err(e) => assert!(e.to_string().contains(expected), "{e}"),
        }
    }
}
