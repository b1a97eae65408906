//! `SObjectScanExec`: runs the SOQL statements of one scan, in order, and
//! streams each page as a record batch as soon as it arrives.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::{StreamExt, TryStreamExt, stream};

use super::arrow::records_to_batch;
use crate::salesforce::SalesforceClient;

#[derive(Debug)]
pub struct SObjectScanExec {
    client: Arc<SalesforceClient>,
    schema: SchemaRef,
    /// JSON keys of the output columns, parallel to `schema`.
    api_names: Vec<String>,
    /// The SOQL statements, run one after the other; their results are
    /// disjoint.
    statements: Vec<String>,
    limit: Option<usize>,
    properties: Arc<PlanProperties>,
}

impl SObjectScanExec {
    pub fn new(
        client: Arc<SalesforceClient>,
        schema: SchemaRef,
        api_names: Vec<String>,
        statements: Vec<String>,
        limit: Option<usize>,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        SObjectScanExec {
            client,
            schema,
            api_names,
            statements,
            limit,
            properties,
        }
    }

    pub fn statements(&self) -> &[String] {
        &self.statements
    }
}

impl DisplayAs for SObjectScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let first = self.statements.first().map(String::as_str).unwrap_or("");
        match (t, self.statements.len()) {
            (_, 1) => write!(
                f,
                "SObjectScanExec: connection={}, soql=[{first}]",
                self.client.name()
            ),
            (DisplayFormatType::Verbose, n) => {
                write!(
                    f,
                    "SObjectScanExec: connection={}, {n} statements: ",
                    self.client.name()
                )?;
                for (i, s) in self.statements.iter().enumerate() {
                    write!(f, "[{}] {s} ", i + 1)?;
                }
                Ok(())
            }
            (_, n) => {
                let shown: String = first.chars().take(400).collect();
                let ellipsis = if shown.len() < first.len() { "..." } else { "" };
                write!(
                    f,
                    "SObjectScanExec: connection={}, {n} statements (IN list split; EXPLAIN VERBOSE shows all), first=[{shown}{ellipsis}]",
                    self.client.name()
                )
            }
        }
    }
}

impl ExecutionPlan for SObjectScanExec {
    fn name(&self) -> &str {
        "SObjectScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "SObjectScanExec has no children".into(),
            ))
        }
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "SObjectScanExec has one partition, not {partition}"
            )));
        }
        let client = Arc::clone(&self.client);
        let schema = Arc::clone(&self.schema);
        let api_names = Arc::new(self.api_names.clone());
        let pages = stream::iter(self.statements.clone())
            .map(move |soql| client.query(soql))
            .flatten()
            .map_err(|e| DataFusionError::External(Box::new(e)));
        let batch_schema = Arc::clone(&schema);
        let batches = pages.and_then(move |page| {
            let schema = Arc::clone(&batch_schema);
            let api_names = Arc::clone(&api_names);
            async move {
                records_to_batch(&schema, &api_names, &page.records).map_err(DataFusionError::from)
            }
        });
        let limited: futures::stream::BoxStream<'static, Result<_>> = match self.limit {
            None => batches.boxed(),
            // Stop polling (and so stop sending requests) once the limit is met.
            Some(limit) => stream::unfold(
                (batches.boxed(), limit),
                |(mut inner, remaining)| async move {
                    if remaining == 0 {
                        return None;
                    }
                    match inner.next().await? {
                        Err(e) => Some((Err(e), (inner, 0))),
                        Ok(batch) => {
                            let take = batch.num_rows().min(remaining);
                            Some((Ok(batch.slice(0, take)), (inner, remaining - take)))
                        }
                    }
                },
            )
            .boxed(),
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, limited)))
    }
}
