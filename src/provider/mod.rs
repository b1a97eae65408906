//! DataFusion providers: one schema per Salesforce connection with one table
//! per queryable sObject, described lazily on first use, and the lookup-join
//! rule that fetches an sObject by the keys of a join's small side.

mod arrow;
mod lookup;
mod lookup_rule;
mod scan;
mod table;

pub use self::arrow::{arrow_type, parse_date, parse_datetime};
pub use lookup::KeyCollectExec;
pub use lookup_rule::LookupJoin;
pub use scan::{SObjectScanExec, ScanSpec, fetch_pages};
pub use table::SObjectTable;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use datafusion::catalog::SchemaProvider;
use datafusion::datasource::TableProvider;
use datafusion::error::{DataFusionError, Result};

use crate::salesforce::{SalesforceClient, SalesforceError};

/// The schema of one connection (`production`, `sandbox`, ...).
#[derive(Debug)]
pub struct SalesforceSchema {
    client: Arc<SalesforceClient>,
    /// Lower-case table name -> sObject API name, from describeGlobal.
    sobjects: RwLock<BTreeMap<String, String>>,
    /// False until describeGlobal has answered (a disconnected connection
    /// starts without its list and loads it on first use after a login).
    listed: std::sync::atomic::AtomicBool,
    tables: Mutex<HashMap<String, Arc<SObjectTable>>>,
}

impl SalesforceSchema {
    pub fn new(client: Arc<SalesforceClient>) -> Self {
        SalesforceSchema {
            client,
            sobjects: RwLock::new(BTreeMap::new()),
            listed: std::sync::atomic::AtomicBool::new(false),
            tables: Mutex::new(HashMap::new()),
        }
    }

    pub fn client(&self) -> &Arc<SalesforceClient> {
        &self.client
    }

    /// Reload the list of sObjects (one describeGlobal call).
    pub async fn refresh(&self) -> Result<usize, SalesforceError> {
        let global = self.client.describe_global().await?;
        let map: BTreeMap<String, String> = global
            .into_iter()
            .filter(|s| s.queryable)
            .map(|s| (s.name.to_ascii_lowercase(), s.name))
            .collect();
        let n = map.len();
        if let Ok(mut slot) = self.sobjects.write() {
            *slot = map;
        }
        if let Ok(mut tables) = self.tables.lock() {
            tables.clear();
        }
        self.listed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }

    /// The table for a lower-case name, described on first use.
    pub async fn sobject_table(&self, name: &str) -> Result<Option<Arc<SObjectTable>>> {
        let key = name.to_ascii_lowercase();
        if let Some(t) = self.tables.lock().ok().and_then(|t| t.get(&key).cloned()) {
            return Ok(Some(t));
        }
        if !self.listed.load(std::sync::atomic::Ordering::Relaxed) {
            self.refresh()
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
        }
        let api_name = match self.sobjects.read().ok().and_then(|m| m.get(&key).cloned()) {
            Some(n) => n,
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

    fn table_exist(&self, name: &str) -> bool {
        self.sobjects
            .read()
            .map(|m| m.contains_key(&name.to_ascii_lowercase()))
            .unwrap_or(false)
    }
}

/// DataFusion's physical optimizer rules with [`LookupJoin`] right after
/// join selection (which fixes the join sides) and before distribution is
/// enforced (which then coalesces the key collector's input).
pub fn physical_optimizer_rules()
-> Vec<Arc<dyn datafusion::physical_optimizer::PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
    let at = rules
        .iter()
        .position(|r| r.name() == "join_selection")
        .map_or(0, |i| i + 1);
    rules.insert(at, Arc::new(LookupJoin));
    rules
}
