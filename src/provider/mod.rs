//! DataFusion providers: one schema per Salesforce connection with one table
//! per queryable sObject, described lazily on first use (and an unlisted
//! `<object>_all` variant with deleted and archived records), and the
//! lookup-join rule that fetches an sObject by the keys of a join's small
//! side.

mod arrow;
mod blob;
mod catalog;
mod comments;
mod describe_first;
mod keys;
mod lookup;
mod lookup_rule;
mod options;
mod order_rule;
mod scan;
mod table;

pub use self::arrow::{arrow_type, parse_date, parse_datetime, records_to_batch};
pub use catalog::{SfsqlCatalogInfo, lazy_pg_catalog};
pub use comments::Comments;
pub use describe_first::DescribeFirst;
pub use lookup::KeyCollectExec;
pub use lookup_rule::LookupJoin;
pub use options::{DEFAULT_BULK_QUERY_THRESHOLD, ScanOptions};
pub use order_rule::SortLimitPushdown;
pub use scan::{SObjectScanExec, ScanSpec, fetch_pages};
pub use table::SObjectTable;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::SchemaProvider;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};

use crate::salesforce::{SalesforceClient, SalesforceError};

/// The schema of one connection (`production`, `sandbox`, ...).
#[derive(Debug)]
pub struct SalesforceSchema {
    client: Arc<SalesforceClient>,
    /// Lower-case table name -> sObject API name and label, from
    /// describeGlobal.
    sobjects: RwLock<BTreeMap<String, Listed>>,
    /// When describeGlobal last answered; `None` until it has (a
    /// disconnected connection starts without its list and loads it on
    /// first use after a login). A name not in the list is looked up again
    /// once the list is older than [`RELIST_AFTER`], so a custom object
    /// created since appears without a restart.
    listed_at: Mutex<Option<Instant>>,
    tables: Mutex<HashMap<String, Arc<SObjectTable>>>,
}

/// One sObject as describeGlobal lists it.
#[derive(Debug, Clone)]
struct Listed {
    api_name: String,
    label: String,
}

/// `contact_all`: the Contact table with deleted and archived records.
/// Listed in pg_catalog as a view, so `\dt` does not show every sObject
/// twice and `\d sandbox.contact_all` finds it; see the README.
pub const ALL_SUFFIX: &str = "_all";

/// How old the sObject list may be before a miss reloads it.
const RELIST_AFTER: Duration = Duration::from_secs(60);

impl SalesforceSchema {
    pub fn new(client: Arc<SalesforceClient>) -> Self {
        SalesforceSchema {
            client,
            sobjects: RwLock::new(BTreeMap::new()),
            listed_at: Mutex::new(None),
            tables: Mutex::new(HashMap::new()),
        }
    }

    pub fn client(&self) -> &Arc<SalesforceClient> {
        &self.client
    }

    /// Reload the list of sObjects (one describeGlobal call) and forget
    /// every describe, so tables show the org's fields as they are now.
    pub async fn refresh(&self) -> Result<usize, SalesforceError> {
        let n = self.relist().await?;
        if let Ok(mut tables) = self.tables.lock() {
            tables.clear();
        }
        self.client.forget_describes();
        Ok(n)
    }

    /// Reload the list of sObjects only (one describeGlobal call).
    async fn relist(&self) -> Result<usize, SalesforceError> {
        let global = self.client.describe_global().await?;
        let map: BTreeMap<String, Listed> = global
            .into_iter()
            .filter(|s| s.queryable)
            .map(|s| {
                let listed = Listed {
                    api_name: s.name,
                    label: s.label,
                };
                (listed.api_name.to_ascii_lowercase(), listed)
            })
            .collect();
        let n = map.len();
        if let Ok(mut slot) = self.sobjects.write() {
            *slot = map;
        }
        if let Ok(mut at) = self.listed_at.lock() {
            *at = Some(Instant::now());
        }
        Ok(n)
    }

    /// The schema of a table already described, without any API call.
    pub fn described_schema(&self, name: &str) -> Option<SchemaRef> {
        let key = self
            .deleted_variant(name)
            .unwrap_or_else(|| name.to_ascii_lowercase());
        let tables = self.tables.lock().ok()?;
        tables.get(&key).map(|t| TableProvider::schema(t.as_ref()))
    }

    /// The sObject's label (its table comment), from describeGlobal.
    pub fn label(&self, name: &str) -> Option<String> {
        if let Some(base) = self.deleted_variant(name) {
            return self
                .label(&base)
                .map(|l| format!("{l} (deleted and archived records included)"));
        }
        let listed = self.sobjects.read().ok()?;
        let label = &listed.get(&name.to_ascii_lowercase())?.label;
        (!label.is_empty()).then(|| label.clone())
    }

    /// Every table for pg_catalog: the sObjects, and their `<object>_all`
    /// variants, which [`Self::is_deleted_variant`] tells apart (pg_class
    /// lists them as views, so `\dt` shows each sObject once and `\d
    /// sandbox.contact_all` finds its table).
    pub fn catalog_names(&self) -> Vec<String> {
        let Ok(listed) = self.sobjects.read() else {
            return Vec::new();
        };
        let variants = listed
            .keys()
            .map(|k| format!("{k}{ALL_SUFFIX}"))
            .filter(|v| !listed.contains_key(v));
        listed.keys().cloned().chain(variants).collect()
    }

    /// `name` is an `<object>_all` variant, not an sObject.
    pub fn is_deleted_variant(&self, name: &str) -> bool {
        self.deleted_variant(name).is_some()
    }

    fn list_is_stale(&self) -> bool {
        self.listed_at
            .lock()
            .ok()
            .and_then(|at| *at)
            .is_none_or(|at| at.elapsed() > RELIST_AFTER)
    }

    /// The sObject behind `<object>_all` when `name` is one (and is not
    /// itself an sObject's name).
    fn deleted_variant(&self, name: &str) -> Option<String> {
        let key = name.to_ascii_lowercase();
        let base = key.strip_suffix(ALL_SUFFIX)?;
        let listed = self.sobjects.read().ok()?;
        (!listed.contains_key(&key) && listed.contains_key(base)).then(|| base.to_string())
    }

    /// The table for a lower-case name, described on first use;
    /// `<object>_all` is the sObject with its deleted and archived records.
    pub async fn sobject_table(&self, name: &str) -> Result<Option<Arc<SObjectTable>>> {
        if let Some(base) = self.deleted_variant(name) {
            return Ok(self
                .listed_table(&base)
                .await?
                .map(|t| Arc::new(t.with_deleted())));
        }
        self.listed_table(name).await
    }

    async fn listed_table(&self, name: &str) -> Result<Option<Arc<SObjectTable>>> {
        let key = name.to_ascii_lowercase();
        if let Some(t) = self.tables.lock().ok().and_then(|t| t.get(&key).cloned()) {
            return Ok(Some(t));
        }
        let listed = |key: &str| {
            self.sobjects
                .read()
                .ok()
                .and_then(|m| m.get(key).map(|l| l.api_name.clone()))
        };
        let api_name = match listed(&key) {
            Some(n) => n,
            None if self.list_is_stale() => {
                self.relist()
                    .await
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                match listed(&key) {
                    Some(n) => n,
                    None => return Ok(None),
                }
            }
            None => return Ok(None),
        };
        let describe = self
            .client
            .describe(&api_name)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let table = Arc::new(SObjectTable::new(Arc::clone(&self.client), describe));
        if let Ok(mut tables) = self.tables.lock() {
            tables.insert(key, Arc::clone(&table));
        }
        Ok(Some(table))
    }
}

#[async_trait]
impl SchemaProvider for SalesforceSchema {
    fn table_names(&self) -> Vec<String> {
        self.sobjects
            .read()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(self
            .sobject_table(name)
            .await?
            .map(|t| t as Arc<dyn TableProvider>))
    }

    /// Every sObject is a base table: answered from the list, because the
    /// default asks `table()`, which describes (information_schema.tables
    /// would otherwise describe every sObject of the org).
    async fn table_type(&self, name: &str) -> Result<Option<TableType>> {
        Ok(self.table_exist(name).then_some(TableType::Base))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.sobjects
            .read()
            .map(|m| m.contains_key(&name.to_ascii_lowercase()))
            .unwrap_or(false)
            || self.deleted_variant(name).is_some()
    }
}

/// DataFusion's physical optimizer rules with [`LookupJoin`] right after
/// join selection (which fixes the join sides) and before distribution is
/// enforced (which then coalesces the key collector's input), and
/// [`SortLimitPushdown`] once sorts have their final fetch (before the
/// sanity check).
pub fn physical_optimizer_rules()
-> Vec<Arc<dyn datafusion::physical_optimizer::PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
    let at = rules
        .iter()
        .position(|r| r.name() == "join_selection")
        .map_or(0, |i| i + 1);
    rules.insert(at, Arc::new(LookupJoin));
    let at = rules
        .iter()
        .position(|r| r.name() == "SanityCheckPlan")
        .unwrap_or(rules.len());
    rules.insert(at, Arc::new(SortLimitPushdown));
    rules
}
