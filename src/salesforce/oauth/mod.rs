//! OAuth 2.0 against `/services/oauth2/token`: the grants a running client
//! uses (client credentials, refresh token, JWT bearer), the token store
//! (`store`) and the interactive web server flow with PKCE (`web`).
//! Secrets are held in `SecretString` and leave it only to be written into
//! the form body of a token request or into the 0600 token store.

pub mod jwt;
mod session;
mod store;
pub mod web;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::SalesforceError;

pub use session::Session;
pub use store::{StoredConnection, TOKENS_FILE, TokenStore};

/// How a connection obtains access tokens.
#[derive(Clone)]
pub enum Credentials {
    ClientCredentials {
        client_id: String,
        client_secret: SecretString,
    },
    RefreshToken {
        client_id: String,
        client_secret: SecretString,
        refresh_token: SecretString,
    },
    /// The web server flow: `sfsql login` put a refresh token in the token
    /// store; each token request reads it from there.
    Web {
        client_id: String,
        /// Absent when the connected app does not require the secret.
        client_secret: Option<SecretString>,
    },
    /// JWT bearer: an RS256 assertion for `username`, signed with the
    /// connected app's certificate key, for `audience` (login or test).
    Jwt {
        client_id: String,
        username: String,
        key: std::sync::Arc<jsonwebtoken::EncodingKey>,
        audience: String,
    },
}

impl Credentials {
    /// The flow's name, as written in `connections.toml`.
    pub fn flow(&self) -> &'static str {
        match self {
            Credentials::ClientCredentials { .. } => "client_credentials",
            Credentials::RefreshToken { .. } => "refresh_token",
            Credentials::Web { .. } => "web",
            Credentials::Jwt { .. } => "jwt",
        }
    }

    pub fn client_id(&self) -> &str {
        match self {
            Credentials::ClientCredentials { client_id, .. }
            | Credentials::RefreshToken { client_id, .. }
            | Credentials::Web { client_id, .. }
            | Credentials::Jwt { client_id, .. } => client_id,
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("flow", &self.flow())
            .field("client_id", &self.client_id())
            .finish_non_exhaustive()
    }
}

/// A live session: the access token and the instance it is valid for.
#[derive(Clone)]
pub(crate) struct AccessToken {
    pub token: SecretString,
    pub instance_url: String,
}

/// A successful token response.
pub(crate) struct Granted {
    pub access: AccessToken,
    /// The identity URL, `.../id/{orgId}/{userId}`.
    pub id_url: Option<String>,
    /// Only the authorization-code grant returns one.
    pub refresh_token: Option<SecretString>,
}

impl Granted {
    /// (org id, user id) from the identity URL.
    pub fn ids(&self) -> Option<(String, String)> {
        let url = self.id_url.as_deref()?;
        let mut parts = url.trim_end_matches('/').rsplit('/');
        let user = parts.next()?;
        let org = parts.next()?;
        (parts.next() == Some("id")).then(|| (org.to_string(), user.to_string()))
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    instance_url: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct OAuthError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Ask the token endpoint under `login_url` for a new access token.
/// `refresh_token` is the stored one, for [`Credentials::Web`].
pub(crate) async fn request_token(
    http: &reqwest::Client,
    connection: &str,
    login_url: &str,
    credentials: &Credentials,
    refresh_token: Option<&SecretString>,
) -> Result<Granted, SalesforceError> {
    let assertion;
    let form: Vec<(&str, &str)> = match credentials {
        Credentials::ClientCredentials {
            client_id,
            client_secret,
        } => vec![
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", client_secret.expose_secret()),
        ],
        Credentials::RefreshToken {
            client_id,
            client_secret,
            refresh_token,
        } => vec![
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("client_secret", client_secret.expose_secret()),
            ("refresh_token", refresh_token.expose_secret()),
        ],
        Credentials::Web {
            client_id,
            client_secret,
        } => {
            let refresh = refresh_token.ok_or_else(|| SalesforceError::Disconnected {
                connection: connection.to_string(),
                reason: "not logged in".into(),
            })?;
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("client_id", client_id.as_str()),
                ("refresh_token", refresh.expose_secret()),
            ];
            if let Some(secret) = client_secret {
                form.push(("client_secret", secret.expose_secret()));
            }
            form
        }
        Credentials::Jwt {
            client_id,
            username,
            key,
            audience,
        } => {
            assertion = jwt::assertion(connection, client_id, username, audience, key)?;
            vec![
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.expose_secret()),
            ]
        }
    };
    post_token(http, connection, login_url, &form).await
}

/// POST `form` to the token endpoint and read the answer.
pub(crate) async fn post_token(
    http: &reqwest::Client,
    connection: &str,
    login_url: &str,
    form: &[(&str, &str)],
) -> Result<Granted, SalesforceError> {
    let url = format!("{}/services/oauth2/token", login_url.trim_end_matches('/'));
    let transport = |source: reqwest::Error| SalesforceError::Transport {
        connection: connection.to_string(),
        source: source.without_url(),
    };
    let response = http.post(&url).form(form).send().await.map_err(transport)?;
    let status = response.status();
    let body = response.bytes().await.map_err(transport)?;
    // The grant type only: every other field of the form is a secret.
    let grant = form
        .iter()
        .find(|(k, _)| *k == "grant_type")
        .map_or("?", |(_, v)| *v);
    tracing::debug!(connection, %grant, status = status.as_u16(), "token request");
    if !status.is_success() {
        let parsed: OAuthError = serde_json::from_slice(&body).unwrap_or(OAuthError {
            error: format!("http_{}", status.as_u16()),
            error_description: String::from_utf8_lossy(&body).chars().take(200).collect(),
        });
        return Err(SalesforceError::LoginFailed {
            connection: connection.to_string(),
            error: parsed.error,
            description: parsed.error_description,
        });
    }
    let parsed: TokenResponse =
        serde_json::from_slice(&body).map_err(|e| SalesforceError::Decode {
            connection: connection.to_string(),
            what: "token response".into(),
            // serde_json names the line and column, never the content.
            detail: e.to_string(),
        })?;
    Ok(Granted {
        access: AccessToken {
            token: SecretString::from(parsed.access_token),
            instance_url: parsed.instance_url.trim_end_matches('/').to_string(),
        },
        id_url: parsed.id,
        refresh_token: parsed.refresh_token.map(SecretString::from),
    })
}

/// `POST /services/oauth2/revoke`: end a refresh token (and the sessions
/// issued from it). An already revoked token is not an error.
pub(crate) async fn revoke(
    http: &reqwest::Client,
    connection: &str,
    login_url: &str,
    token: &SecretString,
) -> Result<(), SalesforceError> {
    let url = format!("{}/services/oauth2/revoke", login_url.trim_end_matches('/'));
    let response = http
        .post(&url)
        .form(&[("token", token.expose_secret())])
        .send()
        .await
        .map_err(|source| SalesforceError::Transport {
            connection: connection.to_string(),
            source: source.without_url(),
        })?;
    let status = response.status();
    if status.is_success() || status == reqwest::StatusCode::BAD_REQUEST {
        return Ok(());
    }
    Err(SalesforceError::LoginFailed {
        connection: connection.to_string(),
        error: format!("http_{}", status.as_u16()),
        description: "token revocation failed".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_identity_url() {
        let granted = Granted {
            access: AccessToken {
                token: SecretString::from("x"),
                instance_url: "https://x".into(),
            },
            id_url: Some("https://login.salesforce.com/id/00Dxx0000001gPL/005xx000001Sv6A".into()),
            refresh_token: None,
        };
        assert_eq!(
            granted.ids(),
            Some(("00Dxx0000001gPL".into(), "005xx000001Sv6A".into()))
        );
    }
}
