//! The grants that prove who the user is: the authorize endpoint of the web
//! server flow (auto-approving, as if the user clicked Allow), redeeming
//! its code with PKCE verification, and JWT bearer assertions checked
//! against the configured public key.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::DEMO_CLIENT_ID;
use super::auth::{OAuthError, integration_username, mint_refresh_token};
use super::org::Sim;

/// An authorization code waiting to be redeemed (once, within 15 minutes).
#[derive(Debug)]
pub struct Code {
    org: usize,
    redirect_uri: String,
    /// `code_challenge` (S256) when the client used PKCE.
    challenge: Option<String>,
    expires: Instant,
}

const CODE_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Append `params` to `uri`'s query string.
fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{query}")
}

fn redirect(location: &str) -> Response {
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

/// `GET /services/oauth2/authorize`: approve at once and send the browser
/// back to `redirect_uri` with `code` and `state`. Errors about the client
/// or the redirect URI are shown as a page (there is nowhere safe to
/// redirect); others go back to the redirect URI as `error=`.
pub fn authorize(sim: &Sim, org: usize, query: &str) -> Response {
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let page = |status: StatusCode, text: &str| (status, text.to_string()).into_response();
    if params.get("client_id").map(String::as_str) != Some(DEMO_CLIENT_ID) {
        return page(StatusCode::BAD_REQUEST, "error=invalid_client_id");
    }
    let Some(redirect_uri) = params.get("redirect_uri").filter(|u| u.starts_with("http")) else {
        return page(StatusCode::BAD_REQUEST, "error=redirect_uri_mismatch");
    };
    let state = params.get("state").cloned().unwrap_or_default();
    let fail = |error: &str, description: &str| {
        let mut pairs = vec![("error", error), ("error_description", description)];
        if !state.is_empty() {
            pairs.push(("state", &state));
        }
        redirect(&with_query(redirect_uri, &pairs))
    };
    if params.get("response_type").map(String::as_str) != Some("code") {
        return fail("unsupported_response_type", "response type not supported");
    }
    let challenge = params.get("code_challenge").cloned();
    if challenge.is_some()
        && params.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return fail("invalid_request", "code_challenge_method must be S256");
    }
    let code = {
        let mut tokens = sim.tokens();
        let code = format!("aPrx{}", tokens.fresh(60));
        tokens.codes.insert(
            code.clone(),
            Code {
                org,
                redirect_uri: redirect_uri.clone(),
                challenge,
                expires: Instant::now() + CODE_LIFETIME,
            },
        );
        code
    };
    let mut pairs = vec![("code", code.as_str())];
    if !state.is_empty() {
        pairs.push(("state", &state));
    }
    redirect(&with_query(redirect_uri, &pairs))
}

/// The S256 code challenge of a PKCE verifier.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `grant_type=authorization_code`: the code must be this org's, unused,
/// unexpired, for the same redirect URI, and match the PKCE verifier. The
/// result is a new refresh token.
pub fn redeem_code(
    sim: &Sim,
    org: usize,
    form: &HashMap<String, String>,
) -> Result<String, OAuthError> {
    let code = form.get("code").map(String::as_str).unwrap_or_default();
    // Removed whatever happens next: a code is good for one try.
    let found = sim.tokens().codes.remove(code);
    let Some(found) = found.filter(|c| c.org == org && c.expires > Instant::now()) else {
        return Err(OAuthError::BadCode);
    };
    if form.get("redirect_uri") != Some(&found.redirect_uri) {
        return Err(OAuthError::BadRedirect);
    }
    if let Some(challenge) = &found.challenge {
        let verifier = form.get("code_verifier").ok_or(OAuthError::BadVerifier)?;
        if s256(verifier) != *challenge {
            return Err(OAuthError::BadVerifier);
        }
    }
    Ok(mint_refresh_token(sim, org))
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
}

/// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`: an RS256
/// assertion signed by the key whose public half the simulator was given,
/// issued by the demo client for the org's integration user, for
/// `https://login.salesforce.com` (production) or
/// `https://test.salesforce.com` (sandbox), unexpired (3 minutes' leeway).
pub fn check_assertion(
    sim: &Sim,
    org: usize,
    form: &HashMap<String, String>,
) -> Result<(), OAuthError> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, errors::ErrorKind};
    let pem = sim
        .config
        .jwt_public_key_pem
        .as_deref()
        .ok_or(OAuthError::BadAssertion)?;
    let key = DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| OAuthError::BadAssertion)?;
    let audience = if sim.orgs[org].name == "sandbox" {
        "https://test.salesforce.com"
    } else {
        "https://login.salesforce.com"
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = 180;
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    let assertion = form
        .get("assertion")
        .map(String::as_str)
        .unwrap_or_default();
    let claims = decode::<Claims>(assertion, &key, &validation)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidAudience => OAuthError::BadAudience,
            _ => OAuthError::BadAssertion,
        })?
        .claims;
    if claims.iss != DEMO_CLIENT_ID {
        return Err(OAuthError::InvalidClientId);
    }
    if claims.sub != integration_username(sim, org) {
        return Err(OAuthError::UnknownUser);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc_7636_example() {
        // RFC 7636, appendix B.
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn query_is_appended() {
        assert_eq!(
            with_query("http://localhost:1717/OAuth/Callback", &[("code", "a b")]),
            "http://localhost:1717/OAuth/Callback?code=a+b"
        );
        assert_eq!(
            with_query("http://x/?a=1", &[("b", "2")]),
            "http://x/?a=1&b=2"
        );
    }
}
