//! Who runs a run. Each open store takes an owner id (`<pid>-<random>`)
//! and holds an OS lock on `owners/<id>.lock` in the state directory for as
//! long as it is open; every run it starts is stored with that id. A run is
//! then provably abandoned only when its owner's file is gone or unlocked:
//! the OS drops the lock with the process (a `kill -9` too), and a new
//! process reusing the pid has another random id, so a restart never marks
//! a run of another live `sfsql serve` or `sfsql jobs run` interrupted.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::StateError;

/// The directory of owner lock files inside the state directory.
pub const OWNERS_DIR: &str = "owners";

/// Whether the owner of a run is still going; tests give a fake.
pub trait Liveness {
    fn alive(&self, owner: &str) -> bool;
}

/// This store's owner id and the lock that proves it alive; the lock and
/// its file go when the store is dropped or the process ends.
#[derive(Debug)]
pub struct OwnerLease {
    id: String,
    path: PathBuf,
    _file: File,
}

impl OwnerLease {
    pub fn take(state_dir: &Path) -> Result<OwnerLease, StateError> {
        let dir = state_dir.join(OWNERS_DIR);
        std::fs::create_dir_all(&dir).map_err(|source| StateError::CreateDir {
            dir: dir.clone(),
            source,
        })?;
        let id = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
        let path = dir.join(format!("{id}.lock"));
        let owner_err = |source| StateError::Owner {
            path: path.clone(),
            source,
        };
        // Only runs stored after this returns name the id, so nobody looks
        // at the file before it is locked.
        let file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .map_err(owner_err)?;
        file.try_lock().map_err(|e| match e {
            TryLockError::Error(e) => owner_err(e),
            TryLockError::WouldBlock => owner_err(std::io::Error::from(ErrorKind::WouldBlock)),
        })?;
        Ok(OwnerLease {
            id,
            path,
            _file: file,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for OwnerLease {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// An id as this module makes them; anything else in the store (a file
/// edited by hand) names no file here.
fn well_formed(owner: &str) -> bool {
    !owner.is_empty() && owner.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// The real check: an owner is alive while its lock file is locked.
#[derive(Debug, Clone)]
pub struct OwnerFiles {
    dir: PathBuf,
}

impl OwnerFiles {
    pub fn new(state_dir: &Path) -> OwnerFiles {
        OwnerFiles {
            dir: state_dir.join(OWNERS_DIR),
        }
    }

    /// Remove the files of owners that are gone (a process killed with no
    /// run going leaves one); returns how many.
    pub fn sweep(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".lock").map(str::to_string)
            })
            .filter(|owner| !self.alive(owner))
            .count()
    }
}

impl Liveness for OwnerFiles {
    /// Unlocked or missing: gone (and its file is removed). When the file
    /// cannot be checked, the owner counts as alive: a run is never taken
    /// from a process that may still be running it.
    fn alive(&self, owner: &str) -> bool {
        if !well_formed(owner) {
            return false;
        }
        let path = self.dir.join(format!("{owner}.lock"));
        let file = match OpenOptions::new().write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return false,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot check whether a run's owner is alive; leaving its runs alone");
                return true;
            }
        };
        match file.try_lock() {
            Ok(()) => {
                let _ = std::fs::remove_file(&path);
                false
            }
            Err(TryLockError::WouldBlock) => true,
            Err(TryLockError::Error(e)) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot check whether a run's owner is alive; leaving its runs alone");
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_is_alive_while_its_lease_is_held_and_gone_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lease = OwnerLease::take(dir.path()).expect("lease");
        let other = OwnerLease::take(dir.path()).expect("lease");
        assert_ne!(lease.id(), other.id());
        let files = OwnerFiles::new(dir.path());
        assert!(files.alive(lease.id()));
        let id = lease.id().to_string();
        drop(lease);
        assert!(!files.alive(&id));
        assert!(files.alive(other.id()));
        assert!(!files.alive("../../etc/passwd"));
        assert!(!files.alive("123-00000000deadbeef"));
    }

    #[test]
    fn sweep_removes_only_the_files_of_owners_that_are_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = OwnerLease::take(dir.path()).expect("lease");
        // What a killed process leaves: its file, unlocked.
        let dead = dir.path().join(OWNERS_DIR).join("1-00000000000000aa.lock");
        std::fs::write(&dead, "").expect("write");
        assert_eq!(OwnerFiles::new(dir.path()).sweep(), 1);
        assert!(!dead.exists());
        assert!(OwnerFiles::new(dir.path()).alive(live.id()));
    }
}
