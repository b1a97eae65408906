//! Startup and password authentication against the catalog's users:
//! SCRAM-SHA-256 by default, cleartext only when `server.toml` says
//! `auth = "password"`. Both check the same pg_authid-style verifier.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    DefaultServerParameterProvider, LoginInfo, StartupHandler, finish_authentication,
    protocol_negotiation, save_startup_parameters_to_metadata,
};
use pgwire::api::{
    ClientInfo, ConnectionHandle, ConnectionManager, PgWireConnectionState, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::sync::Mutex;

use super::scram::{Binding, Exchange, ScramError, Verifier};
use crate::config::{AuthMethod, Role, UserConfig};

const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";

/// The catalog's users with their verifiers parsed once, at start.
#[derive(Debug)]
pub struct Users {
    method: AuthMethod,
    verifiers: BTreeMap<String, (Verifier, Role)>,
}

impl Users {
    pub fn new(method: AuthMethod, users: &BTreeMap<String, UserConfig>) -> Result<Users, String> {
        let verifiers = users
            .iter()
            .map(|(name, user)| {
                Verifier::parse(&user.password_hash)
                    .map(|v| (name.clone(), (v, user.role)))
                    .map_err(|e| format!("server.toml: user {name}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Users { method, verifiers })
    }

    fn verifier(&self, user: &str) -> Verifier {
        self.verifiers
            .get(user)
            .map(|(v, _)| v.clone())
            .unwrap_or_else(Verifier::mock)
    }

    fn role(&self, user: &str) -> Role {
        self.verifiers
            .get(user)
            .map(|(_, role)| *role)
            .unwrap_or_default()
    }
}

/// Shared by every connection's [`PasswordStartup`].
pub struct AuthShared {
    pub users: Arc<Users>,
    pub params: Arc<DefaultServerParameterProvider>,
    pub connections: Arc<ConnectionManager>,
    pub pids: Arc<RandomPidSecretKeyGenerator>,
    /// Connections accepted and not yet closed (this one included).
    pub open: Arc<std::sync::atomic::AtomicUsize>,
    pub max_connections: usize,
    pub tls_only: bool,
    /// The TLS certificate's `tls-server-end-point` hash: with it, TLS
    /// connections are offered SCRAM-SHA-256-PLUS (channel binding).
    pub end_point: Option<Vec<u8>>,
}

impl AuthShared {
    /// What SCRAM binds to on this connection: the certificate hash when
    /// the connection is TLS.
    fn end_point(&self, secure: bool) -> Option<&[u8]> {
        self.end_point.as_deref().filter(|_| secure)
    }
}

/// One per connection: it holds the connection's SCRAM exchange between
/// the client's first and final messages.
pub struct PasswordStartup {
    shared: Arc<AuthShared>,
    exchange: Mutex<Option<Exchange>>,
}

impl PasswordStartup {
    pub fn new(shared: Arc<AuthShared>) -> Self {
        PasswordStartup {
            shared,
            exchange: Mutex::new(None),
        }
    }

    /// The next authentication message, or the end of a successful login.
    async fn step(
        &self,
        user: String,
        secure: bool,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<Step> {
        let PgWireFrontendMessage::PasswordMessageFamily(message) = message else {
            return Ok(Step::Ignore);
        };
        let refused = |e: ScramError| match e {
            ScramError::WrongPassword => PgWireError::InvalidPassword(user.clone()),
            other => PgWireError::InvalidScramMessage(other.to_string()),
        };
        if self.shared.users.method == AuthMethod::Password {
            let password = message.into_password()?;
            return if self
                .shared
                .users
                .verifier(&user)
                .check_password(&password.password)
            {
                Ok(Step::Done)
            } else {
                Err(PgWireError::InvalidPassword(user))
            };
        }
        let mut exchange = self.exchange.lock().await;
        match exchange.take() {
            None => {
                let first = message.into_sasl_initial_response()?;
                let end_point = self.shared.end_point(secure);
                let plus = match first.auth_method.as_str() {
                    SCRAM_SHA_256 => false,
                    SCRAM_SHA_256_PLUS if end_point.is_some() => true,
                    _ => return Err(PgWireError::UnsupportedSASLAuthMethod(first.auth_method)),
                };
                let data = first.data.unwrap_or_default();
                let (server_first, next) = self
                    .shared
                    .users
                    .verifier(&user)
                    .client_first(&data, Binding { end_point, plus })
                    .map_err(refused)?;
                *exchange = Some(next);
                Ok(Step::Send(Authentication::SASLContinue(
                    server_first.into(),
                )))
            }
            Some(waiting) => {
                let last = message.into_sasl_response()?;
                let server_final = waiting.client_final(&last.data).map_err(refused)?;
                Ok(Step::Finish(Authentication::SASLFinal(server_final.into())))
            }
        }
    }
}

enum Step {
    Ignore,
    Send(Authentication),
    Finish(Authentication),
    Done,
}

#[async_trait]
impl StartupHandler for PasswordStartup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(ref startup) = message {
            let open = self.shared.open.load(std::sync::atomic::Ordering::SeqCst);
            if open > self.shared.max_connections {
                return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                    "FATAL".into(),
                    "53300".into(),
                    format!(
                        "sorry, too many clients already ({} connections is [server] \
                         max_connections in server.toml): close idle connections or raise it",
                        self.shared.max_connections
                    ),
                ))));
            }
            if self.shared.tls_only && !client.is_secure() {
                return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                    "FATAL".into(),
                    "28000".into(),
                    "this server accepts TLS connections only ([server] tls_only in \
                     server.toml): connect with sslmode=require"
                        .into(),
                ))));
            }
            protocol_negotiation(client, startup).await?;
            save_startup_parameters_to_metadata(client, startup);
            client.set_state(PgWireConnectionState::AuthenticationInProgress);
            let ask = match self.shared.users.method {
                // PostgreSQL's order: -PLUS first when the connection can bind.
                AuthMethod::ScramSha256 => Authentication::SASL(
                    self.shared
                        .end_point(client.is_secure())
                        .map(|_| SCRAM_SHA_256_PLUS)
                        .into_iter()
                        .chain([SCRAM_SHA_256])
                        .map(String::from)
                        .collect(),
                ),
                AuthMethod::Password => Authentication::CleartextPassword,
            };
            client
                .send(PgWireBackendMessage::Authentication(ask))
                .await?;
            return Ok(());
        }
        let user = LoginInfo::from_client_info(client)
            .user()
            .unwrap_or_default()
            .to_string();
        let role = self.shared.users.role(&user);
        match self.step(user, client.is_secure(), message).await? {
            Step::Ignore => return Ok(()),
            Step::Send(auth) => {
                client
                    .send(PgWireBackendMessage::Authentication(auth))
                    .await?;
                return Ok(());
            }
            Step::Finish(auth) => {
                client
                    .send(PgWireBackendMessage::Authentication(auth))
                    .await?;
            }
            Step::Done => {}
        }
        let (pid, secret_key) = self.shared.pids.generate(client);
        client.set_pid_and_secret_key(pid, secret_key.clone());
        // What pgwire's own handlers do: the handle lets a CancelRequest
        // reach this connection; the guard unregisters it when it closes.
        let (handle, guard) = self.shared.connections.register(pid, secret_key);
        client
            .session_extensions()
            .insert::<Arc<ConnectionHandle>>(handle);
        client.session_extensions().insert(guard);
        // What the role check (roles.rs) reads; a client cannot SET it.
        client.session_extensions().insert(role);
        finish_authentication(client, self.shared.params.as_ref()).await
    }
}
