//! PostgreSQL's `json_build_object(key, value, ...)`, which DataFusion
//! lacks. SQLAlchemy's column reflection builds identity and collation
//! details with it; users can call it too. The result is JSON text.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use serde_json::Value;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct JsonBuildObject {
    signature: Signature,
}

impl JsonBuildObject {
    pub fn new() -> Self {
        JsonBuildObject {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for JsonBuildObject {
    fn name(&self) -> &str {
        "json_build_object"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> datafusion::error::Result<DataType> {
        if !args.len().is_multiple_of(2) {
            return plan_err!(
                "json_build_object takes key/value pairs: it was given {} arguments, an odd number",
                args.len()
            );
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays: Vec<ArrayRef> = ColumnarValue::values_to_arrays(&args.args)?;
        let mut out = StringBuilder::new();
        for row in 0..rows {
            // PostgreSQL's json text keeps the arguments' order and writes
            // `{"a" : 1, "b" : 2}`.
            let mut members = Vec::with_capacity(arrays.len() / 2);
            for pair in arrays.chunks(2) {
                let [key, value] = pair else {
                    return exec_err!("json_build_object takes key/value pairs");
                };
                let key = ScalarValue::try_from_array(key, row)?;
                if key.is_null() {
                    return exec_err!("json_build_object: a key is null; keys must be text");
                }
                let key = match key {
                    ScalarValue::Utf8(Some(s))
                    | ScalarValue::LargeUtf8(Some(s))
                    | ScalarValue::Utf8View(Some(s)) => s,
                    other => other.to_string(),
                };
                let value = to_json(ScalarValue::try_from_array(value, row)?);
                members.push(format!("{} : {value}", Value::String(key)));
            }
            out.append_value(format!("{{{}}}", members.join(", ")));
        }
        let array: ArrayRef = Arc::new(out.finish());
        Ok(
            if rows == 1
                && args
                    .args
                    .iter()
                    .all(|a| matches!(a, ColumnarValue::Scalar(_)))
            {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
            } else {
                ColumnarValue::Array(array)
            },
        )
    }
}

/// A SQL value as PostgreSQL's `to_json` writes it: numbers and booleans
/// as themselves, NULL as null, everything else as its text.
fn to_json(value: ScalarValue) -> Value {
    if value.is_null() {
        return Value::Null;
    }
    match value {
        ScalarValue::Boolean(Some(b)) => Value::Bool(b),
        ScalarValue::Int8(Some(n)) => n.into(),
        ScalarValue::Int16(Some(n)) => n.into(),
        ScalarValue::Int32(Some(n)) => n.into(),
        ScalarValue::Int64(Some(n)) => n.into(),
        ScalarValue::UInt8(Some(n)) => n.into(),
        ScalarValue::UInt16(Some(n)) => n.into(),
        ScalarValue::UInt32(Some(n)) => n.into(),
        ScalarValue::UInt64(Some(n)) => n.into(),
        ScalarValue::Float32(Some(f)) => serde_json::Number::from_f64(f64::from(f))
            .map_or_else(|| Value::String(f.to_string()), Value::Number),
        ScalarValue::Float64(Some(f)) => serde_json::Number::from_f64(f)
            .map_or_else(|| Value::String(f.to_string()), Value::Number),
        ScalarValue::Decimal128(..) => {
            let text = value.to_string();
            text.parse::<serde_json::Number>()
                .map_or(Value::String(text), Value::Number)
        }
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Value::String(s),
        other => Value::String(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::ScalarUDF;
    use datafusion::prelude::SessionContext;

    use super::*;

    async fn one(sql: &str) -> String {
        let ctx = SessionContext::new();
        ctx.register_udf(ScalarUDF::new_from_impl(JsonBuildObject::new()));
        let batches = ctx
            .sql(sql)
            .await
            .expect("plan")
            .collect()
            .await
            .expect("run");
        let column = batches[0].column(0);
        ScalarValue::try_from_array(column, 0)
            .expect("value")
            .to_string()
    }

    #[tokio::test]
    async fn builds_an_object_per_row_with_json_types() {
        assert_eq!(
            one("select json_build_object('a', 1, 'b', true, 'c', 'x', 'd', null, 'e', 1.5)").await,
            r#"{"a" : 1, "b" : true, "c" : "x", "d" : null, "e" : 1.5}"#
        );
        assert_eq!(
            one("select json_build_object('n', v) from (values (7), (8)) t(v) order by v desc")
                .await,
            r#"{"n" : 8}"#
        );
    }

    #[tokio::test]
    async fn an_odd_number_of_arguments_is_refused() {
        let ctx = SessionContext::new();
        ctx.register_udf(ScalarUDF::new_from_impl(JsonBuildObject::new()));
        let err = ctx
            .sql("select json_build_object('a')")
            .await
            .expect_err("odd");
        assert!(err.to_string().contains("key/value pairs"), "{err}");
    }
}
