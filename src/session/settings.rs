//! Per-connection `sfsql.*` settings, kept in the pgwire client's metadata
//! so that one connection's `SET` never changes another's.

use std::collections::HashMap;

use thiserror::Error;

use crate::dml::{DmlOptions, MatchPolicy};
use crate::provider::{DEFAULT_BULK_QUERY_THRESHOLD, ScanOptions};

pub const DRY_RUN: &str = "sfsql.dry_run";
pub const ON_MULTIPLE_MATCHES: &str = "sfsql.on_multiple_matches";
pub const BULK_THRESHOLD: &str = "sfsql.bulk_threshold";
pub const MAX_ROWS: &str = "sfsql.max_rows";
pub const ALL_OR_NONE: &str = "sfsql.all_or_none";
pub const BULK_QUERY_THRESHOLD: &str = "sfsql.bulk_query_threshold";

/// Every `sfsql.*` setting with its default and what it does.
pub const ALL: &[(&str, &str, &str)] = &[
    (
        DRY_RUN,
        "off",
        "on: DML returns its change set as rows and writes nothing",
    ),
    (
        ON_MULTIPLE_MATCHES,
        "error",
        "error | newest | all: what UPDATE does when one source key matches several records",
    ),
    (
        MAX_ROWS,
        "10000",
        "a statement that would write more records than this is refused",
    ),
    (
        ALL_OR_NONE,
        "off",
        "on: a failed record rolls back the others (change sets of up to 200 records)",
    ),
    (
        BULK_THRESHOLD,
        "2000",
        "writes of more records than this go through Bulk API 2.0 ingest instead of sObject Collections",
    ),
    (
        BULK_QUERY_THRESHOLD,
        "50000",
        "scans matching more records than this read through a Bulk API 2.0 query job instead of REST query pages; 0: never",
    ),
];

#[derive(Debug, Error)]
pub enum SettingsError {
    #[error("unrecognized configuration parameter \"{0}\"; sfsql knows: {known}", known = ALL.iter().map(|s| s.0).collect::<Vec<_>>().join(", "))]
    Unknown(String),
    #[error("invalid value for parameter \"{name}\": \"{value}\"; expected {expected}")]
    InvalidValue {
        name: String,
        value: String,
        expected: &'static str,
    },
}

pub struct Settings;

fn on_off(name: &str, value: &str, v: &str) -> Result<String, SettingsError> {
    match v {
        "on" | "true" | "1" | "yes" => Ok("on".into()),
        "off" | "false" | "0" | "no" => Ok("off".into()),
        _ => Err(SettingsError::InvalidValue {
            name: name.to_string(),
            value: value.to_string(),
            expected: "on or off",
        }),
    }
}

impl Settings {
    pub fn is_ours(name: &str) -> bool {
        name.to_ascii_lowercase().starts_with("sfsql.")
    }

    /// Validate and normalise a value for `name`.
    pub fn normalise(name: &str, value: &str) -> Result<(String, String), SettingsError> {
        let name = name.to_ascii_lowercase();
        let v = value.trim().trim_matches('\'').to_ascii_lowercase();
        let normalised = match name.as_str() {
            DRY_RUN | ALL_OR_NONE => on_off(&name, value, &v)?,
            MAX_ROWS => match v.parse::<usize>() {
                Ok(n) if n > 0 => n.to_string(),
                _ => {
                    return Err(SettingsError::InvalidValue {
                        name,
                        value: value.to_string(),
                        expected: "a positive number of records",
                    });
                }
            },
            ON_MULTIPLE_MATCHES => match MatchPolicy::parse(&v) {
                Some(_) => v,
                None => {
                    return Err(SettingsError::InvalidValue {
                        name,
                        value: value.to_string(),
                        expected: "error, newest or all",
                    });
                }
            },
            BULK_THRESHOLD | BULK_QUERY_THRESHOLD => match v.parse::<usize>() {
                Ok(n) => n.to_string(),
                Err(_) => {
                    return Err(SettingsError::InvalidValue {
                        name,
                        value: value.to_string(),
                        expected: "a number of records, 0 or more",
                    });
                }
            },
            _ => return Err(SettingsError::Unknown(name)),
        };
        Ok((name, normalised))
    }

    pub fn get(metadata: &HashMap<String, String>, name: &str) -> Result<String, SettingsError> {
        let name = name.to_ascii_lowercase();
        let default = ALL
            .iter()
            .find(|s| s.0 == name)
            .map(|s| s.1)
            .ok_or_else(|| SettingsError::Unknown(name.clone()))?;
        Ok(metadata
            .get(&name)
            .cloned()
            .unwrap_or_else(|| default.to_string()))
    }

    /// What shapes the connection's scans (see [`ScanOptions::scope`]).
    pub fn scan_options(metadata: &HashMap<String, String>) -> ScanOptions {
        ScanOptions {
            bulk_query_threshold: metadata
                .get(BULK_QUERY_THRESHOLD)
                .and_then(|v| v.parse().ok())
                .unwrap_or(DEFAULT_BULK_QUERY_THRESHOLD),
        }
    }

    pub fn dml_options(metadata: &HashMap<String, String>) -> DmlOptions {
        let on = |name: &str| metadata.get(name).is_some_and(|v| v == "on");
        let defaults = DmlOptions::default();
        DmlOptions {
            dry_run: on(DRY_RUN),
            on_multiple_matches: metadata
                .get(ON_MULTIPLE_MATCHES)
                .and_then(|v| MatchPolicy::parse(v))
                .unwrap_or(defaults.on_multiple_matches),
            all_or_none: on(ALL_OR_NONE),
            max_rows: metadata
                .get(MAX_ROWS)
                .and_then(|v| v.parse().ok())
                .unwrap_or(defaults.max_rows),
            bulk_threshold: metadata
                .get(BULK_THRESHOLD)
                .and_then(|v| v.parse().ok())
                .unwrap_or(defaults.bulk_threshold),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_values() {
        assert_eq!(
            Settings::normalise("SFSQL.DRY_RUN", "ON").unwrap(),
            ("sfsql.dry_run".into(), "on".into())
        );
        assert!(Settings::normalise("sfsql.dry_run", "maybe").is_err());
        assert!(
            Settings::normalise("sfsql.dryrun", "on")
                .unwrap_err()
                .to_string()
                .contains("sfsql.dry_run")
        );
        let mut m = HashMap::new();
        assert!(!Settings::dml_options(&m).dry_run);
        m.insert(DRY_RUN.to_string(), "on".to_string());
        assert!(Settings::dml_options(&m).dry_run);
        assert_eq!(
            Settings::dml_options(&m).max_rows,
            crate::dml::DEFAULT_MAX_ROWS
        );
        assert_eq!(
            Settings::get(&HashMap::new(), MAX_ROWS).unwrap(),
            crate::dml::DEFAULT_MAX_ROWS.to_string()
        );
        let (k, v) = Settings::normalise("sfsql.max_rows", "250000").unwrap();
        m.insert(k, v);
        assert_eq!(Settings::dml_options(&m).max_rows, 250_000);
        assert!(Settings::normalise("sfsql.max_rows", "-1").is_err());
        let (k, v) = Settings::normalise("sfsql.on_multiple_matches", "'Newest'").unwrap();
        m.insert(k, v);
        assert_eq!(
            Settings::dml_options(&m).on_multiple_matches,
            MatchPolicy::Newest
        );
        assert_eq!(
            Settings::scan_options(&m).bulk_query_threshold,
            crate::provider::DEFAULT_BULK_QUERY_THRESHOLD
        );
        let (k, v) = Settings::normalise("sfsql.bulk_query_threshold", "0").unwrap();
        m.insert(k, v);
        assert_eq!(Settings::scan_options(&m).bulk_query_threshold, 0);
        assert!(Settings::normalise("sfsql.bulk_query_threshold", "lots").is_err());
    }
}
