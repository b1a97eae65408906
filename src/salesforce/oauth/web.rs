//! The web server flow with PKCE, as `sfsql login` runs it: build the
//! authorize URL (S256 `code_challenge`, random `state`) with the `oauth2`
//! crate, wait on `http://localhost:PORT/OAuth/Callback` for the browser,
//! check `state`, exchange the code with the verifier, look up who logged
//! in, and store the refresh token. Also `logout`: revoke and forget.

use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{AuthUrl, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{Granted, StoredConnection, TokenStore, post_token, revoke};
use crate::salesforce::SalesforceError;

/// What `login` needs to know about the connection.
pub struct LoginRequest<'a> {
    pub connection: &'a str,
    pub login_url: &'a str,
    pub client_id: &'a str,
    pub client_secret: Option<&'a SecretString>,
    pub callback_port: u16,
    pub scopes: &'a str,
    pub store: &'a TokenStore,
    /// How long to wait for the browser.
    pub timeout: Duration,
}

pub const CALLBACK_PATH: &str = "/OAuth/Callback";

/// The callback URL to register in the connected app for `port`.
pub fn redirect_uri(port: u16) -> String {
    format!("http://localhost:{port}{CALLBACK_PATH}")
}

/// Run the flow: `show_url` is called with the authorize URL once the
/// callback port is listening. Returns the stored entry.
pub async fn login(
    req: &LoginRequest<'_>,
    show_url: impl FnOnce(&str),
) -> Result<StoredConnection, SalesforceError> {
    let failed = |message: String| SalesforceError::Login {
        connection: req.connection.to_string(),
        message,
    };
    let listener = TcpListener::bind(("127.0.0.1", req.callback_port))
        .await
        .map_err(|e| {
            failed(format!(
                "cannot listen on port {} for the callback ({e}); free it or set callback_port",
                req.callback_port
            ))
        })?;
    let redirect = redirect_uri(req.callback_port);
    let auth_url = AuthUrl::new(format!(
        "{}/services/oauth2/authorize",
        req.login_url.trim_end_matches('/')
    ))
    .map_err(|e| failed(format!("bad login_url: {e}")))?;
    let client = BasicClient::new(ClientId::new(req.client_id.to_string()))
        .set_auth_uri(auth_url)
        .set_redirect_uri(RedirectUrl::new(redirect.clone()).map_err(|e| failed(format!("{e}")))?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(req.scopes.split_whitespace().map(|s| Scope::new(s.into())))
        .set_pkce_challenge(challenge)
        .url();
    show_url(url.as_str());

    let code = tokio::time::timeout(req.timeout, wait_for_code(&listener, state.secret()))
        .await
        .map_err(|_| {
            failed(format!(
                "no answer from the browser within {:?}",
                req.timeout
            ))
        })?
        .map_err(failed)?;

    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.expose_secret()),
        ("client_id", req.client_id),
        ("redirect_uri", redirect.as_str()),
        ("code_verifier", verifier.secret().as_str()),
    ];
    if let Some(secret) = req.client_secret {
        form.push(("client_secret", secret.expose_secret()));
    }
    let http = reqwest::Client::new();
    let granted = post_token(&http, req.connection, req.login_url, &form).await?;
    let Some(refresh) = &granted.refresh_token else {
        return Err(failed(
            "the org issued no refresh token: add the scopes refresh_token and offline_access \
             to the connected app"
                .into(),
        ));
    };
    let now = chrono::Utc::now().to_rfc3339();
    let mut entry = StoredConnection {
        flow: "web".into(),
        instance_url: Some(granted.access.instance_url.clone()),
        username: username(&http, &granted).await,
        logged_in_at: Some(now.clone()),
        last_refresh: Some(now),
        ..StoredConnection::default()
    };
    if let Some((org, user)) = granted.ids() {
        entry.org_id = Some(org);
        entry.user_id = Some(user);
    }
    entry.set_refresh_token(Some(refresh));
    let stored = entry.clone();
    req.store
        .update(req.connection, move |slot| *slot = Some(entry))?;
    Ok(stored)
}

/// Who the token belongs to, from the identity URL (best effort: the
/// login has worked whether or not this answers).
pub(crate) async fn username(http: &reqwest::Client, granted: &Granted) -> Option<String> {
    let url = granted.id_url.as_deref()?;
    let response = http
        .get(url)
        .bearer_auth(granted.access.token.expose_secret())
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = response.error_for_status().ok()?.json().await.ok()?;
    body.get("username")?.as_str().map(str::to_string)
}

/// Answer browser requests until one brings the authorization code.
async fn wait_for_code(listener: &TcpListener, state: &str) -> Result<SecretString, String> {
    loop {
        let (mut socket, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let Some(target) = read_request_target(&mut socket).await else {
            continue;
        };
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        if path != CALLBACK_PATH {
            respond(&mut socket, "404 Not Found", "Not the sfsql callback.").await;
            continue;
        }
        let params: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
        if params.get("state").map(String::as_str) != Some(state) {
            respond(
                &mut socket,
                "400 Bad Request",
                "The state does not match: log in again.",
            )
            .await;
            return Err("the callback's state does not match the request (a stale or forged callback); run the login again".into());
        }
        if let Some(error) = params.get("error") {
            let description = params.get("error_description").cloned().unwrap_or_default();
            respond(
                &mut socket,
                "400 Bad Request",
                "Salesforce refused the login.",
            )
            .await;
            return Err(format!("the org answered {error}: {description}"));
        }
        let Some(code) = params.get("code") else {
            respond(&mut socket, "400 Bad Request", "No code in the callback.").await;
            return Err("the callback carried no code".into());
        };
        respond(
            &mut socket,
            "200 OK",
            "sfsql is logged in. You can close this tab.",
        )
        .await;
        return Ok(SecretString::from(code.clone()));
    }
}

/// The request target of an HTTP/1 request head (`GET <target> HTTP/1.1`).
async fn read_request_target(socket: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut words = text.lines().next()?.split_whitespace();
    (words.next()? == "GET").then_some(())?;
    words.next().map(str::to_string)
}

async fn respond(socket: &mut TcpStream, status: &str, text: &str) {
    let body = format!("<!doctype html><title>sfsql</title><p>{text}</p>\n");
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// Revoke the stored refresh token at the org and delete the entry.
/// Returns false when there was nothing to log out of.
pub async fn logout(
    connection: &str,
    login_url: &str,
    store: &TokenStore,
) -> Result<bool, SalesforceError> {
    let Some(entry) = store.get(connection)? else {
        return Ok(false);
    };
    if let Some(token) = entry.refresh_token() {
        revoke(&reqwest::Client::new(), connection, login_url, &token).await?;
    }
    store.update(connection, |slot| *slot = None)?;
    Ok(true)
}
