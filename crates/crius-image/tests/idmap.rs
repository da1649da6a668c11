//! Idmapped rootfs for containers in a user namespace (needs root and Linux >= 5.19).

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::*;
use crius_image::{ImageError, RootfsIdmap, RootfsMode};
use oci_client::secrets::RegistryAuth as OciAuth;

/// A `sleep` in a new user namespace mapping 0 → `host` (65536 IDs); killed on drop.
struct Userns(Child);

impl Userns {
    fn new(host: u32) -> Self {
        use std::io::BufRead;
        let mut child = Command::new("unshare")
            .args(["--user", "sh", "-c", "echo ready; exec sleep 300"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare");
        let pid = child.id();
        // The shell runs (and prints) only once it is in the new user namespace.
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n");
        for f in ["uid_map", "gid_map"] {
            std::fs::write(format!("/proc/{pid}/{f}"), format!("0 {host} 65536\n")).unwrap();
        }
        Userns(child)
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/user", self.0.id()))
    }
}

impl Drop for Userns {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Detaches the rootfs and its idmapped layers if a test fails half-way.
struct Guard {
    dir: PathBuf,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let umount = |p: PathBuf| {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(p)
                .stderr(Stdio::null())
                .status();
        };
        umount(self.dir.join("merged"));
        for n in names(&self.dir.join("idmap")) {
            umount(self.dir.join("idmap").join(n));
        }
    }
}

fn layer(name: &str, data: &[u8]) -> Vec<u8> {
    let mut t = TarBuilder::new();
    t.dir("etc/", 0o755).file(name, data, 0o644);
    t.finish()
}

fn uid(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().uid()
}

#[tokio::test]
async fn idmapped_rootfs_shows_image_root_as_the_namespace_root_and_cleans_up() {
    ensure_registry();
    let r = format!("{LOCAL}/crius-image-test/idmap:2");
    push_image(
        &r,
        &[
            (layer("etc/base", b"base"), Compression::Gzip),
            (layer("etc/top", b"top"), Compression::Gzip),
        ],
        serde_json::json!({}),
        &OciAuth::Anonymous,
    )
    .await;
    let (_dir, svc) = service_with(MIRROR_CONF, RootfsMode::Overlay).await;
    svc.pull(&r, None).await.unwrap();
    let userns = Userns::new(3000);
    let idmap = RootfsIdmap {
        userns: userns.path(),
        root_uid: 3000,
        root_gid: 3000,
    };
    let cid = unique("idmap");
    let cdir = svc.root().join("containers").join(&cid);
    let _g = Guard { dir: cdir.clone() };
    let root = svc.mount_rootfs_idmapped(&r, &cid, &idmap).await.unwrap();
    // Seen from the host, files owned by 0 in the image are owned by the mapped root.
    for p in ["", "etc", "etc/base", "etc/top"] {
        assert_eq!(uid(&root.join(p)), 3000, "{p:?}");
    }
    assert_eq!(std::fs::read(root.join("etc/base")).unwrap(), b"base");
    // The layers themselves are untouched.
    let layers = svc.root().join("layers");
    for l in names(&layers) {
        assert_eq!(uid(&layers.join(l).join("diff/etc")), 0);
    }
    // Writes land in the upper dir with the host IDs.
    std::fs::write(root.join("etc/new"), b"n").unwrap();
    assert!(cdir.join("upper/etc/new").exists());
    assert_eq!(names(&cdir.join("idmap")), ["0", "1"]);
    // Mounting again is idempotent.
    assert_eq!(
        svc.mount_rootfs_idmapped(&r, &cid, &idmap).await.unwrap(),
        root
    );

    svc.unmount_rootfs(&cid).await.unwrap();
    assert!(!cdir.exists(), "container dir left behind");
    for l in names(&layers) {
        assert!(
            layers.join(&l).join("diff/etc").exists(),
            "layer {l} damaged"
        );
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(&cid), "a mount of {cid} is left");
}

#[tokio::test]
async fn idmapped_rootfs_is_refused_in_copy_mode_and_with_a_bad_userns() {
    ensure_registry();
    let r = format!("{LOCAL}/crius-image-test/idmap:1");
    push_image(
        &r,
        &[(layer("etc/base", b"base"), Compression::Gzip)],
        serde_json::json!({}),
        &OciAuth::Anonymous,
    )
    .await;
    let (_d1, copy) = service_with(MIRROR_CONF, RootfsMode::Copy).await;
    copy.pull(&r, None).await.unwrap();
    let idmap = RootfsIdmap {
        userns: PathBuf::from("/proc/self/ns/user"),
        root_uid: 0,
        root_gid: 0,
    };
    let err = copy
        .mount_rootfs_idmapped(&r, &unique("idmap-copy"), &idmap)
        .await
        .unwrap_err();
    assert!(matches!(err, ImageError::InvalidArgument(_)), "{err}");

    // The host's own user namespace cannot be used for an idmapped mount: the error names
    // the step and nothing is left mounted.
    let (_d2, svc) = service_with(MIRROR_CONF, RootfsMode::Overlay).await;
    svc.pull(&r, None).await.unwrap();
    let cid = unique("idmap-bad");
    let cdir = svc.root().join("containers").join(&cid);
    let _g = Guard { dir: cdir.clone() };
    let err = svc
        .mount_rootfs_idmapped(&r, &cid, &idmap)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("idmap"), "{err}");
    assert!(!cdir.exists(), "container dir left behind");
}

#[test]
fn probe_accepts_this_filesystem_with_a_real_userns_only() {
    let userns = Userns::new(4000);
    let dir = tempfile::tempdir().unwrap();
    crius_image::idmap_supported(dir.path(), &userns.path()).unwrap();
    assert!(crius_image::idmap_supported(dir.path(), Path::new("/proc/self/ns/user")).is_err());
}

#[tokio::test]
async fn idmapped_rootfs_of_many_layers_takes_the_relative_path_mount() {
    ensure_registry();
    let n = 100;
    let layers: Vec<_> = (0..n)
        .map(|i| {
            let mut t = TarBuilder::new();
            t.file(&format!("layer-{i:03}"), format!("{i}").as_bytes(), 0o644);
            (t.finish(), Compression::Gzip)
        })
        .collect();
    let r = format!("{LOCAL}/crius-image-test/idmap-many:{n}");
    push_image(&r, &layers, serde_json::json!({}), &OciAuth::Anonymous).await;
    let (_dir, svc) = service_with(MIRROR_CONF, RootfsMode::Overlay).await;
    svc.pull(&r, None).await.unwrap();
    let userns = Userns::new(5000);
    let idmap = RootfsIdmap {
        userns: userns.path(),
        root_uid: 5000,
        root_gid: 5000,
    };
    let cid = unique("idmap-many");
    let cdir = svc.root().join("containers").join(&cid);
    let _g = Guard { dir: cdir.clone() };
    let root = svc.mount_rootfs_idmapped(&r, &cid, &idmap).await.unwrap();
    assert_eq!(names(&root).len(), n);
    assert_eq!(std::fs::read(root.join("layer-042")).unwrap(), b"42");
    assert_eq!(uid(&root.join("layer-099")), 5000);
    svc.unmount_rootfs(&cid).await.unwrap();
    assert!(!cdir.exists(), "container dir left behind");
}
