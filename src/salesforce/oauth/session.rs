//! A client's session: the access token in use, renewed once per failure,
//! the web flow's refresh token read from the token store, and the
//! connection's status recorded there (last refresh, API usage, and
//! `disconnected` when the org refuses the refresh token).

use std::time::{Duration, Instant};

use secrecy::ExposeSecret;

use super::{AccessToken, Credentials, Granted, TokenStore, request_token};
use crate::salesforce::SalesforceError;

pub struct Session {
    credentials: Credentials,
    store: Option<TokenStore>,
    /// `None` until the first request, after a 401, or while disconnected.
    current: tokio::sync::Mutex<Option<AccessToken>>,
    /// When API usage was last written to the store.
    usage_saved: std::sync::Mutex<Option<Instant>>,
}

/// API usage is written to the store at most this often.
const USAGE_SAVE_EVERY: Duration = Duration::from_secs(60);

impl Session {
    pub fn new(credentials: Credentials) -> Session {
        Session {
            credentials,
            store: None,
            current: tokio::sync::Mutex::new(None),
            usage_saved: std::sync::Mutex::new(None),
        }
    }

    pub fn set_store(&mut self, store: TokenStore) {
        self.store = Some(store);
    }

    fn is_web(&self) -> bool {
        matches!(self.credentials, Credentials::Web { .. })
    }

    /// The current access token, or a new one when there is none or when
    /// it is `failed`. Concurrent requests that failed with the same token
    /// renew it once.
    pub async fn access_token(
        &self,
        http: &reqwest::Client,
        name: &str,
        login_url: &str,
        failed: Option<&AccessToken>,
    ) -> Result<AccessToken, SalesforceError> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref() {
            let stale =
                failed.is_some_and(|f| f.token.expose_secret() == token.token.expose_secret());
            if !stale {
                return Ok(token.clone());
            }
        }
        *current = None;
        let token = self.log_in(http, name, login_url).await?;
        *current = Some(token.clone());
        Ok(token)
    }

    /// One token request. An `invalid_grant` (a refused refresh token,
    /// JWT assertion or client credentials grant, in any flow) disconnects
    /// the connection until the next `sfsql login`.
    async fn log_in(
        &self,
        http: &reqwest::Client,
        name: &str,
        login_url: &str,
    ) -> Result<AccessToken, SalesforceError> {
        let disconnected = |reason: String| SalesforceError::Disconnected {
            connection: name.to_string(),
            reason,
        };
        let stored = match &self.store {
            Some(store) => store.get(name)?,
            None if self.is_web() => return Err(disconnected("no token store".into())),
            None => None,
        };
        if let Some(reason) = self.login_blocker(stored.as_ref()) {
            return Err(disconnected(reason));
        }
        let refresh = stored.as_ref().and_then(|s| s.refresh_token());
        match request_token(http, name, login_url, &self.credentials, refresh.as_ref()).await {
            Ok(granted) => {
                self.remember(name, &granted);
                Ok(granted.access)
            }
            Err(SalesforceError::LoginFailed {
                error, description, ..
            }) if error == "invalid_grant" => {
                let reason = format!("{}: invalid_grant: {description}", self.refused_what());
                tracing::warn!(connection = %name, %reason, "connection disconnected");
                let at = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ");
                self.update(name, |e| e.disconnected = Some(format!("{reason}, {at}")));
                Err(disconnected(reason))
            }
            Err(e) => Err(e),
        }
    }

    /// Why no token may be requested without `sfsql login` first, given
    /// the connection's store entry.
    fn login_blocker(&self, stored: Option<&super::StoredConnection>) -> Option<String> {
        // A connection the org refused stays refused until `sfsql login`
        // clears the mark: no token request may reach the org meanwhile
        // (repeated failed logins can lock the integration user).
        if let Some(reason) = stored.and_then(|s| s.disconnected.as_ref()) {
            return Some(reason.clone());
        }
        if self.is_web() && stored.and_then(|s| s.refresh_token()).is_none() {
            return Some("not logged in".into());
        }
        None
    }

    /// Why the connection needs `sfsql login` before it can work, read
    /// from the token store without any request (`None`: it may work).
    pub fn needs_login(&self, name: &str) -> Option<String> {
        match &self.store {
            Some(store) => match store.get(name) {
                Ok(stored) => self.login_blocker(stored.as_ref()),
                Err(e) => Some(e.to_string()),
            },
            None if self.is_web() => Some("no token store".into()),
            None => None,
        }
    }

    /// What the org refused, for the disconnected message.
    fn refused_what(&self) -> &'static str {
        match self.credentials {
            Credentials::Web { .. } | Credentials::RefreshToken { .. } => {
                "the org refused its refresh token"
            }
            Credentials::Jwt { .. } => "the org refused the JWT bearer assertion",
            Credentials::ClientCredentials { .. } => "the org refused the client credentials grant",
        }
    }

    /// Change this connection's store entry, if it has one; a store that
    /// cannot be written costs the status, not the query.
    fn update(&self, name: &str, change: impl FnOnce(&mut super::StoredConnection)) {
        let Some(store) = &self.store else { return };
        let web = self.is_web();
        let flow = self.credentials.flow();
        let result = store.update(name, |entry| {
            // A web entry exists only between login and logout.
            if entry.is_none() && web {
                return;
            }
            let e = entry.get_or_insert_with(Default::default);
            e.flow = flow.to_string();
            change(e);
        });
        if let Err(e) = result {
            tracing::warn!(connection = %name, error = %e, "cannot update the token store");
        }
    }

    /// Record a successful token request.
    fn remember(&self, name: &str, granted: &Granted) {
        self.update(name, |e| {
            e.instance_url = Some(granted.access.instance_url.clone());
            if let Some((org, user)) = granted.ids() {
                e.org_id = Some(org);
                e.user_id = Some(user);
            }
            e.last_refresh = Some(chrono::Utc::now().to_rfc3339());
        });
    }

    /// Keep the store's API usage current for `sfsql connections`.
    pub fn save_usage(&self, name: &str, used: u64, max: u64) {
        let now = Instant::now();
        let due = match self.usage_saved.lock() {
            Ok(mut last) => {
                let due = last.is_none_or(|t| now.duration_since(t) >= USAGE_SAVE_EVERY);
                if due {
                    *last = Some(now);
                }
                due
            }
            Err(_) => false,
        };
        if due && self.store.is_some() {
            self.update(name, |e| e.api_usage = Some((used, max)));
        }
    }
}
