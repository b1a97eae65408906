//! The Postgres wire-protocol front door: MD5 password authentication
//! against the catalog's users, the sfsql router ahead of
//! datafusion-postgres's handlers, cancellation, and SQLSTATEs for errors.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::error::DataFusionError;
use datafusion_postgres::DfSessionService;
use datafusion_postgres::hooks::QueryHook;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use pgwire::api::auth::md5pass::Md5PasswordAuthStartupHandler;
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
};
use pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::{ClientInfo, ConnectionManager, ErrorHandler, PgWireServerHandlers};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use tokio::net::TcpListener;

use crate::config::UserConfig;
use crate::salesforce::SalesforceError;
use crate::session::{Engine, SfsqlHook};

/// Checks passwords against `md5` hashes from `server.toml`; the plain
/// password is never stored.
#[derive(Debug)]
struct CatalogAuthSource {
    users: BTreeMap<String, UserConfig>,
}

#[async_trait]
impl AuthSource for CatalogAuthSource {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let user = login.user().unwrap_or_default();
        let stored = self
            .users
            .get(user)
            .map(|u| u.password_md5.trim_start_matches("md5").to_string())
            .ok_or_else(|| PgWireError::InvalidPassword(user.to_string()))?;
        let salt: [u8; 4] = rand::random();
        let mut bytes = stored.into_bytes();
        bytes.extend_from_slice(&salt);
        let expected = format!("md5{:x}", md5::compute(bytes));
        Ok(Password::new(Some(salt.to_vec()), expected.into_bytes()))
    }
}

/// `md5` + md5(password || username): the value for `password_md5`.
pub fn md5_password_hash(user: &str, password: &str) -> String {
    format!("md5{:x}", md5::compute(format!("{password}{user}")))
}

pub struct Handlers {
    service: Arc<DfSessionService>,
    auth: Arc<CatalogAuthSource>,
    connections: Arc<ConnectionManager>,
    cancel: Arc<DefaultCancelHandler>,
}

impl Handlers {
    pub fn new(engine: Arc<Engine>, users: BTreeMap<String, UserConfig>) -> Self {
        Self::with_hooks(engine, users, vec![])
    }

    /// `extra` hooks (the scheduler's `CronHook`) are asked right after
    /// sfsql's router, before datafusion-postgres's own.
    pub fn with_hooks(
        engine: Arc<Engine>,
        users: BTreeMap<String, UserConfig>,
        extra: Vec<Arc<dyn QueryHook>>,
    ) -> Self {
        let mut hooks: Vec<Arc<dyn QueryHook>> =
            vec![Arc::new(SfsqlHook::new(Arc::clone(&engine)))];
        hooks.extend(extra);
        hooks.extend([
            Arc::new(CursorStatementHook) as Arc<dyn QueryHook>,
            Arc::new(SetShowHook),
            Arc::new(TransactionStatementHook),
        ]);
        let service = Arc::new(DfSessionService::new_with_hooks(
            Arc::clone(&engine.ctx),
            hooks,
        ));
        let connections = Arc::new(ConnectionManager::new());
        Handlers {
            service,
            auth: Arc::new(CatalogAuthSource { users }),
            cancel: Arc::new(DefaultCancelHandler::new(Arc::clone(&connections))),
            connections,
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.service)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.service)
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        // One handler per connection: it keeps the connection's salted hash.
        let mut params = DefaultServerParameterProvider::default();
        params.server_version = format!("15.0 (sfsql {})", env!("CARGO_PKG_VERSION"));
        Arc::new(
            Md5PasswordAuthStartupHandler::new(Arc::clone(&self.auth), Arc::new(params))
                .with_connection_manager(Arc::clone(&self.connections)),
        )
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(SqlStateErrors)
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::clone(&self.cancel)
    }
}

/// Gives DataFusion and Salesforce errors a SQLSTATE a client can act on
/// instead of the catch-all XX000.
struct SqlStateErrors;

impl ErrorHandler for SqlStateErrors {
    fn on_error<C>(&self, _client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        if let PgWireError::ApiError(inner) = error {
            let (code, message) = classify(inner.as_ref());
            tracing::debug!(code, %message, "statement failed");
            *error = PgWireError::UserError(Box::new(ErrorInfo::new(
                "ERROR".into(),
                code.into(),
                message,
            )));
        }
    }
}

fn classify(err: &(dyn std::error::Error + 'static)) -> (&'static str, String) {
    if let Some(df) = err.downcast_ref::<DataFusionError>() {
        let root = df.find_root();
        if let DataFusionError::External(ext) = root
            && let Some(sf) = ext.downcast_ref::<SalesforceError>()
        {
            return (salesforce_sqlstate(sf), sf.to_string());
        }
        let message = root.to_string();
        let code = match root {
            DataFusionError::SQL(..) => "42601",
            DataFusionError::SchemaError(..) => "42703",
            DataFusionError::Plan(m) if m.contains("not found") => "42P01",
            DataFusionError::Plan(_) => "42000",
            DataFusionError::NotImplemented(_) => "0A000",
            DataFusionError::ArrowError(..) => "22000",
            DataFusionError::ResourcesExhausted(_) => "53000",
            _ => "XX000",
        };
        return (code, message);
    }
    ("XX000", err.to_string())
}

fn salesforce_sqlstate(e: &SalesforceError) -> &'static str {
    match e {
        e if e.is_auth() => "28000",
        SalesforceError::Transport { .. } => "08006",
        SalesforceError::UnknownSObject { .. } => "42P01",
        SalesforceError::Api { code, .. }
            if code == "INVALID_FIELD" || code == "MALFORMED_QUERY" =>
        {
            "42000"
        }
        _ => "58000",
    }
}

/// A running server: its address and the task accepting connections.
pub struct ServerHandle {
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<()>,
}

/// Bind `listen` and serve connections until the task is aborted.
pub async fn start(
    engine: Arc<Engine>,
    users: BTreeMap<String, UserConfig>,
    listen: &str,
) -> std::io::Result<ServerHandle> {
    start_with_hooks(engine, users, listen, vec![]).await
}

/// [`start`] with extra query hooks (see [`Handlers::with_hooks`]).
pub async fn start_with_hooks(
    engine: Arc<Engine>,
    users: BTreeMap<String, UserConfig>,
    listen: &str,
    extra: Vec<Arc<dyn QueryHook>>,
) -> std::io::Result<ServerHandle> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let handlers = Arc::new(Handlers::with_hooks(engine, users, extra));
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((socket, peer)) => {
                    let handlers = Arc::clone(&handlers);
                    tokio::spawn(async move {
                        if let Err(e) = pgwire::tokio::process_socket(socket, None, handlers).await
                        {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            }
        }
    });
    Ok(ServerHandle { addr, task })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_hash_matches_postgres() {
        // SELECT 'md5' || md5('demo' || 'demo') in PostgreSQL
        assert_eq!(
            md5_password_hash("demo", "demo"),
            format!("md5{:x}", md5::compute("demodemo"))
        );
    }
}
