//! Container removals finished in the background.
//!
//! RemoveContainer answers once the removal is durable (the record in stage `Removing`, which
//! recovery finishes) and the container has left the index and released its name; the slow part
//! (runtime delete, rootfs unmount and deletion, bundle, record) runs afterwards. This registry
//! lets whoever depends on that part wait for it: a pod's removal for its containers (their
//! cgroups live under the pod's), the daemon's shutdown for all of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

/// The pending background cleanups, by container ID.
#[derive(Debug, Default)]
pub struct Cleanups {
    pending: Arc<Mutex<HashMap<String, Pending>>>,
}

#[derive(Debug)]
struct Pending {
    pod_id: String,
    /// Closed (its sender dropped) when the cleanup ends.
    done: watch::Receiver<()>,
}

/// A registered cleanup; dropping it (when the cleanup ends, fails, panics or is cancelled)
/// unregisters it and wakes its waiters.
#[derive(Debug)]
pub struct CleanupGuard {
    pending: Arc<Mutex<HashMap<String, Pending>>>,
    id: String,
    _done: watch::Sender<()>,
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        lock(&self.pending).remove(&self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Cleanups {
    /// Registers the cleanup of container `id` of pod `pod_id`. Register it before the
    /// container leaves the index, so that anyone who no longer sees the container sees this.
    pub fn begin(&self, id: &str, pod_id: &str) -> CleanupGuard {
        let (tx, rx) = watch::channel(());
        lock(&self.pending).insert(
            id.to_string(),
            Pending {
                pod_id: pod_id.to_string(),
                done: rx,
            },
        );
        CleanupGuard {
            pending: self.pending.clone(),
            id: id.to_string(),
            _done: tx,
        }
    }

    /// How many cleanups are pending.
    pub fn len(&self) -> usize {
        lock(&self.pending).len()
    }

    /// Whether no cleanup is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until the cleanups of `pod_id`'s containers that are pending now have ended.
    pub async fn wait_pod(&self, pod_id: &str) {
        let waits: Vec<_> = lock(&self.pending)
            .values()
            .filter(|p| p.pod_id == pod_id)
            .map(|p| p.done.clone())
            .collect();
        wait(waits).await;
    }

    /// Waits at most `limit` until the cleanups pending now have ended; false on timeout.
    pub async fn wait_all(&self, limit: Duration) -> bool {
        let waits: Vec<_> = lock(&self.pending)
            .values()
            .map(|p| p.done.clone())
            .collect();
        tokio::time::timeout(limit, wait(waits)).await.is_ok()
    }
}

async fn wait(waits: Vec<watch::Receiver<()>>) {
    for mut rx in waits {
        // Nothing is ever sent: `changed` returns (an error) once the guard is dropped.
        while rx.changed().await.is_ok() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_end_when_the_guards_drop() {
        let c = Arc::new(Cleanups::default());
        let a = c.begin("a1", "pod-a");
        let b = c.begin("b1", "pod-b");
        assert_eq!(c.len(), 2);

        let c2 = c.clone();
        let wait_a = tokio::spawn(async move { c2.wait_pod("pod-a").await });
        tokio::task::yield_now().await;
        assert!(!wait_a.is_finished(), "pod-a has a pending cleanup");
        // Another pod's cleanup does not hold pod-a's waiters, nor a pod without any.
        c.wait_pod("pod-c").await;
        drop(a);
        wait_a.await.expect("wait for pod-a");
        assert_eq!(c.len(), 1);

        assert!(
            !c.wait_all(Duration::from_millis(1)).await,
            "b1 still pending"
        );
        let c3 = c.clone();
        let wait_all = tokio::spawn(async move { c3.wait_all(Duration::from_secs(60)).await });
        tokio::task::yield_now().await;
        assert!(!wait_all.is_finished());
        drop(b);
        assert!(wait_all.await.expect("wait all"));
        assert!(c.is_empty());
    }

    #[tokio::test]
    async fn a_cancelled_cleanup_task_releases_its_waiters() {
        let c = Arc::new(Cleanups::default());
        let guard = c.begin("x", "pod");
        let task = tokio::spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        let c2 = c.clone();
        let waiter = tokio::spawn(async move { c2.wait_pod("pod").await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        task.abort();
        waiter.await.expect("waiter ends with the aborted task");
        assert!(c.is_empty());
    }
}
