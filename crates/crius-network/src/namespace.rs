//! Pod namespaces (network, IPC, UTS, and user for pods with a user namespace) kept alive by
//! bind mounts instead of a pause process.
//!
//! A namespace is created by `unshare(2)` on a throwaway OS thread (never a tokio worker), which
//! then bind-mounts `/proc/thread-self/ns/<kind>` onto a file under a caller-given directory and
//! exits. The mount keeps the namespace alive; unmounting it (and the last process leaving) frees
//! it. Because the thread that changed namespaces always exits, no thread of the daemon is ever
//! left in a pod's namespace.
//!
//! With a user namespace ([`create_with_userns`]) the namespaces come from a helper process
//! instead (see [`crate::userns`]): the thread `setns`es into the helper's net/IPC/UTS
//! namespaces (owned by the new user namespace) rather than unsharing, and the user namespace
//! is pinned from `/proc/<helper>/ns/user`.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
use nix::sys::statfs::{statfs, NSFS_MAGIC};

use crate::userns::{UsernsMappings, UsernsProcess};
use crate::{check_pod_id, Error, Result};

/// The directories that hold the pin files, one per namespace kind.
///
/// A pod's pins are `<net>/<pod-id>`, `<ipc>/<pod-id>`, `<uts>/<pod-id>` and `<user>/<pod-id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceDirs {
    /// Directory for network namespace pins.
    pub net: PathBuf,
    /// Directory for IPC namespace pins.
    pub ipc: PathBuf,
    /// Directory for UTS namespace pins.
    pub uts: PathBuf,
    /// Directory for user namespace pins.
    pub user: PathBuf,
}

impl NamespaceDirs {
    /// `<root>/netns`, `<root>/ipcns`, `<root>/utsns` and `<root>/userns` (e.g. with root = the
    /// daemon's runroot).
    pub fn under(root: impl AsRef<Path>) -> Self {
        let root = root.as_ref();
        Self {
            net: root.join("netns"),
            ipc: root.join("ipcns"),
            uts: root.join("utsns"),
            user: root.join("userns"),
        }
    }

    /// The pin paths of all four namespaces of a pod, whether or not they exist.
    pub fn paths(&self, pod_id: &str) -> Result<PodNamespaces> {
        check_pod_id(pod_id)?;
        Ok(PodNamespaces {
            net: Some(self.net.join(pod_id)),
            ipc: Some(self.ipc.join(pod_id)),
            uts: Some(self.uts.join(pod_id)),
            user: Some(self.user.join(pod_id)),
        })
    }
}

/// Which namespaces to create for a pod (false = the pod shares the host's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamespaceSet {
    /// A new network namespace (false for `hostNetwork` pods).
    pub net: bool,
    /// A new IPC namespace (false for `hostIPC` pods).
    pub ipc: bool,
    /// A new UTS namespace (false for `hostNetwork` pods, which keep the node's hostname).
    pub uts: bool,
}

impl NamespaceSet {
    /// Network, IPC and UTS.
    pub const ALL: Self = Self {
        net: true,
        ipc: true,
        uts: true,
    };
}

/// The pinned namespace files of a pod; `None` for a namespace that was not created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodNamespaces {
    /// The network namespace pin (give it to CNI as CNI_NETNS and to the OCI spec).
    pub net: Option<PathBuf>,
    /// The IPC namespace pin.
    pub ipc: Option<PathBuf>,
    /// The UTS namespace pin.
    pub uts: Option<PathBuf>,
    /// The user namespace pin (pods with a user namespace only); the other namespaces of the
    /// pod are owned by it.
    pub user: Option<PathBuf>,
}

#[derive(Clone, Copy)]
enum Kind {
    Net,
    Ipc,
    Uts,
}

impl Kind {
    fn proc_name(self) -> &'static str {
        match self {
            Kind::Net => "net",
            Kind::Ipc => "ipc",
            Kind::Uts => "uts",
        }
    }

    fn flag(self) -> CloneFlags {
        match self {
            Kind::Net => CloneFlags::CLONE_NEWNET,
            Kind::Ipc => CloneFlags::CLONE_NEWIPC,
            Kind::Uts => CloneFlags::CLONE_NEWUTS,
        }
    }
}

struct CreateJob {
    pod: String,
    pins: Vec<(Kind, PathBuf, PathBuf)>,
    hostname: Option<String>,
    /// The user namespace's mappings, pin directory and pin.
    userns: Option<(UsernsMappings, PathBuf, PathBuf)>,
}

impl CreateJob {
    fn new(
        dirs: &NamespaceDirs,
        pod_id: &str,
        which: NamespaceSet,
        hostname: Option<&str>,
        userns: Option<&UsernsMappings>,
    ) -> Result<Self> {
        check_pod_id(pod_id)?;
        if let Some(m) = userns {
            m.validate()?;
        }
        let hostname = match hostname {
            Some(h) if which.uts => {
                if h.is_empty() || h.len() > 64 || h.contains('\0') {
                    return Err(Error::InvalidHostname(h.to_string()));
                }
                Some(h.to_string())
            }
            _ => None,
        };
        let mut pins = Vec::new();
        for (wanted, kind, dir) in [
            (which.net, Kind::Net, &dirs.net),
            (which.ipc, Kind::Ipc, &dirs.ipc),
            (which.uts, Kind::Uts, &dirs.uts),
        ] {
            if wanted {
                pins.push((kind, dir.clone(), dir.join(pod_id)));
            }
        }
        Ok(Self {
            pod: pod_id.to_string(),
            pins,
            hostname,
            userns: userns.map(|m| (*m, dirs.user.clone(), dirs.user.join(pod_id))),
        })
    }

    fn result(&self) -> PodNamespaces {
        let mut out = PodNamespaces::default();
        for (kind, _, pin) in &self.pins {
            let slot = match kind {
                Kind::Net => &mut out.net,
                Kind::Ipc => &mut out.ipc,
                Kind::Uts => &mut out.uts,
            };
            *slot = Some(pin.clone());
        }
        out.user = self.userns.as_ref().map(|(_, _, pin)| pin.clone());
        out
    }

    /// Runs on a throwaway thread: the unshare changes only this thread, which then exits.
    fn run(self) -> Result<PodNamespaces> {
        if self.pins.is_empty() && self.userns.is_none() {
            return Ok(PodNamespaces::default());
        }
        let mut created = Vec::new();
        let outcome = self.prepare_and_pin(&mut created);
        if let Err(err) = outcome {
            for pin in &created {
                if let Err(e) = unpin(&self.pod, pin) {
                    tracing::warn!(pod = %self.pod, error = %e, "cleanup of a half-created namespace pin failed");
                }
            }
            return Err(err);
        }
        Ok(self.result())
    }

    fn prepare_and_pin(&self, created: &mut Vec<PathBuf>) -> Result<()> {
        let err = |step: String| {
            let pod = self.pod.clone();
            move |source: io::Error| Error::Namespace { pod, step, source }
        };
        let user_pin = self.userns.as_ref().map(|(_, dir, pin)| (dir, pin));
        for (dir, pin) in self.pins.iter().map(|(_, d, p)| (d, p)).chain(user_pin) {
            ensure_pin_dir(dir).map_err(err(format!("prepare pin dir {}", dir.display())))?;
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o444)
                .open(pin)
                .map_err(err(format!("create pin file {}", pin.display())))?;
            created.push(pin.clone());
        }
        // The thread's current namespaces, to step back into once the new ones are pinned: the
        // thread exits anyway, but then it never lingers in a pod's namespaces while exiting.
        let mut originals = Vec::new();
        for (kind, _, _) in &self.pins {
            let path = format!("/proc/thread-self/ns/{}", kind.proc_name());
            let file = File::open(&path).map_err(err(format!("open {path}")))?;
            originals.push((file, kind.flag()));
        }
        let flags = originals
            .iter()
            .fold(CloneFlags::empty(), |f, (_, flag)| f | *flag);
        // With a user namespace, a helper process holds the new namespaces: keep it alive
        // until they are pinned (dropping it kills it).
        let _helper = match &self.userns {
            None => {
                unshare(flags).map_err(|e| err("unshare namespaces".into())(e.into()))?;
                None
            }
            Some((map, _, pin)) => Some(self.enter_helper(map, pin, flags, &err)?),
        };
        let outcome = self.pin_current(&err);
        for (file, flag) in &originals {
            if let Err(e) = setns(file, *flag) {
                tracing::debug!(pod = %self.pod, error = %e, "return to the original namespace failed; the thread exits anyway");
            }
        }
        outcome
    }

    /// Makes the user namespace helper (with the `flags` namespaces owned by its user
    /// namespace), pins its user namespace on `pin` and moves this thread into its other
    /// namespaces.
    fn enter_helper<E>(
        &self,
        map: &UsernsMappings,
        pin: &Path,
        flags: CloneFlags,
        err: &impl Fn(String) -> E,
    ) -> Result<UsernsProcess>
    where
        E: FnOnce(io::Error) -> Error,
    {
        let helper = UsernsProcess::spawn(map, flags)?;
        let src = helper.ns_path("user");
        mount(
            Some(src.as_path()),
            pin,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| {
            err(format!(
                "bind-mount {} onto {}",
                src.display(),
                pin.display()
            ))(e.into())
        })?;
        for (kind, _, _) in &self.pins {
            let path = helper.ns_path(kind.proc_name());
            let file = File::open(&path).map_err(err(format!("open {}", path.display())))?;
            setns(&file, kind.flag())
                .map_err(|e| err(format!("setns {}", path.display()))(e.into()))?;
        }
        Ok(helper)
    }

    /// Sets the hostname, brings `lo` up and bind-mounts this thread's new namespaces.
    fn pin_current<E>(&self, err: &impl Fn(String) -> E) -> Result<()>
    where
        E: FnOnce(io::Error) -> Error,
    {
        if let Some(h) = &self.hostname {
            nix::unistd::sethostname(h)
                .map_err(|e| err(format!("set hostname {h:?}"))(e.into()))?;
        }
        if self.pins.iter().any(|(k, _, _)| matches!(k, Kind::Net)) {
            loopback_up().map_err(err("bring lo up in the new netns".into()))?;
        }
        for (kind, _, pin) in &self.pins {
            let src = format!("/proc/thread-self/ns/{}", kind.proc_name());
            mount(
                Some(src.as_str()),
                pin,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| err(format!("bind-mount {src} onto {}", pin.display()))(e.into()))?;
        }
        Ok(())
    }
}

/// Makes `dir` exist, be a mount point of its own, and have its own shared peer group, as
/// `ip netns` does: unmounting a pin then propagates to mount namespaces that copied it, and
/// pins do not propagate to peers of the parent mount.
fn ensure_pin_dir(dir: &Path) -> io::Result<()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    fs::create_dir_all(dir)?;
    let none = None::<&str>;
    match mount(none, dir, none, MsFlags::MS_SHARED | MsFlags::MS_REC, none) {
        Ok(()) => return Ok(()),
        Err(Errno::EINVAL) => {} // not a mount point yet
        Err(e) => return Err(e.into()),
    }
    mount(
        Some(dir),
        dir,
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    )?;
    mount(none, dir, none, MsFlags::MS_PRIVATE, none)?;
    mount(none, dir, none, MsFlags::MS_SHARED, none)?;
    Ok(())
}

/// Sets IFF_UP on `lo` in the calling thread's network namespace.
fn loopback_up() -> io::Result<()> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: `ifreq` is a plain C struct for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads `ifr_name` and writes `ifr_ifru.ifru_flags` of the valid,
    // exclusively borrowed `req`; `sock` is an open socket.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just filled the `ifru_flags` member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads `ifr_name` and `ifr_ifru.ifru_flags` of the valid `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Unmounts (lazily) and deletes one pin; a missing or unmounted pin is not an error.
fn unpin(pod: &str, pin: &Path) -> Result<()> {
    // A pin could have been mounted twice over (it never should): unmount until nothing is left.
    for _ in 0..16 {
        match umount2(pin, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(Errno::EINVAL) | Err(Errno::ENOENT) => break,
            Err(e) => {
                return Err(Error::Namespace {
                    pod: pod.to_string(),
                    step: format!("unmount {}", pin.display()),
                    source: e.into(),
                })
            }
        }
    }
    match fs::remove_file(pin) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Namespace {
            pod: pod.to_string(),
            step: format!("remove {}", pin.display()),
            source,
        }),
    }
}

fn spawn_error(what: &str, pod: &str, source: io::Error) -> Error {
    Error::Namespace {
        pod: pod.to_string(),
        step: format!("spawn thread to {what}"),
        source,
    }
}

/// Creates and pins the pod's namespaces; sets `hostname` in the new UTS namespace and brings
/// `lo` up in the new network namespace. On failure nothing is left behind.
///
/// Blocking; see [`create`] for async callers.
pub fn create_blocking(
    dirs: &NamespaceDirs,
    pod_id: &str,
    which: NamespaceSet,
    hostname: Option<&str>,
) -> Result<PodNamespaces> {
    create_with_userns_blocking(dirs, pod_id, which, hostname, None)
}

/// [`create_blocking`], and with `userns` also a new user namespace with those mappings, pinned
/// too, that owns the pod's other new namespaces.
pub fn create_with_userns_blocking(
    dirs: &NamespaceDirs,
    pod_id: &str,
    which: NamespaceSet,
    hostname: Option<&str>,
    userns: Option<&UsernsMappings>,
) -> Result<PodNamespaces> {
    let job = CreateJob::new(dirs, pod_id, which, hostname, userns)?;
    let pod = job.pod.clone();
    thread::Builder::new()
        .name("crius-ns-pin".into())
        .spawn(move || job.run())
        .map_err(|e| spawn_error("create namespaces", &pod, e))?
        .join()
        .map_err(|_| Error::ThreadPanicked {
            what: format!("pod {pod}: create namespaces"),
        })?
}

/// Async form of [`create_blocking`]: the work runs on a dedicated thread that exits afterwards.
/// If the future is dropped, the thread still finishes: call [`remove`] for the pod.
pub async fn create(
    dirs: &NamespaceDirs,
    pod_id: &str,
    which: NamespaceSet,
    hostname: Option<&str>,
) -> Result<PodNamespaces> {
    create_with_userns(dirs, pod_id, which, hostname, None).await
}

/// Async form of [`create_with_userns_blocking`].
pub async fn create_with_userns(
    dirs: &NamespaceDirs,
    pod_id: &str,
    which: NamespaceSet,
    hostname: Option<&str>,
    userns: Option<&UsernsMappings>,
) -> Result<PodNamespaces> {
    let job = CreateJob::new(dirs, pod_id, which, hostname, userns)?;
    let pod = job.pod.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    thread::Builder::new()
        .name("crius-ns-pin".into())
        .spawn(move || {
            let _ = tx.send(job.run());
        })
        .map_err(|e| spawn_error("create namespaces", &pod, e))?;
    rx.await.map_err(|_| Error::ThreadPanicked {
        what: format!("pod {pod}: create namespaces"),
    })?
}

/// Unmounts and deletes all of a pod's pins (net, ipc, uts, user). Idempotent: missing pins are fine,
/// so it works after a daemon restart from the paths alone.
pub fn remove_blocking(dirs: &NamespaceDirs, pod_id: &str) -> Result<()> {
    let paths = dirs.paths(pod_id)?;
    let mut first_err = None;
    // The user namespace last: the others are owned by it (the kernel keeps it alive for them
    // anyway, so the order is only tidiness).
    for pin in [paths.net, paths.ipc, paths.uts, paths.user]
        .into_iter()
        .flatten()
    {
        if let Err(e) = unpin(pod_id, &pin) {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Async form of [`remove_blocking`].
pub async fn remove(dirs: &NamespaceDirs, pod_id: &str) -> Result<()> {
    let dirs = dirs.clone();
    let pod = pod_id.to_string();
    tokio::task::spawn_blocking(move || remove_blocking(&dirs, &pod))
        .await
        .map_err(|_| Error::ThreadPanicked {
            what: format!("pod {pod_id}: remove namespaces"),
        })?
}

/// True if `path` is a mounted namespace file (a live pin).
pub fn is_pinned(path: &Path) -> bool {
    statfs(path).is_ok_and(|s| s.filesystem_type() == NSFS_MAGIC)
}

fn open_netns(netns: &Path) -> Result<File> {
    File::open(netns).map_err(|source| Error::EnterNetns {
        path: netns.to_path_buf(),
        step: "open",
        source,
    })
}

/// Runs `f` in the network namespace `file` on the current (throwaway) thread, then steps back
/// into the thread's original netns so it never lingers in the pod's while exiting.
fn in_netns<T>(netns: &Path, file: File, f: impl FnOnce() -> T) -> Result<T> {
    let err = |step, source| Error::EnterNetns {
        path: netns.to_path_buf(),
        step,
        source,
    };
    let original = File::open("/proc/thread-self/ns/net").map_err(|e| err("open own netns", e))?;
    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| err("setns", e.into()))?;
    drop(file);
    let out = f();
    if let Err(e) = setns(&original, CloneFlags::CLONE_NEWNET) {
        tracing::debug!(error = %e, "return to the original netns failed; the thread exits anyway");
    }
    Ok(out)
}

/// Runs `f` on a new thread inside the network namespace pinned at `netns`, and returns its
/// result. The thread exits afterwards, so the caller's namespaces never change. Sockets that `f`
/// creates, and processes it spawns, belong to that namespace.
pub fn run_in_netns_blocking<F, T>(netns: &Path, f: F) -> Result<T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let file = open_netns(netns)?;
    thread::scope(|s| {
        let handle = thread::Builder::new()
            .name("crius-netns".into())
            .spawn_scoped(s, move || in_netns(netns, file, f))
            .map_err(|source| Error::EnterNetns {
                path: netns.to_path_buf(),
                step: "spawn thread",
                source,
            })?;
        handle.join().map_err(|_| Error::ThreadPanicked {
            what: format!("run in netns {}", netns.display()),
        })?
    })
}

/// Async form of [`run_in_netns_blocking`] (for port-forward connects, reading pod IPs).
///
/// A socket made inside keeps its namespace: e.g. return a connected `std::net::TcpStream`, then
/// `set_nonblocking(true)` and `tokio::net::TcpStream::from_std` it. If the future is dropped,
/// the thread still runs `f` to completion and its result is dropped.
pub async fn run_in_netns<F, T>(netns: &Path, f: F) -> Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let file = open_netns(netns)?;
    let path = netns.to_path_buf();
    let thread_path = path.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    thread::Builder::new()
        .name("crius-netns".into())
        .spawn(move || {
            let result = in_netns(&thread_path, file, f);
            let _ = tx.send(result);
        })
        .map_err(|source| Error::EnterNetns {
            path: path.clone(),
            step: "spawn thread",
            source,
        })?;
    rx.await.map_err(|_| Error::ThreadPanicked {
        what: format!("run in netns {}", path.display()),
    })?
}

/// Connects to `addr` (e.g. `127.0.0.1:<port>` for a port-forward) from inside the network
/// namespace pinned at `netns`, and returns the stream for use on the tokio runtime.
pub async fn connect_tcp(
    netns: &Path,
    addr: std::net::SocketAddr,
) -> Result<tokio::net::TcpStream> {
    let connect_err = |source| Error::Connect {
        netns: netns.to_path_buf(),
        addr,
        source,
    };
    let stream = run_in_netns(netns, move || {
        let stream = std::net::TcpStream::connect(addr)?;
        stream.set_nonblocking(true)?;
        Ok::<_, io::Error>(stream)
    })
    .await?
    .map_err(connect_err)?;
    tokio::net::TcpStream::from_std(stream).map_err(connect_err)
}
