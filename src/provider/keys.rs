//! Keys and comments in the catalogs that ORMs and BI tools reflect from:
//! `pg_constraint` and `pg_index` carry each sObject table's primary key
//! (`id`), and `pg_description` carries the Salesforce labels that
//! `col_description`/`obj_description` answer (SQLAlchemy reads comments
//! by joining `pg_description`, not through those functions).
//!
//! datafusion-pg-catalog serves these three as static tables exported
//! from a PostgreSQL server, with `int2vector` columns (`indkey`,
//! `conkey`) as text, so `unnest(pg_index.indkey)` — SQLAlchemy's key
//! reflection — cannot be planned. [`KeyCatalog`] serves the same rows
//! with those columns as `smallint[]` (`List<Int16>`), plus sfsql's rows.
//!
//! sfsql's rows are built when the query runs, after planning: planning is
//! when `pg_attribute` describes the tables a client asks for, so their
//! column comments and key positions are known by then. A key is published
//! for every described sObject table; `pg_constraint` filtered by
//! `conrelid` (SQLAlchemy's `get_pk_constraint`) describes the tables it
//! names first.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::ScalarValue;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDFImpl, Signature, TableProviderFilterPushDown,
    Volatility,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};

use super::catalog::{SfsqlCatalogInfo, as_salesforce, describe_one, filtered_oids};
use super::comments::{Comments, int64s, read_all, value};

/// The pk constraint of the table with oid `n` has oid `n + CONSTRAINT_OID`,
/// its index `n + INDEX_OID`: far above the oids datafusion-pg-catalog
/// hands out (from 16384 up), inside `oid`'s `Int32`.
const CONSTRAINT_OID: i32 = 1 << 29;
const INDEX_OID: i32 = 1 << 30;

/// Which catalog a [`KeyCatalog`] serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Constraint,
    Index,
    Description,
}

impl Kind {
    pub(super) fn of(name: &str) -> Option<Kind> {
        match name.to_ascii_lowercase().as_str() {
            "pg_constraint" => Some(Kind::Constraint),
            "pg_index" => Some(Kind::Index),
            "pg_description" => Some(Kind::Description),
            _ => None,
        }
    }

    /// The `int2vector` and `oidvector` columns, served as `smallint[]`
    /// and `oid[]`: (name, element type).
    fn vector_columns(self) -> &'static [(&'static str, DataType)] {
        const INT2: DataType = DataType::Int16;
        const OID: DataType = DataType::Int32;
        match self {
            Kind::Constraint => &[("conkey", INT2), ("confkey", INT2)],
            Kind::Index => &[
                ("indkey", INT2),
                ("indcollation", OID),
                ("indclass", OID),
                ("indoption", INT2),
            ],
            Kind::Description => &[],
        }
    }

    /// The column whose filter names the tables to describe first.
    fn relation_column(self) -> Option<&'static str> {
        match self {
            Kind::Constraint => Some("conrelid"),
            Kind::Index => Some("indrelid"),
            Kind::Description => None,
        }
    }
}

/// `pg_constraint`, `pg_index` or `pg_description`: the static rows with
/// vector columns as lists, then sfsql's keys or comments.
#[derive(Debug)]
pub(super) struct KeyCatalog {
    pub(super) kind: Kind,
    pub(super) inner: Arc<dyn TableProvider>,
    pub(super) class: Arc<dyn TableProvider>,
    pub(super) namespace: Arc<dyn TableProvider>,
    pub(super) info: SfsqlCatalogInfo,
    pub(super) comments: Arc<Comments>,
    pub(super) stored: Arc<StoredRows>,
}

/// The static rows of the three catalogs with their vectors parsed, read
/// once per catalog and kept: they never change while the server runs, and
/// every client's reflection scans them.
#[derive(Debug, Default)]
pub(super) struct StoredRows([tokio::sync::OnceCell<Vec<RecordBatch>>; 3]);

impl StoredRows {
    fn of(&self, kind: Kind) -> &tokio::sync::OnceCell<Vec<RecordBatch>> {
        &self.0[kind as usize]
    }
}

fn list_type(element: &DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", element.clone(), true)))
}

/// The element type of `name` when it is one of `vectors`.
fn element_of<'a>(vectors: &'a [(&str, DataType)], name: &str) -> Option<&'a DataType> {
    vectors.iter().find(|(n, _)| *n == name).map(|(_, t)| t)
}

#[async_trait]
impl TableProvider for KeyCatalog {
    fn schema(&self) -> SchemaRef {
        let inner = self.inner.schema();
        let vectors = self.kind.vector_columns();
        let fields: Vec<Field> = inner
            .fields()
            .iter()
            .map(|f| {
                if let Some(element) = element_of(vectors, f.name()) {
                    Field::new(f.name(), list_type(element), true)
                } else {
                    f.as_ref().clone().with_nullable(true)
                }
            })
            .collect();
        Arc::new(Schema::new(fields))
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    /// Filters are only read (for `conrelid`); DataFusion applies them.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let relations = self
            .comments
            .reload(state, &self.class, &self.namespace)
            .await?;
        if let Some(column) = self.kind.relation_column()
            && let Some(oids) = filters.iter().find_map(|f| filtered_oids(f, column))
        {
            describe_named(&self.info, &relations, &oids).await?;
        }
        let schema = self.schema();
        let stored = self
            .stored
            .of(self.kind)
            .get_or_try_init(|| async {
                read_all(state, &self.inner)
                    .await?
                    .iter()
                    .map(|b| with_vectors(b, &schema, self.kind.vector_columns()))
                    .collect::<Result<Vec<_>>>()
            })
            .await?
            .clone();
        let partition = Arc::new(Rows {
            kind: self.kind,
            schema: Arc::clone(&schema),
            stored,
            info: self.info.clone(),
            comments: Arc::clone(&self.comments),
        });
        Ok(Arc::new(StreamingTableExec::try_new(
            schema,
            vec![partition],
            projection,
            Vec::new(),
            false,
            None,
        )?))
    }
}

/// Describe the Salesforce tables among `oids` (a no-op for the others).
async fn describe_named(
    info: &SfsqlCatalogInfo,
    relations: &HashMap<i32, (String, String)>,
    oids: &BTreeSet<i32>,
) -> Result<()> {
    for oid in oids {
        let Some((schema, table)) = relations.get(oid) else {
            continue;
        };
        if let Some(provider) = info.salesforce_schema(schema) {
            describe_one((provider, table.clone())).await?;
        }
    }
    Ok(())
}

/// The rows of one scan: read from the static table at planning, sfsql's
/// own built when the query runs.
#[derive(Debug)]
struct Rows {
    kind: Kind,
    schema: SchemaRef,
    stored: Vec<RecordBatch>,
    info: SfsqlCatalogInfo,
    comments: Arc<Comments>,
}

impl PartitionStream for Rows {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let mut batches: Vec<Result<RecordBatch>> = self.stored.iter().cloned().map(Ok).collect();
        let own = match self.kind {
            Kind::Description => description_rows(&self.comments),
            Kind::Constraint | Kind::Index => key_rows(self.kind, &self.info, &self.comments),
        };
        batches.push(own.and_then(|rows| batch_of(&self.schema, &rows)));
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            futures::stream::iter(batches),
        ))
    }
}

/// One row as (column name, value); columns not named are NULL.
type Row = Vec<(&'static str, ScalarValue)>;

/// The primary key (`id`) of every described sObject table: a `p`
/// constraint named `<table>_pkey` and its unique index.
fn key_rows(kind: Kind, info: &SfsqlCatalogInfo, comments: &Comments) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (oid, schema, table) in comments.relations() {
        let Some(provider) = info.salesforce_schema(&schema) else {
            continue;
        };
        // `<object>_all` is listed as a view: no key of its own.
        let Some(described) = as_salesforce(&provider)
            .filter(|s| !s.is_deleted_variant(&table))
            .and_then(|s| s.described_schema(&table))
        else {
            continue;
        };
        let Some(position) = described.fields().iter().position(|f| f.name() == "id") else {
            continue;
        };
        let attnum = i16::try_from(position + 1).unwrap_or(i16::MAX);
        let key = one(ScalarValue::Int16(Some(attnum)));
        let namespace = comments.namespace_oid(&schema);
        let row: Row = match kind {
            Kind::Constraint => vec![
                ("oid", ScalarValue::Int32(Some(oid + CONSTRAINT_OID))),
                ("conname", ScalarValue::from(format!("{table}_pkey"))),
                ("connamespace", ScalarValue::Int32(namespace)),
                ("contype", ScalarValue::from("p")),
                ("condeferrable", ScalarValue::Boolean(Some(false))),
                ("condeferred", ScalarValue::Boolean(Some(false))),
                ("convalidated", ScalarValue::Boolean(Some(true))),
                ("conrelid", ScalarValue::Int32(Some(oid))),
                ("contypid", ScalarValue::Int32(Some(0))),
                ("conindid", ScalarValue::Int32(Some(oid + INDEX_OID))),
                ("conparentid", ScalarValue::Int32(Some(0))),
                ("confrelid", ScalarValue::Int32(Some(0))),
                ("confupdtype", ScalarValue::from(" ")),
                ("confdeltype", ScalarValue::from(" ")),
                ("confmatchtype", ScalarValue::from(" ")),
                ("conislocal", ScalarValue::Boolean(Some(true))),
                ("coninhcount", ScalarValue::Int16(Some(0))),
                ("connoinherit", ScalarValue::Boolean(Some(true))),
                ("conkey", key),
            ],
            _ => vec![
                ("indexrelid", ScalarValue::Int32(Some(oid + INDEX_OID))),
                ("indrelid", ScalarValue::Int32(Some(oid))),
                ("indnatts", ScalarValue::Int16(Some(1))),
                ("indnkeyatts", ScalarValue::Int16(Some(1))),
                ("indisunique", ScalarValue::Boolean(Some(true))),
                ("indnullsnotdistinct", ScalarValue::Boolean(Some(false))),
                ("indisprimary", ScalarValue::Boolean(Some(true))),
                ("indisexclusion", ScalarValue::Boolean(Some(false))),
                ("indimmediate", ScalarValue::Boolean(Some(true))),
                ("indisclustered", ScalarValue::Boolean(Some(false))),
                ("indisvalid", ScalarValue::Boolean(Some(true))),
                ("indcheckxmin", ScalarValue::Boolean(Some(false))),
                ("indisready", ScalarValue::Boolean(Some(true))),
                ("indislive", ScalarValue::Boolean(Some(true))),
                ("indisreplident", ScalarValue::Boolean(Some(false))),
                ("indkey", key),
                ("indcollation", one(ScalarValue::Int32(Some(0)))),
                ("indclass", one(ScalarValue::Int32(Some(0)))),
                ("indoption", one(ScalarValue::Int16(Some(0)))),
            ],
        };
        rows.push(row);
    }
    Ok(rows)
}

/// `pg_get_indexdef(index_oid[, column, pretty])` for the key indexes:
/// `CREATE UNIQUE INDEX contact_pkey ON sandbox.contact USING btree (id)`,
/// or with a column number above 0 that column's name (`id`). NULL for
/// any other oid (sfsql keeps no other indexes).
#[derive(Debug)]
pub(super) struct IndexDef {
    comments: Arc<Comments>,
    signature: Signature,
}

impl IndexDef {
    pub(super) fn new(comments: Arc<Comments>) -> Self {
        IndexDef {
            comments,
            signature: Signature::variadic_any(Volatility::Stable),
        }
    }

    fn definition(&self, index: i64, column: i64) -> Option<String> {
        let oid = i32::try_from(index).ok()?.checked_sub(INDEX_OID)?;
        let (_, schema, table) = self
            .comments
            .relations()
            .into_iter()
            .find(|(o, _, _)| *o == oid)?;
        match column {
            0 => Some(format!(
                "CREATE UNIQUE INDEX {table}_pkey ON {schema}.{table} USING btree (id)"
            )),
            1 => Some("id".to_string()),
            _ => None,
        }
    }
}

impl PartialEq for IndexDef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.comments, &other.comments)
    }
}

impl Eq for IndexDef {}

impl std::hash::Hash for IndexDef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "pg_get_indexdef".hash(state);
    }
}

impl ScalarUDFImpl for IndexDef {
    fn name(&self) -> &str {
        "pg_get_indexdef"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (oids, columns) = (int64s(arrays.first())?, int64s(arrays.get(1))?);
        let out: StringArray = (0..rows)
            .map(|i| {
                let column = if columns.is_some() {
                    value(&columns, i)?
                } else {
                    0
                };
                self.definition(value(&oids, i)?, column)
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// A one-element array.
fn one(value: ScalarValue) -> ScalarValue {
    let element = value.data_type();
    ScalarValue::List(ScalarValue::new_list_nullable(&[value], &element))
}

/// Table labels (from describeGlobal) and the field labels of described
/// tables, as PostgreSQL keeps comments: `objsubid` 0 for the table, the
/// column's number for a column; `classoid` is `pg_class`.
fn description_rows(comments: &Comments) -> Result<Vec<Row>> {
    let class = comments.relation_oid("pg_catalog", "pg_class");
    let mut rows = Vec::new();
    for (oid, _, _) in comments.relations() {
        for (subid, text) in comments.all_of(oid) {
            rows.push(vec![
                ("objoid", ScalarValue::Int32(Some(oid))),
                ("classoid", ScalarValue::Int32(class)),
                ("objsubid", ScalarValue::Int32(Some(subid))),
                ("description", ScalarValue::from(text)),
            ]);
        }
    }
    Ok(rows)
}

/// `rows` as one batch of `schema`.
fn batch_of(schema: &SchemaRef, rows: &[Row]) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| {
            let null = ScalarValue::try_from(field.data_type())?;
            let values = rows.iter().map(|row| {
                row.iter()
                    .find(|(name, _)| *name == field.name())
                    .map_or_else(|| null.clone(), |(_, v)| v.clone())
            });
            if rows.is_empty() {
                return null.to_array_of_size(0);
            }
            let array = ScalarValue::iter_to_array(values)?;
            if array.data_type() == field.data_type() {
                Ok(array)
            } else {
                Ok(cast(&array, field.data_type())?)
            }
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

/// A stored batch with its `int2vector` text columns parsed into lists.
fn with_vectors(
    batch: &RecordBatch,
    schema: &SchemaRef,
    vectors: &[(&str, DataType)],
) -> Result<RecordBatch> {
    let columns = batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| {
            let Some(element) = element_of(vectors, field.name()) else {
                return Ok(Arc::clone(column));
            };
            let text = cast(column, &DataType::Utf8)?;
            let text = text
                .as_any()
                .downcast_ref::<StringArray>()
                .cloned()
                .unwrap_or_else(|| StringArray::new_null(column.len()));
            let null = ScalarValue::try_from(&list_type(element))?;
            let values = text
                .iter()
                .map(|v| match v {
                    Some(text) => {
                        let items = parse_vector(text)
                            .into_iter()
                            .map(|i| ScalarValue::Int64(Some(i)).cast_to(element))
                            .collect::<Result<Vec<_>>>()?;
                        Ok(ScalarValue::List(ScalarValue::new_list_nullable(
                            &items, element,
                        )))
                    }
                    None => Ok(null.clone()),
                })
                .collect::<Result<Vec<_>>>()?;
            if values.is_empty() {
                return null.to_array_of_size(0);
            }
            ScalarValue::iter_to_array(values)
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

/// `int2vector` as PostgreSQL prints it (`1 2`) or as the export wrote it
/// (`[1, 20, 3]`, `{1,2}`).
fn parse_vector(text: &str) -> Vec<i64> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '-'))
        .filter_map(|n| n.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int2vectors_parse_in_every_spelling() {
        assert_eq!(parse_vector("1 2"), vec![1, 2]);
        assert_eq!(parse_vector("[2, 20, 3]"), vec![2, 20, 3]);
        assert_eq!(parse_vector("{1,-2}"), vec![1, -2]);
        assert_eq!(parse_vector(""), Vec::<i64>::new());
    }

    #[test]
    fn rows_fill_the_columns_they_name_and_null_the_rest() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("oid", DataType::Int32, true),
            Field::new("conname", DataType::Utf8, true),
            Field::new("conkey", list_type(&DataType::Int16), true),
        ]));
        let key = ScalarValue::List(ScalarValue::new_list_nullable(
            &[ScalarValue::Int16(Some(1))],
            &DataType::Int16,
        ));
        let rows = vec![
            vec![("oid", ScalarValue::Int32(Some(7))), ("conkey", key)],
            vec![("conname", ScalarValue::from("contact_pkey"))],
        ];
        let batch = batch_of(&schema, &rows).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert!(batch.column(1).is_null(0));
        assert!(batch.column(0).is_null(1));
        assert_eq!(batch.column(2).data_type(), &list_type(&DataType::Int16));
        assert_eq!(batch_of(&schema, &[]).unwrap().num_rows(), 0);
    }

    #[test]
    fn stored_text_vectors_become_lists() {
        let stored_schema = Arc::new(Schema::new(vec![
            Field::new("indrelid", DataType::Int32, true),
            Field::new("indkey", DataType::Utf8, true),
        ]));
        let stored = RecordBatch::try_new(
            stored_schema,
            vec![
                Arc::new(datafusion::arrow::array::Int32Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("1 2"), None])),
            ],
        )
        .unwrap();
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("indrelid", DataType::Int32, true),
            Field::new("indkey", list_type(&DataType::Int16), true),
        ]));
        let out = with_vectors(&stored, &schema, &[("indkey", DataType::Int16)]).unwrap();
        let lists = out
            .column(1)
            .as_any()
            .downcast_ref::<datafusion::arrow::array::ListArray>()
            .unwrap();
        assert_eq!(lists.value(0).len(), 2);
        assert!(lists.is_null(1));
    }
}
