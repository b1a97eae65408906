//! `reports.toml` entries: one report source each (files, views), checked at
//! catalog load so a mistake is named before the server starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::Env;

/// A report source, served as table `reports.<name>` (see README, "Reports").
/// File paths are relative to the catalog directory and name one file or a
/// folder (every file of that format in it, read as one table). `columns`
/// declares the schema as `"name type"` strings with Postgres type names;
/// without it the schema is inferred from the data.
// Read once per catalog load: a few bytes per report do not matter, and
// boxing a variant would complicate the internally tagged TOML form.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReportConfig {
    Csv {
        path: PathBuf,
        #[serde(default)]
        columns: Option<Vec<String>>,
        /// Whether the first line names the columns; without a header,
        /// `columns` names them.
        #[serde(default = "default_true")]
        header: bool,
        /// One ASCII character; `,` unless set.
        #[serde(default)]
        delimiter: Option<char>,
        #[serde(default)]
        description: Option<String>,
    },
    Parquet {
        path: PathBuf,
        #[serde(default)]
        columns: Option<Vec<String>>,
        #[serde(default)]
        description: Option<String>,
    },
    /// A JSON array of objects per file.
    Json {
        path: PathBuf,
        #[serde(default)]
        columns: Option<Vec<String>>,
        #[serde(default)]
        description: Option<String>,
    },
    /// One JSON object per line.
    Ndjson {
        path: PathBuf,
        #[serde(default)]
        columns: Option<Vec<String>>,
        #[serde(default)]
        description: Option<String>,
    },
    /// A JSON API, fetched page by page when a query reads the table.
    Http {
        /// `${VAR}` expands from the environment.
        url: String,
        /// Sent with every request; `${VAR}` in a value expands (an API key).
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default)]
        auth: Option<HttpAuth>,
        /// Dotted path to the record array in each response (`data.items`);
        /// unset when the response is the array.
        #[serde(default)]
        records: Option<String>,
        #[serde(default)]
        pagination: Option<Pagination>,
        #[serde(default)]
        columns: Option<Vec<String>>,
        /// A guard against a next link that never ends.
        #[serde(default = "default_max_pages")]
        max_pages: usize,
        #[serde(default)]
        description: Option<String>,
    },
    /// A Salesforce analytics report (tabular) of one connection, run
    /// through the Reports API each time a query reads the table.
    Salesforce {
        /// A connection of connections.toml.
        connection: String,
        /// The report's id (`00O...`, in its URL in Salesforce).
        report_id: String,
        #[serde(default)]
        description: Option<String>,
    },
    /// A view: a SELECT over other reports or Salesforce tables, planned
    /// after every other report is registered.
    Sql {
        query: String,
        #[serde(default)]
        description: Option<String>,
    },
}

fn default_true() -> bool {
    true
}

fn default_max_pages() -> usize {
    1000
}

/// How an HTTP report authenticates; secrets are named by environment
/// variable.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum HttpAuth {
    /// `Authorization: Bearer <token>`.
    Bearer { token_env: String },
    /// OAuth2 client credentials: a token from `token_url` (client id and
    /// secret sent as HTTP Basic auth), renewed when it expires.
    ClientCredentials {
        token_url: String,
        client_id_env: String,
        client_secret_env: String,
        #[serde(default)]
        scope: Option<String>,
    },
}

/// How an HTTP report finds its next page.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// The response holds the next page's URL at the dotted path `next`
    /// (absolute or relative); the last page has none.
    NextLink { next: String },
    /// The response holds a cursor at `cursor`, sent back as query
    /// parameter `param`; the last page has none or no records.
    Cursor { param: String, cursor: String },
    /// Query parameter `param` counts records skipped (0, page_size, ...),
    /// `limit_param` (if set) asks for `page_size`; a short page is the last.
    Offset {
        param: String,
        #[serde(default)]
        limit_param: Option<String>,
        page_size: usize,
    },
}

/// What a file report reads: its kind, path and declared columns.
pub struct ReportFile<'a> {
    /// The extension of the format's files in a folder (`csv`, `parquet`, ...).
    pub extension: &'static str,
    pub path: &'a Path,
    pub columns: Option<&'a [String]>,
}

impl ReportConfig {
    /// The file (or folder) a file report reads; None for other sources.
    pub fn file(&self) -> Option<ReportFile<'_>> {
        let (extension, path, columns) = match self {
            ReportConfig::Csv { path, columns, .. } => ("csv", path, columns),
            ReportConfig::Parquet { path, columns, .. } => ("parquet", path, columns),
            ReportConfig::Json { path, columns, .. } => ("json", path, columns),
            ReportConfig::Ndjson { path, columns, .. } => ("ndjson", path, columns),
            ReportConfig::Sql { .. }
            | ReportConfig::Http { .. }
            | ReportConfig::Salesforce { .. } => return None,
        };
        Some(ReportFile {
            extension,
            path,
            columns: columns.as_deref(),
        })
    }

    /// What is wrong with this report, in words that say what to fix.
    pub(crate) fn check(&mut self, dir: &Path, env: &Env) -> Result<(), String> {
        if let ReportConfig::Http {
            url,
            auth,
            pagination,
            max_pages,
            columns,
            ..
        } = self
        {
            *url = env.expand(url)?;
            url::Url::parse(url).map_err(|e| format!("url {url:?} is not a URL: {e}"))?;
            if let Some(HttpAuth::ClientCredentials { token_url, .. }) = auth {
                *token_url = env.expand(token_url)?;
                url::Url::parse(token_url)
                    .map_err(|e| format!("token_url {token_url:?} is not a URL: {e}"))?;
            }
            if let Some(Pagination::Offset { page_size: 0, .. }) = pagination {
                return Err("pagination page_size must be at least 1".into());
            }
            if *max_pages == 0 {
                return Err("max_pages must be at least 1".into());
            }
            if let Some(columns) = columns {
                super::declared_schema(columns)?;
            }
        }
        if let ReportConfig::Csv {
            delimiter: Some(d), ..
        } = self
            && (!d.is_ascii() || *d == '\n' || *d == '"')
        {
            return Err(format!(
                "delimiter {d:?} must be one ASCII character other than a quote or newline, e.g. \";\""
            ));
        }
        if let ReportConfig::Csv {
            header: false,
            columns: None,
            ..
        } = self
        {
            return Err(
                "header = false needs columns = [\"name type\", ...] to name the columns".into(),
            );
        }
        if let ReportConfig::Salesforce { report_id, .. } = self {
            let shaped = report_id.starts_with("00O")
                && matches!(report_id.len(), 15 | 18)
                && report_id.bytes().all(|b| b.is_ascii_alphanumeric());
            if !shaped {
                return Err(format!(
                    "report_id {report_id:?} is not a report id; copy the 00O... id from the report's URL in Salesforce"
                ));
            }
        }
        if let ReportConfig::Sql { query, .. } = self
            && query.trim().is_empty()
        {
            return Err("query is empty; write the SELECT this report stands for".into());
        }
        let Some(file) = self.file() else {
            return Ok(());
        };
        if let Some(columns) = file.columns {
            super::declared_schema(columns)?;
        }
        let full = dir.join(file.path);
        if full.is_dir() {
            let has_files = std::fs::read_dir(&full)
                .map_err(|e| format!("cannot read folder {}: {e}", full.display()))?
                .filter_map(Result::ok)
                .any(|e| e.path().extension().is_some_and(|x| x == file.extension));
            if !has_files && file.columns.is_none() {
                return Err(format!(
                    "folder {} has no .{} files to infer the columns from; add one or declare columns",
                    full.display(),
                    file.extension
                ));
            }
        } else if !full.is_file() {
            return Err(format!(
                "file {} does not exist; fix path (relative to the catalog directory)",
                full.display()
            ));
        }
        Ok(())
    }

    pub fn description(&self) -> Option<&str> {
        match self {
            ReportConfig::Csv { description, .. }
            | ReportConfig::Parquet { description, .. }
            | ReportConfig::Json { description, .. }
            | ReportConfig::Ndjson { description, .. }
            | ReportConfig::Http { description, .. }
            | ReportConfig::Salesforce { description, .. }
            | ReportConfig::Sql { description, .. } => description.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Catalog, Env};

    /// The error `Catalog::load` gives for a catalog whose reports.toml is
    /// `toml`, with `files` (relative path, contents) beside it.
    fn load_error(toml: &str, files: &[(&str, &str)]) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("reports.toml"), toml).expect("write");
        for (path, text) in files {
            let file = dir.path().join(path);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(file, text).expect("write");
        }
        match Catalog::load(dir.path(), &Env::default()) {
            Ok(_) => "loaded".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn good_reports_load() {
        let toml = "[a]\nformat = \"csv\"\npath = \"a.csv\"\ncolumns = [\"email text\", \"n int\"]\n\
                    [b]\nformat = \"ndjson\"\npath = \"b\"\n\
                    [c]\nformat = \"sql\"\nquery = \"SELECT * FROM reports.a\"\n";
        let err = load_error(toml, &[("a.csv", "email,n\n"), ("b/1.ndjson", "{}\n")]);
        assert_eq!(err, "loaded");
    }

    #[test]
    fn missing_files_and_folders_name_the_report() {
        let err = load_error(
            "[nps]\nformat = \"parquet\"\npath = \"nope.parquet\"\n",
            &[],
        );
        assert!(err.contains("report nps: file"), "{err}");
        assert!(
            err.contains("nope.parquet does not exist; fix path"),
            "{err}"
        );
        let err = load_error(
            "[steps]\nformat = \"ndjson\"\npath = \"steps\"\n",
            &[("steps/notes.txt", "x")],
        );
        assert!(err.contains("report steps: folder"), "{err}");
        assert!(err.contains("has no .ndjson files"), "{err}");
    }

    #[test]
    fn bad_declarations_say_what_to_fix() {
        let csv = &[("a.csv", "a\n")];
        let err = load_error(
            "[a]\nformat = \"csv\"\npath = \"a.csv\"\ncolumns = [\"score strng\"]\n",
            csv,
        );
        assert!(
            err.contains("report a: column score: unknown type \"strng\""),
            "{err}"
        );
        let err = load_error(
            "[a]\nformat = \"csv\"\npath = \"a.csv\"\nheader = false\n",
            csv,
        );
        assert!(
            err.contains("report a: header = false needs columns"),
            "{err}"
        );
        let err = load_error(
            "[a]\nformat = \"csv\"\npath = \"a.csv\"\ndelimiter = \"é\"\n",
            csv,
        );
        assert!(err.contains("report a: delimiter"), "{err}");
        let err = load_error("[a]\nformat = \"xlsx\"\npath = \"a.csv\"\n", csv);
        assert!(err.contains("unknown variant `xlsx`"), "{err}");
        let err = load_error("[a]\nformat = \"sql\"\nquery = \" \"\n", &[]);
        assert!(err.contains("report a: query is empty"), "{err}");
        let err = load_error(
            "[a]\nformat = \"salesforce\"\nconnection = \"sandbox\"\nreport_id = \"003abc\"\n",
            &[],
        );
        assert!(
            err.contains("report a: report_id \"003abc\" is not a report id"),
            "{err}"
        );
    }
}
