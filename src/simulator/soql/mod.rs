//! SOQL for the simulator: `lexer`, `parser` (to the `ast`), `compile` and
//! `filter` (resolution against the schema, to a `plan`) and `eval`
//! (in-memory execution). Errors carry Salesforce's error codes and its
//! "ERROR at Row:r:Column:c" messages.

pub mod ast;
pub mod compile;
pub mod eval;
mod filter;
pub mod lexer;
pub mod parser;
pub mod plan;

pub use compile::compile;
pub use eval::execute;
pub use plan::{CompiledQuery, Proj};

/// A statement Salesforce would reject, with the errorCode it would use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SoqlError {
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    InvalidField(String),
    #[error("{0}")]
    InvalidType(String),
    #[error("{0}")]
    InvalidFilterOperator(String),
    #[error("{0}")]
    OutOfRange(String),
}

impl SoqlError {
    pub fn code(&self) -> &'static str {
        match self {
            SoqlError::Malformed(_) => "MALFORMED_QUERY",
            SoqlError::InvalidField(_) => "INVALID_FIELD",
            SoqlError::InvalidType(_) => "INVALID_TYPE",
            SoqlError::InvalidFilterOperator(_) => "INVALID_QUERY_FILTER_OPERATOR",
            SoqlError::OutOfRange(_) => "NUMBER_OUTSIDE_VALID_RANGE",
        }
    }

    pub fn malformed(src: &str, pos: usize, msg: &str) -> SoqlError {
        SoqlError::Malformed(located(src, pos, msg))
    }
}

/// Salesforce's error text: the offending line (a window of it when long),
/// a caret under the position, the row and column, then the message.
pub fn located(src: &str, pos: usize, msg: &str) -> String {
    let pos = pos.min(src.len());
    let before = src.get(..pos).unwrap_or("");
    let row = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = src[pos..].find('\n').map_or(src.len(), |i| pos + i);
    let col = src[line_start..pos].chars().count() + 1;
    let line: Vec<char> = src[line_start..line_end].chars().collect();
    let from = (col - 1).saturating_sub(60);
    let to = (col + 60).min(line.len());
    let window: String = line[from..to.max(from)].iter().collect();
    let caret = format!("{}^", " ".repeat(col - 1 - from));
    format!("\n{window}\n{caret}\nERROR at Row:{row}:Column:{col}\n{msg}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn located_points_at_the_column() {
        let msg = super::located("SELECT Foo FROM Contact", 7, "No such column 'Foo'");
        assert_eq!(
            msg,
            "\nSELECT Foo FROM Contact\n       ^\nERROR at Row:1:Column:8\nNo such column 'Foo'"
        );
    }
}

#[cfg(test)]
mod eval_tests;
