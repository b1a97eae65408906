//! The web server flow with PKCE end to end: an HTTP client plays the
//! browser (authorize URL -> simulator's auto-approval -> redirect to the
//! callback listener), the refresh token lands in the 0600 token store,
//! and queries over Postgres use it; logout and a revoked refresh token
//! disconnect the connection with SQLSTATE 28000 until the next login.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use sfsql::config::{Catalog, Env};
use sfsql::demo::demo_env;
use sfsql::salesforce::TokenStore;
use sfsql::server::{self, ServerHandle};
use sfsql::session::Engine;
use sfsql::simulator::{self, SimConfig, SimHandle};
use tokio_postgres::Client;

use crate::common::{connect_port, error_of, rows};

/// A simulator, a catalog directory with one web-flow connection and a
/// state directory inside it.
pub struct WebOrg {
    pub sim: SimHandle,
    pub env: Env,
    pub catalog: Catalog,
    pub _dir: tempfile::TempDir,
}

/// A port that was free a moment ago, for the login callback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `connections` is the body of connections.toml; `{port}` becomes a free
/// callback port.
pub async fn web_org(config: SimConfig, connections: &str) -> WebOrg {
    let sim = simulator::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog_dir = dir.path().join("catalog");
    std::fs::create_dir_all(&catalog_dir).expect("mkdir");
    let text = connections.replace("{port}", &free_port().to_string());
    std::fs::write(catalog_dir.join("connections.toml"), text).expect("write");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog/server.toml"),
        catalog_dir.join("server.toml"),
    )
    .expect("copy server.toml");
    let env = demo_env(&sim);
    let mut catalog = Catalog::load(&catalog_dir, &env).expect("catalog");
    catalog.state_dir = dir.path().join("state");
    WebOrg {
        sim,
        env,
        catalog,
        _dir: dir,
    }
}

pub const WEB_PRODUCTION: &str = r#"
[production]
login_url = "${SFSQL_SIM_URL}/production"
auth = { flow = "web", client_id_env = "SFSQL_DEMO_CLIENT_ID", callback_port = {port} }
"#;

impl WebOrg {
    pub fn store(&self) -> TokenStore {
        TokenStore::in_dir(&self.catalog.state_dir)
    }

    /// `sfsql login NAME` with an HTTP client in the browser's place: GET
    /// the printed URL and follow the redirect to the callback. Returns
    /// the login's line and the page the browser ended on.
    pub async fn login(&self, name: &str) -> (String, String) {
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        let catalog = self.catalog.clone();
        let env = self.env.clone();
        let name = name.to_string();
        let task = tokio::spawn(async move {
            sfsql::login::login(&catalog, &env, &name, |url| {
                let _ = tx.send(url.to_string());
            })
            .await
        });
        let url = rx.await.expect("the authorize URL");
        assert!(url.contains("code_challenge_method=S256"), "{url}");
        assert!(url.contains("code_challenge="), "{url}");
        assert!(url.contains("state="), "{url}");
        assert!(
            url.contains("scope=api+refresh_token+offline_access"),
            "{url}"
        );
        let page = reqwest::get(&url)
            .await
            .expect("browser GET")
            .text()
            .await
            .expect("page");
        let line = task.await.expect("join").expect("login succeeds");
        (line, page)
    }

    /// An admin revokes the app's access in Setup: the stored refresh
    /// token of `name` and the sessions issued from it stop working.
    pub async fn revoke(&self, name: &str) {
        let entry = self.store().get(name).expect("store").expect("entry");
        let refresh = entry.refresh_token().expect("refresh token");
        let revoke = reqwest::Client::new()
            .post(format!("{}/services/oauth2/revoke", self.sim.org_url(name)))
            .form(&[("token", secrecy::ExposeSecret::expose_secret(&refresh))])
            .send()
            .await
            .expect("revoke");
        assert_eq!(revoke.status(), 200);
    }

    /// Engine and Postgres server over this catalog.
    pub async fn serve(&self) -> (Arc<Engine>, ServerHandle) {
        let engine = Arc::new(
            Engine::start(&self.catalog, &self.env)
                .await
                .expect("engine"),
        );
        let server = server::start(Arc::clone(&engine), &self.catalog.server, "127.0.0.1:0")
            .await
            .expect("server");
        (engine, server)
    }
}

pub async fn connect(server: &ServerHandle) -> Client {
    connect_port(server.addr.port()).await
}

#[tokio::test]
async fn web_flow_login_then_query_with_the_stored_token() {
    let org = web_org(SimConfig::default(), WEB_PRODUCTION).await;
    let (line, page) = org.login("production").await;
    assert!(page.contains("logged in"), "{page}");
    assert!(
        line.contains("integration@sfsql-demo.example"),
        "login names the user: {line}"
    );
    let store = org.store();
    let entry = store.get("production").expect("store").expect("entry");
    assert!(entry.refresh_token().is_some());
    assert_eq!(entry.flow, "web");
    assert_eq!(
        entry.instance_url.as_deref(),
        Some(org.sim.org_url("production").as_str())
    );
    assert!(
        entry
            .org_id
            .as_deref()
            .is_some_and(|o| o.starts_with("00D"))
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(store.path())
            .expect("tokens.json")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "tokens.json is owner-only");
    }

    let (_engine, server) = org.serve().await;
    let client = connect(&server).await;
    let count = rows(&client, "SELECT count(*) FROM production.contact").await;
    assert_eq!(count[0][0].as_deref(), Some("1000"));
    let stats = org.sim.stats();
    assert_eq!(stats["production"]["requests"]["authorize"], 1);
    // Code exchange, the engine's refresh: nothing else.
    assert_eq!(stats["production"]["requests"]["token"], 2);
}

#[tokio::test]
async fn callback_with_a_forged_state_is_refused() {
    let org = web_org(SimConfig::default(), WEB_PRODUCTION).await;
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    let catalog = org.catalog.clone();
    let env = org.env.clone();
    let task = tokio::spawn(async move {
        sfsql::login::login(&catalog, &env, "production", |url| {
            let _ = tx.send(url.to_string());
        })
        .await
    });
    let url = rx.await.expect("url");
    let port = url
        .split("localhost%3A")
        .nth(1)
        .and_then(|rest| rest.split('%').next())
        .expect("callback port in the URL");
    let forged = format!("http://127.0.0.1:{port}/OAuth/Callback?code=stolen&state=forged");
    let response = reqwest::get(&forged).await.expect("GET");
    assert_eq!(response.status(), 400);
    let err = task.await.expect("join").expect_err("login fails");
    assert!(err.to_string().contains("state does not match"), "{err}");
    assert!(org.store().get("production").expect("store").is_none());
}

#[tokio::test]
async fn never_logged_in_connection_says_to_log_in() {
    let org = web_org(SimConfig::default(), WEB_PRODUCTION).await;
    let (_engine, server) = org.serve().await;
    let client = connect(&server).await;
    let (code, message) = error_of(&client, "SELECT count(*) FROM production.contact").await;
    assert_eq!(code, "28000");
    assert!(
        message.starts_with("connection 'production' is disconnected (not logged in)")
            && message.contains("run `sfsql login production`"),
        "{message}"
    );
    // A login from another process is picked up by the running server.
    org.login("production").await;
    let count = rows(&client, "SELECT count(*) FROM production.contact").await;
    assert_eq!(count[0][0].as_deref(), Some("1000"));
}

#[tokio::test]
async fn revoked_refresh_token_disconnects_until_the_next_login() {
    let org = web_org(SimConfig::default(), WEB_PRODUCTION).await;
    org.login("production").await;
    let (_engine, server) = org.serve().await;
    let client = connect(&server).await;
    rows(&client, "SELECT count(*) FROM production.contact").await;
    let listing = sfsql::login::connections(&org.catalog).expect("connections");
    assert!(listing.contains("connected"), "{listing}");
    assert!(
        listing.contains("integration@sfsql-demo.example"),
        "{listing}"
    );
    assert!(listing.contains("/15000"), "API usage is shown: {listing}");

    // An admin revokes the app's access in Setup: the refresh token and
    // the sessions issued from it stop working.
    let store = org.store();
    org.revoke("production").await;

    let (code, message) = error_of(&client, "SELECT count(*) FROM production.contact").await;
    assert_eq!(code, "28000");
    assert!(
        message.starts_with(
            "connection 'production' is disconnected (the org refused its refresh token: invalid_grant: expired access/refresh token)"
        ) && message.ends_with("run `sfsql login production`"),
        "{message}"
    );
    let entry = store.get("production").expect("store").expect("entry");
    assert!(entry.disconnected.is_some(), "marked in the store");
    let listing = sfsql::login::connections(&org.catalog).expect("connections");
    assert!(listing.contains("disconnected"), "{listing}");
    assert!(
        listing.contains("run `sfsql login production`"),
        "{listing}"
    );

    // While disconnected, queries fail without asking the org again.
    let tokens_before = org.sim.stats()["production"]["requests"]["token"].clone();
    let (code, _) = error_of(&client, "SELECT count(*) FROM production.account").await;
    assert_eq!(code, "28000");
    assert_eq!(
        org.sim.stats()["production"]["requests"]["token"],
        tokens_before
    );

    org.login("production").await;
    let count = rows(&client, "SELECT count(*) FROM production.contact").await;
    assert_eq!(count[0][0].as_deref(), Some("1000"));
    let listing = sfsql::login::connections(&org.catalog).expect("connections");
    assert!(!listing.contains("disconnected"), "{listing}");
}

#[tokio::test]
async fn logout_revokes_and_deletes_the_token() {
    let org = web_org(SimConfig::default(), WEB_PRODUCTION).await;
    org.login("production").await;
    let (_engine, server) = org.serve().await;
    let client = connect(&server).await;
    rows(&client, "SELECT count(*) FROM production.contact").await;

    let line = sfsql::login::logout(&org.catalog, "production")
        .await
        .expect("logout");
    assert!(line.contains("logged out"), "{line}");
    assert_eq!(org.sim.stats()["production"]["requests"]["revoke"], 1);
    assert!(org.store().get("production").expect("store").is_none());
    let (code, message) = error_of(&client, "SELECT count(*) FROM production.contact").await;
    assert_eq!(code, "28000");
    assert!(
        message.starts_with("connection 'production' is disconnected (not logged in)"),
        "{message}"
    );
    let listing = sfsql::login::connections(&org.catalog).expect("connections");
    assert!(listing.contains("not logged in"), "{listing}");
    let again = sfsql::login::logout(&org.catalog, "production")
        .await
        .expect("logout twice");
    assert!(again.contains("was not logged in"), "{again}");
}
