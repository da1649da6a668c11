//! StopPodSandbox kills a shared-PID pod's infra process without asking the runtime and has it
//! deleted after the answer, so that RemovePodSandbox of a stopped pod needs no runtime process
//! of its own; a removal interrupted by a crash is finished by the next RemovePodSandbox or at
//! start (run as root: runc, CNI).

mod common;

use std::path::{Path, PathBuf};

use common::{entries, Daemon};
use k8s_cri::v1 as cri;
use tonic::Code;

/// A runtime handler `logged`: real runc behind a script that appends each call's arguments
/// to `<dir>/runtime-calls` first, and holds a `delete` while `<dir>/hold-delete` exists until
/// someone writes to the FIFO `<dir>/release`.
fn logged_runc(dir: &Path) -> String {
    let script = dir.join("logged-runc");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$*\" >> {calls}\ncase \" $* \" in *\" delete \"*) if [ -e {hold} ]; then read _ < {release}; fi;; esac\nexec /usr/sbin/runc \"$@\"\n",
            calls = dir.join("runtime-calls").display(),
            hold = dir.join("hold-delete").display(),
            release = dir.join("release").display(),
        ),
    )
    .expect("write runc wrapper");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .expect("chmod runc wrapper");
    format!(
        "[runtimes.logged]\npath = \"{}\"\nroot = \"{}\"\n",
        script.display(),
        dir.join("runc-logged").display()
    )
}

/// The runtime calls the wrapper saw so far, one line each.
fn runtime_calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("runtime-calls"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Deletes (on drop, also when a test fails) what is left in the wrapper's runtime root.
struct RuncRootGuard(PathBuf);

impl Drop for RuncRootGuard {
    fn drop(&mut self) {
        for id in entries(&self.0) {
            let _ = std::process::Command::new("/usr/sbin/runc")
                .arg("--root")
                .arg(&self.0)
                .args(["delete", "-f", &id])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

async fn run_logged(d: &mut Daemon, pc: &cri::PodSandboxConfig) -> String {
    d.rt.run_pod_sandbox(cri::RunPodSandboxRequest {
        config: Some(pc.clone()),
        runtime_handler: "logged".into(),
    })
    .await
    .expect("run pod")
    .into_inner()
    .pod_sandbox_id
}

async fn pod_status(d: &mut Daemon, pod: &str) -> Result<cri::PodSandboxStatus, tonic::Status> {
    d.rt.pod_sandbox_status(cri::PodSandboxStatusRequest {
        pod_sandbox_id: pod.into(),
        verbose: true,
    })
    .await
    .map(|r| r.into_inner().status.expect("status set"))
}

async fn stop(d: &mut Daemon, pod: &str) {
    d.rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: pod.into(),
    })
    .await
    .expect("stop pod");
}

async fn remove(d: &mut Daemon, pod: &str) {
    d.rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod.into(),
    })
    .await
    .expect("remove pod");
}

/// A daemon whose `logged` runtime is the wrapper of [`logged_runc`] in a new temp dir, with
/// one pod that has an infra container.
struct LoggedPod {
    dir: tempfile::TempDir,
    /// The wrapper's runtime root.
    runc_root: PathBuf,
    _guard: RuncRootGuard,
    d: Daemon,
    pc: cri::PodSandboxConfig,
    pod: String,
    infra: String,
}

/// [`LoggedPod`] with a pod named `name`.
async fn logged_infra_pod(name: &str) -> LoggedPod {
    let dir = tempfile::Builder::new()
        .prefix("crius-it-wrap-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let runc_root = dir.path().join("runc-logged");
    let guard = RuncRootGuard(runc_root.clone());
    let mut d = Daemon::start_with_config(&logged_runc(dir.path())).await;
    let pc = d.pod_config(name, true);
    let pod = run_logged(&mut d, &pc).await;
    let infra = entries(&runc_root);
    assert_eq!(infra.len(), 1, "one infra container: {infra:?}");
    let infra = infra[0].clone();
    LoggedPod {
        dir,
        runc_root,
        _guard: guard,
        d,
        pc,
        pod,
        infra,
    }
}

fn record(d: &Daemon, pod: &str) -> PathBuf {
    d.dir
        .path()
        .join("root/state/pods")
        .join(format!("{pod}.json"))
}

#[tokio::test]
async fn stop_kills_the_infra_without_the_runtime_and_it_is_deleted_once() {
    let LoggedPod {
        dir,
        runc_root,
        _guard,
        mut d,
        pc,
        pod,
        infra,
    } = logged_infra_pod("infra").await;
    assert!(d.dir.path().join("run/containers").join(&infra).exists());

    let before_stop = runtime_calls(dir.path()).len();
    stop(&mut d, &pod).await;
    let st = pod_status(&mut d, &pod)
        .await
        .expect("status of stopped pod");
    assert_eq!(st.state, cri::PodSandboxState::SandboxNotready as i32);
    // A second stop and the removal: the removal waits for the infra's deletion, which the
    // first stop began.
    stop(&mut d, &pod).await;
    remove(&mut d, &pod).await;
    // The recorded infra PID was killed directly: the runtime was only asked to delete, once.
    let calls = runtime_calls(dir.path());
    let stop_calls = &calls[before_stop..];
    assert_eq!(stop_calls.len(), 1, "{stop_calls:?}");
    assert!(
        stop_calls[0].contains(" delete ") && stop_calls[0].ends_with(&infra),
        "{stop_calls:?}"
    );
    assert_eq!(
        entries(&runc_root),
        Vec::<String>::new(),
        "runtime state left"
    );
    assert!(!d.dir.path().join("run/containers").join(&infra).exists());
    let e = pod_status(&mut d, &pod).await.expect_err("removed");
    assert_eq!(e.code(), Code::NotFound);
    assert!(!record(&d, &pod).exists());

    // The name is free again at once.
    let again = run_logged(&mut d, &pc).await;
    assert_ne!(again, pod);
    d.stop_and_remove_pod(&again).await;
    assert_eq!(entries(&runc_root), Vec::<String>::new());
    // The pod files go after the answer; the daemon's shutdown waits for that.
    d.stop_only();
    assert_eq!(
        entries(&d.dir.path().join("run/pods")),
        Vec::<String>::new()
    );
    d.shutdown().await;
}

#[tokio::test]
async fn removal_cut_short_by_a_crash_is_finished_by_the_next_remove() {
    let mut d = Daemon::start().await;
    let pc = d.pod_config("cut", true);
    let pod = d.run_pod(&pc).await;
    stop(&mut d, &pod).await;
    // What a removal killed after deleting the pod files but before the record leaves.
    d.kill_only();
    let files = d.dir.path().join("run/pods").join(&pod);
    std::fs::remove_dir_all(&files).expect("remove pod files");
    d.start_again().await;
    let st = pod_status(&mut d, &pod).await.expect("pod still recorded");
    assert_eq!(st.state, cri::PodSandboxState::SandboxNotready as i32);
    remove(&mut d, &pod).await;
    let e = pod_status(&mut d, &pod).await.expect_err("removed");
    assert_eq!(e.code(), Code::NotFound);
    assert!(!record(&d, &pod).exists());
    // Its name is free.
    let again = d.run_pod(&pc).await;
    d.stop_and_remove_pod(&again).await;
    d.shutdown().await;
}

#[tokio::test]
async fn stop_of_a_pod_whose_infra_process_died_deletes_it_through_the_runtime() {
    let mut d = Daemon::start().await;
    let pc = d.pod_config("dead", true);
    let pod = d.run_pod(&pc).await;
    let infra = entries(&d.dir.path().join("runc"));
    assert_eq!(infra.len(), 1, "one infra container: {infra:?}");
    let infra = infra[0].clone();
    let pid: i32 = std::fs::read_to_string(
        d.dir
            .path()
            .join("run/containers")
            .join(&infra)
            .join("pidfile"),
    )
    .expect("infra pidfile")
    .trim()
    .parse()
    .expect("pid");
    // The infra process ends on its own: the recorded PID is stale when the pod is stopped.
    // SAFETY: kill(2) of this test's own pod's pause process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let exit_record = d.dir.path().join("run/exits").join(&infra);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !exit_record.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no exit record of the killed infra"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    d.stop_and_remove_pod(&pod).await;
    assert_eq!(entries(&d.dir.path().join("runc")), Vec::<String>::new());
    assert!(!exit_record.exists());
    assert!(!d.dir.path().join("run/containers").join(&infra).exists());
    d.shutdown().await;
}

#[tokio::test]
async fn files_of_a_removal_cut_short_after_the_record_are_deleted_at_start() {
    let mut d = Daemon::start().await;
    let pc = d.pod_config("late", false);
    let pod = d.run_pod(&pc).await;
    stop(&mut d, &pod).await;
    // What a removal killed after deleting the record (its point of no return) leaves: the
    // pod files, which are deleted after the answer.
    d.kill_only();
    std::fs::remove_file(record(&d, &pod)).expect("remove the pod record");
    let files = d.dir.path().join("run/pods").join(&pod);
    assert!(files.exists(), "pod files {} before", files.display());
    d.start_again().await;
    assert!(!files.exists(), "pod files {} left", files.display());
    let e = pod_status(&mut d, &pod).await.expect_err("removed");
    assert_eq!(e.code(), Code::NotFound);
    // Its name is free.
    let again = d.run_pod(&pc).await;
    d.stop_and_remove_pod(&again).await;
    d.shutdown().await;
}

#[tokio::test]
async fn an_infra_deletion_cut_short_by_a_crash_is_finished_by_the_removal() {
    let LoggedPod {
        dir,
        runc_root,
        _guard,
        mut d,
        pod,
        infra,
        ..
    } = logged_infra_pod("held").await;
    // The runtime's delete of the infra is held: the stop answers all the same.
    nix::unistd::mkfifo(&dir.path().join("release"), nix::sys::stat::Mode::S_IRWXU)
        .expect("mkfifo");
    std::fs::write(dir.path().join("hold-delete"), b"").expect("hold deletes");
    stop(&mut d, &pod).await;
    // The daemon dies with the deletion pending (a held wrapper is killed with it).
    d.kill_only();
    for pid in common::processes_under(dir.path()) {
        // SAFETY: kill(2) of a runtime wrapper this test's daemon started.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    std::fs::remove_file(dir.path().join("hold-delete")).expect("release deletes");
    assert_eq!(
        entries(&runc_root),
        vec![infra.clone()],
        "the deletion did not happen"
    );
    d.start_again().await;
    let st = pod_status(&mut d, &pod)
        .await
        .expect("stopped pod still recorded");
    assert_eq!(st.state, cri::PodSandboxState::SandboxNotready as i32);
    remove(&mut d, &pod).await;
    assert_eq!(
        entries(&runc_root),
        Vec::<String>::new(),
        "runtime state left"
    );
    assert!(!d.dir.path().join("run/containers").join(&infra).exists());
    assert!(!d.dir.path().join("run/exits").join(&infra).exists());
    let e = pod_status(&mut d, &pod).await.expect_err("removed");
    assert_eq!(e.code(), Code::NotFound);
    d.shutdown().await;
}
