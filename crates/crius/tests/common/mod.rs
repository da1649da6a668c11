//! A real crius daemon for integration tests: temp root/runroot/socket, runc, the local
//! registry through mirrors, a private CNI bridge, and a tonic client over the unix socket.
//! Everything is torn down in `Drop` (pods through the API, then the daemon, mounts, bridge).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};

/// The test image (docker.io mirror of the local registry).
pub const BUSYBOX: &str = "busybox:1";

/// Lock file serialising the test fixture's scripts between concurrent test binaries.
const TESTENV_LOCK: &str = "/tmp/crius-testenv.lock";

/// Starts the local registry and pushes the test images (idempotent).
pub fn ensure_registry() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for script in ["registry.sh start", "images.sh"] {
            let mut args: Vec<&str> = script.split(' ').collect();
            let path = format!("/work/shared/testenv/{}", args.remove(0));
            // one writer of the shared fixture at a time (images.sh rebuilds its layouts dir)
            let out = Command::new("flock")
                .args([TESTENV_LOCK, "bash", &path])
                .args(&args)
                .output()
                .expect("run testenv script");
            assert!(
                out.status.success(),
                "{path}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    });
}

/// A running daemon and its files.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    pub bridge: String,
    /// The pod subnet of the private bridge (`10.x.y.0/24`).
    pub subnet: String,
    /// The bridge's own address (the gateway of `subnet`).
    pub gateway: String,
    pub sock: PathBuf,
    pub cgroup_parent: String,
    pub args: Vec<String>,
    pub rt: RuntimeServiceClient<Channel>,
    pub img: ImageServiceClient<Channel>,
    cleaned: bool,
}

fn monitor_binary() -> PathBuf {
    let own = Path::new(env!("CARGO_BIN_EXE_crius")).with_file_name("crius-monitor");
    if own.is_file() {
        own
    } else {
        PathBuf::from("/usr/bin/conmon")
    }
}

fn rand_u32() -> u32 {
    let id = crius_testutil::unique_id("x");
    id.bytes()
        .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619))
}

async fn connect(sock: &Path) -> Channel {
    let sock = sock.to_path_buf();
    Endpoint::try_from("http://[::]:50051")
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let sock = sock.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(sock).await?))
            }
        }))
        .await
        .expect("connect to crius")
}

impl Daemon {
    /// Starts a daemon in a fresh temp dir.
    pub async fn start() -> Daemon {
        Daemon::start_with(false, "", monitor_binary()).await
    }

    /// Starts a daemon that runs every container under the given monitor (e.g. Debian's
    /// `/usr/bin/conmon` instead of crius-monitor).
    pub async fn start_with_monitor(monitor: &Path) -> Daemon {
        Daemon::start_with(false, "", monitor.to_path_buf()).await
    }

    /// Starts a daemon whose CNI chain also has the portmap plugin (hostPorts).
    pub async fn start_with_portmap() -> Daemon {
        Daemon::start_with(true, "", monitor_binary()).await
    }

    /// Starts a daemon whose crius.toml begins with `toml` (top-level keys, e.g.
    /// `pids_limit = 100\n`).
    pub async fn start_with_config(toml: &str) -> Daemon {
        Daemon::start_with(false, toml, monitor_binary()).await
    }

    async fn start_with(portmap: bool, extra_toml: &str, monitor: PathBuf) -> Daemon {
        ensure_registry();
        let dir = tempfile::Builder::new()
            .prefix("crius-it-")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let d = dir.path();
        let n = rand_u32();
        let bridge = format!("crit{:08x}", n);
        let net = format!("10.{}.{}", 200 + (n % 50), (n >> 8) % 250);
        let subnet = format!("{net}.0/24");
        let gateway = format!("{net}.1");
        let portmap = if portmap {
            r#",{"type":"portmap","capabilities":{"portMappings":true}}"#
        } else {
            ""
        };
        std::fs::create_dir_all(d.join("cni")).expect("cni dir");
        std::fs::write(
            d.join("cni/10-test.conflist"),
            format!(
                r#"{{"cniVersion":"1.0.0","name":"{bridge}","plugins":[{{"type":"bridge","bridge":"{bridge}","isGateway":true,"ipMasq":false,"ipam":{{"type":"host-local","dataDir":"{}","ranges":[[{{"subnet":"{subnet}"}}]]}}}}{portmap},{{"type":"loopback"}}]}}"#,
                d.join("ipam").display()
            ),
        )
        .expect("conflist");
        let mut reg = String::new();
        for host in ["docker.io", "registry.k8s.io", "gcr.io", "quay.io"] {
            reg.push_str(&format!("[[registry]]\nprefix = \"{host}\"\nlocation = \"127.0.0.1:5000\"\ninsecure = true\n\n"));
        }
        std::fs::write(d.join("registries.conf"), reg).expect("registries.conf");
        std::fs::write(
            d.join("crius.toml"),
            format!(
                "{extra_toml}[runtimes.runc]\npath = \"/usr/sbin/runc\"\nroot = \"{}\"\n",
                d.join("runc").display()
            ),
        )
        .expect("crius.toml");
        let sock = d.join("crius.sock");
        let s = |p: &str| d.join(p).to_string_lossy().into_owned();
        let args = vec![
            "--config".into(),
            s("crius.toml"),
            "--listen".into(),
            s("crius.sock"),
            "--root".into(),
            s("root"),
            "--runroot".into(),
            s("run"),
            "--log-level".into(),
            "debug".into(),
            "--conmon".into(),
            monitor.to_string_lossy().into_owned(),
            "--cni-config-dir".into(),
            s("cni"),
            "--cni-plugin-dir".into(),
            "/usr/lib/cni".into(),
            "--registries-conf".into(),
            s("registries.conf"),
            "--cgroup-parent".into(),
            format!("/crius-it-{n:08x}"),
        ];
        let cgroup_parent = format!("crius-it-{n:08x}");
        let child = spawn(&args, &d.join("daemon.log"));
        let ch = connect(&sock).await;
        Daemon {
            dir,
            child: Some(child),
            bridge,
            subnet,
            gateway,
            sock,
            cgroup_parent,
            args,
            rt: RuntimeServiceClient::new(ch.clone()),
            img: ImageServiceClient::new(ch),
            cleaned: false,
        }
    }

    /// Stops the daemon with SIGTERM (containers keep running) and starts it again.
    pub async fn restart(&mut self) {
        self.stop_daemon();
        self.start_again().await;
    }

    /// Stops the daemon only (SIGTERM).
    pub fn stop_only(&mut self) {
        self.stop_daemon();
    }

    /// Kills the daemon with SIGKILL (no shutdown path runs; containers keep running).
    pub fn kill_only(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the daemon again with the same arguments.
    pub async fn start_again(&mut self) {
        let child = spawn(&self.args, &self.dir.path().join("daemon.log"));
        self.child = Some(child);
        let ch = connect(&self.sock).await;
        self.rt = RuntimeServiceClient::new(ch.clone());
        self.img = ImageServiceClient::new(ch);
    }

    fn stop_daemon(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: plain kill(2) on the pid of our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    /// Pulls busybox.
    pub async fn pull_busybox(&mut self) -> String {
        self.img
            .pull_image(cri::PullImageRequest {
                image: Some(cri::ImageSpec {
                    image: BUSYBOX.into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("pull busybox")
            .into_inner()
            .image_ref
    }

    /// A pod config with a unique name (PID namespace per container unless `shared_pid`).
    pub fn pod_config(&self, name: &str, shared_pid: bool) -> cri::PodSandboxConfig {
        let pid = if shared_pid {
            cri::NamespaceMode::Pod
        } else {
            cri::NamespaceMode::Container
        };
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: crius_testutil::unique_id(name),
                namespace: "default".into(),
                uid: crius_testutil::unique_id("uid"),
                attempt: 0,
            }),
            hostname: "testhost".into(),
            log_directory: self.dir.path().join("logs").to_string_lossy().into_owned(),
            linux: Some(cri::LinuxPodSandboxConfig {
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(cri::NamespaceOption {
                        pid: pid as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Runs a pod; returns its ID.
    pub async fn run_pod(&mut self, config: &cri::PodSandboxConfig) -> String {
        self.rt
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .expect("run pod")
            .into_inner()
            .pod_sandbox_id
    }

    /// A busybox container config running `cmd`.
    pub fn container_config(name: &str, cmd: &[&str]) -> cri::ContainerConfig {
        cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(cri::ImageSpec {
                image: BUSYBOX.into(),
                ..Default::default()
            }),
            command: cmd.iter().map(|s| s.to_string()).collect(),
            log_path: format!("{name}.log"),
            ..Default::default()
        }
    }

    /// Creates a container; returns its ID.
    pub async fn create(
        &mut self,
        pod: &str,
        pod_config: &cri::PodSandboxConfig,
        config: cri::ContainerConfig,
    ) -> String {
        self.rt
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: pod.into(),
                config: Some(config),
                sandbox_config: Some(pod_config.clone()),
            })
            .await
            .expect("create container")
            .into_inner()
            .container_id
    }

    /// Creates and starts a busybox container `name` that sleeps for an hour; returns its ID.
    pub async fn run_sleeper(
        &mut self,
        pod: &str,
        pod_config: &cri::PodSandboxConfig,
        name: &str,
    ) -> String {
        let cfg = Self::container_config(name, &["sleep", "3600"]);
        let id = self.create(pod, pod_config, cfg).await;
        self.start_ctr(&id).await;
        id
    }

    /// Starts a container.
    pub async fn start_ctr(&mut self, id: &str) {
        self.rt
            .start_container(cri::StartContainerRequest {
                container_id: id.into(),
            })
            .await
            .expect("start container");
    }

    /// Waits until the container has exited, on the daemon's STOPPED event (subscribed before
    /// the status check, so an exit in between is not missed); at most 60 s. Returns its status.
    pub async fn wait_exited(&mut self, id: &str) -> cri::ContainerStatus {
        let mut events = self
            .rt
            .get_container_events(cri::GetEventsRequest {})
            .await
            .expect("subscribe to container events")
            .into_inner();
        let exited = cri::ContainerState::ContainerExited as i32;
        let st = self.status(id).await;
        if st.state == exited {
            return st;
        }
        let stopped = cri::ContainerEventType::ContainerStoppedEvent as i32;
        let wait = async {
            while let Some(ev) = events.message().await.expect("event stream") {
                if ev.container_id == id && ev.container_event_type == stopped {
                    return;
                }
            }
            panic!("event stream ended before container {id} stopped");
        };
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .unwrap_or_else(|_| panic!("container {id} did not exit within 60 s"));
        let st = self.status(id).await;
        assert_eq!(st.state, exited, "{st:?}");
        st
    }

    /// StopPodSandbox then RemovePodSandbox, both expected to succeed.
    pub async fn stop_and_remove_pod(&mut self, pod: &str) {
        self.rt
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: pod.into(),
            })
            .await
            .expect("stop pod");
        self.rt
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: pod.into(),
            })
            .await
            .expect("remove pod");
    }

    /// The status of a container.
    pub async fn status(&mut self, id: &str) -> cri::ContainerStatus {
        self.rt
            .container_status(cri::ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            })
            .await
            .expect("container status")
            .into_inner()
            .status
            .expect("status set")
    }

    /// Container IDs (and pod IDs) the daemon knows.
    pub async fn known_ids(&mut self) -> Vec<String> {
        let mut ids = Vec::new();
        if let Ok(r) = self
            .rt
            .list_containers(cri::ListContainersRequest::default())
            .await
        {
            ids.extend(r.into_inner().containers.into_iter().map(|c| c.id));
        }
        if let Ok(r) = self
            .rt
            .list_pod_sandbox(cri::ListPodSandboxRequest::default())
            .await
        {
            ids.extend(r.into_inner().items.into_iter().map(|p| p.id));
        }
        ids
    }

    /// Removes every pod through the API.
    pub async fn remove_all(&mut self) {
        if let Ok(r) = self
            .rt
            .list_pod_sandbox(cri::ListPodSandboxRequest::default())
            .await
        {
            for p in r.into_inner().items {
                let _ = self
                    .rt
                    .stop_pod_sandbox(cri::StopPodSandboxRequest {
                        pod_sandbox_id: p.id.clone(),
                    })
                    .await;
                let _ = self
                    .rt
                    .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                        pod_sandbox_id: p.id,
                    })
                    .await;
            }
        }
    }

    /// Tears everything down and checks that nothing is left: no process mentioning the temp
    /// dir, no mount under it. (Call at the end of a test; `Drop` does the same without
    /// asserting when a test fails early.)
    pub async fn shutdown(mut self) {
        self.remove_all().await;
        self.stop_daemon();
        let dir = self.dir.path().to_path_buf();
        let procs = processes_under(&dir);
        // The pin directories themselves are mounts the network layer keeps (shared propagation);
        // pins of pods (files under them) must be gone.
        let mounts: Vec<String> = mounts_under(&dir)
            .into_iter()
            .filter(|m| {
                ![
                    "/run/ns/netns",
                    "/run/ns/ipcns",
                    "/run/ns/utsns",
                    "/run/ns/userns",
                ]
                .iter()
                .any(|d| m.ends_with(d))
            })
            .collect();
        cleanup(&dir, &self.bridge, &self.cgroup_parent);
        self.cleaned = true;
        assert!(procs.is_empty(), "processes left behind: {procs:?}");
        assert!(mounts.is_empty(), "mounts left behind: {mounts:?}");
    }
}

fn spawn(args: &[String], log: &Path) -> Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crius"));
    // SAFETY: prctl in the forked child before exec; async-signal-safe, no allocation. The
    // daemon dies with the test process, so a killed test run leaves no daemon behind.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn crius");
    let stderr = child.stderr.take().expect("stderr");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = writeln!(file, "{line}");
            if line.contains("crius serving CRI v1") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(());
                }
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = child.kill();
        let log = std::fs::read_to_string(log).unwrap_or_default();
        panic!("crius did not start:\n{log}");
    }
    child
}

/// Names of the entries of `dir` (none when it does not exist), in directory order.
pub fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Waits (bounded, checking /proc) until no process has `needle` in its command line.
pub fn wait_no_process_with(needle: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let found = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                String::from_utf8_lossy(&cmd).contains(needle)
            });
        if !found {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a process with {needle} is still there"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// PIDs whose command line or root mentions `dir`.
pub fn processes_under(dir: &Path) -> Vec<u32> {
    let me = std::process::id();
    let needle = dir.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for ent in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = ent.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmd = std::fs::read(ent.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let root = std::fs::read_link(ent.path().join("root"))
            .map(|r| r.to_string_lossy().into_owned())
            .unwrap_or_default();
        if cmd.contains(&needle) || root.starts_with(&needle) {
            out.push(pid);
        }
    }
    out
}

/// Mount points under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let needle = format!("{}/", dir.display());
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .filter(|m| m.starts_with(&needle))
        .map(String::from)
        .collect()
}

fn cleanup(dir: &Path, bridge: &str, cgroup_parent: &str) {
    for pid in processes_under(dir) {
        // SAFETY: kill(2) on processes that belong to this test's temp dir.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    // Runtime state of containers the API could not remove (their cgroups go with it).
    for ent in std::fs::read_dir(dir.join("runc"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = Command::new("/usr/sbin/runc")
            .arg("--root")
            .arg(dir.join("runc"))
            .args(["delete", "-f"])
            .arg(ent.file_name())
            .stderr(Stdio::null())
            .status();
    }
    let mut mounts = mounts_under(dir);
    mounts.sort();
    for m in mounts.iter().rev() {
        let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
    let _ = Command::new("ip")
        .args(["link", "del", bridge])
        .stderr(Stdio::null())
        .status();
    // The (now empty) pod cgroup parent in every hierarchy.
    for ent in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_dir(ent.path().join(cgroup_parent));
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        // Best effort when a test failed before `shutdown`: remove pods through the API on a
        // fresh runtime (we may be inside a panicking async test), then kill what is left.
        let sock = self.sock.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let ch = connect(&sock).await;
                let mut c = RuntimeServiceClient::new(ch);
                if let Ok(r) = c
                    .list_pod_sandbox(cri::ListPodSandboxRequest::default())
                    .await
                {
                    for p in r.into_inner().items {
                        let _ = c
                            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                                pod_sandbox_id: p.id.clone(),
                            })
                            .await;
                        let _ = c
                            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                                pod_sandbox_id: p.id,
                            })
                            .await;
                    }
                }
            })
        })
        .join();
        self.stop_daemon();
        cleanup(self.dir.path(), &self.bridge, &self.cgroup_parent);
    }
}
