//! SQLSTATEs at the wire: DataFusion and Salesforce errors classified so a
//! client can act on them instead of the catch-all XX000.

use datafusion::error::DataFusionError;
use pgwire::api::{ClientInfo, ErrorHandler};
use pgwire::error::{ErrorInfo, PgWireError};

use crate::salesforce::SalesforceError;

/// Gives DataFusion and Salesforce errors a SQLSTATE a client can act on
/// instead of the catch-all XX000.
pub struct SqlStateErrors;

impl ErrorHandler for SqlStateErrors {
    fn on_error<C>(&self, _client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        if let PgWireError::ApiError(inner) = error {
            let (code, message) = classify(inner.as_ref());
            tracing::debug!(code, %message, "statement failed");
            *error = PgWireError::UserError(Box::new(ErrorInfo::new(
                "ERROR".into(),
                code.into(),
                message,
            )));
        }
    }
}

fn classify(err: &(dyn std::error::Error + 'static)) -> (&'static str, String) {
    if let Some(df) = err.downcast_ref::<DataFusionError>() {
        let root = df.find_root();
        if let Some(sf) = SalesforceError::in_datafusion(df) {
            return (sf.sqlstate(), sf.to_string());
        }
        if let DataFusionError::External(ext) = root
            && let Some(report) = ext.downcast_ref::<crate::reports::HttpReportError>()
        {
            return (report.sqlstate(), report.to_string());
        }
        if let DataFusionError::External(ext) = root
            && let Some(report) = ext.downcast_ref::<crate::reports::SalesforceReportError>()
        {
            return (report.sqlstate(), report.to_string());
        }
        let message = root.to_string();
        let code = match root {
            DataFusionError::SQL(..) => "42601",
            DataFusionError::SchemaError(..) => "42703",
            DataFusionError::Plan(m) if m.contains("not found") => "42P01",
            DataFusionError::Plan(_) => "42000",
            DataFusionError::NotImplemented(_) => "0A000",
            DataFusionError::ArrowError(..) => "22000",
            DataFusionError::ResourcesExhausted(_) => "53000",
            _ => "XX000",
        };
        return (code, message);
    }
    // The statement did not parse (datafusion-postgres hands sqlparser's
    // error over as it is): a syntax error, as PostgreSQL says it.
    if let Some(parse) = err.downcast_ref::<datafusion::sql::sqlparser::parser::ParserError>() {
        return ("42601", parse.to_string());
    }
    ("XX000", err.to_string())
}
