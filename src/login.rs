//! `sfsql login`, `sfsql logout` and `sfsql connections`: the catalog's
//! connections against the token store (`tokens.json` in the state
//! directory). Output never contains a token or secret.

use std::time::Duration;

use thiserror::Error;

use crate::config::{AuthConfig, Catalog, ConfigError, ConnectionConfig, Env};
use crate::salesforce::web::{self, LoginRequest};
use crate::salesforce::{Credentials, SalesforceClient, SalesforceError, TokenStore};

#[derive(Debug, Error)]
pub enum LoginError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Salesforce(#[from] SalesforceError),
    #[error("no connection {name} in connections.toml (there are: {known})")]
    UnknownConnection { name: String, known: String },
}

/// How long `sfsql login` waits for the browser to come back.
pub const BROWSER_TIMEOUT: Duration = Duration::from_secs(300);

fn connection<'a>(catalog: &'a Catalog, name: &str) -> Result<&'a ConnectionConfig, LoginError> {
    catalog
        .connections
        .get(name)
        .ok_or_else(|| LoginError::UnknownConnection {
            name: name.to_string(),
            known: catalog
                .connections
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Log in to connection `name`. The web flow calls `show_url` with the
/// authorize URL (to print and open) and waits for the browser; the other
/// flows request a token at once. Returns a line for the user.
pub async fn login(
    catalog: &Catalog,
    env: &Env,
    name: &str,
    show_url: impl FnOnce(&str),
) -> Result<String, LoginError> {
    let conn = connection(catalog, name)?;
    let store = TokenStore::in_dir(&catalog.state_dir);
    let credentials = conn.credentials(name, env)?;
    let entry = match (&conn.auth, &credentials) {
        (
            AuthConfig::Web {
                callback_port,
                scopes,
                ..
            },
            Credentials::Web {
                client_id,
                client_secret,
            },
        ) => {
            let request = LoginRequest {
                connection: name,
                login_url: &conn.login_url,
                client_id,
                client_secret: client_secret.as_ref(),
                callback_port: *callback_port,
                scopes,
                store: &store,
                timeout: BROWSER_TIMEOUT,
            };
            web::login(&request, show_url).await?
        }
        _ => {
            // Nothing to store but the status: prove the credentials work.
            // A login is the user's word that the cause of a disconnect is
            // fixed, so it asks the org again.
            store.update(name, |e| {
                if let Some(e) = e {
                    e.disconnected = None;
                }
            })?;
            let client = SalesforceClient::new(name, conn.login_url.clone(), credentials)
                .with_token_store(store.clone());
            client.connect().await?;
            store.get(name)?.unwrap_or_default()
        }
    };
    Ok(format!(
        "connection {name}: logged in ({}) as {} in org {} at {}; status in {}",
        conn.auth_flow(),
        entry
            .username
            .or(entry.user_id)
            .unwrap_or_else(|| "?".into()),
        entry.org_id.unwrap_or_else(|| "?".into()),
        entry.instance_url.unwrap_or_else(|| "?".into()),
        store.path().display()
    ))
}

/// Revoke connection `name`'s refresh token and delete it from the store.
pub async fn logout(catalog: &Catalog, name: &str) -> Result<String, LoginError> {
    let conn = connection(catalog, name)?;
    let store = TokenStore::in_dir(&catalog.state_dir);
    Ok(if web::logout(name, &conn.login_url, &store).await? {
        format!(
            "connection {name}: logged out (token revoked and deleted); queries on it fail until `sfsql login {name}`"
        )
    } else {
        format!("connection {name}: was not logged in")
    })
}

/// One line per connection: flow, status, user, org, instance, last
/// refresh and API usage, as far as the store knows them.
pub fn connections(catalog: &Catalog) -> Result<String, LoginError> {
    let stored = TokenStore::in_dir(&catalog.state_dir).load()?;
    let header = [
        "connection",
        "flow",
        "status",
        "user",
        "org id",
        "instance url",
        "last refresh",
        "api usage",
    ];
    let mut rows = vec![header.map(str::to_string).to_vec()];
    for (name, conn) in &catalog.connections {
        let entry = stored.get(name);
        let web = matches!(conn.auth, AuthConfig::Web { .. });
        let status = match entry {
            Some(e) if e.disconnected.is_some() => "disconnected".to_string(),
            Some(e) if !web || e.refresh_token().is_some() => "connected".to_string(),
            _ if web => "not logged in".to_string(),
            _ => "not used yet".to_string(),
        };
        let field = |f: Option<&String>| f.cloned().unwrap_or_else(|| "-".into());
        rows.push(vec![
            name.clone(),
            conn.auth_flow().to_string(),
            status,
            field(entry.and_then(|e| e.username.as_ref().or(e.user_id.as_ref()))),
            field(entry.and_then(|e| e.org_id.as_ref())),
            field(entry.and_then(|e| e.instance_url.as_ref())),
            field(entry.and_then(|e| e.last_refresh.as_ref())),
            entry
                .and_then(|e| e.api_usage)
                .map_or_else(|| "-".into(), |(used, max)| format!("{used}/{max}")),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    for (name, e) in &stored {
        if let (Some(reason), true) = (&e.disconnected, catalog.connections.contains_key(name)) {
            out.push_str(&format!(
                "\n{name} is disconnected ({reason}): run `sfsql login {name}`\n"
            ));
        }
    }
    Ok(out)
}

/// Open `url` in the desktop's browser, if there is one; failure is fine
/// (the URL is printed too).
pub fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}
