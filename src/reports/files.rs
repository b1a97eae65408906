//! File reports (CSV, Parquet, JSON arrays, NDJSON) as DataFusion listing
//! tables over one file or every file of the format in a folder.

use std::path::Path;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::TableReference;
use datafusion::prelude::{CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionContext};

use super::{REPORTS_SCHEMA, ReportConfig, ReportFile, declared_schema};

/// Register the file report `name`; the error says what to fix.
pub async fn register(
    ctx: &SessionContext,
    name: &str,
    dir: &Path,
    report: &ReportConfig,
    file: &ReportFile<'_>,
) -> Result<(), String> {
    let table = TableReference::partial(REPORTS_SCHEMA, name);
    let full = dir.join(file.path);
    let is_dir = full.is_dir();
    let mut location = full.to_string_lossy().to_string();
    // A folder reads the files of its format; one named file is read
    // whatever its extension (a listing table filters by extension).
    let extension = if is_dir {
        if !location.ends_with(std::path::MAIN_SEPARATOR) {
            location.push(std::path::MAIN_SEPARATOR);
        }
        format!(".{}", file.extension)
    } else {
        String::new()
    };
    let declared: Option<Schema> = file.columns.map(declared_schema).transpose()?;
    let result = match report {
        ReportConfig::Csv {
            header, delimiter, ..
        } => {
            let mut options = CsvReadOptions::new()
                .has_header(*header)
                .file_extension(&extension);
            if let Some(d) = delimiter {
                // Checked at catalog load: one ASCII character.
                options = options.delimiter(*d as u8);
            }
            if let Some(schema) = &declared {
                options = options.schema(schema);
            }
            ctx.register_csv(table, &location, options).await
        }
        ReportConfig::Parquet { .. } => {
            let mut options = ParquetReadOptions::new().file_extension(&extension);
            if let Some(schema) = &declared {
                options = options.schema(schema);
            }
            ctx.register_parquet(table, &location, options).await
        }
        ReportConfig::Json { .. } | ReportConfig::Ndjson { .. } => {
            let mut options = JsonReadOptions::default()
                .file_extension(&extension)
                .newline_delimited(matches!(report, ReportConfig::Ndjson { .. }));
            if let Some(schema) = &declared {
                options = options.schema(schema);
            }
            ctx.register_json(table, &location, options).await
        }
        ReportConfig::Sql { .. } | ReportConfig::Http { .. } | ReportConfig::Salesforce { .. } => {
            return Err("not a file report".into());
        }
    };
    result.map_err(|e| {
        format!(
            "cannot read {} as {}: {e}; fix the file or declare columns",
            full.display(),
            file.extension
        )
    })
}
