//! Errors of the Salesforce client. Messages never contain tokens or secrets.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum SalesforceError {
    #[error(
        "connection {connection}: environment variable {var} is not set; export it with the connected app's value"
    )]
    MissingSecret { connection: String, var: String },

    #[error(
        "connection {connection}: login failed: {error}: {description} (check the client id and secret of the connected app)"
    )]
    LoginFailed {
        connection: String,
        error: String,
        description: String,
    },

    #[error("connection {connection}: Salesforce answered {status} {code}: {message}{}", advice(.code, .message))]
    Api {
        connection: String,
        status: u16,
        code: String,
        message: String,
    },

    #[error("connection {connection}: request to Salesforce failed: {source}")]
    Transport {
        connection: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("connection {connection}: unexpected response for {what}: {detail}")]
    Decode {
        connection: String,
        what: String,
        detail: String,
    },

    #[error(
        "connection {connection}: Bulk query job {job} ended {state}: {message} (SET sfsql.bulk_query_threshold = 0 reads through REST query instead)"
    )]
    BulkQueryFailed {
        connection: String,
        job: String,
        state: String,
        message: String,
    },

    #[error("connection {connection}: sObject {sobject} does not exist or is not queryable")]
    UnknownSObject { connection: String, sobject: String },

    /// The connection has no usable login: never logged in, logged out, or
    /// its refresh token was refused (`invalid_grant`). SQLSTATE 28000;
    /// the message always starts `connection '<name>' is disconnected`, so
    /// that the scheduler can pause the jobs that use it.
    #[error("connection '{connection}' is disconnected ({reason}): run `sfsql login {connection}`")]
    Disconnected { connection: String, reason: String },

    #[error("token store {path}: {message}")]
    TokenStore {
        path: std::path::PathBuf,
        message: String,
    },

    /// `sfsql login` could not complete (state mismatch, denied, timeout).
    #[error("connection {connection}: login failed: {message}")]
    Login { connection: String, message: String },
}

impl SalesforceError {
    /// True when retrying the same request may succeed (lost connection,
    /// 5xx, lock contention, request limit).
    pub fn is_retriable(&self) -> bool {
        match self {
            SalesforceError::Transport { source, .. } => {
                source.is_connect() || source.is_timeout() || source.is_request()
            }
            SalesforceError::Api { status, code, .. } => {
                *status >= 500 || code == "UNABLE_TO_LOCK_ROW" || code == "SERVER_UNAVAILABLE"
            }
            _ => false,
        }
    }

    /// True when Salesforce refused the request before doing anything, for
    /// a reason that clears in seconds (503, the concurrent long-running
    /// request limit), or it never left (no connection): sending it again
    /// cannot apply it twice, whatever it is. The 24-hour request limit
    /// (`TotalRequests`) does not clear in seconds, so it is not one.
    pub fn is_refused_for_now(&self) -> bool {
        match self {
            SalesforceError::Transport { source, .. } => source.is_connect(),
            SalesforceError::Api {
                status,
                code,
                message,
                ..
            } => {
                *status == 503
                    || code == "SERVER_UNAVAILABLE"
                    || (code == "REQUEST_LIMIT_EXCEEDED" && !message.contains("TotalRequests"))
            }
            _ => false,
        }
    }

    /// True when a request that a repeat cannot harm is worth sending
    /// again: refused for now, a transient failure, or an answer lost on
    /// the way back (the connection cut mid-response).
    pub fn is_transient(&self) -> bool {
        self.is_refused_for_now()
            || self.is_retriable()
            || matches!(self, SalesforceError::Transport { source, .. } if source.is_body() || source.is_decode())
    }

    /// True when no request could be sent for want of a login (SQLSTATE
    /// 28000): bad or missing secrets, a disconnected connection.
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            SalesforceError::LoginFailed { .. }
                | SalesforceError::MissingSecret { .. }
                | SalesforceError::Disconnected { .. }
                | SalesforceError::TokenStore { .. }
                | SalesforceError::Login { .. }
        )
    }

    /// The SQLSTATE a Postgres client sees: 28000 for credentials, 08006
    /// when Salesforce could not be reached, 42P01 for an sObject that is
    /// not there, 42000 for a query Salesforce refused as written, 53400
    /// when the org's API request limit is used up, 58000 for anything else
    /// it said.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            e if e.is_auth() => "28000",
            SalesforceError::Transport { .. } => "08006",
            SalesforceError::UnknownSObject { .. } => "42P01",
            SalesforceError::Api { code, .. } => match code.as_str() {
                "INVALID_FIELD" | "MALFORMED_QUERY" => "42000",
                "REQUEST_LIMIT_EXCEEDED" => "53400",
                _ => "58000",
            },
            _ => "58000",
        }
    }

    /// The Salesforce error at the root of a DataFusion error, if any.
    pub fn in_datafusion(e: &datafusion::error::DataFusionError) -> Option<&SalesforceError> {
        match e.find_root() {
            datafusion::error::DataFusionError::External(ext) => ext.downcast_ref(),
            _ => None,
        }
    }

    /// True when the connection needs `sfsql login` before it works again.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, SalesforceError::Disconnected { .. })
    }

    /// The Salesforce error code, when Salesforce sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            SalesforceError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// What to do about a Salesforce error code whose message does not say it.
fn advice(code: &str, message: &str) -> &'static str {
    match code {
        // Salesforce words the concurrent long-running request limit with
        // the same code; it clears when those requests end, not in a day.
        "REQUEST_LIMIT_EXCEEDED" if message.contains("ConcurrentRequests") => {
            " (too many long-running requests at once in the org: sfsql sent this again with \
             backoff; run the statement again when the org is less busy)"
        }
        "REQUEST_LIMIT_EXCEEDED" => {
            " (the org's API request limit is used up: wait until Salesforce's 24-hour window \
             frees requests, or ask an admin to raise the limit; EXPLAIN of a write shows the \
             daily requests left)"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(message: &str) -> String {
        SalesforceError::Api {
            connection: "sandbox".into(),
            status: 403,
            code: "REQUEST_LIMIT_EXCEEDED".into(),
            message: message.into(),
        }
        .to_string()
    }

    #[test]
    fn each_request_limit_says_what_to_do_about_it() {
        let daily = limit("TotalRequests Limit exceeded.");
        assert!(daily.contains("24-hour window"), "{daily}");
        let concurrent = limit("ConcurrentRequests (Concurrent API Requests) Limit exceeded.");
        assert!(
            concurrent.contains("too many long-running requests at once")
                && !concurrent.contains("24-hour"),
            "{concurrent}"
        );
    }
}
