//! Runs specs built by crius-spec with the real runc, as root, in busybox bundles: the spec is
//! accepted, capabilities and users come out as built, the RuntimeDefault seccomp profile
//! blocks a syscall busybox can make, a read-only rootfs refuses writes, pod files, CRI
//! mounts (incl. propagation and recursive read-only submounts), devices and sysctls land
//! where they should, and the infra (pause) spec runs confined.
//! Set `CRIUS_SPEC_RUNTIME=crun` to run the same checks with crun.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output};

use crius_spec::{
    container_spec, daemon_capabilities, sandbox_spec, ContainerSpecInput, HostFeatures, PodFiles,
    PodNamespaces, SandboxSpecInput,
};
use k8s_cri::v1::security_profile::ProfileType;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, Int64Value, LinuxContainerConfig,
    LinuxContainerSecurityContext, LinuxPodSandboxConfig, LinuxSandboxSecurityContext,
    NamespaceMode, NamespaceOption, PodSandboxConfig, PodSandboxMetadata, SecurityProfile,
};
use oci_spec::image::ImageConfiguration;

/// Deletes the runc container (its state lives under the test's own `--root`) and the cgroup
/// parent directories it left, even when the test fails.
struct Container {
    id: String,
    state_root: PathBuf,
    cgroup_parent: String,
    _dir: tempfile::TempDir,
    bundle: PathBuf,
}

/// The OCI runtime binary: `runc`, or `$CRIUS_SPEC_RUNTIME` (e.g. `crun`) to check another.
fn runtime() -> String {
    std::env::var("CRIUS_SPEC_RUNTIME").unwrap_or_else(|_| "runc".to_string())
}

impl Container {
    fn runc(&self) -> Command {
        let mut c = Command::new(runtime());
        c.arg("--root").arg(&self.state_root);
        c
    }

    /// `runc run` in the foreground; returns its output once the container exited.
    fn run(&self) -> Output {
        self.runc()
            .args(["run", "--bundle"])
            .arg(&self.bundle)
            .arg(&self.id)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("spawn runc")
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.runc().args(["delete", "--force", &self.id]).output();
        // Child cgroups first: runc removed the container's own; the parent is ours.
        if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in entries.flatten() {
                let _ =
                    std::fs::remove_dir(e.path().join(self.cgroup_parent.trim_start_matches('/')));
            }
        }
    }
}

fn sandbox(privileged: bool) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "spec-test".into(),
            uid: "uid".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "spec-test".into(),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                privileged,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_config(script: &str, sc: LinuxContainerSecurityContext) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "t".into(),
            attempt: 0,
        }),
        command: vec!["sh".into(), "-c".into(), script.into()],
        linux: Some(LinuxContainerConfig {
            resources: None,
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(NamespaceOption {
                    pid: NamespaceMode::Container as i32,
                    ..Default::default()
                }),
                ..sc
            }),
        }),
        ..Default::default()
    }
}

/// Writes a busybox bundle whose config.json is the crius-spec spec for `config`.
fn prepare(config: &ContainerConfig, privileged_pod: bool) -> Container {
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = dir.path().join("bundle");
    let rootfs = bundle.join("rootfs");
    crius_testutil::write_busybox_rootfs(&rootfs).expect("rootfs");
    let id = crius_testutil::unique_id("crius-spec");
    let cgroup_parent = format!("/{}", crius_testutil::unique_id("crius-spec-test"));
    let sandbox = sandbox(privileged_pod);
    let image = ImageConfiguration::default();
    let input = ContainerSpecInput {
        container_id: &id,
        sandbox_id: "sandbox",
        config,
        sandbox_config: &sandbox,
        image: &image,
        image_name: "busybox",
        rootfs: &rootfs,
        namespaces: PodNamespaces::default(),
        target_pid_namespace: None,
        pod_files: PodFiles::default(),
        log_path: None,
        cgroup_parent: cgroup_parent.clone(),
        daemon_capabilities: daemon_capabilities().expect("daemon caps"),
        daemon_oom_score_adj: crius_spec::own_oom_score_adj().expect("oom_score_adj"),
        image_volumes: Vec::new(),
        extra_annotations: HashMap::new(),
        host: HostFeatures::detect(),
    };
    let built = container_spec(&input).expect("container spec");
    crius_testutil::write_bundle_with(&bundle, &[], |spec| *spec = built.spec.clone())
        .expect("bundle");
    Container {
        id,
        state_root: dir.path().join("runc-state"),
        cgroup_parent,
        bundle,
        _dir: dir,
    }
}

fn run(config: &ContainerConfig, privileged_pod: bool) -> (String, String, Option<i32>) {
    let c = prepare(config, privileged_pod);
    let out = c.run();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

/// The `CapEff` mask of the default capability set (bits of CHOWN, DAC_OVERRIDE, FOWNER,
/// FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD,
/// AUDIT_WRITE, SETFCAP).
const DEFAULT_CAP_MASK: u64 = (1 << 0)
    | (1 << 1)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 6)
    | (1 << 7)
    | (1 << 8)
    | (1 << 10)
    | (1 << 13)
    | (1 << 18)
    | (1 << 27)
    | (1 << 29)
    | (1 << 31);

fn cap_eff(stdout: &str) -> u64 {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap_or_else(|| panic!("no CapEff line in {stdout:?}"));
    u64::from_str_radix(line.trim(), 16).expect("hex")
}

fn host_cap_eff() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| u64::from_str_radix(v.trim(), 16).expect("hex"))
            .expect(name)
    };
    field("CapEff:") & field("CapBnd:")
}

#[test]
fn default_root_container_has_default_caps() {
    let cfg = container_config(
        "grep CapEff /proc/self/status; id",
        LinuxContainerSecurityContext::default(),
    );
    let (out, err, code) = run(&cfg, false);
    assert_eq!(code, Some(0), "stdout {out:?} stderr {err:?}");
    assert_eq!(cap_eff(&out), DEFAULT_CAP_MASK, "{out}");
    assert!(
        out.contains("uid=0(root) gid=0(root) groups=0(root)"),
        "{out}"
    );
}

#[test]
fn non_root_user_with_groups_and_no_caps() {
    let cfg = container_config(
        "grep CapEff /proc/self/status; id",
        LinuxContainerSecurityContext {
            run_as_user: Some(Int64Value { value: 65534 }),
            supplemental_groups: vec![1234],
            ..Default::default()
        },
    );
    let (out, err, code) = run(&cfg, false);
    assert_eq!(code, Some(0), "stdout {out:?} stderr {err:?}");
    assert_eq!(cap_eff(&out), 0, "{out}");
    // setgroups(2) stores the list sorted, so 1234 comes before 65534.
    assert!(
        out.contains("uid=65534(nobody) gid=65534(nogroup) groups=1234,65534(nogroup)"),
        "{out}"
    );
}

#[test]
fn privileged_container_gets_exactly_the_daemon_caps() {
    let cfg = container_config(
        "grep CapEff /proc/self/status; ls /dev/null",
        LinuxContainerSecurityContext {
            privileged: true,
            ..Default::default()
        },
    );
    let (out, err, code) = run(&cfg, true);
    assert_eq!(code, Some(0), "stdout {out:?} stderr {err:?}");
    assert_eq!(cap_eff(&out), host_cap_eff(), "{out}");
}

#[test]
fn runtime_default_seccomp_blocks_unshare() {
    let script = "unshare -U true; echo rc=$?";
    let profile = |t: ProfileType| LinuxContainerSecurityContext {
        seccomp: Some(SecurityProfile {
            profile_type: t as i32,
            localhost_ref: String::new(),
        }),
        ..Default::default()
    };
    // Control: without a filter, creating a user namespace needs no capability.
    let (out, err, code) = run(
        &container_config(script, profile(ProfileType::Unconfined)),
        false,
    );
    assert_eq!(code, Some(0), "stdout {out:?} stderr {err:?}");
    assert!(out.contains("rc=0"), "unconfined: {out:?} {err:?}");

    let (out, err, code) = run(
        &container_config(script, profile(ProfileType::RuntimeDefault)),
        false,
    );
    assert_eq!(code, Some(0), "stdout {out:?} stderr {err:?}");
    assert!(out.contains("rc=1"), "runtime/default: {out:?} {err:?}");
    assert!(err.contains("Operation not permitted"), "{err:?}");
}

#[test]
fn readonly_rootfs_refuses_writes() {
    let cfg = container_config(
        "touch /newfile; echo rc=$?; touch /dev/shm/ok && echo shm-ok",
        LinuxContainerSecurityContext {
            readonly_rootfs: true,
            ..Default::default()
        },
    );
    let (out, err, code) = run(&cfg, false);
    assert_eq!(code, Some(0), "stdout {out:?} stderr {err:?}");
    assert!(out.contains("rc=1"), "{out:?}");
    assert!(err.contains("Read-only file system"), "{err:?}");
    assert!(
        out.contains("shm-ok"),
        "tmpfs /dev/shm stays writable: {out:?}"
    );
}

#[test]
fn sandbox_spec_runs_pause_confined() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = dir.path().join("bundle");
    let rootfs = bundle.join("rootfs");
    crius_testutil::write_busybox_rootfs(&rootfs).expect("rootfs");
    // The "pause binary": a script run by the busybox rootfs's /bin/sh.
    let pause = dir.path().join("pause.sh");
    std::fs::write(
        &pause,
        "#!/bin/sh\nid\ngrep CapEff /proc/self/status\necho pid=$$\ntouch /x; echo rc=$?\n",
    )
    .expect("write pause");
    std::fs::set_permissions(&pause, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let id = crius_testutil::unique_id("crius-spec-sb");
    let cgroup_parent = format!("/{}", crius_testutil::unique_id("crius-spec-test"));
    let cfg = sandbox(false);
    let input = SandboxSpecInput {
        sandbox_id: &id,
        config: &cfg,
        pause_binary: &pause,
        pause_args: Vec::new(),
        read_only_binds: Vec::new(),
        rootfs: &rootfs,
        namespaces: PodNamespaces::default(),
        cgroup_parent: cgroup_parent.clone(),
        daemon_oom_score_adj: crius_spec::own_oom_score_adj().expect("oom_score_adj"),
        extra_annotations: HashMap::new(),
    };
    let spec = sandbox_spec(&input).expect("sandbox spec");
    crius_testutil::write_bundle_with(&bundle, &[], |s| *s = spec.clone()).expect("bundle");
    let c = Container {
        id,
        state_root: dir.path().join("runc-state"),
        cgroup_parent,
        bundle,
        _dir: dir,
    };
    let out = c.run();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout {stdout:?} stderr {stderr:?}"
    );
    assert!(stdout.contains("uid=65535 gid=65535"), "{stdout}");
    assert_eq!(cap_eff(&stdout), 0, "{stdout}");
    assert!(stdout.contains("pid=1\n"), "new PID namespace: {stdout}");
    assert!(stdout.contains("rc=1"), "read-only rootfs: {stdout}");
}

/// A network namespace pinned by `ip netns add`, deleted on drop.
struct NetNs(String);

impl NetNs {
    fn new() -> Self {
        let name = crius_testutil::unique_id("crius-spec-ns");
        let status = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("run ip netns add");
        assert!(status.success(), "ip netns add {name}");
        NetNs(name)
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.0)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn pod_files_mounts_devices_and_sysctls() {
    let netns = NetNs::new();
    let pod = tempfile::tempdir().expect("pod dir");
    std::fs::write(pod.path().join("hosts"), "127.0.0.1 crius-pod-host\n").expect("hosts");
    std::fs::write(pod.path().join("resolv.conf"), "nameserver 127.0.0.53\n").expect("resolv");
    std::fs::write(pod.path().join("hostname"), "crius-pod-host\n").expect("hostname");
    std::fs::create_dir(pod.path().join("shm")).expect("shm");
    let data = pod.path().join("data");
    std::fs::create_dir(&data).expect("data");
    std::fs::write(data.join("in-volume"), "v\n").expect("volume file");

    let script = "cat /etc/hosts /etc/resolv.conf; \
        cat /proc/sys/net/ipv4/ip_forward; \
        cat /data/in-volume; touch /data/new; echo data-rc=$?; \
        test -c /dev/extra && echo extra-is-char; \
        echo shm > /dev/shm/from-container; \
        wc -c < /proc/timer_list";
    let mut cfg = container_config(script, LinuxContainerSecurityContext::default());
    cfg.mounts.push(k8s_cri::v1::Mount {
        host_path: data.display().to_string(),
        container_path: "/data".into(),
        readonly: true,
        ..Default::default()
    });
    cfg.devices.push(k8s_cri::v1::Device {
        host_path: "/dev/null".into(),
        container_path: "/dev/extra".into(),
        permissions: "rw".into(),
    });
    let mut sandbox = sandbox(false);
    if let Some(linux) = sandbox.linux.as_mut() {
        linux
            .sysctls
            .insert("net.ipv4.ip_forward".into(), "1".into());
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = dir.path().join("bundle");
    let rootfs = bundle.join("rootfs");
    crius_testutil::write_busybox_rootfs(&rootfs).expect("rootfs");
    let id = crius_testutil::unique_id("crius-spec-pod");
    let cgroup_parent = format!("/{}", crius_testutil::unique_id("crius-spec-test"));
    let image = ImageConfiguration::default();
    let input = ContainerSpecInput {
        container_id: &id,
        sandbox_id: "sandbox",
        config: &cfg,
        sandbox_config: &sandbox,
        image: &image,
        image_name: "busybox",
        rootfs: &rootfs,
        namespaces: PodNamespaces {
            network: Some(netns.path()),
            ..Default::default()
        },
        target_pid_namespace: None,
        pod_files: PodFiles {
            hostname: Some(pod.path().join("hostname")),
            hosts: Some(pod.path().join("hosts")),
            resolv_conf: Some(pod.path().join("resolv.conf")),
            shm: Some(pod.path().join("shm")),
        },
        log_path: None,
        cgroup_parent: cgroup_parent.clone(),
        daemon_capabilities: daemon_capabilities().expect("daemon caps"),
        daemon_oom_score_adj: crius_spec::own_oom_score_adj().expect("oom_score_adj"),
        image_volumes: Vec::new(),
        extra_annotations: HashMap::new(),
        host: HostFeatures::detect(),
    };
    let built = container_spec(&input).expect("container spec");
    crius_testutil::write_bundle_with(&bundle, &[], |s| *s = built.spec.clone()).expect("bundle");
    let c = Container {
        id,
        state_root: dir.path().join("runc-state"),
        cgroup_parent,
        bundle,
        _dir: dir,
    };
    let out = c.run();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout {stdout:?} stderr {stderr:?}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "127.0.0.1 crius-pod-host",
            "nameserver 127.0.0.53",
            "1",
            "v",
            "data-rc=1",
            "extra-is-char",
            "0", // /proc/timer_list is masked
        ],
        "stderr {stderr:?}"
    );
    assert!(stderr.contains("Read-only file system"), "{stderr:?}");
    assert_eq!(
        std::fs::read_to_string(pod.path().join("shm/from-container")).expect("shm file"),
        "shm\n",
        "/dev/shm is the pod's directory"
    );
    // The sysctl went into the pod's network namespace (read back from outside the container).
    let ns_forward = Command::new("ip")
        .args([
            "netns",
            "exec",
            &netns.0,
            "cat",
            "/proc/sys/net/ipv4/ip_forward",
        ])
        .output()
        .expect("ip netns exec");
    assert_eq!(String::from_utf8_lossy(&ns_forward.stdout).trim(), "1");
}

/// A directory bind-mounted on itself and made rshared; every mount under it is lazily
/// unmounted on drop.
struct SharedDir {
    dir: tempfile::TempDir,
}

impl SharedDir {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().display().to_string();
        for args in [vec!["--bind", &p, &p], vec!["--make-rshared", &p]] {
            let st = Command::new("mount")
                .args(&args)
                .status()
                .expect("run mount");
            assert!(st.success(), "mount {args:?}");
        }
        SharedDir { dir }
    }
}

impl Drop for SharedDir {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .args(["-R", "-l"])
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn mount_propagation_modes_run() {
    let shared = SharedDir::new();
    let host = shared.dir.path().to_path_buf();
    std::fs::create_dir(host.join("sub")).expect("sub");

    // BIDIRECTIONAL: a mount made in the (privileged) container shows up on the host.
    let mut cfg = container_config(
        "mount -t tmpfs crius-test /data/sub && echo from-container > /data/sub/f",
        LinuxContainerSecurityContext {
            privileged: true,
            ..Default::default()
        },
    );
    cfg.mounts.push(k8s_cri::v1::Mount {
        host_path: host.display().to_string(),
        container_path: "/data".into(),
        propagation: k8s_cri::v1::MountPropagation::PropagationBidirectional as i32,
        ..Default::default()
    });
    let (out, err, code) = run(&cfg, true);
    assert_eq!(code, Some(0), "stdout {out:?} stderr {err:?}");
    assert_eq!(
        std::fs::read_to_string(host.join("sub/f")).expect("propagated file"),
        "from-container\n"
    );

    // HOST_TO_CONTAINER: accepted by the runtime (rslave), and the host's mount is visible.
    let mut cfg = container_config("cat /data/sub/f", LinuxContainerSecurityContext::default());
    cfg.mounts.push(k8s_cri::v1::Mount {
        host_path: host.display().to_string(),
        container_path: "/data".into(),
        propagation: k8s_cri::v1::MountPropagation::PropagationHostToContainer as i32,
        ..Default::default()
    });
    let (out, err, code) = run(&cfg, false);
    assert_eq!(code, Some(0), "stdout {out:?} stderr {err:?}");
    assert_eq!(out, "from-container\n");
}

/// A temporary directory with a tmpfs mounted on its `tmpfs` subdirectory (a submount, as
/// critest builds for recursive read-only mounts); unmounted on drop.
struct DirWithSubmount {
    dir: tempfile::TempDir,
}

impl DirWithSubmount {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("tmpfs");
        std::fs::create_dir(&sub).expect("mkdir tmpfs");
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "crius-spec-rro"])
            .arg(&sub)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount tmpfs on {}", sub.display());
        DirWithSubmount { dir }
    }
}

impl Drop for DirWithSubmount {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path().join("tmpfs"))
            .status();
    }
}

#[test]
fn recursive_read_only_mount_covers_submounts() {
    assert!(
        crius_spec::recursive_read_only_supported(std::path::Path::new(&runtime())),
        "{} on this kernel should support rro",
        runtime()
    );
    let host = DirWithSubmount::new();
    let script = "touch /mnt/tmpfs/f 2>&1; echo sub=$?; touch /mnt/top 2>&1; echo top=$?";
    let with = |rro: bool| {
        let mut cfg = container_config(script, LinuxContainerSecurityContext::default());
        cfg.mounts.push(k8s_cri::v1::Mount {
            host_path: host.dir.path().display().to_string(),
            container_path: "/mnt".into(),
            readonly: true,
            recursive_read_only: rro,
            ..Default::default()
        });
        cfg
    };

    // Plain read-only: only the top mount is read-only, the submount stays writable.
    let (out, err, code) = run(&with(false), false);
    assert_eq!(code, Some(0), "stdout {out:?} stderr {err:?}");
    assert!(out.contains("sub=0"), "{out}");
    assert!(
        out.contains("Read-only file system") && out.contains("top=1"),
        "{out}"
    );
    assert!(host.dir.path().join("tmpfs/f").exists());
    std::fs::remove_file(host.dir.path().join("tmpfs/f")).expect("rm");

    // Recursive read-only: the submount refuses writes too.
    let c = prepare(&with(true), false);
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.bundle.join("config.json")).expect("config.json"))
            .expect("json");
    let mnt = spec["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .find(|m| m["destination"] == "/mnt")
        .expect("/mnt mount");
    assert!(mnt["options"]
        .as_array()
        .expect("options")
        .iter()
        .any(|o| o == "rro"));
    let out = c.run();
    let (out, err) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.contains("sub=1") && out.contains("top=1"),
        "stdout {out:?} stderr {err:?}"
    );
    assert_eq!(out.matches("Read-only file system").count(), 2, "{out}");
    assert!(!host.dir.path().join("tmpfs/f").exists());
}
