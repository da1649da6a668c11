//! In-memory and on-disk state of pods and containers.
//!
//! Every pod and container is an [`Entry`]: a snapshot of its record behind a short-lived
//! `std::sync::RwLock` (readers such as List/Status never wait on a runtime call) plus an
//! operation lock (`tokio::sync::Mutex`) that serializes the mutating calls on that one object.
//! No lock is global across a runtime call. Names are reserved explicitly.

pub mod records;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

pub use records::{ContainerRecord, ContainerState, PodRecord, PodState, Stage};
pub use store::{Kind, Store};

use crate::error::{Error, Result};

/// One pod or container: a record snapshot and its operation lock.
#[derive(Debug)]
pub struct Entry<T> {
    record: RwLock<T>,
    /// Serializes mutating operations on this object.
    pub op: tokio::sync::Mutex<()>,
}

impl<T: Clone> Entry<T> {
    /// Wraps a record.
    pub fn new(record: T) -> Arc<Self> {
        Arc::new(Entry {
            record: RwLock::new(record),
            op: tokio::sync::Mutex::new(()),
        })
    }

    /// A copy of the current record.
    pub fn get(&self) -> T {
        match self.record.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Calls `f` with the current record under the read lock, without copying it (for readers
    /// such as List that need a few fields of many records).
    pub fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        match self.record.read() {
            Ok(g) => f(&g),
            Err(p) => f(&p.into_inner()),
        }
    }

    /// Applies `f` under the write lock; when it returns true (changed), `persist` is called
    /// with the new record still under the lock and the new record is returned.
    pub fn update<F, P>(&self, f: F, persist: P) -> Result<Option<T>>
    where
        F: FnOnce(&mut T) -> bool,
        P: FnOnce(&T) -> Result<()>,
    {
        let mut g = match self.record.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut next = g.clone();
        if !f(&mut next) {
            return Ok(None);
        }
        persist(&next)?;
        *g = next.clone();
        Ok(Some(next))
    }

    /// Replaces the in-memory record (callers persist first).
    pub fn set(&self, record: T) {
        match self.record.write() {
            Ok(mut g) => *g = record,
            Err(p) => *p.into_inner() = record,
        }
    }
}

/// The index of all pods and containers, the name reservations and the durable store.
#[derive(Debug)]
pub struct State {
    /// Durable records.
    pub store: Store,
    pods: RwLock<HashMap<String, Arc<Entry<PodRecord>>>>,
    containers: RwLock<HashMap<String, Arc<Entry<ContainerRecord>>>>,
    names: Mutex<HashMap<String, String>>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// A name reservation that is released on drop unless committed.
#[derive(Debug)]
pub struct NameGuard<'a> {
    state: &'a State,
    name: String,
    committed: bool,
}

impl NameGuard<'_> {
    /// Keeps the reservation.
    pub fn commit(mut self) {
        self.committed = true;
    }
}

impl Drop for NameGuard<'_> {
    fn drop(&mut self) {
        if !self.committed {
            self.state.release_name(&self.name);
        }
    }
}

impl State {
    /// An empty state over a store.
    pub fn new(store: Store) -> State {
        State {
            store,
            pods: RwLock::new(HashMap::new()),
            containers: RwLock::new(HashMap::new()),
            names: Mutex::new(HashMap::new()),
        }
    }

    /// Reserves `name` for `id`; `AlreadyExists` when taken by another ID. The reservation is
    /// made durable by the record that carries the name (pods and containers write theirs
    /// before they make anything), and recovery restores names from those records: no file
    /// of its own (one durable write less per RunPodSandbox and CreateContainer).
    pub fn reserve_name(&self, name: &str, id: &str) -> Result<NameGuard<'_>> {
        {
            let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(owner) = names.get(name) {
                if owner != id {
                    return Err(Error::AlreadyExists(format!(
                        "name {name:?} is reserved for {owner}"
                    )));
                }
            }
            names.insert(name.to_string(), id.to_string());
        }
        Ok(NameGuard {
            state: self,
            name: name.to_string(),
            committed: false,
        })
    }

    /// Records a reservation found on disk at startup.
    pub fn restore_name(&self, name: &str, id: &str) {
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), id.to_string());
    }

    /// Releases a name (a name file left by an older crius first, then in memory); idempotent.
    pub fn release_name(&self, name: &str) {
        if let Err(e) = self.store.delete(Kind::Name, name) {
            tracing::warn!(name, error = %e, "release name");
        }
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    /// Releases `name` only if `id` holds it: a container whose removal finishes in the
    /// background must not release the name a newer container of the same name took since.
    pub fn release_name_of(&self, name: &str, id: &str) {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if names.get(name).is_some_and(|owner| owner != id) {
            return;
        }
        if let Err(e) = self.store.delete(Kind::Name, name) {
            tracing::warn!(name, error = %e, "release name");
        }
        names.remove(name);
    }

    /// Adds a pod to the index.
    pub fn insert_pod(&self, rec: PodRecord) -> Arc<Entry<PodRecord>> {
        let e = Entry::new(rec.clone());
        write(&self.pods).insert(rec.id.clone(), e.clone());
        e
    }

    /// Adds a container to the index.
    pub fn insert_container(&self, rec: ContainerRecord) -> Arc<Entry<ContainerRecord>> {
        let e = Entry::new(rec.clone());
        write(&self.containers).insert(rec.id.clone(), e.clone());
        e
    }

    /// Drops a pod from the index.
    pub fn forget_pod(&self, id: &str) {
        write(&self.pods).remove(id);
    }

    /// Drops a container from the index.
    pub fn forget_container(&self, id: &str) {
        write(&self.containers).remove(id);
    }

    /// Finds a pod by ID or unique ID prefix.
    pub fn pod(&self, id: &str) -> Result<Arc<Entry<PodRecord>>> {
        lookup(&read(&self.pods), id, "pod sandbox")
    }

    /// Finds a container by ID or unique ID prefix.
    pub fn container(&self, id: &str) -> Result<Arc<Entry<ContainerRecord>>> {
        lookup(&read(&self.containers), id, "container")
    }

    /// All pods.
    pub fn pods(&self) -> Vec<Arc<Entry<PodRecord>>> {
        read(&self.pods).values().cloned().collect()
    }

    /// All containers.
    pub fn containers(&self) -> Vec<Arc<Entry<ContainerRecord>>> {
        read(&self.containers).values().cloned().collect()
    }

    /// The containers of one pod.
    pub fn pod_containers(&self, pod_id: &str) -> Vec<Arc<Entry<ContainerRecord>>> {
        read(&self.containers)
            .values()
            .filter(|c| c.read(|r| r.pod_id == pod_id))
            .cloned()
            .collect()
    }
}

fn lookup<T>(map: &HashMap<String, Arc<Entry<T>>>, id: &str, what: &str) -> Result<Arc<Entry<T>>> {
    if id.is_empty() {
        return Err(Error::InvalidArgument(format!("{what} ID is empty")));
    }
    if let Some(e) = map.get(id) {
        return Ok(e.clone());
    }
    let mut found = map.iter().filter(|(k, _)| k.starts_with(id));
    match (found.next(), found.next()) {
        (Some((_, e)), None) => Ok(e.clone()),
        (Some(_), Some(_)) => Err(Error::InvalidArgument(format!(
            "{what} ID prefix {id:?} is ambiguous"
        ))),
        _ => Err(Error::NotFound(format!("{what} {id:?} not found"))),
    }
}

/// A new random 64-hex-character ID.
pub fn new_id() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// Now, in ns since the epoch.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_reserve_release() {
        let t = tempfile::tempdir().expect("tempdir");
        let s = State::new(Store::open(t.path()).expect("open"));
        let g = s.reserve_name("n", "a").expect("reserve");
        let e = s.reserve_name("n", "b").expect_err("taken");
        assert!(matches!(e, Error::AlreadyExists(_)));
        drop(g);
        s.reserve_name("n", "b").expect("released on drop").commit();
        let e = s.reserve_name("n", "c").expect_err("committed");
        assert!(matches!(e, Error::AlreadyExists(_)));
        // The record carrying the name makes it durable: no name file.
        let on_disk: Vec<(String, (String, String))> = s.store.all(Kind::Name).expect("all");
        assert!(on_disk.is_empty());
        s.release_name("n");
        s.reserve_name("n", "c").expect("released").commit();
        // A name file written by an older crius goes with the release.
        s.store
            .put(Kind::Name, "n", &("n", "c"))
            .expect("legacy name file");
        s.release_name("n");
        assert!(s
            .store
            .all::<(String, String)>(Kind::Name)
            .expect("all")
            .is_empty());
        s.reserve_name("n", "d").expect("released again").commit();
        // Only the holder releases by ID: the old owner's late release keeps the new one's.
        s.release_name_of("n", "c");
        s.reserve_name("n", "e").expect_err("d still holds it");
        s.release_name_of("n", "d");
        s.reserve_name("n", "e")
            .expect("released by its holder")
            .commit();
    }

    #[test]
    fn ids_are_64_hex() {
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, new_id());
    }
}
