//! pg_catalog without describing the org: tables are listed from
//! describeGlobal, and an sObject is described only when a client asks for
//! its columns (`pg_attribute`, e.g. psql's `\d contact`).
//!
//! datafusion-pg-catalog builds `pg_class` and `pg_attribute` by asking its
//! [`CatalogInfo`] for the schema of every table of every schema. Over a
//! real org that would be one describe call per sObject (hundreds) for a
//! `\dt`. [`SfsqlCatalogInfo`] answers the schema of an sObject that is not
//! described yet as empty (`pg_class.relnatts` is then 0), and
//! [`ColumnsOnDemand`] wraps `pg_attribute`: before it is read, it
//! describes the tables its `attrelid` filter names — or every table when
//! a client asks for all columns, which is what it asked for. The
//! `<object>_all` variants are listed too, as views, so that `\d
//! sandbox.contact_all` describes one without `\dt` listing each twice.

use std::any::Any;
use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, RecordBatch, new_null_array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{CatalogProviderList, SchemaProvider, Session};
use datafusion::datasource::MemTable;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::catalog_info::CatalogInfo;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::PgCatalogContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::{
    PgCatalogSchemaProvider, PgCatalogStaticTables,
};
use futures::StreamExt;

use super::comments::read_all;
use super::keys::{INDEX_OID, KeyCatalog, Kind, StoredRows, described_table};

use super::SalesforceSchema;
use super::comments::Comments;

/// How many describe calls run at once when a client asks for the columns
/// of every table.
const DESCRIBE_CONCURRENCY: usize = 8;

/// The catalog as pg_catalog sees it: DataFusion's catalog list, except
/// that an sObject not described yet has an empty schema instead of a
/// describe call.
#[derive(Debug, Clone)]
pub struct SfsqlCatalogInfo {
    list: Arc<dyn CatalogProviderList>,
}

impl SfsqlCatalogInfo {
    pub fn new(list: Arc<dyn CatalogProviderList>) -> Self {
        SfsqlCatalogInfo { list }
    }

    fn schema(&self, catalog: &str, schema: &str) -> Option<Arc<dyn SchemaProvider>> {
        self.list.catalog(catalog)?.schema(schema)
    }

    /// The Salesforce schema of this name, in any catalog.
    pub(super) fn salesforce_schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        self.salesforce_schemas()
            .into_iter()
            .find_map(|(n, s)| (n == name).then_some(s))
    }

    /// Every Salesforce schema, by name.
    fn salesforce_schemas(&self) -> Vec<(String, Arc<dyn SchemaProvider>)> {
        let mut out = Vec::new();
        for catalog in CatalogProviderList::catalog_names(self.list.as_ref()) {
            let Some(c) = self.list.catalog(&catalog) else {
                continue;
            };
            for name in c.schema_names() {
                if let Some(s) = c.schema(&name)
                    && as_salesforce(&s).is_some()
                {
                    out.push((name, s));
                }
            }
        }
        out
    }
}

pub(super) fn as_salesforce(schema: &Arc<dyn SchemaProvider>) -> Option<&SalesforceSchema> {
    (schema.as_ref() as &dyn Any).downcast_ref::<SalesforceSchema>()
}

#[async_trait]
impl CatalogInfo for SfsqlCatalogInfo {
    async fn catalog_names(&self) -> Result<Vec<String>> {
        Ok(CatalogProviderList::catalog_names(self.list.as_ref()))
    }

    async fn schema_names(&self, catalog: &str) -> Result<Option<Vec<String>>> {
        Ok(self.list.catalog(catalog).map(|c| c.schema_names()))
    }

    async fn table_names(&self, catalog: &str, schema: &str) -> Result<Option<Vec<String>>> {
        Ok(self
            .schema(catalog, schema)
            .map(|s| match as_salesforce(&s) {
                Some(sf) => sf.catalog_names(),
                None => s.table_names(),
            }))
    }

    async fn table_schema(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
    ) -> Result<Option<SchemaRef>> {
        let Some(s) = self.schema(catalog, schema) else {
            return Ok(None);
        };
        if let Some(sf) = as_salesforce(&s) {
            if !sf.table_exist(table) {
                return Ok(None);
            }
            return Ok(Some(
                sf.described_schema(table)
                    .unwrap_or_else(|| Arc::new(Schema::empty())),
            ));
        }
        Ok(s.table(table).await?.map(|t| t.schema()))
    }

    async fn table_type(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
    ) -> Result<Option<TableType>> {
        match self.schema(catalog, schema) {
            // `<object>_all` is a view of its sObject for psql: `\dt`
            // lists base tables only.
            Some(s) if as_salesforce(&s).is_some_and(|sf| sf.is_deleted_variant(table)) => {
                Ok(Some(TableType::View))
            }
            Some(s) => s.table_type(table).await,
            None => Ok(None),
        }
    }
}

/// The `pg_catalog` schema: datafusion-pg-catalog's, over
/// [`SfsqlCatalogInfo`], with `pg_attribute` wrapped in [`ColumnsOnDemand`].
#[derive(Debug)]
pub struct LazyPgCatalog<P> {
    inner: Arc<PgCatalogSchemaProvider<SfsqlCatalogInfo, P>>,
    info: SfsqlCatalogInfo,
    comments: Arc<Comments>,
    stored: Arc<StoredRows>,
}

/// Build the `pg_catalog` schema over `list` (register it in place of the
/// one `setup_pg_catalog` registers), and the comments its
/// `col_description`/`obj_description` answer from (register
/// [`Comments::udfs`]).
pub fn lazy_pg_catalog<P: PgCatalogContextProvider>(
    list: Arc<dyn CatalogProviderList>,
    context: P,
) -> Result<(Arc<dyn SchemaProvider>, Arc<Comments>)> {
    let info = SfsqlCatalogInfo::new(list);
    let statics = Arc::new(PgCatalogStaticTables::try_new()?);
    let inner = Arc::new(PgCatalogSchemaProvider::try_new(
        info.clone(),
        statics,
        context,
    )?);
    let comments = Comments::new(info.clone());
    let schema = Arc::new(LazyPgCatalog {
        inner,
        info,
        comments: Arc::clone(&comments),
        stored: Arc::default(),
    });
    Ok((schema, comments))
}

#[async_trait]
impl<P: PgCatalogContextProvider> SchemaProvider for LazyPgCatalog<P> {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let table = self.inner.table(name).await?;
        if let Some(kind) = Kind::of(name) {
            let (Some(inner), Some(class), Some(namespace)) = (
                table,
                self.inner.table("pg_class").await?,
                self.inner.table("pg_namespace").await?,
            ) else {
                return Ok(None);
            };
            return Ok(Some(Arc::new(KeyCatalog {
                kind,
                inner,
                class,
                namespace,
                info: self.info.clone(),
                comments: Arc::clone(&self.comments),
                stored: Arc::clone(&self.stored),
            })));
        }
        let is_class = name.eq_ignore_ascii_case("pg_class");
        if !is_class && !name.eq_ignore_ascii_case("pg_attribute") {
            return Ok(table);
        }
        let (Some(table), Some(class), Some(namespace)) = (
            table,
            self.inner.table("pg_class").await?,
            self.inner.table("pg_namespace").await?,
        ) else {
            return Ok(None);
        };
        Ok(Some(Arc::new(ColumnsOnDemand {
            attributes: table,
            class,
            namespace,
            info: self.info.clone(),
            comments: Arc::clone(&self.comments),
            describe: !is_class,
        })))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

/// `pg_attribute` that describes the sObjects whose columns are asked for
/// before the rows are built; also `pg_class` (with `describe` false).
/// Both record which oid is which table first, for `col_description` and
/// `obj_description` later in the query.
#[derive(Debug)]
struct ColumnsOnDemand {
    attributes: Arc<dyn TableProvider>,
    class: Arc<dyn TableProvider>,
    namespace: Arc<dyn TableProvider>,
    info: SfsqlCatalogInfo,
    comments: Arc<Comments>,
    /// pg_attribute: describe the tables asked for; pg_class: only record.
    describe: bool,
}

#[async_trait]
impl TableProvider for ColumnsOnDemand {
    /// pg_class gains `reloptions` (always NULL: sfsql tables have no
    /// storage options), which SQLAlchemy's index reflection selects.
    fn schema(&self) -> SchemaRef {
        let inner = self.attributes.schema();
        if self.describe {
            return inner;
        }
        let mut fields: Vec<Field> = inner.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("reloptions", reloptions_type(), true));
        Arc::new(Schema::new(fields))
    }

    fn table_type(&self) -> TableType {
        self.attributes.table_type()
    }

    /// Every filter is seen (to find `attrelid`) and applied again by
    /// DataFusion.
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
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let relations = self
            .comments
            .reload(state, &self.class, &self.namespace)
            .await?;
        if !self.describe {
            let schema = self.schema();
            let keyed: BTreeSet<i32> = self
                .info
                .salesforce_schemas()
                .iter()
                .filter_map(|(name, _)| self.comments.namespace_oid(name))
                .collect();
            let indexed: BTreeSet<i32> = relations
                .iter()
                .filter(|(_, (schema, table))| {
                    described_table(&self.info, schema, table)
                        .is_some_and(|d| d.fields().iter().any(|f| f.name() == "id"))
                })
                .map(|(oid, _)| *oid)
                .collect();
            let mut batches = Vec::new();
            for b in read_all(state, &self.attributes).await? {
                let mut columns = with_keys(&b, &keyed)?;
                columns.push(new_null_array(&reloptions_type(), b.num_rows()));
                let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
                let indexes = index_rows(&batch, &indexed)?;
                batches.push(batch);
                batches.extend(indexes);
            }
            return MemTable::try_new(schema, vec![batches])?
                .scan(state, projection, filters, limit)
                .await;
        }
        let wanted = wanted_relations(filters);
        let schemas = self.info.salesforce_schemas();
        let mut to_describe: Vec<(Arc<dyn SchemaProvider>, String)> = Vec::new();
        match &wanted {
            Some(oids) => {
                let names = oids.iter().filter_map(|oid| relations.get(oid));
                for (schema, table) in names {
                    if let Some((_, s)) = schemas.iter().find(|(n, _)| n == schema) {
                        to_describe.push((Arc::clone(s), table.clone()));
                    }
                }
            }
            None => {
                for (_, s) in &schemas {
                    for t in s.table_names() {
                        to_describe.push((Arc::clone(s), t));
                    }
                }
            }
        }
        let describes: Vec<_> = to_describe.into_iter().map(describe_one).collect();
        let results: Vec<Result<()>> = futures::stream::iter(describes)
            .buffer_unordered(DESCRIBE_CONCURRENCY)
            .collect()
            .await;
        for r in results {
            match r {
                Ok(()) => {}
                // A client that asked for its own table's columns hears why
                // they are missing.
                Err(e) if wanted.is_some() => return Err(e),
                // Listing every column: one unreadable sObject (no access,
                // a disconnected org) leaves out its columns, not all.
                Err(e) => tracing::warn!(error = %e, "describe failed; columns left out"),
            }
        }
        self.attributes
            .scan(state, projection, filters, limit)
            .await
    }
}

/// pg_class's columns with `relhasindex` and `relhastriggers` true for the
/// sObject tables (kind `r` in a Salesforce schema, namespaces `keyed`):
/// each has its `id` key and may have foreign keys (see `super::keys`),
/// and psql's `\d` looks for indexes and foreign keys only when these say
/// there are some.
fn with_keys(batch: &RecordBatch, keyed: &BTreeSet<i32>) -> Result<Vec<ArrayRef>> {
    use datafusion::arrow::array::{Array, AsArray, BooleanArray};
    use datafusion::arrow::datatypes::Int32Type;
    let schema = batch.schema();
    let column = |name: &str| schema.index_of(name).ok().map(|i| batch.column(i));
    let (Some(namespace), Some(kind)) = (column("relnamespace"), column("relkind")) else {
        return Ok(batch.columns().to_vec());
    };
    let (Some(namespace), Some(kind)) = (
        namespace.as_primitive_opt::<Int32Type>(),
        kind.as_string_opt::<i32>(),
    ) else {
        return Ok(batch.columns().to_vec());
    };
    let has_keys: Vec<bool> = (0..batch.num_rows())
        .map(|i| {
            kind.is_valid(i)
                && kind.value(i) == "r"
                && namespace.is_valid(i)
                && keyed.contains(&namespace.value(i))
        })
        .collect();
    let mut columns = batch.columns().to_vec();
    for name in ["relhasindex", "relhastriggers"] {
        let Ok(i) = schema.index_of(name) else {
            continue;
        };
        let Some(old) = columns[i].as_boolean_opt() else {
            continue;
        };
        let new: BooleanArray = (0..old.len())
            .map(|row| Some(has_keys[row] || (old.is_valid(row) && old.value(row))))
            .collect();
        columns[i] = Arc::new(new);
    }
    Ok(columns)
}

/// A `<table>_pkey` index relation (kind `i`) for each row of `batch`
/// that is a described sObject table (`indexed`): psql's `\d` lists a
/// table's indexes by joining `pg_index.indexrelid` to `pg_class`.
fn index_rows(batch: &RecordBatch, indexed: &BTreeSet<i32>) -> Result<Option<RecordBatch>> {
    use datafusion::arrow::array::{
        Array, AsArray, BooleanArray, Int16Array, Int32Array, StringArray, UInt32Array,
    };
    use datafusion::arrow::compute::take_record_batch;
    use datafusion::arrow::datatypes::Int32Type;
    let schema = batch.schema();
    let Some(oids) = schema
        .index_of("oid")
        .ok()
        .and_then(|i| batch.column(i).as_primitive_opt::<Int32Type>())
    else {
        return Ok(None);
    };
    let rows: UInt32Array = (0..oids.len())
        .filter(|&i| oids.is_valid(i) && indexed.contains(&oids.value(i)))
        .filter_map(|i| u32::try_from(i).ok())
        .map(Some)
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let tables = take_record_batch(batch, &rows)?;
    let n = tables.num_rows();
    let mut columns = tables.columns().to_vec();
    for (i, field) in schema.fields().iter().enumerate() {
        let old = &columns[i];
        let new: Option<ArrayRef> = match (field.name().as_str(), field.data_type()) {
            ("oid", DataType::Int32) => {
                let oids = old.as_primitive::<Int32Type>();
                Some(Arc::new(
                    oids.iter()
                        .map(|o| o.map(|o| o + INDEX_OID))
                        .collect::<Int32Array>(),
                ))
            }
            ("relname", DataType::Utf8) => Some(Arc::new(
                old.as_string::<i32>()
                    .iter()
                    .map(|t| t.map(|t| format!("{t}_pkey")))
                    .collect::<StringArray>(),
            )),
            ("relkind", DataType::Utf8) => Some(Arc::new(StringArray::from(vec!["i"; n]))),
            ("relhasindex" | "relhastriggers", DataType::Boolean) => {
                Some(Arc::new(BooleanArray::from(vec![false; n])))
            }
            ("relnatts", DataType::Int16) => Some(Arc::new(Int16Array::from(vec![1; n]))),
            _ => None,
        };
        if let Some(new) = new {
            columns[i] = new;
        }
    }
    Ok(Some(RecordBatch::try_new(schema, columns)?))
}

fn reloptions_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

/// Describe one table of a Salesforce schema (a no-op for other schemas).
pub(super) fn describe_one(
    (schema, table): (Arc<dyn SchemaProvider>, String),
) -> futures::future::BoxFuture<'static, Result<()>> {
    Box::pin(async move {
        match as_salesforce(&schema) {
            Some(sf) => sf.sobject_table(&table).await.map(|_| ()),
            None => Ok(()),
        }
    })
}

/// The oids an `attrelid = n` / `attrelid IN (...)` filter restricts
/// pg_attribute to; `None` when no filter does (every table's columns).
fn wanted_relations(filters: &[Expr]) -> Option<BTreeSet<i32>> {
    filters.iter().find_map(|f| filtered_oids(f, "attrelid"))
}

/// The oids a `column = n` / `column IN (...)` filter names.
pub(super) fn filtered_oids(expr: &Expr, column: &str) -> Option<BTreeSet<i32>> {
    let is_attrelid = |e: &Expr| is_column(e, column);
    match expr {
        Expr::BinaryExpr(b) if b.op == Operator::Eq => {
            let oid = match (is_attrelid(&b.left), is_attrelid(&b.right)) {
                (true, false) => literal_oid(&b.right)?,
                (false, true) => literal_oid(&b.left)?,
                _ => return None,
            };
            Some([oid].into())
        }
        Expr::InList(list) if !list.negated && is_attrelid(&list.expr) => {
            list.list.iter().map(literal_oid).collect()
        }
        _ => None,
    }
}

fn is_column(expr: &Expr, name: &str) -> bool {
    match expr {
        Expr::Column(c) => c.name == name,
        Expr::Cast(c) => is_column(&c.expr, name),
        Expr::TryCast(c) => is_column(&c.expr, name),
        _ => false,
    }
}

/// A literal oid, whatever type the client wrote it as (`'16400'`, 16400).
fn literal_oid(expr: &Expr) -> Option<i32> {
    match expr {
        Expr::Literal(v, _) => {
            let text = v.to_string();
            text.trim().parse::<u32>().ok().map(|n| n as i32)
        }
        Expr::Cast(c) => literal_oid(&c.expr),
        Expr::TryCast(c) => literal_oid(&c.expr),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    #[test]
    fn attrelid_filters_name_their_oids() {
        let eq = col("attrelid").eq(lit(16400));
        assert_eq!(wanted_relations(&[eq]), Some([16400].into()));
        let text = lit("16401").eq(col("attrelid"));
        assert_eq!(wanted_relations(&[text]), Some([16401].into()));
        let cast = datafusion::logical_expr::cast(
            col("attrelid"),
            datafusion::arrow::datatypes::DataType::Int64,
        )
        .eq(lit(16402i64));
        assert_eq!(wanted_relations(&[cast]), Some([16402].into()));
        let list = col("attrelid").in_list(vec![lit(1), lit(2)], false);
        assert_eq!(wanted_relations(&[list]), Some([1, 2].into()));
    }

    #[test]
    fn other_filters_ask_for_every_table() {
        assert_eq!(wanted_relations(&[col("attnum").gt(lit(0))]), None);
        assert_eq!(
            wanted_relations(&[col("attrelid").in_list(vec![lit(1)], true)]),
            None
        );
        assert_eq!(wanted_relations(&[]), None);
    }
}
