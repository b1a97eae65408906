//! The token store: `tokens.json` in the state directory, readable only by
//! its owner (0600). It holds each connection's refresh token (web flow)
//! and what `sfsql connections` shows: user, org, instance URL, last
//! refresh, API usage, and whether the connection is disconnected.
//!
//! Writes replace the file atomically (write a 0600 temporary, rename), so
//! a `sfsql login` in one process and a running server in another never
//! see half a file; the last writer wins, which is what a login wants.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::salesforce::SalesforceError;

pub const TOKENS_FILE: &str = "tokens.json";

/// What is known about one connection's login.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StoredConnection {
    /// `web`, `jwt`, `client_credentials` or `refresh_token`.
    pub flow: String,
    /// Only the web flow stores one; `Debug` never shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(in crate::salesforce::oauth) refresh_token: Option<String>,
    #[serde(default)]
    pub instance_url: Option<String>,
    #[serde(default)]
    pub org_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// RFC 3339 times.
    #[serde(default)]
    pub logged_in_at: Option<String>,
    #[serde(default)]
    pub last_refresh: Option<String>,
    /// Why the connection stopped working, until the next login.
    #[serde(default)]
    pub disconnected: Option<String>,
    /// `Sforce-Limit-Info` as last seen: (used, max).
    #[serde(default)]
    pub api_usage: Option<(u64, u64)>,
}

impl std::fmt::Debug for StoredConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredConnection")
            .field("flow", &self.flow)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("instance_url", &self.instance_url)
            .field("username", &self.username)
            .field("disconnected", &self.disconnected)
            .finish_non_exhaustive()
    }
}

impl StoredConnection {
    pub fn refresh_token(&self) -> Option<SecretString> {
        self.refresh_token.clone().map(SecretString::from)
    }

    pub fn set_refresh_token(&mut self, token: Option<&SecretString>) {
        use secrecy::ExposeSecret;
        self.refresh_token = token.map(|t| t.expose_secret().to_string());
    }
}

/// Serialises read-modify-write cycles within this process.
static WRITE_LOCK: Mutex<()> = Mutex::new(());

/// Handle on `tokens.json`; cheap to clone, reads the file on each call so
/// that a login in another process is seen at the next token request.
#[derive(Debug, Clone)]
pub struct TokenStore {
    path: PathBuf,
}

impl TokenStore {
    pub fn in_dir(state_dir: &Path) -> TokenStore {
        TokenStore {
            path: state_dir.join(TOKENS_FILE),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, message: impl std::fmt::Display) -> SalesforceError {
        SalesforceError::TokenStore {
            path: self.path.clone(),
            message: message.to_string(),
        }
    }

    /// Every connection's entry; an absent file is an empty store.
    pub fn load(&self) -> Result<BTreeMap<String, StoredConnection>, SalesforceError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(self.error(e)),
        };
        serde_json::from_str(&text).map_err(|e| {
            // serde_json's message names a line and column, never content.
            self.error(format!(
                "not a token store ({e}); move it away and log in again"
            ))
        })
    }

    pub fn get(&self, name: &str) -> Result<Option<StoredConnection>, SalesforceError> {
        Ok(self.load()?.remove(name))
    }

    /// Change one entry (`None`: absent) and write the file.
    pub fn update(
        &self,
        name: &str,
        change: impl FnOnce(&mut Option<StoredConnection>),
    ) -> Result<(), SalesforceError> {
        let _guard = WRITE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = self.load()?;
        let mut entry = all.remove(name);
        change(&mut entry);
        if let Some(entry) = entry {
            all.insert(name.to_string(), entry);
        }
        self.write(&all)
    }

    fn write(&self, all: &BTreeMap<String, StoredConnection>) -> Result<(), SalesforceError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| self.error(e))?;
        let text = serde_json::to_vec_pretty(all).map_err(|e| self.error(e))?;
        let tmp = dir.join(format!(".{TOKENS_FILE}.{}.tmp", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(|e| self.error(e))?;
        #[cfg(unix)]
        {
            // `mode` applies only when the file is created; a leftover
            // temporary keeps its old mode otherwise.
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| self.error(e))?;
        }
        file.write_all(&text)
            .and_then(|()| file.sync_all())
            .map_err(|e| self.error(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn round_trips_with_owner_only_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TokenStore::in_dir(&dir.path().join("state"));
        assert!(store.load().expect("empty").is_empty());
        store
            .update("production", |e| {
                let mut c = StoredConnection {
                    flow: "web".into(),
                    username: Some("a@b.c".into()),
                    ..StoredConnection::default()
                };
                c.set_refresh_token(Some(&SecretString::from("5Aep861-secret")));
                *e = Some(c);
            })
            .expect("write");
        let got = store.get("production").expect("read").expect("entry");
        assert_eq!(
            got.refresh_token().map(|t| t.expose_secret().to_string()),
            Some("5Aep861-secret".to_string())
        );
        assert!(!format!("{got:?}").contains("5Aep861"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path())
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        store.update("production", |e| *e = None).expect("remove");
        assert!(store.get("production").expect("read").is_none());
    }

    #[test]
    fn a_corrupt_file_says_what_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(TOKENS_FILE), "{ not json").expect("write");
        let err = TokenStore::in_dir(dir.path()).load().unwrap_err();
        assert!(err.to_string().contains("log in again"), "{err}");
    }
}
