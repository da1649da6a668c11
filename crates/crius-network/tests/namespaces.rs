//! Pinned pod namespaces, against the real kernel (needs root).

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crius_network::namespace::{self, NamespaceDirs, NamespaceSet};
use crius_network::Error;
use crius_testutil::unique_id;
use nix::mount::{umount2, MntFlags};
use nix::sched::{setns, CloneFlags};

/// Temp pin directories; unmounts the self-bind mounts `create` puts on them.
struct Dirs {
    dirs: NamespaceDirs,
    _tmp: tempfile::TempDir,
}

impl Dirs {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        Self {
            dirs: NamespaceDirs::under(tmp.path()),
            _tmp: tmp,
        }
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        for dir in [
            &self.dirs.net,
            &self.dirs.ipc,
            &self.dirs.uts,
            &self.dirs.user,
        ] {
            if let Ok(entries) = fs::read_dir(dir) {
                for e in entries.flatten() {
                    let _ = umount2(&e.path(), MntFlags::MNT_DETACH);
                }
            }
            let _ = umount2(dir, MntFlags::MNT_DETACH);
        }
    }
}

fn ino(path: &Path) -> u64 {
    fs::metadata(path).unwrap().ino()
}

fn mounted(path: &Path) -> bool {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = path.to_str().unwrap();
    mountinfo.lines().any(|l| l.split(' ').nth(4) == Some(p))
}

/// Inodes of the net namespaces of every thread of this process.
fn thread_netns_inodes() -> Vec<u64> {
    fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|t| fs::metadata(t.path().join("ns/net")).ok())
        .map(|m| m.ino())
        .collect()
}

#[tokio::test]
async fn create_pins_sets_hostname_brings_lo_up_and_remove_is_idempotent() {
    let d = Dirs::new();
    let id = unique_id("ns");
    let host_net = ino(Path::new("/proc/thread-self/ns/net"));
    let pins = namespace::create(&d.dirs, &id, NamespaceSet::ALL, Some("pod-host"))
        .await
        .unwrap();
    let (net, ipc, uts) = (
        pins.net.clone().unwrap(),
        pins.ipc.clone().unwrap(),
        pins.uts.clone().unwrap(),
    );
    let without_user = namespace::PodNamespaces {
        user: None,
        ..d.dirs.paths(&id).unwrap()
    };
    assert_eq!(pins, without_user);
    for (pin, own) in [
        (&net, "/proc/self/ns/net"),
        (&ipc, "/proc/self/ns/ipc"),
        (&uts, "/proc/self/ns/uts"),
    ] {
        assert!(namespace::is_pinned(pin), "{} not pinned", pin.display());
        assert_ne!(
            ino(pin),
            ino(Path::new(own)),
            "{} is the host's",
            pin.display()
        );
    }
    // No thread of this process was left in the pod's netns.
    assert_eq!(ino(Path::new("/proc/thread-self/ns/net")), host_net);
    assert!(!thread_netns_inodes().contains(&ino(&net)));

    // Hostname is set inside the UTS namespace only.
    let uts_file = fs::File::open(&uts).unwrap();
    let pod_hostname = std::thread::spawn(move || {
        setns(&uts_file, CloneFlags::CLONE_NEWUTS).unwrap();
        nix::unistd::gethostname().unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(pod_hostname, "pod-host");
    assert_ne!(nix::unistd::gethostname().unwrap(), "pod-host");

    // lo is up in the pod's netns: a loopback connection works there.
    let (inode, echoed) = namespace::run_in_netns(&net, || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (
            ino(Path::new("/proc/thread-self/ns/net")),
            s.peer_addr().unwrap() == c.local_addr().unwrap(),
        )
    })
    .await
    .unwrap();
    assert_eq!(inode, ino(&net));
    assert!(echoed);
    let inode =
        namespace::run_in_netns_blocking(&net, || ino(Path::new("/proc/thread-self/ns/net")))
            .unwrap();
    assert_eq!(inode, ino(&net));
    assert_eq!(ino(Path::new("/proc/thread-self/ns/net")), host_net);

    // Creating the same pod again fails and leaves the first pins intact.
    let again = namespace::create(&d.dirs, &id, NamespaceSet::ALL, None).await;
    assert!(matches!(again, Err(Error::Namespace { .. })), "{again:?}");
    assert!(namespace::is_pinned(&net));

    namespace::remove(&d.dirs, &id).await.unwrap();
    for pin in [&net, &ipc, &uts] {
        assert!(!pin.exists(), "{} left", pin.display());
        assert!(!mounted(pin), "{} still mounted", pin.display());
    }
    namespace::remove(&d.dirs, &id).await.unwrap();
    namespace::remove_blocking(&d.dirs, &unique_id("never")).unwrap();
    assert!(namespace::run_in_netns(&net, || ()).await.is_err());
}

#[tokio::test]
async fn only_requested_namespaces_are_created() {
    let d = Dirs::new();
    let id = unique_id("ns-net");
    let which = NamespaceSet {
        net: true,
        ipc: false,
        uts: false,
    };
    let pins = namespace::create(&d.dirs, &id, which, Some("ignored"))
        .await
        .unwrap();
    assert!(pins.ipc.is_none() && pins.uts.is_none());
    let net = pins.net.unwrap();
    assert!(namespace::is_pinned(&net));
    assert!(!d.dirs.uts.join(&id).exists());
    namespace::remove(&d.dirs, &id).await.unwrap();
    assert!(!net.exists());
}

#[tokio::test]
async fn bad_input_is_rejected_without_side_effects() {
    let d = Dirs::new();
    let err = namespace::create(&d.dirs, "../x", NamespaceSet::ALL, None).await;
    assert!(matches!(err, Err(Error::InvalidPodId(_))), "{err:?}");
    let id = unique_id("ns-bad");
    let long = "h".repeat(65);
    let err = namespace::create(&d.dirs, &id, NamespaceSet::ALL, Some(&long)).await;
    assert!(matches!(err, Err(Error::InvalidHostname(_))), "{err:?}");
    assert!(!d.dirs.net.join(&id).exists());
}

#[tokio::test]
async fn failed_create_leaves_no_pin_behind() {
    let d = Dirs::new();
    // The IPC pin dir cannot be created: a regular file is in its place.
    fs::create_dir_all(d.dirs.ipc.parent().unwrap()).unwrap();
    fs::write(&d.dirs.ipc, "not a dir").unwrap();
    let id = unique_id("ns-fail");
    let err = namespace::create(&d.dirs, &id, NamespaceSet::ALL, Some("h"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&id) && text.contains("ipcns"), "{text}");
    let net = d.dirs.net.join(&id);
    assert!(!net.exists(), "net pin left behind");
    assert!(!mounted(&net));
}

#[tokio::test]
async fn connect_tcp_reaches_a_listener_inside_the_pod_netns_only() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let d = Dirs::new();
    let id = unique_id("ns-pf");
    let which = NamespaceSet {
        net: true,
        ipc: false,
        uts: false,
    };
    let net = namespace::create(&d.dirs, &id, which, None)
        .await
        .unwrap()
        .net
        .unwrap();
    let listener = namespace::run_in_netns(&net, || TcpListener::bind("127.0.0.1:0"))
        .await
        .unwrap()
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf.map(|b| b.to_ascii_uppercase())).unwrap();
    });
    let mut stream = namespace::connect_tcp(&net, addr).await.unwrap();
    stream.write_all(b"ping").await.unwrap();
    let mut reply = [0u8; 4];
    stream.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"PING");
    server.join().unwrap();
    // The listener is gone now: refused, as an error naming the address.
    let err = namespace::connect_tcp(&net, addr).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    namespace::remove(&d.dirs, &id).await.unwrap();
}

/// The inode of the user namespace that owns the namespace file `path` (NS_GET_USERNS).
fn owner_userns_ino(path: &Path) -> u64 {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let f = fs::File::open(path).unwrap();
    // NS_GET_USERNS = _IO(0xb7, 0x1)
    // SAFETY: the ioctl takes no argument and returns a new fd, which we own.
    let fd = unsafe { libc::ioctl(f.as_raw_fd(), 0xb701) };
    assert!(fd >= 0, "NS_GET_USERNS {}", std::io::Error::last_os_error());
    // SAFETY: `fd` was just returned to us by the kernel.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    fs::File::from(owned).metadata().unwrap().ino()
}

#[tokio::test]
async fn userns_pod_namespaces_are_owned_by_its_pinned_user_namespace() {
    use crius_network::{IdRange, UsernsMappings};
    let d = Dirs::new();
    let id = unique_id("ns-user");
    let map = UsernsMappings {
        uids: IdRange {
            container_id: 0,
            host_id: 1000,
            size: 100000,
        },
        gids: IdRange {
            container_id: 0,
            host_id: 2000,
            size: 65536,
        },
    };
    let pins =
        namespace::create_with_userns(&d.dirs, &id, NamespaceSet::ALL, Some("uh"), Some(&map))
            .await
            .unwrap();
    assert_eq!(pins, d.dirs.paths(&id).unwrap());
    let user = pins.user.clone().unwrap();
    assert!(namespace::is_pinned(&user));
    assert_ne!(ino(&user), ino(Path::new("/proc/self/ns/user")));
    for pin in [&pins.net, &pins.ipc, &pins.uts] {
        let pin = pin.as_ref().unwrap();
        assert!(namespace::is_pinned(pin), "{}", pin.display());
        assert_eq!(owner_userns_ino(pin), ino(&user), "{}", pin.display());
    }
    // A process entering the user namespace sees the maps, the hostname, and can join the
    // pod's net namespace (only possible because the user namespace owns it).
    let out = std::process::Command::new("nsenter")
        .arg(format!("--user={}", user.display()))
        .arg(format!("--net={}", pins.net.as_ref().unwrap().display()))
        .arg(format!("--uts={}", pins.uts.as_ref().unwrap().display()))
        .args([
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; hostname",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(words, ["0", "1000", "100000", "0", "2000", "65536", "uh"]);
    // No helper process is left: nothing but the pins holds the namespaces.
    namespace::remove(&d.dirs, &id).await.unwrap();
    assert!(!user.exists() && !mounted(&user));
    assert!(!pins.net.unwrap().exists());
}

#[tokio::test]
async fn userns_without_root_mapping_is_rejected_without_side_effects() {
    use crius_network::{IdRange, UsernsMappings};
    let d = Dirs::new();
    let id = unique_id("ns-user-bad");
    let r = IdRange {
        container_id: 1,
        host_id: 1000,
        size: 10,
    };
    let err = namespace::create_with_userns(
        &d.dirs,
        &id,
        NamespaceSet::ALL,
        None,
        Some(&UsernsMappings { uids: r, gids: r }),
    )
    .await;
    assert!(matches!(err, Err(Error::InvalidUserns(_))), "{err:?}");
    assert!(!d.dirs.user.join(&id).exists());
    assert!(!d.dirs.net.join(&id).exists());
}
