//! Declared report columns: `"name type"` strings with Postgres type names,
//! turned into an Arrow schema (pure; the catalog checks them at load).

use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

/// Postgres type names a report column may declare, for error messages.
pub const KNOWN_TYPES: &str = "text, varchar, boolean, smallint, integer, bigint, real, \
double precision, numeric(p,s), date, time, timestamp, timestamptz, bytea";

/// The Arrow type of a Postgres type name (`integer`, `numeric(10,2)`,
/// `timestamp with time zone`, ...), or None for a name sfsql does not know.
pub fn arrow_type(pg: &str) -> Option<DataType> {
    let name = pg.trim().to_ascii_lowercase();
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    // `varchar(80)` and `numeric(10,2)`: the base name and its arguments.
    let (base, args) = match name.split_once('(') {
        Some((base, rest)) => (base.trim(), Some(rest.strip_suffix(')')?)),
        None => (name.as_str(), None),
    };
    let ty = match base {
        "text" | "varchar" | "character varying" | "char" | "character" | "bpchar" | "uuid"
        | "json" | "jsonb" => DataType::Utf8,
        "boolean" | "bool" => DataType::Boolean,
        "smallint" | "int2" => DataType::Int16,
        "integer" | "int" | "int4" => DataType::Int32,
        "bigint" | "int8" => DataType::Int64,
        "real" | "float4" => DataType::Float32,
        "double precision" | "float8" | "float" | "double" => DataType::Float64,
        "numeric" | "decimal" => {
            // Postgres' unbounded numeric has no Arrow twin: 38 digits, 10
            // after the point, unless the catalog says otherwise.
            let (p, s) = match args {
                None => (38, 10),
                Some(args) => {
                    let mut parts = args.split(',').map(|a| a.trim().parse::<u8>());
                    let p = parts.next()?.ok()?;
                    let s = match parts.next() {
                        Some(s) => s.ok()?,
                        None => 0,
                    };
                    if parts.next().is_some() || p == 0 || p > 38 || s > p {
                        return None;
                    }
                    (p, s as i8)
                }
            };
            return Some(DataType::Decimal128(p, s));
        }
        "date" => DataType::Date32,
        "time" | "time without time zone" => DataType::Time64(TimeUnit::Microsecond),
        "timestamp" | "timestamp without time zone" => {
            DataType::Timestamp(TimeUnit::Microsecond, None)
        }
        "timestamptz" | "timestamp with time zone" => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        }
        "bytea" => DataType::Binary,
        _ => return None,
    };
    // Only the text types take a length, and it changes nothing in Arrow.
    match (args, &ty) {
        (None, _) => Some(ty),
        (Some(n), DataType::Utf8) if n.trim().parse::<u32>().is_ok() => Some(ty),
        _ => None,
    }
}

/// The schema of `columns = ["email text", "score integer"]`, in order.
/// The error says which entry is wrong and what would be right.
pub fn declared_schema(columns: &[String]) -> Result<Schema, String> {
    let mut fields: Vec<Field> = Vec::with_capacity(columns.len());
    for entry in columns {
        let entry = entry.trim();
        let Some((name, ty)) = entry.split_once(char::is_whitespace) else {
            return Err(format!(
                "column {entry:?} needs a name and a type, e.g. \"{entry} text\""
            ));
        };
        let data_type = arrow_type(ty).ok_or_else(|| {
            format!(
                "column {name}: unknown type {:?}; use one of {KNOWN_TYPES}",
                ty.trim()
            )
        })?;
        if fields.iter().any(|f| f.name() == name) {
            return Err(format!("column {name} is declared twice"));
        }
        fields.push(Field::new(name, data_type, true));
    }
    if fields.is_empty() {
        return Err("columns is empty; list the columns or leave it out to infer them".into());
    }
    Ok(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_names_map_to_arrow() {
        assert_eq!(arrow_type("text"), Some(DataType::Utf8));
        assert_eq!(arrow_type("VARCHAR(80)"), Some(DataType::Utf8));
        assert_eq!(arrow_type("integer"), Some(DataType::Int32));
        assert_eq!(arrow_type("bigint"), Some(DataType::Int64));
        assert_eq!(arrow_type("double  precision"), Some(DataType::Float64));
        assert_eq!(
            arrow_type("numeric(10, 2)"),
            Some(DataType::Decimal128(10, 2))
        );
        assert_eq!(arrow_type("numeric"), Some(DataType::Decimal128(38, 10)));
        assert_eq!(arrow_type("date"), Some(DataType::Date32));
        assert_eq!(
            arrow_type("timestamp with time zone"),
            Some(DataType::Timestamp(
                TimeUnit::Microsecond,
                Some("UTC".into())
            ))
        );
        assert_eq!(
            arrow_type("timestamp"),
            Some(DataType::Timestamp(TimeUnit::Microsecond, None))
        );
    }

    #[test]
    fn unknown_or_malformed_types_are_rejected() {
        assert_eq!(arrow_type("strng"), None);
        assert_eq!(arrow_type("integer(4)"), None);
        assert_eq!(arrow_type("numeric(40,2)"), None);
        assert_eq!(arrow_type("numeric(4,6)"), None);
        assert_eq!(arrow_type("varchar(x)"), None);
    }

    #[test]
    fn declared_schema_keeps_order_and_explains_errors() {
        let schema =
            declared_schema(&["email text".into(), "login_at timestamptz".into()]).unwrap();
        let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["email", "login_at"]);
        let err = declared_schema(&["score strng".into()]).unwrap_err();
        assert!(
            err.contains("column score: unknown type \"strng\""),
            "{err}"
        );
        let err = declared_schema(&["score".into()]).unwrap_err();
        assert!(err.contains("needs a name and a type"), "{err}");
        let err = declared_schema(&["a text".into(), "a int".into()]).unwrap_err();
        assert!(err.contains("declared twice"), "{err}");
    }
}
