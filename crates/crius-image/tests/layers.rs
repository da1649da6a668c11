//! Images built and pushed by the tests: compressions, whiteouts, many layers, and hostile
//! tarballs that must be refused without leaving anything on disk.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use common::*;
use crius_image::{ImageError, RootfsMode};
use oci_client::secrets::RegistryAuth as OciAuth;

fn base_layer() -> Vec<u8> {
    let mut t = TarBuilder::new();
    t.dir("etc/", 0o755)
        .file("etc/hostname", b"crius\n", 0o644)
        .dir("data/", 0o755)
        .file("data/keep", b"keep", 0o600)
        .file("data/gone", b"gone", 0o644)
        .dir("opq/", 0o755)
        .file("opq/old", b"old", 0o644)
        .file("bin/tool", b"#!/bin/sh\n", 0o4755)
        .hardlink("bin/tool-link", "bin/tool")
        .symlink("bin/abs-link", "/etc/hostname")
        .chardev("dev/null", 1, 3);
    t.finish()
}

fn top_layer() -> Vec<u8> {
    let mut t = TarBuilder::new();
    t.raw(b"data/.wh.gone", tar::EntryType::Regular, b"", b"", 0o644)
        .raw(
            b"opq/.wh..wh..opq",
            tar::EntryType::Regular,
            b"",
            b"",
            0o644,
        )
        .file("opq/new", b"new", 0o644)
        .file("etc/hostname", b"changed\n", 0o644);
    t.finish()
}

async fn push_two_layer(tag: &str, c: Compression) -> String {
    let r = format!("{LOCAL}/crius-image-test/layers:{tag}");
    push_image(
        &r,
        &[(base_layer(), c), (top_layer(), c)],
        serde_json::json!({"Cmd": ["/bin/tool"], "User": "www-data:1"}),
        &OciAuth::Anonymous,
    )
    .await;
    r
}

fn check_rootfs(root: &Path) {
    assert_eq!(
        std::fs::read(root.join("etc/hostname")).unwrap(),
        b"changed\n"
    );
    assert_eq!(std::fs::read(root.join("data/keep")).unwrap(), b"keep");
    assert!(
        !root.join("data/gone").exists(),
        "whiteout hides the lower file"
    );
    assert!(
        !root.join("opq/old").exists(),
        "opaque dir hides lower content"
    );
    assert!(root.join("opq/new").exists());
    let tool = std::fs::metadata(root.join("bin/tool")).unwrap();
    assert_eq!(
        tool.permissions().mode() & 0o7777,
        0o4755,
        "setuid mode kept"
    );
    assert_eq!(
        tool.ino(),
        std::fs::metadata(root.join("bin/tool-link")).unwrap().ino()
    );
    assert_eq!(tool.mtime(), 1_700_000_000);
    assert_eq!(
        std::fs::read_link(root.join("bin/abs-link")).unwrap(),
        Path::new("/etc/hostname")
    );
    let null = std::fs::symlink_metadata(root.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), libc_makedev(1, 3));
    let keep = std::fs::metadata(root.join("data/keep")).unwrap();
    assert_eq!(keep.permissions().mode() & 0o777, 0o600);
}

fn libc_makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xfffff000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffffff00) << 12)
        | (minor & 0xff)
}

async fn pull_and_check(c: Compression, mode: RootfsMode) {
    ensure_registry();
    let tag = format!("{c:?}").to_lowercase();
    let r = push_two_layer(&tag, c).await;
    let (_dir, svc) = service_with(MIRROR_CONF, mode).await;
    let info = svc.pull(&r, None).await.unwrap();
    assert_eq!(info.repo_tags, vec![r.clone()]);
    assert_eq!(info.username, "www-data");
    // Unpacked layers are in overlay form.
    let store = svc.root().to_path_buf();
    let layers: Vec<_> = names(&store.join("layers"));
    assert_eq!(layers.len(), 2);
    let cid = unique("layers");
    let _g = RootfsGuard {
        svc: svc.clone(),
        id: cid.clone(),
    };
    let root = svc.mount_rootfs(&r, &cid).await.unwrap();
    check_rootfs(&root);
    if mode == RootfsMode::Overlay {
        // This kernel (>= 5.10) takes `volatile`: the upper dir is never synced, so unmounting
        // does not wait on the whole disk.
        let line = mount_line(&root).expect("rootfs in mountinfo");
        assert!(line.contains("volatile"), "{line}");
    }
    svc.unmount_rootfs(&cid).await.unwrap();
}

/// The /proc/self/mountinfo line of the mount at `path`.
fn mount_line(path: &Path) -> Option<String> {
    let want = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .ok()?
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(want.as_str()))
        .map(str::to_string)
}

#[tokio::test]
async fn gzip_layers_overlay() {
    pull_and_check(Compression::Gzip, RootfsMode::Overlay).await;
}

#[tokio::test]
async fn zstd_layers_overlay() {
    pull_and_check(Compression::Zstd, RootfsMode::Overlay).await;
}

#[tokio::test]
async fn uncompressed_layers_overlay() {
    pull_and_check(Compression::None, RootfsMode::Overlay).await;
}

#[tokio::test]
async fn whiteouts_in_copy_mode() {
    pull_and_check(Compression::Gzip, RootfsMode::Copy).await;
}

#[tokio::test]
async fn whiteouts_are_overlay_form_on_disk() {
    ensure_registry();
    let r = push_two_layer("gzip", Compression::Gzip).await;
    let (_dir, svc) = service().await;
    let info = svc.pull(&r, None).await.unwrap();
    let cfg = svc.image_config(&info.id).await.unwrap();
    let diffs = cfg.rootfs().diff_ids();
    // The top layer's chain ID: sha256(bottom + " " + top).
    use sha2::Digest;
    let chain = hex::encode(sha2::Sha256::digest(
        format!("{} {}", diffs[0], diffs[1]).as_bytes(),
    ));
    let top = svc.root().join("layers").join(chain).join("diff");
    let wh = std::fs::symlink_metadata(top.join("data/gone")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert!(!top.join("data/.wh.gone").exists());
    let out = std::process::Command::new("getfattr")
        .args([
            "--absolute-names",
            "--only-values",
            "-n",
            "trusted.overlay.opaque",
        ])
        .arg(top.join("opq"))
        .output();
    if let Ok(out) = out {
        if out.status.success() {
            assert_eq!(out.stdout, b"y");
        }
    }
}

#[tokio::test]
async fn many_layers_exceed_a_page_of_mount_options() {
    ensure_registry();
    let n = 160;
    let mut layers = Vec::new();
    for i in 0..n {
        let mut t = TarBuilder::new();
        t.file(&format!("layer-{i:03}"), format!("{i}").as_bytes(), 0o644);
        if i == n - 1 {
            t.file("layer-000", b"top", 0o644);
        }
        layers.push((t.finish(), Compression::Gzip));
    }
    let r = format!("{LOCAL}/crius-image-test/many:{n}");
    push_image(&r, &layers, serde_json::json!({}), &OciAuth::Anonymous).await;
    let (_dir, svc) = service_with(MIRROR_CONF, RootfsMode::Overlay).await;
    svc.pull(&r, None).await.unwrap();
    let cid = unique("many");
    let _g = RootfsGuard {
        svc: svc.clone(),
        id: cid.clone(),
    };
    let root = svc.mount_rootfs(&r, &cid).await.unwrap();
    assert_eq!(std::fs::read(root.join("layer-000")).unwrap(), b"top");
    assert_eq!(std::fs::read(root.join("layer-080")).unwrap(), b"80");
    assert_eq!(names(&root).len(), n);
    svc.unmount_rootfs(&cid).await.unwrap();
}

/// Pushes a one-layer image with `tar` and expects the pull to be refused naming `entry`,
/// with nothing left in the store and nothing at `outside`.
async fn expect_hostile(name: &str, tar: Vec<u8>, entry: &str, outside: &Path) {
    ensure_registry();
    let _ = std::fs::remove_file(outside);
    let r = format!("{LOCAL}/crius-image-test/hostile-{name}:1");
    push_image(
        &r,
        &[(tar, Compression::Gzip)],
        serde_json::json!({}),
        &OciAuth::Anonymous,
    )
    .await;
    let (_dir, svc) = service().await;
    match svc.pull(&r, None).await {
        Err(ImageError::HostileLayer {
            entry: e, reason, ..
        }) => {
            assert_eq!(e, entry, "reason: {reason}");
        }
        other => panic!("{name}: expected HostileLayer, got {other:?}"),
    }
    let store = svc.root();
    assert!(
        names(&store.join("layers")).is_empty(),
        "{name}: no layer kept"
    );
    assert!(
        names(&store.join("tmp")).is_empty(),
        "{name}: no temp dir kept"
    );
    assert!(svc.list(None).await.unwrap().is_empty());
    assert!(!outside.exists(), "{name}: wrote outside the layer");
}

fn outside(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("crius-escape-{tag}-{}", std::process::id()))
}

#[tokio::test]
async fn hostile_path_traversal() {
    let out = outside("dotdot");
    let rel = format!("../../../../../../../..{}", out.display());
    let mut t = TarBuilder::new();
    t.file("ok", b"ok", 0o644).file(&rel, b"pwned", 0o644);
    expect_hostile("dotdot", t.finish(), &rel, &out).await;
}

#[tokio::test]
async fn hostile_absolute_path() {
    let out = outside("abs");
    let abs = out.display().to_string();
    let mut t = TarBuilder::new();
    t.file(&abs, b"pwned", 0o644);
    expect_hostile("abs", t.finish(), &abs, &out).await;
}

#[tokio::test]
async fn hostile_symlink_escape() {
    let out = outside("symlink");
    let dir = out.parent().unwrap().display().to_string();
    let fname = out.file_name().unwrap().to_string_lossy().into_owned();
    let mut t = TarBuilder::new();
    t.symlink("evil", &dir)
        .file(&format!("evil/{fname}"), b"pwned", 0o644);
    expect_hostile("symlink", t.finish(), &format!("evil/{fname}"), &out).await;

    // Relative symlink climbing out.
    let mut t = TarBuilder::new();
    t.symlink("up", "../../../../../../../../../../..").file(
        &format!("up{}", out.display()),
        b"pwned",
        0o644,
    );
    expect_hostile(
        "symlink-rel",
        t.finish(),
        &format!("up{}", out.display()),
        &out,
    )
    .await;
}

#[tokio::test]
async fn hostile_hardlink_escape() {
    let out = outside("hardlink");
    let mut t = TarBuilder::new();
    t.hardlink("passwd", "../../../../../../../../etc/passwd");
    expect_hostile("hardlink", t.finish(), "passwd", &out).await;

    let mut t = TarBuilder::new();
    t.symlink("etc-link", "/etc")
        .hardlink("passwd", "etc-link/passwd");
    expect_hostile("hardlink-via-symlink", t.finish(), "passwd", &out).await;
}

#[tokio::test]
async fn hostile_whiteout_of_dotdot() {
    let out = outside("wh");
    let mut t = TarBuilder::new();
    t.dir("d/", 0o755)
        .raw(b"d/.wh...", tar::EntryType::Regular, b"", b"", 0o644);
    expect_hostile("whiteout-dotdot", t.finish(), "d/.wh...", &out).await;
}
