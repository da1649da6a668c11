//! Integration tests (as root) against real runc and crun, with Debian's conmon and our
//! crius-monitor: every scenario runs for each {runtime} x {monitor} pair.

mod common;

use std::time::Duration;

use common::{alive, list, processes_mentioning, stat_field, Fixture, Monitor};
use crius_oci::{ContainerState, ErrorCode, OciError, Signal};

const LONG: Duration = Duration::from_secs(30);

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

async fn create_start_state(f: Fixture) {
    let id = f.id("css");
    let bundle = f.bundle(&id, &["sleep", "1000"]);
    let created = f.rt.create(&f.opts(&id, &bundle)).await.expect("create");
    assert!(created.pid > 0);
    assert!(alive(created.pid));
    let st = f.rt.state(&id).await.expect("state");
    assert_eq!(st.status, "created");
    assert_eq!(st.pid, created.pid);
    let status = f.rt.status(&id, Some(&f.persist_dir(&id))).await.unwrap();
    assert_eq!(status.state, ContainerState::Created);
    assert!(status.exit.is_none());

    f.rt.start(&id).await.expect("start");
    let status = f.rt.status(&id, Some(&f.persist_dir(&id))).await.unwrap();
    assert_eq!(status.state, ContainerState::Running);
    assert_eq!(status.pid, Some(created.pid));

    // The monitor lives on its own: not our child, not in our session.
    let mpid = created.monitor_pid.expect("monitor pid file");
    assert!(alive(mpid));
    assert_ne!(stat_field(mpid, 2), Some(std::process::id() as i32));
    assert_ne!(
        stat_field(mpid, 4),
        stat_field(std::process::id() as i32, 4)
    );

    f.rt.stop(&id, Duration::from_secs(5), None)
        .await
        .expect("stop");
    assert!(!alive(created.pid));
    let rec =
        f.rt.exit_record(&id, Some(&f.persist_dir(&id)))
            .unwrap()
            .expect("exit record");
    assert_eq!(
        rec.exit_code, 137,
        "sleep as pid 1 ignores SIGTERM, so SIGKILL"
    );
    assert!(!rec.oom_killed);
    f.rt.delete(&id).await.expect("delete");
    assert!(f.rt.state(&id).await.unwrap_err().is_not_found());
}

async fn exec_sync_outputs(f: Fixture) {
    let id = f.id("exs");
    f.run(&id, &["sleep", "1000"]).await;
    let out =
        f.rt.exec_sync(
            &id,
            &strings(&["sh", "-c", "echo out; echo err >&2; exit 3"]),
            Some(LONG),
        )
        .await
        .expect("exec_sync");
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.exit_code, 3);
    let ok =
        f.rt.exec_sync(&id, &strings(&["true"]), None)
            .await
            .unwrap();
    assert_eq!(ok.exit_code, 0);
    assert!(ok.stdout.is_empty());

    // Output beyond 16 MiB is dropped without blocking the command.
    let big =
        f.rt.exec_sync(
            &id,
            &strings(&["sh", "-c", "head -c 20000000 /dev/zero; echo done >&2"]),
            Some(LONG),
        )
        .await
        .unwrap();
    assert_eq!(big.stdout.len(), crius_oci::EXEC_OUTPUT_CAP);
    assert!(big.stdout_truncated);
    assert_eq!(big.stderr, b"done\n");
    assert_eq!(big.exit_code, 0);
    f.rt.delete(&id).await.unwrap();
}

async fn exec_sync_timeout_kills(f: Fixture) {
    let id = f.id("ext");
    f.run(&id, &["sleep", "1000"]).await;
    let marker = format!("{}", 900_000 + (std::process::id() % 90_000));
    let err =
        f.rt.exec_sync(
            &id,
            &strings(&["sleep", &marker]),
            Some(Duration::from_millis(500)),
        )
        .await
        .expect_err("must time out");
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.code(), ErrorCode::DeadlineExceeded);
    assert!(
        processes_mentioning(&format!("sleep {marker}")).is_empty(),
        "the timed-out command is still running"
    );
    // The container itself is untouched.
    let st = f.rt.state(&id).await.unwrap();
    assert_eq!(st.status, "running");
    f.rt.delete(&id).await.unwrap();
}

async fn stop_escalates_to_sigkill(f: Fixture) {
    let id = f.id("stk");
    let pid = f
        .run(
            &id,
            &["sh", "-c", "trap '' TERM; while :; do sleep 1; done"],
        )
        .await;
    f.rt.stop(&id, Duration::from_millis(300), None)
        .await
        .expect("stop");
    assert!(!alive(pid));
    let rec = f.rt.exit_record(&id, None).unwrap().expect("exit record");
    assert_eq!(rec.exit_code, 137);
    let st = f.rt.status(&id, None).await.unwrap();
    assert_eq!(st.state, ContainerState::Stopped);
    f.rt.delete(&id).await.unwrap();
}

async fn stop_signal_is_honoured(f: Fixture) {
    let id = f.id("sts");
    let pid = f
        .run(
            &id,
            &["sh", "-c", "trap 'exit 7' USR1; while :; do sleep 1; done"],
        )
        .await;
    // Until the shell has run `trap`, USR1 would kill it (exit 138): wait for the handler.
    assert!(
        wait_signal_caught(pid, libc::SIGUSR1),
        "the shell never installed its USR1 trap"
    );
    f.rt.stop(&id, LONG, Some(Signal::parse("SIGUSR1").unwrap()))
        .await
        .expect("stop");
    assert_eq!(f.rt.exit_record(&id, None).unwrap().unwrap().exit_code, 7);
    f.rt.delete(&id).await.unwrap();
}

async fn exit_code_recorded_and_stop_of_stopped(f: Fixture) {
    let id = f.id("e42");
    f.run(&id, &["sh", "-c", "exit 42"]).await;
    let rec =
        f.rt.wait_exit(&id, Some(&f.persist_dir(&id)), LONG)
            .await
            .expect("exit");
    assert_eq!(rec.exit_code, 42);
    assert!(!rec.oom_killed);
    let st = f.rt.status(&id, Some(&f.persist_dir(&id))).await.unwrap();
    assert_eq!(st.state, ContainerState::Stopped);
    assert_eq!(st.pid, None);
    // Exec into a stopped container is the runtime's refusal, not an exit code.
    let err =
        f.rt.exec_sync(&id, &strings(&["true"]), Some(LONG))
            .await
            .unwrap_err();
    assert!(
        matches!(
            err.code(),
            ErrorCode::FailedPrecondition | ErrorCode::NotFound
        ),
        "{err:?}"
    );
    // Stopping a stopped container succeeds, twice.
    f.rt.stop(&id, Duration::from_secs(1), None)
        .await
        .expect("stop stopped");
    f.rt.stop(&id, Duration::from_secs(1), None)
        .await
        .expect("stop stopped again");
    assert_eq!(f.rt.exit_record(&id, None).unwrap().unwrap().exit_code, 42);
    // Delete is idempotent.
    f.rt.delete(&id).await.expect("delete");
    f.rt.delete(&id).await.expect("delete again");
    f.rt.delete(&f.id("never-created"))
        .await
        .expect("delete unknown");
    f.rt.stop(&id, Duration::from_secs(1), None)
        .await
        .expect("stop deleted");
    assert!(f.rt.status(&id, None).await.unwrap_err().is_not_found());
    assert!(!f.base.path().join("exits").join(&id).exists());
}

async fn oom_kill_is_recorded(f: Fixture) {
    let id = f.id("oom");
    // The shell (pid 1) grows a variable far past a 16 MiB limit.
    let bundle = f.bundle_with(
        &id,
        &[
            "sh",
            "-c",
            "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}",
        ],
        |spec| {
            let res: oci_spec::runtime::LinuxResources =
                serde_json::from_str(r#"{"memory":{"limit":16777216}}"#).unwrap();
            let mut linux = spec.linux().clone().unwrap();
            linux.set_resources(Some(res));
            spec.set_linux(Some(linux));
        },
    );
    let persist = f.persist_dir(&id);
    f.rt.create(&f.opts(&id, &bundle)).await.expect("create");
    f.rt.start(&id).await.unwrap();
    let rec =
        f.rt.wait_exit(&id, Some(&persist), LONG)
            .await
            .expect("exit");
    assert_eq!(rec.exit_code, 137, "{rec:?}");
    assert!(rec.oom_killed, "{rec:?}");
    f.rt.delete(&id).await.unwrap();
}

async fn exit_recorded_after_starter_is_gone(f: Fixture) {
    let id = f.id("orph");
    let bundle = f.bundle(&id, &["sleep", "1000"]);
    let created = f.rt.create(&f.opts(&id, &bundle)).await.expect("create");
    f.rt.start(&id).await.unwrap();
    let mpid = created.monitor_pid.expect("monitor pid");
    // The process we spawned (the monitor's first process) has exited; the monitor was
    // re-parented away from us and runs in its own session.
    let me = std::process::id() as i32;
    assert_ne!(stat_field(mpid, 2), Some(me));
    assert_ne!(stat_field(mpid, 4), stat_field(me, 4));
    assert!(alive(created.pid));
    // A later exit is still recorded by the monitor.
    f.rt.kill(&id, Signal::KILL).await.unwrap();
    let rec = f.rt.wait_exit(&id, None, LONG).await.expect("exit record");
    assert_eq!(rec.exit_code, 137);
    f.rt.delete(&id).await.unwrap();
    assert!(!alive(mpid) || stat_field(mpid, 2).is_none());
}

async fn failed_create_leaves_nothing(f: Fixture) {
    let id = f.id("bad");
    let bundle = f.bundle_with(&id, &["sleep", "1"], |spec| {
        let mut root = spec.root().clone().unwrap();
        root.set_path("no-such-rootfs".into());
        spec.set_root(Some(root));
    });
    let before = list(&bundle);
    let opts = f.opts(&id, &bundle);
    let err = f.rt.create(&opts).await.expect_err("create must fail");
    match &err {
        OciError::Runtime { stderr, step, .. } => {
            assert_eq!(*step, "create");
            assert!(!stderr.is_empty());
            assert!(
                stderr.contains("no-such-rootfs") || stderr.contains("No such file"),
                "{stderr}"
            );
        }
        other => panic!("expected the runtime's error, got {other:?}"),
    }
    assert_eq!(list(&bundle), before, "bundle changed");
    assert!(!opts.persist_dir.exists(), "persist dir left");
    assert!(!opts.log_path.exists(), "log left");
    assert!(
        !f.base.path().join("root").join(&id).exists(),
        "runtime state left"
    );
    assert!(list(&f.base.path().join("exits")).is_empty());
    assert!(list(&f.base.path().join("s")).is_empty());
    assert!(processes_mentioning(&id).is_empty(), "processes left");
    assert!(f.rt.state(&id).await.unwrap_err().is_not_found());
}

/// Whether `pid` catches `sig` (SigCgt in /proc/PID/status), waiting up to 30 s for it to
/// install the handler. The kernel offers no event for a handler being installed, so this
/// re-reads the mask every millisecond: what it waits for is the value itself.
fn wait_signal_caught(pid: i32, sig: i32) -> bool {
    let bit = 1u64 << (sig - 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let caught = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok());
        match caught {
            Some(m) if m & bit != 0 => return true,
            Some(_) => std::thread::sleep(Duration::from_millis(1)),
            None => return false, // gone
        }
    }
    false
}

/// Blocks until `pid` has exited (its pidfd turns readable), at most `ms` milliseconds.
fn wait_pid_exit(pid: i32, ms: i32) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd (or -1); no pointers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if fd < 0 {
        return true; // already gone
    }
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call; the fd is ours and closed after.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    // SAFETY: closing the pidfd opened above, once.
    unsafe { libc::close(fd) };
    n == 1
}

async fn spawned_monitor_waits_for_its_bundle(f: Fixture) {
    // The monitor starts before the bundle has its config.json; it runs the runtime only when
    // started, then everything works as with create.
    let id = f.id("spw");
    let bundle = f.base.path().join("bundles").join(&id);
    std::fs::create_dir_all(&bundle).unwrap();
    let pending =
        f.rt.spawn_create(&f.opts(&id, &bundle))
            .await
            .expect("spawn monitor");
    assert!(!processes_mentioning(&id).is_empty(), "monitor not running");
    assert!(f.rt.state(&id).await.unwrap_err().is_not_found());
    f.bundle(&id, &["sleep", "1000"]);
    let created = pending.start().await.expect("start the monitor");
    assert!(alive(created.pid));
    f.rt.start(&id).await.expect("start");
    assert_eq!(f.rt.state(&id).await.expect("state").status, "running");
    f.rt.stop(&id, Duration::ZERO, Some(Signal::KILL))
        .await
        .expect("stop");
    f.rt.delete(&id).await.expect("delete");

    // Dropped before its start: the monitor is killed at once and never creates.
    let id = f.id("spd");
    let bundle = f.bundle(&id, &["sleep", "1000"]);
    let pending =
        f.rt.spawn_create(&f.opts(&id, &bundle))
            .await
            .expect("spawn monitor");
    let monitors = processes_mentioning(&id);
    assert_eq!(monitors.len(), 1, "{monitors:?}");
    drop(pending);
    assert!(wait_pid_exit(monitors[0], 10_000), "monitor still running");
    assert!(processes_mentioning(&id).is_empty(), "processes left");
    assert!(f.rt.state(&id).await.unwrap_err().is_not_found());
}

async fn stop_by_known_pid(f: Fixture) {
    // With the init pid from create: signalled through a pidfd, the exit recorded.
    let id = f.id("skp");
    let pid = f.run(&id, &["sleep", "1000"]).await;
    // In the container's own cgroup (the check that lets stop_known skip the runtime).
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    assert!(cg.lines().any(|l| l.ends_with(&format!("/{id}"))), "{cg}");
    f.rt.stop_known(&id, pid, false, LONG, Some(Signal::KILL))
        .await
        .expect("stop known");
    assert!(!alive(pid));
    assert_eq!(f.rt.exit_record(&id, None).unwrap().unwrap().exit_code, 137);
    // Stopped already: nothing to do.
    f.rt.stop_known(&id, pid, false, LONG, None)
        .await
        .expect("stop known again");
    f.rt.delete(&id).await.unwrap();

    // A pid that is not the container's (here: this test process) is never signalled: the
    // runtime's state finds the init instead; a created container is killed outright.
    let id = f.id("skw");
    let bundle = f.bundle(&id, &["sleep", "1000"]);
    let created = f.rt.create(&f.opts(&id, &bundle)).await.expect("create");
    let me = std::process::id() as i32;
    f.rt.stop_known(&id, me, true, LONG, None)
        .await
        .expect("stop with a stranger's pid");
    assert!(!alive(created.pid));
    assert_eq!(f.rt.exit_record(&id, None).unwrap().unwrap().exit_code, 137);
    f.rt.delete(&id).await.unwrap();
}

async fn bad_ids_refused(f: Fixture) {
    let bundle = f.bundle("okbundle", &["true"]);
    for bad in ["", "../escape", "a/b", "..", "-x", "a b"] {
        let mut opts = f.opts("placeholder", &bundle);
        opts.id = bad.to_string();
        opts.persist_dir = f.base.path().join("persist").join("placeholder");
        let err = f.rt.create(&opts).await.unwrap_err();
        assert!(matches!(err, OciError::InvalidId { .. }), "{bad}: {err}");
        assert!(f.rt.state(bad).await.is_err());
        assert!(f.rt.delete(bad).await.is_err());
        assert!(f
            .rt
            .exec_sync(bad, &strings(&["true"]), None)
            .await
            .is_err());
    }
    assert!(list(&f.base.path().join("persist")).is_empty());
}

async fn pause_resume_update(f: Fixture) {
    let id = f.id("pru");
    f.run(&id, &["sleep", "1000"]).await;
    f.rt.pause(&id).await.expect("pause");
    assert_eq!(
        f.rt.status(&id, None).await.unwrap().state,
        ContainerState::Paused
    );
    f.rt.resume(&id).await.expect("resume");
    assert_eq!(
        f.rt.status(&id, None).await.unwrap().state,
        ContainerState::Running
    );
    let res: oci_spec::runtime::LinuxResources =
        serde_json::from_str(r#"{"memory":{"limit":268435456},"cpu":{"shares":512}}"#).unwrap();
    f.rt.update(&id, &res).await.expect("update");
    f.rt.delete(&id).await.unwrap();
}

async fn attach_round_trip(f: Fixture) {
    let id = f.id("att");
    let bundle = f.bundle(&id, &["cat"]);
    let mut opts = f.opts(&id, &bundle);
    opts.stdin = true;
    opts.stdin_once = true;
    f.rt.create(&opts).await.expect("create");
    let stream = f.rt.attach(&id).await.expect("attach");
    f.rt.start(&id).await.unwrap();
    stream.send_stdin(b"ping\n").await.unwrap();
    let mut got = Vec::new();
    while got != b"ping\n" {
        let (kind, data) = tokio::time::timeout(LONG, stream.recv())
            .await
            .expect("attach output in time")
            .unwrap()
            .expect("frame");
        assert_eq!(kind, crius_oci::AttachStreamKind::Stdout);
        got.extend_from_slice(&data);
    }
    // Closing our stdin closes cat's (stdin_once): it exits 0.
    stream.close_stdin().unwrap();
    let rec = f.rt.wait_exit(&id, None, LONG).await.expect("cat exits");
    assert_eq!(rec.exit_code, 0);
    let log = std::fs::read_to_string(&opts.log_path).unwrap();
    assert!(
        log.contains("stdout F ping") || log.contains("stdout P ping"),
        "{log}"
    );
    f.rt.delete(&id).await.unwrap();
}

/// Reads attach frames until the accumulated stdout contains `needle`.
async fn read_until(stream: &crius_oci::AttachStream, seen: &mut String, needle: &str) {
    while !seen.contains(needle) {
        let frame = tokio::time::timeout(LONG, stream.recv())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in time; got {seen:?}"))
            .expect("recv");
        let (_, data) =
            frame.unwrap_or_else(|| panic!("attach closed before {needle:?}: {seen:?}"));
        seen.push_str(&String::from_utf8_lossy(&data));
    }
}

async fn terminal_attach_resize_reopen_log(f: Fixture) {
    let id = f.id("tty");
    let bundle = f.bundle_with(
        &id,
        &[
            "sh",
            "-c",
            "trap 'stty size' WINCH; echo ready; while :; do read x; echo got:$x; done",
        ],
        |spec| {
            let mut p = spec.process().clone().unwrap();
            p.set_terminal(Some(true));
            spec.set_process(Some(p));
        },
    );
    let mut opts = f.opts(&id, &bundle);
    opts.terminal = true;
    opts.stdin = true;
    f.rt.create(&opts).await.expect("create tty");
    let stream = f.rt.attach(&id).await.expect("attach");
    f.rt.start(&id).await.unwrap();
    let mut seen = String::new();
    read_until(&stream, &mut seen, "ready").await;
    // Resize through the control fifo: the shell's WINCH trap prints the new size.
    f.rt.resize(&id, 40, 120).await.expect("resize");
    read_until(&stream, &mut seen, "40 120").await;
    // Log rotation: move the log away, reopen, and the next output lands in a new file.
    let rotated = opts.log_path.with_extension("log.1");
    std::fs::rename(&opts.log_path, &rotated).unwrap();
    f.rt.reopen_log(&id).await.expect("reopen log");
    stream.send_stdin(b"x1\n").await.unwrap();
    read_until(&stream, &mut seen, "got:x1").await;
    let new_log = std::fs::read_to_string(&opts.log_path).expect("new log file");
    assert!(new_log.contains("got:x1"), "{new_log}");
    assert!(std::fs::read_to_string(&rotated).unwrap().contains("ready"));
    f.rt.delete(&id).await.unwrap();
    assert!(f.rt.resize(&id, 1, 1).await.is_err(), "resize after delete");
}

async fn exec_session_pipes_and_tty(f: Fixture) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let id = f.id("ses");
    f.run(&id, &["sleep", "1000"]).await;
    let spec = crius_testutil::busybox_spec(&["cat"]).unwrap();
    let mut process = spec.process().clone().unwrap();
    let mut s = f.rt.exec(&id, &process, false).await.expect("exec");
    assert!(s.pid > 0);
    let mut stdin = s.stdin.take().unwrap();
    stdin.write_all(b"abc").await.unwrap();
    drop(stdin);
    let mut out = String::new();
    s.stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    assert_eq!(out, "abc");
    assert_eq!(s.wait().await.unwrap(), 0);

    // The shell reports its terminal size when the resize reaches it (SIGWINCH), after it
    // said it is ready: an event chain, no timing.
    process.set_args(Some(strings(&[
        "sh",
        "-c",
        "trap 'stty size; exit 5' WINCH; echo ready; while :; do read x; done",
    ])));
    let mut t = f.rt.exec(&id, &process, true).await.expect("exec tty");
    let mut pty = t.pty.take().unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    let mut resized = false;
    loop {
        let n = tokio::time::timeout(LONG, pty.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if !resized && String::from_utf8_lossy(&out).contains("ready") {
            t.resize(33, 101).expect("resize");
            resized = true;
        }
    }
    assert_eq!(t.wait().await.unwrap(), 5);
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("33 101"), "terminal size not applied: {out:?}");
    f.rt.delete(&id).await.unwrap();
}

async fn version_parses(f: Fixture) {
    let v = f.rt.version().await.expect("version");
    assert_eq!(v.name.as_deref(), Some(f.runtime));
    assert!(v.version.starts_with(|c: char| c.is_ascii_digit()), "{v:?}");
}

macro_rules! matrix {
    ($($name:ident),* $(,)?) => {
        mod runc_conmon {
            $( #[tokio::test] async fn $name() { super::$name(super::Fixture::new("runc", super::Monitor::Conmon)).await } )*
        }
        mod crun_conmon {
            $( #[tokio::test] async fn $name() { super::$name(super::Fixture::new("crun", super::Monitor::Conmon)).await } )*
        }
        mod runc_crius_monitor {
            $( #[tokio::test] async fn $name() { super::$name(super::Fixture::new("runc", super::Monitor::CriusMonitor)).await } )*
        }
        mod crun_crius_monitor {
            $( #[tokio::test] async fn $name() { super::$name(super::Fixture::new("crun", super::Monitor::CriusMonitor)).await } )*
        }
    };
}

matrix!(
    create_start_state,
    exec_sync_outputs,
    exec_sync_timeout_kills,
    stop_escalates_to_sigkill,
    stop_signal_is_honoured,
    exit_code_recorded_and_stop_of_stopped,
    exit_recorded_after_starter_is_gone,
    oom_kill_is_recorded,
    failed_create_leaves_nothing,
    spawned_monitor_waits_for_its_bundle,
    stop_by_known_pid,
    bad_ids_refused,
    pause_resume_update,
    attach_round_trip,
    terminal_attach_resize_reopen_log,
    exec_session_pipes_and_tty,
    version_parses,
);

#[tokio::test]
async fn missing_runtime_binary_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let handler =
        crius_oci::RuntimeHandler::new("ghost", "/usr/bin/no-such-runtime", dir.path().join("r"));
    let mon = crius_oci::MonitorConfig::new(
        "/usr/bin/conmon",
        dir.path().join("e"),
        dir.path().join("s"),
    );
    let err = crius_oci::Runtime::new(handler, mon).unwrap_err();
    assert!(
        err.to_string().contains("/usr/bin/no-such-runtime"),
        "{err}"
    );
    assert!(matches!(
        err,
        OciError::BinaryMissing {
            what: "runtime",
            ..
        }
    ));
}

/// A monitor that never reports a pid: create times out, and the monitor is killed.
#[tokio::test]
async fn create_timeout_kills_the_monitor() {
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("{}", 800_000 + (std::process::id() % 90_000));
    let script = dir.path().join("mute-monitor");
    std::fs::write(&script, format!("#!/bin/sh\nexec sleep {marker}\n")).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let f = Fixture::with_monitor("runc", &script, Duration::from_millis(300));
    let id = f.id("tmo");
    let bundle = f.bundle(&id, &["true"]);
    let opts = f.opts(&id, &bundle);
    let err = f.rt.create(&opts).await.expect_err("must time out");
    assert!(err.is_timeout(), "{err}");
    assert!(
        processes_mentioning(&format!("sleep {marker}")).is_empty(),
        "monitor left running"
    );
    assert!(!opts.persist_dir.exists());
}
