//! OAuth 2.0 token requests against `/services/oauth2/token`.
//!
//! The walking skeleton supports the client-credentials and refresh-token
//! grants; the web-server flow with PKCE and JWT bearer come with the
//! connections work. Secrets are held in `SecretString` and leave it only to
//! be written into the form body of the token request.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::SalesforceError;

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
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::ClientCredentials { client_id, .. } => f
                .debug_struct("ClientCredentials")
                .field("client_id", client_id)
                .finish_non_exhaustive(),
            Credentials::RefreshToken { client_id, .. } => f
                .debug_struct("RefreshToken")
                .field("client_id", client_id)
                .finish_non_exhaustive(),
        }
    }
}

/// A live session: the access token and the instance it is valid for.
#[derive(Clone)]
pub(crate) struct AccessToken {
    pub token: SecretString,
    pub instance_url: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    instance_url: String,
}

#[derive(Deserialize)]
struct OAuthError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Ask the token endpoint under `login_url` for a new access token.
pub(crate) async fn request_token(
    http: &reqwest::Client,
    connection: &str,
    login_url: &str,
    credentials: &Credentials,
) -> Result<AccessToken, SalesforceError> {
    let url = format!("{}/services/oauth2/token", login_url.trim_end_matches('/'));
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
    };
    let response =
        http.post(&url)
            .form(&form)
            .send()
            .await
            .map_err(|source| SalesforceError::Transport {
                connection: connection.to_string(),
                source: source.without_url(),
            })?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|source| SalesforceError::Transport {
            connection: connection.to_string(),
            source: source.without_url(),
        })?;
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
            detail: e.to_string(),
        })?;
    Ok(AccessToken {
        token: SecretString::from(parsed.access_token),
        instance_url: parsed.instance_url.trim_end_matches('/').to_string(),
    })
}
