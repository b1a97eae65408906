//! Keys and comments in the catalogs that ORMs and BI tools reflect from:
//! `pg_constraint` and `pg_index` carry each sObject table's primary key
//! (`id`), `pg_constraint` also a foreign key for each reference field that
//! points to one sObject (`contact.accountid` → `account.id`; polymorphic
//! ones like `task.whoid` have no single target and get none), and
//! `pg_description` carries the Salesforce labels that
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
pub(super) const INDEX_OID: i32 = 1 << 30;
/// Foreign key on column `a` of the table with oid `n`:
/// `FOREIGN_KEY_OID + n * COLUMNS + a`, above the index oids.
const FOREIGN_KEY_OID: i32 = (1 << 30) + (1 << 28);
const COLUMNS: i32 = 2048;

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
pub(super) async fn describe_named(
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
/// constraint named `<table>_pkey` and its unique index; in
/// `pg_constraint` also its foreign keys (see [`foreign_keys`]).
fn key_rows(kind: Kind, info: &SfsqlCatalogInfo, comments: &Comments) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (oid, schema, table) in comments.relations() {
        let Some(described) = described_table(info, &schema, &table) else {
            continue;
        };
        let Some(position) = described.fields().iter().position(|f| f.name() == "id") else {
            continue;
        };
        let attnum = i16::try_from(position + 1).unwrap_or(i16::MAX);
        let key = one(ScalarValue::Int16(Some(attnum)));
        let namespace = comments.namespace_oid(&schema);
        let row: Row = match kind {
            Kind::Constraint => {
                for fk in foreign_keys(comments, &schema, &described) {
                    rows.extend(foreign_key_row(oid, &table, namespace, &fk));
                }
                constraint_row(
                    oid + CONSTRAINT_OID,
                    format!("{table}_pkey"),
                    namespace,
                    "p",
                    oid,
                    vec![
                        ("conindid", ScalarValue::Int32(Some(oid + INDEX_OID))),
                        ("confrelid", ScalarValue::Int32(Some(0))),
                        ("confupdtype", ScalarValue::from(" ")),
                        ("confdeltype", ScalarValue::from(" ")),
                        ("confmatchtype", ScalarValue::from(" ")),
                        ("conkey", key),
                    ],
                )
            }
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

/// The schema of a described sObject table (not an `_all` view: those
/// are listed as views, without keys of their own).
pub(super) fn described_table(
    info: &SfsqlCatalogInfo,
    schema: &str,
    table: &str,
) -> Option<SchemaRef> {
    let provider = info.salesforce_schema(schema)?;
    as_salesforce(&provider)
        .filter(|s| !s.is_deleted_variant(table))
        .and_then(|s| s.described_schema(table))
}

/// A `pg_constraint` row: the columns every constraint has, then `rest`.
fn constraint_row(
    oid: i32,
    name: String,
    namespace: Option<i32>,
    contype: &str,
    relation: i32,
    rest: Row,
) -> Row {
    let mut row = vec![
        ("oid", ScalarValue::Int32(Some(oid))),
        ("conname", ScalarValue::from(name)),
        ("connamespace", ScalarValue::Int32(namespace)),
        ("contype", ScalarValue::from(contype)),
        ("condeferrable", ScalarValue::Boolean(Some(false))),
        ("condeferred", ScalarValue::Boolean(Some(false))),
        ("convalidated", ScalarValue::Boolean(Some(true))),
        ("conrelid", ScalarValue::Int32(Some(relation))),
        ("contypid", ScalarValue::Int32(Some(0))),
        ("conparentid", ScalarValue::Int32(Some(0))),
        ("conislocal", ScalarValue::Boolean(Some(true))),
        ("coninhcount", ScalarValue::Int16(Some(0))),
        ("connoinherit", ScalarValue::Boolean(Some(true))),
    ];
    row.extend(rest);
    row
}

/// A reference field that points to exactly one sObject listed in the
/// same schema: a foreign key to that table's `id`.
#[derive(Debug, PartialEq)]
struct ForeignKey {
    attnum: i32,
    column: String,
    target_oid: i32,
    target: String,
}

/// The foreign keys of a described table. The referenced table need not
/// be described: every sObject's `id` is its first column (describe lists
/// `Id` first), so its key is column 1 until its describe says otherwise.
fn foreign_keys(comments: &Comments, schema: &str, described: &Schema) -> Vec<ForeignKey> {
    described
        .fields()
        .iter()
        .enumerate()
        .filter_map(|(i, field)| {
            let targets = field.metadata().get(crate::provider::arrow::REFERENCES)?;
            if targets.contains(',') {
                return None;
            }
            let target = targets.to_ascii_lowercase();
            Some(ForeignKey {
                attnum: i32::try_from(i + 1).ok().filter(|a| *a < COLUMNS)?,
                column: field.name().clone(),
                target_oid: comments.relation_oid(schema, &target)?,
                target,
            })
        })
        .collect()
}

/// The `f` row of `fk`; none when its oid would not fit (relation oids
/// stay far below that in practice).
fn foreign_key_row(oid: i32, table: &str, namespace: Option<i32>, fk: &ForeignKey) -> Option<Row> {
    let attnum = i16::try_from(fk.attnum).ok()?;
    let constraint = oid
        .checked_mul(COLUMNS)?
        .checked_add(fk.attnum)?
        .checked_add(FOREIGN_KEY_OID)?;
    Some(constraint_row(
        constraint,
        format!("{table}_{}_fkey", fk.column),
        namespace,
        "f",
        oid,
        vec![
            (
                "conindid",
                ScalarValue::Int32(Some(fk.target_oid + INDEX_OID)),
            ),
            ("confrelid", ScalarValue::Int32(Some(fk.target_oid))),
            // NO ACTION on update and delete, MATCH SIMPLE: what a plain
            // REFERENCES clause makes.
            ("confupdtype", ScalarValue::from("a")),
            ("confdeltype", ScalarValue::from("a")),
            ("confmatchtype", ScalarValue::from("s")),
            ("conkey", one(ScalarValue::Int16(Some(attnum)))),
            ("confkey", one(ScalarValue::Int16(Some(1)))),
        ],
    ))
}

/// Which definition a [`KeyDef`] prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Definition {
    /// `pg_get_indexdef(index_oid[, column, pretty])` for the key indexes:
    /// `CREATE UNIQUE INDEX contact_pkey ON sandbox.contact USING btree (id)`,
    /// or with a column number above 0 that column's name (`id`).
    Index,
    /// `pg_get_constraintdef(constraint_oid[, pretty])`: `PRIMARY KEY (id)`,
    /// or `FOREIGN KEY (accountid) REFERENCES sandbox.account(id)` — the
    /// text SQLAlchemy and psql's `\d` parse.
    Constraint,
}

/// `pg_get_indexdef` or `pg_get_constraintdef` for sfsql's keys. NULL for
/// any other oid (sfsql keeps no other indexes or constraints).
#[derive(Debug)]
pub(super) struct KeyDef {
    definition: Definition,
    comments: Arc<Comments>,
    signature: Signature,
}

impl KeyDef {
    pub(super) fn new(definition: Definition, comments: Arc<Comments>) -> Self {
        KeyDef {
            definition,
            comments,
            signature: Signature::variadic_any(Volatility::Stable),
        }
    }

    /// Schema and table of relation `oid`.
    fn relation(&self, oid: i32) -> Option<(String, String)> {
        self.comments
            .relations()
            .into_iter()
            .find(|(o, _, _)| *o == oid)
            .map(|(_, schema, table)| (schema, table))
    }

    fn index(&self, index: i64, column: i64) -> Option<String> {
        let oid = i32::try_from(index).ok()?.checked_sub(INDEX_OID)?;
        let (schema, table) = self.relation(oid)?;
        match column {
            0 => Some(format!(
                "CREATE UNIQUE INDEX {} ON {}.{} USING btree (id)",
                quote_ident(&format!("{table}_pkey")),
                quote_ident(&schema),
                quote_ident(&table)
            )),
            1 => Some("id".to_string()),
            _ => None,
        }
    }

    fn constraint(&self, constraint: i64) -> Option<String> {
        let constraint = i32::try_from(constraint).ok()?;
        if (CONSTRAINT_OID..INDEX_OID).contains(&constraint) {
            self.relation(constraint - CONSTRAINT_OID)?;
            return Some("PRIMARY KEY (id)".to_string());
        }
        let key = constraint.checked_sub(FOREIGN_KEY_OID)?;
        let (oid, attnum) = (key / COLUMNS, key % COLUMNS);
        let (schema, table) = self.relation(oid)?;
        let described = described_table(&self.comments.info, &schema, &table)?;
        let field = described.fields().get(usize::try_from(attnum - 1).ok()?)?;
        let target = field.metadata().get(crate::provider::arrow::REFERENCES)?;
        (!target.contains(',')).then(|| {
            format!(
                "FOREIGN KEY ({}) REFERENCES {}.{}(id)",
                quote_ident(field.name()),
                quote_ident(&schema),
                quote_ident(&target.to_ascii_lowercase())
            )
        })
    }
}

/// `name` as PostgreSQL's `quote_ident` writes it: bare when it is a plain
/// lower-case identifier and not a keyword PostgreSQL reserves (sObjects
/// `User`, `Order`, `Group` and `Case` are), else in double quotes.
fn quote_ident(name: &str) -> String {
    const RESERVED: &[&str] = &[
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "authorization",
        "between",
        "bigint",
        "binary",
        "bit",
        "boolean",
        "both",
        "case",
        "cast",
        "char",
        "character",
        "check",
        "coalesce",
        "collate",
        "collation",
        "column",
        "concurrently",
        "constraint",
        "create",
        "cross",
        "current_catalog",
        "current_date",
        "current_role",
        "current_schema",
        "current_time",
        "current_timestamp",
        "current_user",
        "dec",
        "decimal",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "exists",
        "extract",
        "false",
        "fetch",
        "float",
        "for",
        "foreign",
        "freeze",
        "from",
        "full",
        "grant",
        "greatest",
        "group",
        "grouping",
        "having",
        "ilike",
        "in",
        "initially",
        "inner",
        "inout",
        "int",
        "integer",
        "intersect",
        "interval",
        "into",
        "is",
        "isnull",
        "join",
        "lateral",
        "leading",
        "least",
        "left",
        "like",
        "limit",
        "localtime",
        "localtimestamp",
        "national",
        "natural",
        "nchar",
        "none",
        "normalize",
        "not",
        "notnull",
        "null",
        "nullif",
        "numeric",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "out",
        "outer",
        "overlaps",
        "overlay",
        "placing",
        "position",
        "precision",
        "primary",
        "real",
        "references",
        "returning",
        "right",
        "row",
        "select",
        "session_user",
        "setof",
        "similar",
        "smallint",
        "some",
        "substring",
        "symmetric",
        "system_user",
        "table",
        "tablesample",
        "then",
        "time",
        "timestamp",
        "to",
        "trailing",
        "treat",
        "trim",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "values",
        "varchar",
        "variadic",
        "verbose",
        "when",
        "where",
        "window",
        "with",
    ];
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain && !RESERVED.contains(&name) {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

impl PartialEq for KeyDef {
    fn eq(&self, other: &Self) -> bool {
        self.definition == other.definition && Arc::ptr_eq(&self.comments, &other.comments)
    }
}

impl Eq for KeyDef {}

impl std::hash::Hash for KeyDef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.definition.hash(state);
    }
}

impl ScalarUDFImpl for KeyDef {
    fn name(&self) -> &str {
        match self.definition {
            Definition::Index => "pg_get_indexdef",
            Definition::Constraint => "pg_get_constraintdef",
        }
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
        let oids = int64s(arrays.first())?;
        let out: StringArray = match self.definition {
            Definition::Index => {
                let columns = int64s(arrays.get(1))?;
                (0..rows)
                    .map(|i| {
                        let column = if columns.is_some() {
                            value(&columns, i)?
                        } else {
                            0
                        };
                        self.index(value(&oids, i)?, column)
                    })
                    .collect()
            }
            Definition::Constraint => (0..rows)
                .map(|i| self.constraint(value(&oids, i)?))
                .collect(),
        };
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
    fn names_are_quoted_as_postgres_quotes_them() {
        assert_eq!(quote_ident("account"), "account");
        assert_eq!(quote_ident("wm_nps_score__c"), "wm_nps_score__c");
        assert_eq!(quote_ident("user"), "\"user\"");
        assert_eq!(quote_ident("case"), "\"case\"");
        assert_eq!(quote_ident("Mixed"), "\"Mixed\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("1st"), "\"1st\"");
    }

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
