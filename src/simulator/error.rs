//! Salesforce's whole-request error envelope, `[{"message":…,"errorCode":…}]`,
//! with the HTTP status each error comes with.

use axum::http::StatusCode;
use axum::response::Response;

use super::soql::SoqlError;

/// An error that fails a whole request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        )
    }

    pub fn invalid_session() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        )
    }

    pub fn method_not_allowed(method: &str, allowed: &[&str]) -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            format!(
                "HTTP Method '{method}' not allowed. Allowed are {}",
                allowed.join(",")
            ),
        )
    }

    pub fn limit_exceeded() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        )
    }

    pub fn json_parser(message: impl Into<String>) -> ApiError {
        ApiError::bad_request("JSON_PARSER_ERROR", message)
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!([{ "message": self.message, "errorCode": self.code }])
    }

    pub fn into_response(self) -> Response {
        super::http::json_response(self.status, &self.body())
    }
}

impl From<SoqlError> for ApiError {
    fn from(e: SoqlError) -> ApiError {
        ApiError::bad_request(e.code(), e.to_string())
    }
}
