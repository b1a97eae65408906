//! The catalog: `connections.toml`, `reports.toml` and `server.toml` in one
//! directory. Unknown keys are errors, secrets are named by environment
//! variable and never written in the files, and `${VAR}` in a URL expands
//! from the environment (or the demo's overrides).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;
use thiserror::Error;

pub use crate::reports::ReportConfig;
use crate::salesforce::Credentials;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "connection {connection}: environment variable {var} is not set; export it (see README, 'Connect your org')"
    )]
    MissingEnv { connection: String, var: String },
}

/// Where `${VAR}` and `*_env` names are looked up: overrides first, then
/// the process environment.
#[derive(Debug, Default, Clone)]
pub struct Env {
    overrides: HashMap<String, String>,
}

impl Env {
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.overrides.insert(key.to_string(), value.into());
        self
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.overrides
            .get(key)
            .cloned()
            .or_else(|| std::env::var(key).ok())
            .filter(|v| !v.is_empty())
    }

    /// Expand `${VAR}` references.
    pub fn expand(&self, s: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
            let var = &after[..end];
            let value = self
                .get(var)
                .ok_or_else(|| format!("environment variable {var} is not set"))?;
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// `production` (login.salesforce.com) or `sandbox`
    /// (test.salesforce.com); with `login_url`, what kind of org the My
    /// Domain belongs to (it picks the JWT audience).
    #[serde(default)]
    pub kind: Option<OrgKind>,
    /// A My Domain URL or the simulator's org URL; from `kind` when absent.
    #[serde(default)]
    pub login_url: String,
    pub auth: AuthConfig,
    /// Refuse every write through this connection.
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    Production,
    Sandbox,
}

pub const PRODUCTION_LOGIN: &str = "https://login.salesforce.com";
pub const SANDBOX_LOGIN: &str = "https://test.salesforce.com";

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "flow", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// Only with a My Domain `login_url`, as Salesforce requires.
    ClientCredentials {
        client_id_env: String,
        client_secret_env: String,
    },
    RefreshToken {
        client_id_env: String,
        client_secret_env: String,
        refresh_token_env: String,
    },
    /// Web server flow with PKCE: `sfsql login NAME` stores the refresh token.
    Web {
        client_id_env: String,
        /// When the connected app requires the secret for this flow.
        #[serde(default)]
        client_secret_env: Option<String>,
        /// Local port of `http://localhost:PORT/OAuth/Callback`.
        #[serde(default = "default_callback_port")]
        callback_port: u16,
        #[serde(default = "default_scopes")]
        scopes: String,
    },
    /// JWT bearer: signed with the private key of the certificate uploaded
    /// to the connected app, for a pre-authorized user.
    Jwt {
        client_id_env: String,
        username: String,
        /// PEM file; `${VAR}` expands; relative to the catalog directory.
        private_key_file: PathBuf,
    },
}

fn default_callback_port() -> u16 {
    1717
}

fn default_scopes() -> String {
    "api refresh_token offline_access".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    /// How clients prove their password.
    #[serde(default)]
    pub auth: AuthMethod,
    /// PEM certificate chain and private key for TLS (`sslmode=require`);
    /// relative to the catalog directory. Both or neither.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Close a connection that ran no statement for this long (`30m`,
    /// `1h`; none by default), as PostgreSQL's `idle_session_timeout`.
    #[serde(default)]
    pub idle_timeout: Option<String>,
    /// Refuse connections that are not TLS (as pg_hba.conf's `hostssl`);
    /// needs tls_cert and tls_key.
    #[serde(default)]
    pub tls_only: bool,
    /// Connections served at once; one more is refused with 53300, as
    /// PostgreSQL's `max_connections` does.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    #[serde(default)]
    pub users: BTreeMap<String, UserConfig>,
    /// `[scheduler]`: missed-run policy and the like.
    #[serde(default)]
    pub scheduler: crate::scheduler::SchedulerConfig,
    /// `[alerts]`: a webhook for failed runs and paused jobs.
    #[serde(default)]
    pub alerts: Option<crate::scheduler::AlertsConfig>,
}

fn default_max_connections() -> usize {
    100
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            auth: AuthMethod::default(),
            tls_cert: None,
            tls_key: None,
            tls_only: false,
            idle_timeout: None,
            max_connections: default_max_connections(),
            users: BTreeMap::new(),
            scheduler: Default::default(),
            alerts: None,
        }
    }
}

/// pg_hba.conf's method names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum AuthMethod {
    /// SCRAM-SHA-256: the password never crosses the wire.
    #[default]
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    /// Cleartext password, checked against the same verifier: only for
    /// clients that cannot do SCRAM, and only over TLS.
    #[serde(rename = "password")]
    Password,
}

fn default_listen() -> String {
    "127.0.0.1:5433".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// A SCRAM-SHA-256 verifier as PostgreSQL stores it in pg_authid
    /// (`SCRAM-SHA-256$4096:salt$StoredKey:ServerKey`), from `sfsql hash-password`.
    pub password_hash: String,
    /// What the user may do; `reader` unless the file says more.
    #[serde(default)]
    pub role: Role,
}

/// Server roles, each including the ones before it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// SELECT, EXPLAIN, dry runs.
    #[default]
    Reader,
    /// Writes to connections that are not read-only and not production orgs.
    Writer,
    /// Writes to production orgs, `cron.*` jobs, DDL on the shared catalog.
    Admin,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        })
    }
}

#[derive(Debug, Clone)]
pub struct Catalog {
    pub dir: PathBuf,
    /// Token store and run log: `.sfsql/` beside the catalog unless the
    /// command line says otherwise.
    pub state_dir: PathBuf,
    pub connections: BTreeMap<String, ConnectionConfig>,
    pub reports: BTreeMap<String, ReportConfig>,
    pub server: ServerConfig,
}

fn read_toml<T: serde::de::DeserializeOwned + Default>(path: &Path) -> Result<T, ConfigError> {
    if !path.exists() {
        return Ok(T::default());
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

impl Catalog {
    pub fn load(dir: &Path, env: &Env) -> Result<Catalog, ConfigError> {
        if !dir.is_dir() {
            return Err(ConfigError::Invalid {
                path: dir.to_path_buf(),
                message: "is not a catalog directory (run from the repository root, or pass --catalog DIR)".into(),
            });
        }
        let connections_path = dir.join("connections.toml");
        let mut connections: BTreeMap<String, ConnectionConfig> = read_toml(&connections_path)?;
        for (name, c) in connections.iter_mut() {
            check_name(&connections_path, "connection", name)?;
            if name == "reports"
                || name == "cron"
                || name.starts_with("pg_")
                || name == "information_schema"
            {
                return Err(ConfigError::Invalid {
                    path: connections_path.clone(),
                    message: format!("connection name {name:?} is reserved; pick another"),
                });
            }
            c.resolve(name, dir, env)
                .map_err(|message| ConfigError::Invalid {
                    path: connections_path.clone(),
                    message: format!("connection {name}: {message}"),
                })?;
        }
        let reports_path = dir.join("reports.toml");
        let mut reports: BTreeMap<String, ReportConfig> = read_toml(&reports_path)?;
        for (name, r) in reports.iter_mut() {
            check_name(&reports_path, "report", name)?;
            r.check(dir, env).map_err(|message| ConfigError::Invalid {
                path: reports_path.clone(),
                message: format!("report {name}: {message}"),
            })?;
            if let ReportConfig::Salesforce { connection, .. } = r
                && !connections.contains_key(connection)
            {
                let known: Vec<&str> = connections.keys().map(String::as_str).collect();
                return Err(ConfigError::Invalid {
                    path: reports_path.clone(),
                    message: format!(
                        "report {name}: connection {connection:?} is not in connections.toml; use one of: {}",
                        known.join(", ")
                    ),
                });
            }
        }
        let server_path = dir.join("server.toml");
        let mut server: ServerConfig = read_toml(&server_path)?;
        for file in [&mut server.tls_cert, &mut server.tls_key]
            .into_iter()
            .flatten()
        {
            *file = dir.join(&*file);
        }
        if let Some(alerts) = &mut server.alerts {
            alerts
                .resolve(|s| env.expand(s))
                .map_err(|message| ConfigError::Invalid {
                    path: server_path.clone(),
                    message,
                })?;
        }
        for (name, user) in &server.users {
            crate::server::Verifier::parse(&user.password_hash).map_err(|e| {
                ConfigError::Invalid {
                    path: server_path.clone(),
                    message: format!("user {name}: {e}"),
                }
            })?;
        }
        let state_dir = dir
            .canonicalize()
            .ok()
            .and_then(|c| c.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".sfsql");
        Ok(Catalog {
            dir: dir.to_path_buf(),
            state_dir,
            connections,
            reports,
            server,
        })
    }
}

fn check_name(path: &Path, what: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "{what} name {name:?} must be lower case letters, digits and _ (it becomes a SQL name)"
            ),
        })
    }
}

impl ConnectionConfig {
    /// Expand `${VAR}`s, fill `login_url` from `kind`, make the key path
    /// absolute, and refuse client credentials off My Domain.
    /// A production org: `kind = "production"`, or login.salesforce.com.
    pub fn is_production(&self) -> bool {
        match self.kind {
            Some(kind) => kind == OrgKind::Production,
            None => self.login_url.trim_end_matches('/') == PRODUCTION_LOGIN,
        }
    }

    fn resolve(&mut self, name: &str, dir: &Path, env: &Env) -> Result<(), String> {
        self.login_url = env
            .expand(&self.login_url)
            .map_err(|m| format!("login_url: {m}"))?;
        if self.login_url.is_empty() {
            self.login_url = match self.kind {
                Some(OrgKind::Production) => PRODUCTION_LOGIN.into(),
                Some(OrgKind::Sandbox) => SANDBOX_LOGIN.into(),
                None => {
                    return Err(
                        "set kind = \"production\" or \"sandbox\", or login_url = your My Domain URL"
                            .into(),
                    );
                }
            };
        }
        if let AuthConfig::Jwt {
            private_key_file, ..
        } = &mut self.auth
        {
            let expanded = env
                .expand(&private_key_file.to_string_lossy())
                .map_err(|m| format!("private_key_file: {m}"))?;
            *private_key_file = dir.join(expanded);
        }
        if matches!(self.auth, AuthConfig::ClientCredentials { .. }) && !self.is_my_domain() {
            return Err(format!(
                "the client_credentials flow works only with a My Domain login_url \
                 (https://yourdomain.my.salesforce.com), not {}; use flow = \"web\" or \"jwt\" \
                 for {name}, or set login_url",
                self.login_url
            ));
        }
        Ok(())
    }

    /// Anything but the two generic login hosts is a My Domain (the
    /// simulator's org URLs included: like a My Domain, they name one org).
    pub fn is_my_domain(&self) -> bool {
        let host = url::Url::parse(&self.login_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
        !matches!(
            host.as_deref(),
            Some("login.salesforce.com" | "test.salesforce.com")
        )
    }

    /// The flow's name as written in the file.
    pub fn auth_flow(&self) -> &'static str {
        match self.auth {
            AuthConfig::ClientCredentials { .. } => "client_credentials",
            AuthConfig::RefreshToken { .. } => "refresh_token",
            AuthConfig::Web { .. } => "web",
            AuthConfig::Jwt { .. } => "jwt",
        }
    }

    /// The JWT `aud`: the login host of the org's kind.
    pub fn audience(&self) -> &'static str {
        let sandbox = match self.kind {
            Some(kind) => kind == OrgKind::Sandbox,
            None => {
                self.login_url.contains("test.salesforce.com")
                    || self.login_url.contains(".sandbox.my.salesforce.com")
            }
        };
        if sandbox {
            SANDBOX_LOGIN
        } else {
            PRODUCTION_LOGIN
        }
    }

    /// Read the secrets this connection names from the environment.
    pub fn credentials(&self, connection: &str, env: &Env) -> Result<Credentials, ConfigError> {
        let need = |var: &str| {
            env.get(var).ok_or_else(|| ConfigError::MissingEnv {
                connection: connection.to_string(),
                var: var.to_string(),
            })
        };
        Ok(match &self.auth {
            AuthConfig::ClientCredentials {
                client_id_env,
                client_secret_env,
            } => Credentials::ClientCredentials {
                client_id: need(client_id_env)?,
                client_secret: SecretString::from(need(client_secret_env)?),
            },
            AuthConfig::RefreshToken {
                client_id_env,
                client_secret_env,
                refresh_token_env,
            } => Credentials::RefreshToken {
                client_id: need(client_id_env)?,
                client_secret: SecretString::from(need(client_secret_env)?),
                refresh_token: SecretString::from(need(refresh_token_env)?),
            },
            AuthConfig::Web {
                client_id_env,
                client_secret_env,
                ..
            } => Credentials::Web {
                client_id: need(client_id_env)?,
                client_secret: match client_secret_env {
                    Some(var) => Some(SecretString::from(need(var)?)),
                    None => None,
                },
            },
            AuthConfig::Jwt {
                client_id_env,
                username,
                private_key_file,
            } => {
                let invalid = |message: String| ConfigError::Invalid {
                    path: private_key_file.clone(),
                    message: format!("connection {connection}: {message}"),
                };
                let pem = std::fs::read(private_key_file)
                    .map_err(|e| invalid(format!("cannot read the JWT private key: {e}")))?;
                let key = crate::salesforce::load_jwt_key(&pem).map_err(invalid)?;
                Credentials::Jwt {
                    client_id: need(client_id_env)?,
                    username: username.clone(),
                    key: std::sync::Arc::new(key),
                    audience: self.audience().to_string(),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_errors() {
        let text = r#"
[production]
login_url = "https://login.salesforce.com"
auth = { flow = "client_credentials", client_id_env = "A", client_secret_env = "B" }
readonly = true
"#;
        let err = toml::from_str::<BTreeMap<String, ConnectionConfig>>(text).unwrap_err();
        assert!(err.to_string().contains("readonly"), "{err}");
        let text = r#"
[production]
login_url = "https://login.salesforce.com"
auth = { flow = "client_credentials", client_id_env = "A", client_secret = "B" }
"#;
        assert!(toml::from_str::<BTreeMap<String, ConnectionConfig>>(text).is_err());
    }

    fn resolved(text: &str) -> Result<ConnectionConfig, String> {
        let mut all = toml::from_str::<BTreeMap<String, ConnectionConfig>>(text)
            .map_err(|e| e.to_string())?;
        let (name, mut c) = all.pop_first().ok_or("empty")?;
        let env = Env::default().with("SIM", "http://127.0.0.1:9");
        c.resolve(&name, Path::new("/catalog"), &env)?;
        Ok(c)
    }

    #[test]
    fn kinds_pick_the_login_host_and_jwt_audience() {
        let web = r#"auth = { flow = "web", client_id_env = "A" }"#;
        let c = resolved(&format!("[p]\nkind = \"production\"\n{web}")).unwrap();
        assert_eq!(c.login_url, PRODUCTION_LOGIN);
        assert_eq!(c.audience(), PRODUCTION_LOGIN);
        assert!(
            matches!(c.auth, AuthConfig::Web { callback_port: 1717, ref scopes, .. } if scopes == "api refresh_token offline_access")
        );
        let c = resolved(&format!("[s]\nkind = \"sandbox\"\n{web}")).unwrap();
        assert_eq!(c.login_url, SANDBOX_LOGIN);
        assert_eq!(c.audience(), SANDBOX_LOGIN);
        let c = resolved(&format!(
            "[s]\nlogin_url = \"https://acme--uat.sandbox.my.salesforce.com\"\n{web}"
        ))
        .unwrap();
        assert!(c.is_my_domain());
        assert_eq!(c.audience(), SANDBOX_LOGIN);
        let err = resolved(&format!("[x]\n{web}")).unwrap_err();
        assert!(err.contains("set kind"), "{err}");
        assert!(resolved(&format!("[x]\nkind = \"prod\"\n{web}")).is_err());
    }

    /// Salesforce allows the client credentials flow only on My Domain
    /// hosts; anything but login/test.salesforce.com counts as one (the
    /// simulator's org URLs too: each names exactly one org).
    #[test]
    fn client_credentials_needs_a_my_domain() {
        let cc = r#"auth = { flow = "client_credentials", client_id_env = "A", client_secret_env = "B" }"#;
        for bad in [
            "kind = \"production\"",
            "login_url = \"https://login.salesforce.com\"",
            "login_url = \"https://TEST.salesforce.com/\"",
        ] {
            let err = resolved(&format!("[p]\n{bad}\n{cc}")).unwrap_err();
            assert!(err.contains("only with a My Domain"), "{bad}: {err}");
        }
        for good in [
            "login_url = \"https://acme.my.salesforce.com\"",
            "login_url = \"${SIM}/production\"",
        ] {
            assert!(resolved(&format!("[p]\n{good}\n{cc}")).is_ok(), "{good}");
        }
    }

    #[test]
    fn jwt_key_path_is_relative_to_the_catalog() {
        let c = resolved(
            r#"[p]
kind = "production"
auth = { flow = "jwt", client_id_env = "A", username = "u@x.example", private_key_file = "keys/k.pem" }
"#,
        )
        .unwrap();
        let AuthConfig::Jwt {
            private_key_file, ..
        } = c.auth
        else {
            panic!("jwt");
        };
        assert_eq!(private_key_file, Path::new("/catalog/keys/k.pem"));
    }

    #[test]
    fn expands_variables() {
        let env = Env::default().with("SIM", "http://127.0.0.1:9");
        assert_eq!(
            env.expand("${SIM}/sandbox").unwrap(),
            "http://127.0.0.1:9/sandbox"
        );
        assert!(env.expand("${SFSQL_SURELY_UNSET_VAR}/x").is_err());
    }
}
