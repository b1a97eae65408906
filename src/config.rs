//! The catalog: `connections.toml`, `reports.toml` and `server.toml` in one
//! directory. Unknown keys are errors, secrets are named by environment
//! variable and never written in the files, and `${VAR}` in a URL expands
//! from the environment (or the demo's overrides).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;
use thiserror::Error;

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
    /// `https://login.salesforce.com`, `https://test.salesforce.com`, a My
    /// Domain URL, or the simulator's org URL.
    pub login_url: String,
    pub auth: AuthConfig,
    /// Refuse every write through this connection.
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "flow", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    ClientCredentials {
        client_id_env: String,
        client_secret_env: String,
    },
    RefreshToken {
        client_id_env: String,
        client_secret_env: String,
        refresh_token_env: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReportConfig {
    /// A CSV file with a header row; the path is relative to the catalog.
    Csv {
        path: PathBuf,
        #[serde(default)]
        description: Option<String>,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default)]
    pub users: BTreeMap<String, UserConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            users: BTreeMap::new(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:5433".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// `md5` + md5(password || username), as PostgreSQL stores it.
    pub password_md5: String,
}

#[derive(Debug, Clone)]
pub struct Catalog {
    pub dir: PathBuf,
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
            c.login_url = env
                .expand(&c.login_url)
                .map_err(|message| ConfigError::Invalid {
                    path: connections_path.clone(),
                    message: format!("connection {name}: login_url: {message}"),
                })?;
        }
        let reports_path = dir.join("reports.toml");
        let reports: BTreeMap<String, ReportConfig> = read_toml(&reports_path)?;
        for (name, r) in &reports {
            check_name(&reports_path, "report", name)?;
            let ReportConfig::Csv { path, .. } = r;
            if !dir.join(path).exists() {
                return Err(ConfigError::Invalid {
                    path: reports_path.clone(),
                    message: format!(
                        "report {name}: file {} does not exist",
                        dir.join(path).display()
                    ),
                });
            }
        }
        let server: ServerConfig = read_toml(&dir.join("server.toml"))?;
        Ok(Catalog {
            dir: dir.to_path_buf(),
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
