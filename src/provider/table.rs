//! `SObjectTable`: one Salesforce object as a DataFusion table.
//!
//! ```text
//!   SELECT id, email FROM sandbox.contact WHERE email LIKE 'a%' LIMIT 5
//!        |                                 |                   |
//!   projection -> SOQL field list    filters -> WHERE     LIMIT (only when
//!                                    (soql::translate_filter   every filter
//!                                     decides Exact/Inexact)   is Exact)
//!        \______________________________|___________________/
//!                  SELECT Id, Email FROM Contact WHERE Email LIKE 'a%'
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use super::arrow::arrow_field;
use super::options::ScanOptions;
use super::scan::{SObjectScanExec, ScanSpec};
use crate::salesforce::{SObjectDescribe, SalesforceClient};
use crate::soql::{self, Condition, FieldInfo};

#[derive(Debug)]
pub struct SObjectTable {
    client: Arc<SalesforceClient>,
    describe: Arc<SObjectDescribe>,
    schema: SchemaRef,
    /// Parallel to `schema`'s fields.
    fields: Vec<FieldInfo>,
    /// The `<object>_all` variant: reads through `queryAll`, so deleted and
    /// archived records are rows too (`isdeleted` tells them apart).
    all_rows: bool,
}

impl SObjectTable {
    pub fn new(client: Arc<SalesforceClient>, describe: Arc<SObjectDescribe>) -> Self {
        let mut arrow_fields = Vec::new();
        let mut fields = Vec::new();
        for f in &describe.fields {
            if let Some(af) = arrow_field(f) {
                arrow_fields.push(af);
                fields.push(FieldInfo {
                    api_name: f.name.clone(),
                    sf_type: f.field_type.clone(),
                    filterable: f.filterable,
                    sortable: f.sortable,
                });
            }
        }
        let metadata = [("comment".to_string(), describe.label.clone())].into();
        SObjectTable {
            client,
            describe,
            schema: Arc::new(Schema::new_with_metadata(arrow_fields, metadata)),
            fields,
            all_rows: false,
        }
    }

    /// The same sObject with its deleted and archived records
    /// (`production.contact_all`).
    pub fn with_deleted(&self) -> Self {
        let label = format!(
            "{} (deleted and archived records included)",
            self.describe.label
        );
        let metadata = [("comment".to_string(), label)].into();
        SObjectTable {
            client: Arc::clone(&self.client),
            describe: Arc::clone(&self.describe),
            schema: Arc::new(Schema::new_with_metadata(
                self.schema.fields().clone(),
                metadata,
            )),
            fields: self.fields.clone(),
            all_rows: true,
        }
    }

    pub fn includes_deleted(&self) -> bool {
        self.all_rows
    }

    pub fn describe(&self) -> &Arc<SObjectDescribe> {
        &self.describe
    }

    pub fn client(&self) -> &Arc<SalesforceClient> {
        &self.client
    }

    /// The field behind a lower-case column name.
    pub fn field_info(&self, column: &str) -> Option<FieldInfo> {
        let idx = self.schema.index_of(column).ok()?;
        self.fields.get(idx).cloned()
    }

    /// The Arrow types of the named columns (which must exist).
    pub fn schema_of_columns(
        &self,
        columns: &[String],
    ) -> Vec<datafusion::arrow::datatypes::DataType> {
        columns
            .iter()
            .map(|c| {
                self.schema
                    .field_with_name(c)
                    .map(|f| f.data_type().clone())
                    .unwrap_or(datafusion::arrow::datatypes::DataType::Utf8)
            })
            .collect()
    }

    fn translate(&self, expr: &Expr) -> Option<soql::Translated> {
        soql::translate_filter(expr, &|name| self.field_info(name))
    }
}

#[async_trait]
impl TableProvider for SObjectTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match self.translate(f) {
                Some(t) if t.exact => TableProviderFilterPushDown::Exact,
                Some(_) => TableProviderFilterPushDown::Inexact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let indices: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.fields.len()).collect(),
        };
        let schema = Arc::new(self.schema.project(&indices)?);
        let fields: Vec<FieldInfo> = indices.iter().map(|&i| self.fields[i].clone()).collect();
        // `count(*)` projects no column: the scan asks `SELECT COUNT()`.
        let select = fields.iter().map(|f| f.api_name.clone()).collect();
        let conditions: Vec<Condition> = filters
            .iter()
            .filter_map(|f| self.translate(f))
            .map(|t| t.condition)
            .collect();
        let spec = ScanSpec {
            sobject: self.describe.name.clone(),
            select,
            conditions,
            order_by: vec![],
            limit,
            all_rows: self.all_rows,
        };
        Ok(Arc::new(SObjectScanExec::new(
            Arc::clone(&self.client),
            schema,
            fields,
            spec,
            ScanOptions::current(),
        )?))
    }
}
