//! OAuth 2.0 for the simulated orgs: the token endpoint (client
//! credentials, refresh token; the web and JWT grants are in `grants`),
//! revocation, bearer-token checks, access-token lifetime and the identity
//! URL. Tokens are bound to the org that issued them.

use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::json;

use super::error::ApiError;
use super::http::json_response;
use super::ids::base62;
use super::org::Sim;
use super::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};

#[derive(Debug)]
struct Access {
    org: usize,
    expires: Instant,
    /// Requests this token may still make, when a test limited them.
    uses_left: Option<u32>,
    /// The refresh token it was issued from: revoking that revokes it too.
    refresh: Option<String>,
}

/// How long newly issued access tokens live (a test control, see
/// `POST /__sim/token_lifetime`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Lifetime {
    /// Overrides `SimConfig::access_token_ttl`.
    pub ttl: Option<std::time::Duration>,
    /// Each token is good for this many API requests.
    pub requests: Option<u32>,
}

/// Tokens issued by this server.
#[derive(Debug, Default)]
pub struct Tokens {
    access: HashMap<String, Access>,
    /// Refresh token → org.
    refresh: HashMap<String, usize>,
    /// Authorization codes of the web server flow.
    pub(super) codes: HashMap<String, super::grants::Code>,
    pub lifetime: Lifetime,
    issued: u64,
    /// Every access and refresh token ever issued, even expired or
    /// revoked ones, so a test can look for them where they must not be.
    ever: Vec<String>,
}

impl Tokens {
    /// Every token issued so far (see `ever`).
    pub fn issued(&self) -> Vec<String> {
        self.ever.clone()
    }

    /// An unguessable-looking token body; unique per server and call.
    pub(super) fn fresh(&mut self, len: usize) -> String {
        self.issued += 1;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut state = nanos ^ (self.issued << 32) ^ (self as *const Tokens as usize as u64);
        let mut out = String::with_capacity(len + 11);
        while out.len() < len {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            out.push_str(&base62(z ^ (z >> 31), 10));
        }
        out.truncate(len);
        out
    }
}

/// An OAuth error: HTTP 400 with `error` and `error_description`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid client credentials")]
    InvalidClient,
    #[error("client identifier invalid")]
    InvalidClientId,
    #[error("authentication failure")]
    InvalidGrant,
    #[error("expired access/refresh token")]
    BadRefreshToken,
    #[error("invalid authorization code")]
    BadCode,
    #[error("invalid code verifier")]
    BadVerifier,
    #[error("redirect_uri must match configuration")]
    BadRedirect,
    #[error("invalid assertion")]
    BadAssertion,
    #[error("audience is invalid")]
    BadAudience,
    #[error("user hasn't approved this consumer")]
    UnknownUser,
    #[error("grant type not supported")]
    UnsupportedGrant,
}

impl OAuthError {
    pub(super) fn code(self) -> &'static str {
        match self {
            OAuthError::InvalidClient => "invalid_client",
            OAuthError::InvalidClientId => "invalid_client_id",
            OAuthError::BadRedirect => "redirect_uri_mismatch",
            OAuthError::UnsupportedGrant => "unsupported_grant_type",
            OAuthError::InvalidGrant
            | OAuthError::BadRefreshToken
            | OAuthError::BadCode
            | OAuthError::BadVerifier
            | OAuthError::BadAssertion
            | OAuthError::BadAudience
            | OAuthError::UnknownUser => "invalid_grant",
        }
    }

    pub(super) fn into_response(self) -> Response {
        json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "error": self.code(), "error_description": self.to_string() }),
        )
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let v = B64.iter().position(|b| *b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Client id and secret from the form or from HTTP Basic.
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> (Option<String>, Option<String>) {
    if let (Some(id), Some(secret)) = (form.get("client_id"), form.get("client_secret")) {
        return (Some(id.clone()), Some(secret.clone()));
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64_decode(b.trim()))
        .and_then(|b| String::from_utf8(b).ok());
    if let Some((id, secret)) = basic.as_deref().and_then(|b| b.split_once(':')) {
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map_or_else(|| s.to_string(), |(_, v)| v.into_owned())
        };
        return (Some(decode(id)), Some(decode(secret)));
    }
    (
        form.get("client_id").cloned(),
        form.get("client_secret").cloned(),
    )
}

/// How a token response comes about: `refresh` is the refresh token the
/// access token hangs off; `new_refresh` says to return it (web flow).
pub(super) struct Grant {
    pub refresh: Option<String>,
    pub new_refresh: bool,
}

pub(super) fn issue(sim: &Sim, org: usize, grant: Grant) -> Response {
    let o = &sim.orgs[org];
    let (token, signature) = {
        let mut tokens = sim.tokens();
        let body = tokens.fresh(96);
        let token = format!("{}!AQ{body}", &o.org_id[..15]);
        tokens.ever.push(token.clone());
        let lifetime = tokens.lifetime;
        tokens.access.insert(
            token.clone(),
            Access {
                org,
                expires: Instant::now() + lifetime.ttl.unwrap_or(sim.config.access_token_ttl),
                uses_left: lifetime.requests,
                refresh: grant.refresh.clone(),
            },
        );
        let signature = base64_encode(tokens.fresh(32).as_bytes());
        (token, signature)
    };
    let issued_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let url = sim.org_url(o.name);
    let mut body = json!({
        "access_token": token,
        "instance_url": url,
        "id": format!("{url}/id/{}/{}", o.org_id, o.integration_user),
        "token_type": "Bearer",
        "issued_at": issued_at.to_string(),
        "signature": signature,
        "scope": if grant.refresh.is_some() { "api refresh_token offline_access" } else { "api" },
    });
    if let (true, Some(refresh)) = (grant.new_refresh, grant.refresh) {
        body["refresh_token"] = json!(refresh);
    }
    json_response(StatusCode::OK, &body)
}

/// `POST /services/oauth2/token` of org `org`.
pub fn token(sim: &Sim, org: usize, headers: &HeaderMap, body: &[u8]) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let (id, secret) = client_credentials(headers, &form);
    let client_ok =
        id.as_deref() == Some(DEMO_CLIENT_ID) && secret.as_deref() == Some(DEMO_CLIENT_SECRET);
    // A connected app that does not require the secret for the web server
    // flow (PKCE only) may omit it there and when refreshing; a wrong one
    // is always an error.
    let public_ok = id.as_deref() == Some(DEMO_CLIENT_ID)
        && secret.as_deref().is_none_or(|s| s == DEMO_CLIENT_SECRET);
    let no_refresh = Grant {
        refresh: None,
        new_refresh: false,
    };
    let outcome = match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") if client_ok => Ok(no_refresh),
        Some("client_credentials") => Err(OAuthError::InvalidClient),
        Some("refresh_token") if !public_ok => Err(OAuthError::InvalidClient),
        Some("refresh_token") => {
            let refresh = form
                .get("refresh_token")
                .map(String::as_str)
                .unwrap_or_default();
            match sim.tokens().refresh.get(refresh) {
                Some(o) if *o == org => Ok(Grant {
                    refresh: Some(refresh.to_string()),
                    new_refresh: false,
                }),
                _ => Err(OAuthError::BadRefreshToken),
            }
        }
        Some("authorization_code") if !public_ok => Err(OAuthError::InvalidClient),
        Some("authorization_code") => super::grants::redeem_code(sim, org, &form).map(|t| Grant {
            refresh: Some(t),
            new_refresh: true,
        }),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
            super::grants::check_assertion(sim, org, &form).map(|()| no_refresh)
        }
        Some("password") => Err(OAuthError::InvalidGrant),
        _ => Err(OAuthError::UnsupportedGrant),
    };
    match outcome {
        Ok(grant) => issue(sim, org, grant),
        Err(e) => e.into_response(),
    }
}

/// A new refresh token for `org` (the web flow's, and a test helper).
pub fn mint_refresh_token(sim: &Sim, org: usize) -> String {
    let mut tokens = sim.tokens();
    let token = format!("5Aep861{}", tokens.fresh(80));
    tokens.ever.push(token.clone());
    tokens.refresh.insert(token.clone(), org);
    token
}

/// `POST /services/oauth2/revoke` with `token=`: access or refresh token.
pub fn revoke(sim: &Sim, body: &[u8]) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let token = form.get("token").cloned().unwrap_or_default();
    let mut tokens = sim.tokens();
    let known = tokens.access.remove(&token).is_some() | tokens.refresh.remove(&token).is_some();
    // Revoking a refresh token ends the sessions issued from it too.
    tokens
        .access
        .retain(|_, a| a.refresh.as_deref() != Some(token.as_str()));
    if known {
        json_response(StatusCode::OK, &json!({}))
    } else {
        json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "error": "unsupported_token_type", "error_description": "this token type is not supported" }),
        )
    }
}

/// Expires every access token (test helper, to exercise refresh).
pub fn expire_access_tokens(sim: &Sim) {
    sim.tokens().access.clear();
}

/// The org a request's bearer token belongs to must be `org`.
pub fn check_bearer(sim: &Sim, org: usize, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("OAuth "))
        })
        .map(str::trim)
        .ok_or_else(ApiError::invalid_session)?;
    let mut tokens = sim.tokens();
    match tokens.access.get_mut(token) {
        Some(a) if a.expires <= Instant::now() || a.uses_left == Some(0) => {
            tokens.access.remove(token);
            Err(ApiError::invalid_session())
        }
        Some(a) if a.org == org => {
            if let Some(n) = a.uses_left.as_mut() {
                *n -= 1;
            }
            Ok(())
        }
        _ => Err(ApiError::invalid_session()),
    }
}

/// The integration user's username in `org` (the JWT `sub` it accepts).
pub fn integration_username(sim: &Sim, org: usize) -> String {
    format!(
        "integration@sfsql-demo.example{}",
        if sim.orgs[org].name == "sandbox" {
            ".sandbox"
        } else {
            ""
        }
    )
}

/// `GET /id/{orgId}/{userId}`: the identity of the integration user.
pub fn identity(sim: &Sim, org: usize) -> Response {
    let o = &sim.orgs[org];
    let url = sim.org_url(o.name);
    let username = integration_username(sim, org);
    json_response(
        StatusCode::OK,
        &json!({
            "id": format!("{url}/id/{}/{}", o.org_id, o.integration_user),
            "asserted_user": true,
            "user_id": o.integration_user,
            "organization_id": o.org_id,
            "username": username,
            "nick_name": "integration",
            "display_name": "Integration User",
            "email": format!("integration@{}-corp.example.com", o.name),
            "active": true,
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "utcOffset": 0,
            "urls": {
                "rest": format!("{url}/services/data/v{{version}}/"),
                "sobjects": format!("{url}/services/data/v{{version}}/sobjects/"),
                "query": format!("{url}/services/data/v{{version}}/query/"),
            },
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for text in ["", "a", "ab", "abc", "sfsql-demo:sfsql-demo-secret"] {
            let encoded = base64_encode(text.as_bytes());
            assert_eq!(base64_decode(&encoded).as_deref(), Some(text.as_bytes()));
        }
        assert_eq!(base64_encode(b"abc"), "YWJj");
        assert_eq!(base64_encode(b"ab"), "YWI=");
    }
}
