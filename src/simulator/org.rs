//! Server state: the two orgs (records, query cursors, counters, API usage)
//! and the tokens issued for them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::SimConfig;
use super::auth::Tokens;
use super::bulk::Jobs;
use super::ids::{make_id, seq_for_index};
use super::query::Cursors;
use super::seed;
use super::stats::{OrgStats, RequestKind};
use super::store::Store;

/// Names of the simulated orgs; the first is also served without a prefix.
pub const ORG_NAMES: [&str; 2] = ["production", "sandbox"];

/// Two characters after the key prefix in every id of an org, so that ids
/// differ between orgs as they do between real instances.
fn pod(org: &str) -> &'static str {
    if org == "production" { "5g" } else { "8Z" }
}

/// One simulated org.
pub struct Org {
    pub name: &'static str,
    pub pod: &'static str,
    /// 18-character organization id (`00D…`).
    pub org_id: String,
    /// The user API writes are attributed to (the client-credentials run-as user).
    pub integration_user: String,
    store: RwLock<Store>,
    cursors: Mutex<Cursors>,
    stats: Mutex<OrgStats>,
    /// API requests so far, for `Sforce-Limit-Info` and `/limits`.
    api_used: AtomicU64,
    /// Injected failures for the next data requests.
    faults: Mutex<std::collections::VecDeque<Fault>>,
    /// Requests to serve and then answer with a cut connection: the kind
    /// of request each applies to (any when `None`).
    drops: Mutex<std::collections::VecDeque<Option<String>>>,
    /// Bulk API 2.0 jobs.
    bulk: Mutex<Jobs>,
    /// Injected per-record errors (statusCode) for the next records written.
    record_faults: Mutex<std::collections::VecDeque<String>>,
}

// Records are left out: an org can hold hundreds of thousands.
impl std::fmt::Debug for Org {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Org")
            .field("name", &self.name)
            .field("org_id", &self.org_id)
            .field("api_used", &self.api_used())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("base_url", &self.base_url)
            .field("config", &self.config)
            .field("orgs", &self.orgs)
            .finish_non_exhaustive()
    }
}

/// A whole-request failure injected through `/__sim/fail_next`.
#[derive(Debug, Clone)]
pub struct Fault {
    /// The request kind it applies to (a stats name such as
    /// `collections_update`); any data request when `None`.
    pub kind: Option<String>,
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// Whether an injection for `only` (a request kind's stats name, or any)
/// applies to a request of `kind`.
fn applies(only: &Option<String>, kind: RequestKind) -> bool {
    only.as_deref().is_none_or(|k| k == kind.name())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Org {
    fn new(name: &'static str, contacts: usize) -> Org {
        let pod = pod(name);
        Org {
            name,
            pod,
            org_id: make_id("00D", pod, 77_000_001),
            integration_user: make_id("005", pod, seq_for_index(0)),
            store: RwLock::new(seed::seed(name, pod, contacts)),
            cursors: Mutex::new(Cursors::default()),
            stats: Mutex::new(OrgStats::default()),
            api_used: AtomicU64::new(0),
            faults: Mutex::new(std::collections::VecDeque::new()),
            drops: Mutex::new(std::collections::VecDeque::new()),
            bulk: Mutex::new(Jobs::default()),
            record_faults: Mutex::new(std::collections::VecDeque::new()),
        }
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn cursors(&self) -> MutexGuard<'_, Cursors> {
        lock(&self.cursors)
    }

    pub fn bulk_jobs(&self) -> MutexGuard<'_, Jobs> {
        lock(&self.bulk)
    }

    pub fn stats(&self) -> MutexGuard<'_, OrgStats> {
        lock(&self.stats)
    }

    /// Counts one API request; returns the count including it.
    pub fn use_api(&self) -> u64 {
        self.api_used.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Makes the next `count` data requests (of `fault.kind`, when set)
    /// fail as `fault` says.
    pub fn inject_faults(&self, count: usize, fault: Fault) {
        lock(&self.faults).extend(std::iter::repeat_n(fault, count));
    }

    /// The failure injected for this request of `kind`, if any.
    pub fn next_fault(&self, kind: RequestKind) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let at = faults.iter().position(|f| applies(&f.kind, kind))?;
        faults.remove(at)
    }

    /// Makes the next `count` data requests (of `kind`, when set) be served
    /// and then lose their answer.
    pub fn inject_drops(&self, count: usize, kind: Option<String>) {
        lock(&self.drops).extend(std::iter::repeat_n(kind, count));
    }

    /// Whether this request of `kind`, already served, loses its answer.
    pub fn take_drop(&self, kind: RequestKind) -> bool {
        let mut drops = lock(&self.drops);
        match drops.iter().position(|k| applies(k, kind)) {
            Some(at) => drops.remove(at).is_some(),
            None => false,
        }
    }

    /// Makes the next `count` records written (in any write request) fail
    /// with the per-record `statusCode` `code`.
    pub fn inject_record_faults(&self, count: usize, code: String) {
        lock(&self.record_faults).extend(std::iter::repeat_n(code, count));
    }

    /// The per-record error injected for the next record written, if any.
    pub fn next_record_fault(&self) -> Option<String> {
        lock(&self.record_faults).pop_front()
    }

    pub fn api_used(&self) -> u64 {
        self.api_used.load(Ordering::Relaxed)
    }
}

/// Everything the server shares between requests.
pub struct Sim {
    pub config: SimConfig,
    pub base_url: String,
    pub orgs: Vec<Org>,
    tokens: Mutex<Tokens>,
}

impl Sim {
    /// Seeds both orgs (in parallel; seeding 200,000 contacts takes a while).
    pub fn new(config: SimConfig, base_url: String) -> Sim {
        let contacts = config.contacts;
        let orgs = std::thread::scope(|s| {
            let handles: Vec<_> = ORG_NAMES
                .iter()
                .map(|name| s.spawn(move || Org::new(name, contacts)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        Sim {
            config,
            base_url,
            orgs,
            tokens: Mutex::new(Tokens::default()),
        }
    }

    /// Index of an org by name.
    pub fn org_index(&self, name: &str) -> Option<usize> {
        self.orgs.iter().position(|o| o.name == name)
    }

    pub fn tokens(&self) -> MutexGuard<'_, Tokens> {
        lock(&self.tokens)
    }

    /// Login and instance URL of an org.
    pub fn org_url(&self, org: &str) -> String {
        format!("{}/{org}", self.base_url)
    }

    /// Counters of every org, as `GET /__sim/stats` returns them.
    pub fn stats_json(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for org in &self.orgs {
            let stats = org.stats().clone();
            let mut value = serde_json::to_value(&stats).unwrap_or_default();
            if let Some(map) = value.as_object_mut() {
                map.insert("api_usage".into(), org.api_used().into());
            }
            out.insert(org.name.to_string(), value);
        }
        serde_json::Value::Object(out)
    }

    pub fn reset_stats(&self) {
        for org in &self.orgs {
            *org.stats() = OrgStats::default();
        }
    }
}
