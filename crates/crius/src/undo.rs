//! Rollback guards: steps register how to undo themselves; unless committed, the undo actions
//! run in reverse order (awaited by `rollback`, or spawned on drop if the future was dropped).

use futures::future::BoxFuture;

type Action = (String, BoxFuture<'static, crate::error::Result<()>>);

/// A stack of undo actions.
#[derive(Default)]
pub struct Undo {
    actions: Vec<Action>,
}

impl Undo {
    /// An empty stack.
    pub fn new() -> Undo {
        Undo::default()
    }

    /// Registers how to undo the step just done.
    pub fn push<F>(&mut self, what: impl Into<String>, f: F)
    where
        F: std::future::Future<Output = crate::error::Result<()>> + Send + 'static,
    {
        self.actions.push((what.into(), Box::pin(f)));
    }

    /// Keeps everything: drops the undo actions without running them.
    pub fn commit(mut self) {
        self.actions.clear();
    }

    /// Runs the undo actions in reverse order, logging failures.
    pub async fn rollback(mut self) {
        run(std::mem::take(&mut self.actions)).await;
    }
}

async fn run(mut actions: Vec<Action>) {
    while let Some((what, f)) = actions.pop() {
        if let Err(e) = f.await {
            tracing::warn!(step = %what, error = %e, "rollback step failed");
        }
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if self.actions.is_empty() {
            return;
        }
        let actions = std::mem::take(&mut self.actions);
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(run(actions));
            }
            Err(_) => tracing::error!(n = actions.len(), "rollback dropped outside a runtime"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn reverse_order_unless_committed() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut u = Undo::new();
        for i in 0..3 {
            let l = log.clone();
            u.push(format!("step {i}"), async move {
                l.lock().expect("lock").push(i);
                Ok(())
            });
        }
        u.rollback().await;
        assert_eq!(*log.lock().expect("lock"), vec![2, 1, 0]);

        let mut u = Undo::new();
        let l = log.clone();
        u.push("x", async move {
            l.lock().expect("lock").push(9);
            Ok(())
        });
        u.commit();
        assert_eq!(log.lock().expect("lock").len(), 3);
    }
}
