//! Fixtures for integration tests: OCI bundles whose rootfs is Debian's `busybox-static`.
//!
//! Nothing here touches the network: the rootfs is the host's `/bin/busybox` plus one symlink per
//! applet, and `config.json` is the `oci-spec` default spec with the caller's process arguments.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use oci_spec::runtime::Spec;

/// Where Debian's `busybox-static` installs its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// A container ID that no other test (in this process or another) uses at the same time.
pub fn unique_id(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Writes `<bundle>/rootfs` with busybox and its applets (`sh`, `echo`, `sleep`, `cat`, ...).
pub fn write_busybox_rootfs(rootfs: &Path) -> io::Result<()> {
    let busybox = Path::new(BUSYBOX);
    if !busybox.exists() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{BUSYBOX} is missing: apt-get install busybox-static"),
        ));
    }
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin)?;
    for dir in ["proc", "sys", "dev", "tmp", "etc", "root"] {
        std::fs::create_dir_all(rootfs.join(dir))?;
    }
    std::fs::copy(busybox, bin.join("busybox"))?;
    let out = std::process::Command::new(busybox).arg("--list").output()?;
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        let link = bin.join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link)?;
        }
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    Ok(())
}

/// The spec every bundle starts from: `oci-spec`'s runc-like default, rootfs `rootfs`, the given
/// process arguments, PATH set, no terminal.
pub fn busybox_spec(args: &[&str]) -> io::Result<Spec> {
    let mut spec = Spec::default();
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(args.iter().map(|a| a.to_string()).collect()));
    process.set_terminal(Some(false));
    process.set_env(Some(vec![
        "PATH=/bin:/sbin:/usr/bin:/usr/sbin".to_string(),
        "HOME=/root".to_string(),
    ]));
    spec.set_process(Some(process));
    let mut root = spec.root().clone().unwrap_or_default();
    root.set_path(PathBuf::from("rootfs"));
    root.set_readonly(Some(false));
    spec.set_root(Some(root));
    spec.set_hostname(Some("crius-test".to_string()));
    Ok(spec)
}

/// Writes a complete bundle at `bundle` (rootfs + config.json) running `args`, after letting
/// `edit` change the spec (terminal, resources, ...). Returns the bundle path.
pub fn write_bundle_with(
    bundle: &Path,
    args: &[&str],
    edit: impl FnOnce(&mut Spec),
) -> io::Result<PathBuf> {
    write_busybox_rootfs(&bundle.join("rootfs"))?;
    let mut spec = busybox_spec(args)?;
    edit(&mut spec);
    let json = serde_json::to_vec_pretty(&spec).map_err(io::Error::other)?;
    std::fs::write(bundle.join("config.json"), json)?;
    Ok(bundle.to_path_buf())
}

/// Writes a bundle at `bundle` running `args` with the default spec.
pub fn write_bundle(bundle: &Path, args: &[&str]) -> io::Result<PathBuf> {
    write_bundle_with(bundle, args, |_| {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ() {
        assert_ne!(unique_id("t"), unique_id("t"));
    }

    #[test]
    fn bundle_has_shell_and_spec() {
        let dir = std::env::temp_dir().join(unique_id("bundle"));
        write_bundle(&dir, &["sh", "-c", "echo hi"]).expect("bundle");
        assert!(dir.join("rootfs/bin/sh").exists());
        let spec: Spec =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).expect("read"))
                .expect("parse");
        assert_eq!(
            spec.process().as_ref().and_then(|p| p.args().clone()),
            Some(vec![
                "sh".to_string(),
                "-c".to_string(),
                "echo hi".to_string()
            ])
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
