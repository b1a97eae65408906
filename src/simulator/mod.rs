//! A local Salesforce org over HTTP: the same endpoints, JSON shapes and
//! error envelopes as the real REST API, over seeded data, so the real
//! client runs against it unchanged in tests, benchmarks and the demo.
//!
//! # Layout
//!
//! - `http`: the axum front — latency, URI limit, routing by org prefix,
//!   request counting, `Sforce-Limit-Info`; `api`: the versioned
//!   `/services/data` resources and `POST /composite` (one API call; its
//!   subrequests counted by kind under `composite_subrequests`).
//! - `auth`: OAuth token endpoint, bearer checks, identity URL; `grants`:
//!   the authorize endpoint, code exchange with PKCE, JWT assertions.
//! - `describe`: describeGlobal and describe from `schema` (metadata types)
//!   and `objects` (the simulated sObjects and their fields).
//! - `query`: query, queryAll, queryMore cursors and record rendering, over
//!   `soql` (lexer, parser, compile against the schema, evaluator).
//! - `collections`: sObject Collections requests, over `convert` (reading
//!   JSON values), `validate` (per-record checks, with `event_rules` for
//!   an Event's start, end and duration) and `writes` (applying).
//! - `bulk`: Bulk API 2.0 jobs and their states; `bulk_ingest`: ingest CSV
//!   through the same per-record checks as Collections; `bulk_query`: query
//!   jobs, their CSV result pages and the job list.
//! - `analytics`: the Reports API's report list, describe and synchronous
//!   runs (tabular and summary) over the seeded data.
//! - `store`: records, id and lookup indexes; `seed`: the deterministic
//!   data and its email rules; `ids`: 15/18-character ids.
//! - `org`: server state (both orgs, tokens); `stats`: counters;
//!   `error`: the whole-request error envelope.
//!
//! # URLs
//!
//! Each org lives under a path prefix: `{base}/production/services/...` and
//! `{base}/sandbox/services/...`; `{base}/services/...` is production. An
//! org's login URL and instance URL are both `{base}/{org}`. Paths in
//! response bodies (`nextRecordsUrl`, `attributes.url`) carry no prefix, as
//! on Salesforce. Test helpers without prefix or auth: `GET /__sim/stats`,
//! `POST /__sim/stats/reset`, `POST /__sim/refresh_token?org=` (mints a
//! refresh token), `POST /__sim/expire_tokens` (expires access tokens),
//! `POST /__sim/token_lifetime?seconds=&requests=` (access tokens issued
//! from now on live that long or for that many requests; neither resets),
//! `POST /__sim/fail_next?org=&status=503&count=1&code=&kind=&message=`
//! (the next data requests of the org, of that request kind when `kind`
//! names one as the stats do, fail with that status, errorCode and
//! message; REQUEST_LIMIT_EXCEEDED without one is the 24-hour limit's), `POST /__sim/drop_next_response?org=&count=1&kind=` (the next
//! such requests are served, writes applied, and then the connection is
//! cut before the answer arrives),
//! `POST /__sim/fail_records?org=&count=1&code=UNABLE_TO_LOCK_ROW` (the next
//! records written fail with that per-record statusCode).

mod analytics;
mod api;
mod auth;
mod bulk;
mod bulk_ingest;
mod bulk_query;
mod collections;
mod convert;
mod describe;
mod error;
mod event_rules;
mod grants;
mod http;
mod ids;
mod objects;
mod org;
mod query;
mod schema;
mod seed;
mod soql;
mod stats;
mod store;
mod validate;
mod writes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use analytics::id_of as report_id_of;
pub use seed::{contact_email, lead_email};

/// Demo credentials for the client-credentials flow.
pub const DEMO_CLIENT_ID: &str = "sfsql-demo";
pub const DEMO_CLIENT_SECRET: &str = "sfsql-demo-secret";
/// The newest API version served (older `vNN.N` paths are accepted too).
pub const API_VERSION: &str = "62.0";

/// How the simulated orgs are seeded and behave.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Contacts seeded in each org; other objects scale from it: accounts
    /// contacts/10 (at least 5), leads /2, tasks and events /20, campaign
    /// members /50, attachments /20, plus 20 users and 5 campaigns.
    pub contacts: usize,
    /// Added to every request before answering (benchmarks use ~80 ms).
    pub latency: Duration,
    /// Lifetime of issued access tokens; expired tokens get 401 INVALID_SESSION_ID.
    pub access_token_ttl: Duration,
    /// DailyApiRequests Max reported by /limits and Sforce-Limit-Info; past
    /// it, requests get 403 REQUEST_LIMIT_EXCEEDED.
    pub daily_api_limit: u64,
    /// PEM public key that JWT bearer assertions must be signed with;
    /// without one the JWT grant fails with `invalid_grant`.
    pub jwt_public_key_pem: Option<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            contacts: 1000,
            latency: Duration::ZERO,
            access_token_ttl: Duration::from_secs(2 * 60 * 60),
            daily_api_limit: 15_000,
            jwt_public_key_pem: None,
        }
    }
}

/// A running simulator. The server keeps running until the tokio runtime
/// it was started on shuts down.
#[derive(Clone, Debug)]
pub struct SimHandle {
    sim: Arc<org::Sim>,
    addr: SocketAddr,
}

impl SimHandle {
    /// e.g. `http://127.0.0.1:41234`
    pub fn base_url(&self) -> String {
        self.sim.base_url.clone()
    }

    /// Login/instance URL of one org: `{base_url}/{org}` for `production` or `sandbox`.
    pub fn org_url(&self, org: &str) -> String {
        self.sim.org_url(org)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every access and refresh token the orgs ever issued, for tests that
    /// check no secret reaches a log, an error or a table.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.sim.tokens().issued()
    }

    /// Same JSON as `GET /__sim/stats`.
    pub fn stats(&self) -> serde_json::Value {
        self.sim.stats_json()
    }
}

/// Seeds both orgs and serves them on `addr` (use `127.0.0.1:0` in tests),
/// spawned on the current tokio runtime.
pub async fn start(config: SimConfig, addr: SocketAddr) -> std::io::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let sim = tokio::task::spawn_blocking(move || org::Sim::new(config, base_url))
        .await
        .map_err(std::io::Error::other)?;
    let sim = Arc::new(sim);
    let app = http::router(Arc::clone(&sim));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "simulator server stopped");
        }
    });
    tracing::info!(%addr, "Salesforce simulator listening");
    Ok(SimHandle { sim, addr })
}
