//! `Engine`: the SessionContext with its Salesforce and report schemas, and
//! the run-log hook; the DML entry points are in `session::writes`.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::prelude::{SessionConfig, SessionContext};
use thiserror::Error;

use crate::config::{Catalog, ConfigError, Env};
use crate::provider::SalesforceSchema;
use crate::salesforce::{SalesforceClient, SalesforceError, TokenStore};

pub const CATALOG: &str = "sfsql";

#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Salesforce(#[from] SalesforceError),
    #[error(transparent)]
    Report(#[from] crate::reports::ReportError),
    #[error("cannot set up the SQL catalog: {0}")]
    Setup(String),
}

#[derive(Debug, Clone)]
pub struct Connection {
    pub schema: Arc<SalesforceSchema>,
    pub read_only: bool,
    /// A production org: writes need the `admin` role.
    pub production: bool,
}

pub struct Engine {
    pub ctx: Arc<SessionContext>,
    pub connections: BTreeMap<String, Connection>,
    recorder: std::sync::OnceLock<Arc<dyn super::RunRecorder>>,
}

impl Engine {
    /// Build the engine: log in to each connection and list its sObjects
    /// (one describeGlobal each), register reports, and set up pg_catalog.
    pub async fn start(catalog: &Catalog, env: &Env) -> Result<Engine, EngineError> {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema(CATALOG, "public");
        // Catalog queries describe only the tables they name (set up with
        // pg_catalog below).
        let planner = Arc::new(crate::provider::DescribeFirst::default());
        let state = datafusion::execution::SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(crate::reports::runtime_env()?)
            .with_default_features()
            .with_physical_optimizer_rules(crate::provider::physical_optimizer_rules())
            .with_query_planner(Arc::clone(&planner) as _)
            .build();
        let ctx = SessionContext::new_with_state(state);
        let df_catalog = ctx
            .catalog(CATALOG)
            .ok_or_else(|| EngineError::Setup("default catalog missing".into()))?;

        let mut connections = BTreeMap::new();
        for (name, conn) in &catalog.connections {
            let credentials = conn.credentials(name, env)?;
            let client = Arc::new(
                SalesforceClient::new(name.clone(), conn.login_url.clone(), credentials)
                    .with_token_store(TokenStore::in_dir(&catalog.state_dir)),
            );
            let schema = Arc::new(SalesforceSchema::new(client));
            match schema.refresh().await {
                Ok(count) => tracing::info!(connection = %name, sobjects = count, "connected"),
                // Serve the rest; this schema's queries say to log in, and
                // it lists its tables once a login succeeds.
                Err(e) if e.is_disconnected() => tracing::warn!(error = %e, "not connected"),
                Err(e) => return Err(e.into()),
            }
            df_catalog
                .register_schema(name, Arc::clone(&schema) as _)
                .map_err(|e| EngineError::Setup(e.to_string()))?;
            connections.insert(
                name.clone(),
                Connection {
                    schema,
                    read_only: conn.read_only,
                    production: conn.is_production(),
                },
            );
        }

        let clients = connections
            .iter()
            .map(|(name, c)| (name.clone(), Arc::clone(c.schema.client())))
            .collect();
        crate::reports::register_all(&ctx, CATALOG, catalog, env, &clients).await?;

        datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog(
            &ctx,
            CATALOG,
            datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider,
        )
        .map_err(|e| EngineError::Setup(e.to_string()))?;
        // setup_pg_catalog registers the functions and a pg_catalog that
        // would describe every sObject for a `\dt`; ours lists them from
        // describeGlobal and describes only what a client asks columns of.
        let (pg_catalog, comments) = crate::provider::lazy_pg_catalog(
            ctx.state().catalog_list().clone(),
            datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider,
        )
        .map_err(|e| EngineError::Setup(e.to_string()))?;
        df_catalog
            .register_schema("pg_catalog", pg_catalog)
            .map_err(|e| EngineError::Setup(e.to_string()))?;
        planner.set_comments(Arc::clone(&comments));
        // Field and object labels for `\d+` / `\dt+`.
        for udf in comments.udfs() {
            ctx.register_udf(udf);
        }

        Ok(Engine {
            ctx: Arc::new(ctx),
            connections,
            recorder: std::sync::OnceLock::new(),
        })
    }

    /// Attach the run log; later calls are ignored.
    pub fn set_recorder(&self, recorder: Arc<dyn super::RunRecorder>) {
        let _ = self.recorder.set(recorder);
    }

    pub fn recorder(&self) -> Option<&Arc<dyn super::RunRecorder>> {
        self.recorder.get()
    }
}
