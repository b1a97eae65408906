//! The build side of a lookup join: `KeyCollectExec` passes the small
//! input through to the hash join while collecting the distinct values of
//! its join key, and publishes them into a `KeySlot` when the input ends.
//! The sObject scan on the probe side waits on that slot and then queries
//! by key (see `lookup_rule.rs` for where these are placed).

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::common::ScalarValue;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{Distribution, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use futures::{StreamExt, stream};
use tokio::sync::watch;

/// The distinct keys of one execution of a join's build side.
#[derive(Debug)]
pub struct KeySlot {
    /// Display name of the key expression, for EXPLAIN.
    key: String,
    tx: watch::Sender<Option<Arc<Vec<ScalarValue>>>>,
}

impl KeySlot {
    pub fn new(key: String) -> Arc<KeySlot> {
        Arc::new(KeySlot {
            key,
            tx: watch::channel(None).0,
        })
    }

    pub fn describe(&self) -> &str {
        &self.key
    }

    /// The keys, once the build side has been read to its end.
    pub async fn wait(&self) -> Result<Arc<Vec<ScalarValue>>> {
        let mut rx = self.tx.subscribe();
        let keys = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| DataFusionError::Internal("the join's key collector went away".into()))?;
        Ok(keys.clone().unwrap_or_default())
    }

    fn reset(&self) {
        self.tx.send_replace(None);
    }

    fn publish(&self, keys: Vec<ScalarValue>) {
        self.tx.send_replace(Some(Arc::new(keys)));
    }
}

#[derive(Debug)]
pub struct KeyCollectExec {
    input: Arc<dyn ExecutionPlan>,
    key: Arc<dyn PhysicalExpr>,
    slot: Arc<KeySlot>,
    properties: Arc<PlanProperties>,
}

impl KeyCollectExec {
    pub fn new(
        input: Arc<dyn ExecutionPlan>,
        key: Arc<dyn PhysicalExpr>,
        slot: Arc<KeySlot>,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            input.equivalence_properties().clone(),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        KeyCollectExec {
            input,
            key,
            slot,
            properties,
        }
    }
}

impl DisplayAs for KeyCollectExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "KeyCollectExec: keys={} (distinct keys feed the lookup scan)",
            self.key
        )
    }
}

impl ExecutionPlan for KeyCollectExec {
    fn name(&self) -> &str {
        "KeyCollectExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        // Every key must be seen before the slot is published.
        vec![Distribution::SinglePartition]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        f(&self.key)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match (children.pop(), children.is_empty()) {
            (Some(input), true) => Ok(Arc::new(KeyCollectExec::new(
                input,
                Arc::clone(&self.key),
                Arc::clone(&self.slot),
            ))),
            _ => Err(DataFusionError::Internal(
                "KeyCollectExec has one child".into(),
            )),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "KeyCollectExec has one partition, not {partition}"
            )));
        }
        self.slot.reset();
        let input = self.input.execute(0, context)?;
        let schema = input.schema();
        let seen: Arc<Mutex<HashSet<ScalarValue>>> = Arc::default();
        let key = Arc::clone(&self.key);
        let collect = Arc::clone(&seen);
        let passed = input.map(move |batch| {
            let batch = batch?;
            let values = key.evaluate(&batch)?.into_array(batch.num_rows())?;
            let mut set = collect
                .lock()
                .map_err(|_| DataFusionError::Internal("key set poisoned".into()))?;
            for i in 0..values.len() {
                if values.is_valid(i) {
                    set.insert(ScalarValue::try_from_array(&values, i)?);
                }
            }
            Ok(batch)
        });
        let slot = Arc::clone(&self.slot);
        // Runs once the input is exhausted without error.
        let publish = stream::once(async move {
            let keys = seen
                .lock()
                .map(|mut s| s.drain().collect())
                .unwrap_or_default();
            slot.publish(keys);
            None
        })
        .filter_map(futures::future::ready);
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            passed.chain(publish),
        )))
    }
}
