//! `[server] idle_timeout`: a connection that has run no statement for that
//! long is closed, as PostgreSQL's `idle_session_timeout` does, so clients
//! that forget their connections do not hold `max_connections` slots.
//!
//! A connection is busy from the start of a statement until its last row is
//! sent (a slow SELECT streaming for an hour is not idle), and idle time
//! counts from the end of its last statement.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pgwire::api::ClientInfo;
use tokio::time::Instant;

/// What the watcher of one connection reads.
#[derive(Debug)]
pub struct Activity {
    born: Instant,
    /// Milliseconds after `born` when the last statement ended.
    last_ms: AtomicU64,
    busy: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Activity {
            born: Instant::now(),
            last_ms: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.born.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::SeqCst);
    }

    fn idle_for(&self) -> Option<Duration> {
        if self.busy.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::SeqCst));
        Some(self.born.elapsed().saturating_sub(last))
    }
}

/// Marks a connection busy while it lives (a statement, or its row stream).
#[derive(Debug)]
pub struct Busy(Arc<Activity>);

impl Busy {
    fn new(activity: Arc<Activity>) -> Self {
        activity.busy.fetch_add(1, Ordering::SeqCst);
        Busy(activity)
    }
}

impl Clone for Busy {
    fn clone(&self) -> Self {
        Busy::new(Arc::clone(&self.0))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The open connections' activity, by peer address (what the statement
/// handlers know a connection by).
#[derive(Debug, Default)]
pub struct Registry {
    connections: Mutex<HashMap<SocketAddr, Arc<Activity>>>,
}

impl Registry {
    /// Track `peer` until the returned guard drops.
    pub fn open(self: &Arc<Self>, peer: SocketAddr) -> (Arc<Activity>, Tracked) {
        let activity = Arc::new(Activity::new());
        if let Ok(mut map) = self.connections.lock() {
            map.insert(peer, Arc::clone(&activity));
        }
        (
            activity,
            Tracked {
                registry: Arc::clone(self),
                peer,
            },
        )
    }

    /// The client's connection is busy until the guard drops.
    pub fn busy<C: ClientInfo + ?Sized>(&self, client: &C) -> Option<Busy> {
        let map = self.connections.lock().ok()?;
        map.get(&client.socket_addr()).cloned().map(Busy::new)
    }
}

/// Removes a connection from the registry when it closes.
pub struct Tracked {
    registry: Arc<Registry>,
    peer: SocketAddr,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Ok(mut map) = self.registry.connections.lock() {
            map.remove(&self.peer);
        }
    }
}

/// What PostgreSQL sends before it closes a connection idle past
/// `idle_session_timeout`: a FATAL ErrorResponse with SQLSTATE 57P05, so
/// the client says why the connection ended instead of "server closed the
/// connection unexpectedly".
pub fn farewell() -> Vec<u8> {
    use pgwire::error::ErrorInfo;
    use pgwire::messages::Message;
    use pgwire::messages::response::ErrorResponse;
    let info = ErrorInfo::new(
        "FATAL".to_string(),
        "57P05".to_string(),
        "terminating connection due to idle-session timeout ([server] idle_timeout); reconnect to go on"
            .to_string(),
    );
    let mut buf = bytes::BytesMut::new();
    match ErrorResponse::from(info).encode(&mut buf) {
        Ok(()) => buf.to_vec(),
        Err(_) => Vec::new(),
    }
}

/// Returns once the connection has been idle for `timeout`.
pub async fn idle_past(activity: &Activity, timeout: Duration) {
    loop {
        match activity.idle_for() {
            Some(idle) if idle >= timeout => return,
            Some(idle) => tokio::time::sleep(timeout - idle).await,
            // Busy: look again after a while; the statement may run long.
            None => tokio::time::sleep(timeout.min(Duration::from_secs(1))).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_farewell_is_a_fatal_error_response() {
        let bytes = farewell();
        assert_eq!(bytes.first(), Some(&b'E'));
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("SFATAL") && text.contains("C57P05"), "{text}");
    }

    #[tokio::test]
    async fn idle_counts_from_the_end_of_the_last_statement_and_not_while_busy() {
        let activity = Arc::new(Activity::new());
        let timeout = Duration::from_millis(50);
        let busy = Busy::new(Arc::clone(&activity));
        let also = busy.clone();
        tokio::time::sleep(timeout * 2).await;
        assert_eq!(
            activity.idle_for(),
            None,
            "busy past the timeout is not idle"
        );
        drop(busy);
        assert_eq!(activity.idle_for(), None, "a row stream still runs");
        drop(also);
        let started = Instant::now();
        idle_past(&activity, timeout).await;
        assert!(started.elapsed() >= timeout, "idle counts from the end");
    }
}
