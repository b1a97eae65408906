//! Comments for clients' `\d+` and `\dt+`: `col_description(oid, attnum)`
//! answers a Salesforce field's label and `obj_description(oid, 'pg_class')`
//! an sObject's label; `pg_table_is_visible(oid)` says whether a table is
//! named without its schema (psql's `\d name` and tab completion).
//!
//! datafusion-pg-catalog assigns table oids inside its own (private) cache
//! when `pg_class` is read. Every query that reads `pg_class` or
//! `pg_attribute` therefore first reads `oid, relname, relnamespace` from
//! them (no describe call) and records which oid is which table; the
//! functions, evaluated later in the same query, look the oid up there.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int32Array, Int64Array, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::Session;
use datafusion::datasource::TableProvider;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::catalog::{SfsqlCatalogInfo, as_salesforce};

/// Which pg_class oid is which (schema, table), and the labels behind them.
#[derive(Debug)]
pub struct Comments {
    pub(super) info: SfsqlCatalogInfo,
    relations: RwLock<HashMap<i32, (String, String)>>,
    namespaces: RwLock<HashMap<String, i32>>,
}

impl Comments {
    pub fn new(info: SfsqlCatalogInfo) -> Arc<Self> {
        Arc::new(Comments {
            info,
            relations: RwLock::new(HashMap::new()),
            namespaces: RwLock::new(HashMap::new()),
        })
    }

    /// Read the oids of every relation from `pg_class` and `pg_namespace`
    /// (neither describes anything) and remember them.
    pub async fn reload(
        &self,
        state: &dyn Session,
        class: &Arc<dyn TableProvider>,
        namespace: &Arc<dyn TableProvider>,
    ) -> Result<HashMap<i32, (String, String)>> {
        let classes = read_columns(state, class, &[0, 1, 2]).await?;
        let namespaces = read_columns(state, namespace, &[0, 1]).await?;
        let mut nsp_names: HashMap<i32, String> = HashMap::new();
        for batch in &namespaces {
            let (Some(oid), Some(name)) = (int_column(batch, 0), text_column(batch, 1)) else {
                continue;
            };
            for i in 0..batch.num_rows() {
                nsp_names.insert(oid.value(i), name.value(i).to_string());
            }
        }
        let mut relations = HashMap::new();
        for batch in &classes {
            let (Some(oid), Some(name), Some(nsp)) = (
                int_column(batch, 0),
                text_column(batch, 1),
                int_column(batch, 2),
            ) else {
                continue;
            };
            for i in 0..batch.num_rows() {
                if let Some(schema) = nsp_names.get(&nsp.value(i)) {
                    relations.insert(oid.value(i), (schema.clone(), name.value(i).to_string()));
                }
            }
        }
        if let Ok(mut slot) = self.relations.write() {
            slot.clone_from(&relations);
        }
        if let Ok(mut slot) = self.namespaces.write() {
            *slot = nsp_names
                .into_iter()
                .map(|(oid, name)| (name, oid))
                .collect();
        }
        Ok(relations)
    }

    /// Every relation read by the last [`Comments::reload`]: (oid, schema, table).
    pub fn relations(&self) -> Vec<(i32, String, String)> {
        let Ok(relations) = self.relations.read() else {
            return Vec::new();
        };
        let mut all: Vec<_> = relations
            .iter()
            .map(|(oid, (schema, table))| (*oid, schema.clone(), table.clone()))
            .collect();
        all.sort();
        all
    }

    /// The oid of a schema (`pg_namespace`).
    pub fn namespace_oid(&self, schema: &str) -> Option<i32> {
        self.namespaces.read().ok()?.get(schema).copied()
    }

    /// The oid of a relation (`pg_class`).
    pub fn relation_oid(&self, schema: &str, table: &str) -> Option<i32> {
        let relations = self.relations.read().ok()?;
        relations
            .iter()
            .find(|(_, (s, t))| s == schema && t == table)
            .map(|(oid, _)| *oid)
    }

    /// Every comment on relation `oid`, as `pg_description` keeps them:
    /// (0, the table's label), then (column number, the field's label) for
    /// the columns of a described sObject table.
    pub fn all_of(&self, oid: i32) -> Vec<(i32, String)> {
        let mut all = Vec::new();
        if let Some(label) = self.relation(i64::from(oid)) {
            all.push((0, label));
        }
        if let Some((provider, table)) = self.salesforce_table(i64::from(oid))
            && let Some(schema) = as_salesforce(&provider).and_then(|s| s.described_schema(&table))
        {
            for (i, field) in schema.fields().iter().enumerate() {
                if let (Some(label), Ok(n)) =
                    (field.metadata().get("comment"), i32::try_from(i + 1))
                {
                    all.push((n, label.clone()));
                }
            }
        }
        all
    }

    fn salesforce_table(
        &self,
        oid: i64,
    ) -> Option<(Arc<dyn datafusion::catalog::SchemaProvider>, String)> {
        let oid = i32::try_from(oid).ok()?;
        let (schema, table) = self.relations.read().ok()?.get(&oid)?.clone();
        let provider = self.info.salesforce_schema(&schema)?;
        Some((provider, table))
    }

    /// The label of column `attnum` (1-based), when its sObject is described.
    fn column(&self, oid: i64, attnum: i64) -> Option<String> {
        let (provider, table) = self.salesforce_table(oid)?;
        let schema = as_salesforce(&provider)?.described_schema(&table)?;
        let index = usize::try_from(attnum.checked_sub(1)?).ok()?;
        let field = schema.fields().get(index)?;
        field.metadata().get("comment").cloned()
    }

    /// The label of a table, from describeGlobal (no describe call).
    fn relation(&self, oid: i64) -> Option<String> {
        let (provider, table) = self.salesforce_table(oid)?;
        as_salesforce(&provider)?.label(&table)
    }

    /// Whether relation `oid` is found without a schema name: only tables
    /// of the schemas on the search path (`public`, and `pg_catalog`, which
    /// is always searched) are; every sObject and report is in a schema of
    /// its own.
    fn visible(&self, oid: i64) -> Option<bool> {
        let oid = i32::try_from(oid).ok()?;
        let relations = self.relations.read().ok()?;
        let (schema, _) = relations.get(&oid)?;
        Some(matches!(schema.as_str(), "public" | "pg_catalog"))
    }

    /// `col_description` and `obj_description` over these comments,
    /// `pg_table_is_visible` over the oids, and `pg_get_indexdef` and
    /// `pg_get_constraintdef` over the keys of [`super::keys`].
    pub fn udfs(self: &Arc<Self>) -> [ScalarUDF; 5] {
        use super::keys::{Definition, KeyDef};
        [
            ScalarUDF::new_from_impl(Description::new("col_description", Arc::clone(self))),
            ScalarUDF::new_from_impl(Description::new("obj_description", Arc::clone(self))),
            ScalarUDF::new_from_impl(Description::new("pg_table_is_visible", Arc::clone(self))),
            ScalarUDF::new_from_impl(KeyDef::new(Definition::Index, Arc::clone(self))),
            ScalarUDF::new_from_impl(KeyDef::new(Definition::Constraint, Arc::clone(self))),
        ]
    }
}

/// `col_description(oid, attnum)`, `obj_description(oid[, catalog])` or
/// `pg_table_is_visible(oid)`.
#[derive(Debug)]
struct Description {
    name: &'static str,
    comments: Arc<Comments>,
    signature: Signature,
}

impl Description {
    fn new(name: &'static str, comments: Arc<Comments>) -> Self {
        Description {
            name,
            comments,
            signature: Signature::variadic_any(Volatility::Stable),
        }
    }
}

impl PartialEq for Description {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.comments, &other.comments)
    }
}

impl Eq for Description {}

impl std::hash::Hash for Description {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for Description {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(if self.name == "pg_table_is_visible" {
            DataType::Boolean
        } else {
            DataType::Utf8
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let oids = int64s(arrays.first())?;
        if self.name == "pg_table_is_visible" {
            // psql's `\d contact` and tab completion of `FROM con` look
            // for visible tables: `contact` alone names no table in sfsql.
            let out: BooleanArray = (0..rows)
                .map(|i| value(&oids, i).and_then(|oid| self.comments.visible(oid)))
                .collect();
            return Ok(ColumnarValue::Array(Arc::new(out)));
        }
        let out: StringArray = if self.name == "col_description" {
            let attnums = int64s(arrays.get(1))?;
            (0..rows)
                .map(|i| match (value(&oids, i), value(&attnums, i)) {
                    (Some(oid), Some(attnum)) => self.comments.column(oid, attnum),
                    _ => None,
                })
                .collect()
        } else {
            // `obj_description(oid, 'pg_type')` and other catalogs: no comments.
            let catalogs = match arrays.get(1) {
                Some(a) => Some(cast(a, &DataType::Utf8)?),
                None => None,
            };
            let catalogs = catalogs
                .as_ref()
                .and_then(|a| a.as_any().downcast_ref::<StringArray>());
            (0..rows)
                .map(|i| {
                    let of_class = catalogs.is_none_or(|c| {
                        c.is_valid(i) && c.value(i).eq_ignore_ascii_case("pg_class")
                    });
                    value(&oids, i)
                        .filter(|_| of_class)
                        .and_then(|oid| self.comments.relation(oid))
                })
                .collect()
        };
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

pub(super) fn int64s(array: Option<&ArrayRef>) -> Result<Option<Int64Array>> {
    let Some(array) = array else {
        return Ok(None);
    };
    let cast = cast(array, &DataType::Int64)?;
    Ok(cast.as_any().downcast_ref::<Int64Array>().cloned())
}

pub(super) fn value(array: &Option<Int64Array>, i: usize) -> Option<i64> {
    let a = array.as_ref()?;
    a.is_valid(i).then(|| a.value(i))
}

/// Every row of a (small, in-memory) catalog table.
pub(super) async fn read_all(
    state: &dyn Session,
    table: &Arc<dyn TableProvider>,
) -> Result<Vec<datafusion::arrow::array::RecordBatch>> {
    let plan = table.scan(state, None, &[], None).await?;
    datafusion::physical_plan::collect(plan, state.task_ctx()).await
}

async fn read_columns(
    state: &dyn Session,
    table: &Arc<dyn TableProvider>,
    columns: &[usize],
) -> Result<Vec<datafusion::arrow::array::RecordBatch>> {
    let plan = table
        .scan(state, Some(&columns.to_vec()), &[], None)
        .await?;
    datafusion::physical_plan::collect(plan, state.task_ctx()).await
}

fn int_column(batch: &datafusion::arrow::array::RecordBatch, i: usize) -> Option<&Int32Array> {
    batch.column(i).as_any().downcast_ref::<Int32Array>()
}

fn text_column(batch: &datafusion::arrow::array::RecordBatch, i: usize) -> Option<&StringArray> {
    batch.column(i).as_any().downcast_ref::<StringArray>()
}
