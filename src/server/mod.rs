//! The Postgres wire-protocol front door: SCRAM-SHA-256 authentication
//! against the catalog's users, their roles, the sfsql router ahead of
//! datafusion-postgres's handlers, cancellation, TLS, and SQLSTATEs for errors.

use std::net::SocketAddr;
use std::sync::Arc;

use std::fmt::Debug;

use async_trait::async_trait;
use datafusion::prelude::SessionContext;
use datafusion_postgres::DfSessionService;
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_postgres::hooks::QueryHook;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use futures::Sink;
use pgwire::api::auth::{DefaultServerParameterProvider, StartupHandler};
use pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::Response;
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionManager, ErrorHandler, PgWireServerHandlers,
    RandomPidSecretKeyGenerator,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use tokio::net::TcpListener;

mod auth;
mod cancel;
mod compat;
mod copy;
#[cfg(test)]
mod encoding;
mod errors;
mod extended;
mod idle;
mod json_build;
mod regtype;
mod reset;
mod roles;
mod scram;
mod tls;

use auth::{AuthShared, PasswordStartup, Users};
use errors::SqlStateErrors;
pub use roles::RoleHook;
pub use scram::Verifier;
pub use tls::TlsError;

use crate::config::ServerConfig;
use crate::session::{Engine, SfsqlHook, user_error};

pub struct Handlers {
    /// The engine's context: each connection plans in a copy of it, so its
    /// `SET TIME ZONE` and `SET datafusion.*` stay its own (the catalog and
    /// runtime behind the copies are shared).
    ctx: Arc<SessionContext>,
    hooks: Vec<Arc<dyn QueryHook>>,
    extended: Arc<extended::ExtendedFrontend>,
    idle: Arc<idle::Registry>,
    idle_timeout: Option<std::time::Duration>,
    simple: Arc<SimpleFrontend>,
    auth: Arc<AuthShared>,
    cancel: Arc<DefaultCancelHandler>,
}

impl Handlers {
    pub fn new(engine: Arc<Engine>, config: &ServerConfig) -> std::io::Result<Self> {
        Self::with_hooks(engine, config, vec![], None)
    }

    /// `extra` hooks (the scheduler's `CronHook`) are asked right after
    /// sfsql's router, before datafusion-postgres's own. `end_point` is the
    /// TLS certificate's hash that SCRAM-SHA-256-PLUS binds to.
    pub fn with_hooks(
        engine: Arc<Engine>,
        config: &ServerConfig,
        extra: Vec<Arc<dyn QueryHook>>,
        end_point: Option<Vec<u8>>,
    ) -> std::io::Result<Self> {
        let users = Users::new(config.auth, &config.users).map_err(std::io::Error::other)?;
        // The role check comes first: it answers only to refuse.
        let mut hooks: Vec<Arc<dyn QueryHook>> = vec![
            Arc::new(RoleHook::new(Arc::clone(&engine))),
            Arc::new(SfsqlHook::new(Arc::clone(&engine))),
        ];
        hooks.extend(extra);
        hooks.extend([
            Arc::new(compat::CompatHook) as Arc<dyn QueryHook>,
            Arc::new(CursorStatementHook) as Arc<dyn QueryHook>,
            // Before SetShowHook: it notes what a SET replaces, for RESET.
            Arc::new(reset::ResetHook::new(
                engine.ctx.state().config().options().as_ref().clone(),
            )),
            Arc::new(SetShowHook),
            Arc::new(TransactionStatementHook),
        ]);
        compat::register_functions(&engine.ctx);
        let connections = Arc::new(ConnectionManager::new());
        let idle = Arc::new(idle::Registry::default());
        let idle_timeout = match config.idle_timeout.as_deref() {
            None => None,
            Some(text) => match crate::scheduler::options::parse_duration(text) {
                Ok(0) => None,
                Ok(secs) => Some(std::time::Duration::from_secs(secs as u64)),
                Err(e) => {
                    return Err(std::io::Error::other(format!(
                        "server.toml: idle_timeout {e}"
                    )));
                }
            },
        };
        let mut params = DefaultServerParameterProvider::default();
        params.server_version = compat::server_version();
        let (simple, extended) = frontends(&engine.ctx, &hooks, &idle);
        Ok(Handlers {
            ctx: Arc::clone(&engine.ctx),
            hooks,
            idle,
            idle_timeout,
            simple,
            extended,
            cancel: Arc::new(DefaultCancelHandler::new(Arc::clone(&connections))),
            auth: Arc::new(AuthShared {
                users: Arc::new(users),
                params: Arc::new(params),
                connections,
                pids: Arc::new(RandomPidSecretKeyGenerator::default()),
                open: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
                max_connections: config.max_connections,
                tls_only: config.tls_only,
                end_point,
            }),
        })
    }
}

impl Handlers {
    /// The handlers of one connection: its own copy of the session context.
    fn for_connection(&self) -> Handlers {
        let ctx = Arc::new(SessionContext::new_with_state(self.ctx.state()));
        let (simple, extended) = frontends(&ctx, &self.hooks, &self.idle);
        Handlers {
            ctx,
            hooks: self.hooks.clone(),
            extended,
            idle: Arc::clone(&self.idle),
            idle_timeout: self.idle_timeout,
            simple,
            auth: Arc::clone(&self.auth),
            cancel: Arc::clone(&self.cancel),
        }
    }
}

fn frontends(
    ctx: &Arc<SessionContext>,
    hooks: &[Arc<dyn QueryHook>],
    idle: &Arc<idle::Registry>,
) -> (Arc<SimpleFrontend>, Arc<extended::ExtendedFrontend>) {
    let service = Arc::new(DfSessionService::new_with_hooks(
        Arc::clone(ctx),
        hooks.to_vec(),
    ));
    let simple = Arc::new(SimpleFrontend {
        idle: Arc::clone(idle),
        service: Arc::clone(&service),
        ctx: Arc::clone(ctx),
        parser: PostgresCompatibilityParser::new(),
    });
    let extended = Arc::new(extended::ExtendedFrontend::new(service, Arc::clone(idle)));
    (simple, extended)
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.simple)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.extended)
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        // One handler per connection: it keeps the connection's SCRAM exchange.
        Arc::new(PasswordStartup::new(Arc::clone(&self.auth)))
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(SqlStateErrors)
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::clone(&self.cancel)
    }
}

/// The simple-query protocol: `COPY (query) TO STDOUT` (which sqlparser
/// cannot parse) is answered here, everything else goes to
/// datafusion-postgres with sfsql's hooks.
struct SimpleFrontend {
    service: Arc<DfSessionService>,
    idle: Arc<idle::Registry>,
    ctx: Arc<SessionContext>,
    parser: PostgresCompatibilityParser,
}

#[async_trait]
impl SimpleQueryHandler for SimpleFrontend {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // PostgreSQL lets only superusers write server files; psql's
        // `\copy` writes on the client (COPY ... TO STDOUT) for any role.
        if copy::copies_to_server_file(query)
            && let Some(refused) =
                roles::refuse_below(client, crate::config::Role::Admin, copy::TO_FILE)
        {
            return Err(refused);
        }
        let busy = self.idle.busy(client);
        let deadline = cancel::deadline(client);
        let options = cancel::scan_options(client);
        let responses = options
            .scope(async {
                Ok::<_, PgWireError>(match copy::parse_copy_out(query) {
                    Some(Ok(request)) => vec![
                        cancel::within(deadline, copy::copy_out(&self.ctx, &self.parser, request))
                            .await?,
                    ],
                    Some(Err(message)) => return Err(user_error("0A000", message)),
                    None => {
                        cancel::within(
                            deadline,
                            SimpleQueryHandler::do_query(self.service.as_ref(), client, query),
                        )
                        .await?
                    }
                })
            })
            .await?;
        Ok(cancel::guard(client, responses, deadline, busy).await)
    }
}

/// Counts a connection as open until it is dropped (the startup handler
/// refuses connections over `max_connections`).
struct OpenConnection(Arc<std::sync::atomic::AtomicUsize>);

impl OpenConnection {
    fn new(count: &Arc<std::sync::atomic::AtomicUsize>) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        OpenConnection(Arc::clone(count))
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
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
    config: &ServerConfig,
    listen: &str,
) -> std::io::Result<ServerHandle> {
    start_with_hooks(engine, config, listen, vec![]).await
}

/// The socket, and a second (std) handle on it to write to when the first
/// belongs to pgwire.
fn second_handle(
    socket: tokio::net::TcpStream,
) -> (
    std::io::Result<tokio::net::TcpStream>,
    Option<std::net::TcpStream>,
) {
    let std_socket = match socket.into_std() {
        Ok(s) => s,
        Err(e) => return (Err(e), None),
    };
    let second = std_socket.try_clone().ok();
    (tokio::net::TcpStream::from_std(std_socket), second)
}

/// [`start`] with extra query hooks (see [`Handlers::with_hooks`]).
pub async fn start_with_hooks(
    engine: Arc<Engine>,
    config: &ServerConfig,
    listen: &str,
    extra: Vec<Arc<dyn QueryHook>>,
) -> std::io::Result<ServerHandle> {
    let (tls, end_point) =
        match tls::acceptor(config.tls_cert.as_deref(), config.tls_key.as_deref())
            .map_err(std::io::Error::other)?
        {
            Some(tls) => (Some(tls.acceptor), tls.end_point),
            None => (None, None),
        };
    if config.tls_only && tls.is_none() {
        return Err(std::io::Error::other(tls::TlsError::OnlyWithout));
    }
    let handlers = Arc::new(Handlers::with_hooks(engine, config, extra, end_point)?);
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((socket, peer)) => {
                    let handlers = Arc::new(handlers.for_connection());
                    let tls = tls.clone();
                    let open = OpenConnection::new(&handlers.auth.open);
                    let (activity, tracked) = handlers.idle.open(peer);
                    let idle_timeout = handlers.idle_timeout;
                    tokio::spawn(async move {
                        // Without TLS the idle watcher can say goodbye on a
                        // second handle of the socket (through TLS it would
                        // corrupt the stream, so it only closes).
                        let (socket, mut goodbye) = match (&tls, idle_timeout) {
                            (None, Some(_)) => second_handle(socket),
                            _ => (Ok(socket), None),
                        };
                        let socket = match socket {
                            Ok(s) => s,
                            Err(e) => {
                                tracing::debug!(%peer, error = %e, "connection lost at accept");
                                return;
                            }
                        };
                        let serve = pgwire::tokio::process_socket(socket, tls, handlers);
                        let idle = async {
                            match idle_timeout {
                                Some(t) => idle::idle_past(&activity, t).await,
                                None => std::future::pending().await,
                            }
                        };
                        tokio::select! {
                            result = serve => if let Err(e) = result {
                                tracing::debug!(%peer, error = %e, "connection ended with an error");
                            },
                            // Dropping the connection closes its socket.
                            () = idle => {
                                if let Some(second) = goodbye.as_mut() {
                                    use std::io::Write;
                                    let _ = second.write_all(&idle::farewell());
                                }
                                tracing::info!(%peer, "closed a connection idle past [server] idle_timeout");
                            }
                        }
                        drop(goodbye);
                        drop((open, tracked));
                    });
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            }
        }
    });
    Ok(ServerHandle { addr, task })
}
