//! The JWT bearer flow end to end: RS256 assertions signed with the
//! test-only key in tests/fixtures, verified by the simulator against its
//! public half, with the audience of each connection's kind.

use std::path::Path;

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

/// An assertion the org refuses (`invalid_grant`) disconnects the
/// connection: the server still starts and serves the other schemas, every
/// query on it says why and to run `sfsql login`, and no further token
/// request reaches the org until that login.
#[tokio::test]
async fn jwt_with_the_wrong_audience_user_or_key_disconnects() {
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
        let (_engine, server) = org.serve().await;
        let client = connect(&server).await;
        let tokens = org.sim.stats()["production"]["requests"]["token"].clone();
        for _ in 0..2 {
            let (code, message) =
                error_of(&client, "SELECT count(*) FROM production.contact").await;
            assert_eq!(code, "28000", "{message}");
            assert!(
                message.contains("connection 'production' is disconnected")
                    && message.contains("refused the JWT bearer assertion")
                    && message.contains(expected)
                    && message.contains("run `sfsql login production`"),
                "{message}"
            );
        }
        assert_eq!(
            org.sim.stats()["production"]["requests"]["token"],
            tokens,
            "no token request while disconnected ({expected})"
        );
        let listing = sfsql::login::connections(&org.catalog).expect("connections");
        assert!(listing.contains("disconnected"), "{listing}");
    }
}

/// After the cause is fixed (here: the catalog names the right user),
/// `sfsql login` asks the org again and clears the disconnect.
#[tokio::test]
async fn jwt_login_after_the_fix_reconnects() {
    let org = web_org(
        sim_with_public_key(),
        &jwt_connection("production", "production", "someone@else.example"),
    )
    .await;
    let (_engine, server) = org.serve().await;
    let (code, _) = error_of(&connect(&server).await, "SELECT 1 FROM production.account").await;
    assert_eq!(code, "28000");

    let fixed = jwt_connection("production", "production", "integration@sfsql-demo.example");
    std::fs::write(org.catalog.dir.join("connections.toml"), fixed).expect("write");
    let mut catalog = sfsql::config::Catalog::load(&org.catalog.dir, &org.env).expect("catalog");
    catalog.state_dir = org.catalog.state_dir.clone();
    let line = sfsql::login::login(&catalog, &org.env, "production", |_| {
        panic!("the JWT flow opens no browser")
    })
    .await
    .expect("login after the fix");
    assert!(line.contains("logged in (jwt)"), "{line}");
    let mut org = org;
    org.catalog = catalog;
    let (_engine, server) = org.serve().await;
    let count = rows(
        &connect(&server).await,
        "SELECT count(*) FROM production.account",
    )
    .await;
    assert_eq!(count[0][0].as_deref(), Some("100"));
}
