//! RemoveContainer answers before the slow cleanup (runtime delete, rootfs, bundle, record),
//! which finishes in the background: the container is gone from List/Status at once, its name
//! is free at once, a pod removal and the daemon's shutdown wait for the cleanup, and a daemon
//! killed before the cleanup ended finishes it at the next start.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Daemon;
use k8s_cri::v1 as cri;
use tonic::Code;

/// Where the daemon keeps a container's things (see common::Daemon's arguments).
struct Leftovers {
    record: PathBuf,
    storage: PathBuf,
    bundle: PathBuf,
    runc_state: PathBuf,
}

impl Leftovers {
    fn of(d: &Daemon, id: &str) -> Leftovers {
        let dir = d.dir.path();
        Leftovers {
            record: dir.join(format!("root/state/containers/{id}.json")),
            storage: dir.join(format!("root/storage/containers/{id}")),
            bundle: dir.join(format!("run/containers/{id}")),
            runc_state: dir.join(format!("runc/{id}")),
        }
    }

    fn existing(&self) -> Vec<&Path> {
        [&self.record, &self.storage, &self.bundle, &self.runc_state]
            .into_iter()
            .map(PathBuf::as_path)
            .filter(|p| p.exists())
            .collect()
    }
}

async fn listed(d: &mut Daemon, id: &str) -> bool {
    d.rt.list_containers(cri::ListContainersRequest::default())
        .await
        .expect("list containers")
        .into_inner()
        .containers
        .iter()
        .any(|c| c.id == id)
}

async fn remove(d: &mut Daemon, id: &str) {
    d.rt.remove_container(cri::RemoveContainerRequest {
        container_id: id.into(),
    })
    .await
    .expect("remove container");
}

async fn assert_gone(d: &mut Daemon, id: &str) {
    assert!(!listed(d, id).await, "{id} still listed");
    let e =
        d.rt.container_status(cri::ContainerStatusRequest {
            container_id: id.into(),
            verbose: false,
        })
        .await
        .expect_err("status of a removed container");
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
}

async fn create_or_status(
    d: &mut Daemon,
    pod: &str,
    pod_config: &cri::PodSandboxConfig,
    name: &str,
) -> Result<String, tonic::Status> {
    d.rt.create_container(cri::CreateContainerRequest {
        pod_sandbox_id: pod.into(),
        config: Some(Daemon::container_config(name, &["sleep", "3600"])),
        sandbox_config: Some(pod_config.clone()),
    })
    .await
    .map(|r| r.into_inner().container_id)
}

fn chattr(flag: &str, path: &Path) {
    let out = Command::new("chattr")
        .arg(flag)
        .arg(path)
        .output()
        .expect("run chattr");
    assert!(
        out.status.success(),
        "chattr {flag} {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Clears the immutable flag again, also when the test fails half-way.
struct Immutable(PathBuf);

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[tokio::test]
async fn removal_answers_first_and_the_name_is_free_at_once() {
    let mut d = Daemon::start().await;
    d.pull_busybox().await;
    let pc = d.pod_config("rm-bg", false);
    let pod = d.run_pod(&pc).await;

    // A running container (removed without a stop first) and an exited one.
    let running = d.run_sleeper(&pod, &pc, "web").await;
    let exited = d
        .create(&pod, &pc, Daemon::container_config("job", &["true"]))
        .await;
    d.start_ctr(&exited).await;
    d.wait_exited(&exited).await;

    for (id, name) in [(running.clone(), "web"), (exited.clone(), "job")] {
        remove(&mut d, &id).await;
        assert_gone(&mut d, &id).await;
        // Removing it again is a no-op, also while its cleanup may still run.
        remove(&mut d, &id).await;
        // The name is free at once: a re-create does not collide with the pending cleanup.
        let again = create_or_status(&mut d, &pod, &pc, name)
            .await
            .expect("re-create with the name of a removed container");
        assert_ne!(again, id);
        assert!(listed(&mut d, &again).await);
        assert_eq!(
            create_or_status(&mut d, &pod, &pc, name)
                .await
                .expect_err("the new container holds the name")
                .code(),
            Code::AlreadyExists
        );
    }

    // The shutdown waits for the cleanups still running (SIGTERM right after a removal).
    let last = d.run_sleeper(&pod, &pc, "last").await;
    remove(&mut d, &last).await;
    d.stop_only();
    let left = Leftovers::of(&d, &last);
    assert!(
        left.existing().is_empty(),
        "left by {last} after the shutdown: {:?}",
        left.existing()
    );
    d.start_again().await;

    // The pod's removal waits for its containers' cleanups.
    d.stop_and_remove_pod(&pod).await;
    for id in [&running, &exited] {
        let left = Leftovers::of(&d, id);
        assert!(
            left.existing().is_empty(),
            "left by {id}: {:?}",
            left.existing()
        );
    }
    d.shutdown().await;
}

#[tokio::test]
async fn a_cleanup_cut_short_by_a_killed_daemon_is_finished_at_start() {
    let mut d = Daemon::start().await;
    d.pull_busybox().await;
    let pc = d.pod_config("rm-kill", false);
    let pod = d.run_pod(&pc).await;
    let old = d.run_sleeper(&pod, &pc, "web").await;
    let left = Leftovers::of(&d, &old);

    // An immutable file in the writable layer: the background cleanup cannot delete the
    // container's storage, so its record (stage Removing) must stay for the next start.
    let pin = left.storage.join("upper/pinned");
    std::fs::write(&pin, b"x").expect("write into the upper dir");
    chattr("+i", &pin);
    let guard = Immutable(pin.clone());

    remove(&mut d, &old).await;
    assert_gone(&mut d, &old).await;
    // The removal was durable before the answer.
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&left.record).expect("record of the removal"))
            .expect("record json");
    assert_eq!(rec["stage"], "Removing", "{rec}");
    let new = create_or_status(&mut d, &pod, &pc, "web")
        .await
        .expect("the name is free at once");

    // Killed during or after the (failing) cleanup: the record must still be there.
    d.kill_only();
    assert!(left.record.exists(), "the removal's record went too early");
    chattr("-i", &pin);
    drop(guard);

    d.start_again().await;
    // Recovery finished the removal before the daemon served again.
    assert!(
        left.existing().is_empty(),
        "left after recovery: {:?}",
        left.existing()
    );
    assert_gone(&mut d, &old).await;
    // The new container kept its name through the restart; the old record did not take it.
    assert!(listed(&mut d, &new).await);
    assert_eq!(
        create_or_status(&mut d, &pod, &pc, "web")
            .await
            .expect_err("the new container still holds the name")
            .code(),
        Code::AlreadyExists
    );
    d.shutdown().await;
}
