//! `ScanOptions`: the connection's settings that shape its scans
//! (`sfsql.bulk_query_threshold`). sfsql's `SET` keeps them per connection,
//! but every connection plans on one shared `SessionContext`, so the server
//! runs each statement inside [`ScanOptions::scope`] and a table reads them
//! with [`ScanOptions::current`] while the statement is planned.

use std::future::Future;

/// Default of `sfsql.bulk_query_threshold`. A Bulk job costs at least four
/// calls (create, two polls, one results page) and seconds of queueing on
/// a real org before the first row; REST answers in one call per 2,000
/// records. At 50,000 records REST needs 25 calls and Bulk about 5, and
/// from there on Bulk's 50,000-record pages save ever more (1,000,000
/// records: 500 REST calls, about 24 Bulk calls).
pub const DEFAULT_BULK_QUERY_THRESHOLD: usize = 50_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanOptions {
    /// Scans matching more records than this run as Bulk API 2.0 query
    /// jobs; 0: never.
    pub bulk_query_threshold: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            bulk_query_threshold: DEFAULT_BULK_QUERY_THRESHOLD,
        }
    }
}

tokio::task_local! {
    static CURRENT: ScanOptions;
}

impl ScanOptions {
    /// The options of the statement being planned (the defaults outside
    /// [`scope`](Self::scope)).
    pub fn current() -> ScanOptions {
        CURRENT.try_with(|o| *o).unwrap_or_default()
    }

    /// Run `work` (planning included) with these options.
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        CURRENT.scope(self, work).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn options_hold_inside_their_scope_only() {
        assert_eq!(ScanOptions::current(), ScanOptions::default());
        let zero = ScanOptions {
            bulk_query_threshold: 0,
        };
        let seen = zero.scope(async { ScanOptions::current() }).await;
        assert_eq!(seen, zero);
        assert_eq!(ScanOptions::current(), ScanOptions::default());
    }
}
