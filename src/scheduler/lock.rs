//! The scheduler lock: an OS file lock on `scheduler.lock` in the state
//! directory. Of several `sfsql serve` processes sharing one state
//! directory, only the holder runs the scheduler loop and recovers
//! interrupted runs; the others serve queries and manual runs. The lock
//! goes away with the process, so a `kill -9` never leaves it stale.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;

use super::SchedulerError;

pub const LOCK_FILE: &str = "scheduler.lock";

/// Held for the life of the scheduler loop; dropping it releases the lock.
#[derive(Debug)]
pub struct SchedulerLock {
    _file: File,
}

impl SchedulerLock {
    /// `Ok(None)` when another process holds it.
    pub fn try_acquire(state_dir: &Path) -> Result<Option<SchedulerLock>, SchedulerError> {
        let path = state_dir.join(LOCK_FILE);
        let io_err = |source| SchedulerError::Lock {
            path: path.display().to_string(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        // For an operator wondering who holds it.
        file.set_len(0).map_err(io_err)?;
        writeln!(file, "{}", std::process::id()).map_err(io_err)?;
        Ok(Some(SchedulerLock { _file: file }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = SchedulerLock::try_acquire(dir.path()).expect("lock");
        assert!(first.is_some());
        assert!(
            SchedulerLock::try_acquire(dir.path())
                .expect("lock")
                .is_none()
        );
        drop(first);
        assert!(
            SchedulerLock::try_acquire(dir.path())
                .expect("lock")
                .is_some()
        );
    }
}
