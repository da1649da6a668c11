//! What the host and an OCI runtime support, for the daemon's `Status` response.
//!
//! Recursive read-only mounts (CRI `Mount.recursive_read_only`) are realized with the OCI
//! mount option `rro`, which the runtime implements with `mount_setattr(2)` (`AT_RECURSIVE` +
//! `MOUNT_ATTR_RDONLY`). That needs both a kernel with `mount_setattr` (Linux >= 5.12) and a
//! runtime that knows `rro` (runc >= 1.1, crun >= 1.4; older runtimes silently ignore the
//! option, leaving submounts writable, hence the check).
//!
//! The daemon should set, per runtime handler,
//! `RuntimeHandler.features.recursive_read_only_mounts = recursive_read_only_supported(path)`
//! and, once for the runtime, `StatusResponse.features.supplemental_groups_policy =
//! SUPPLEMENTAL_GROUPS_POLICY_SUPPORTED` (with `ContainerStatus.user` filled from
//! [`crate::ResolvedUser::container_user`]).

use std::path::Path;
use std::process::{Command, Stdio};

/// crius-spec honours `LinuxContainerSecurityContext.supplemental_groups_policy` (Merge and
/// Strict) and reports the resulting identity in [`crate::ContainerSpec::user`].
pub const SUPPLEMENTAL_GROUPS_POLICY_SUPPORTED: bool = true;

/// Whether the running kernel implements `mount_setattr(2)`: probed by calling it with an
/// invalid descriptor, which fails with `ENOSYS` only when the syscall does not exist (so a
/// backport to an older kernel version counts, and seccomp-filtered daemons report false).
pub fn kernel_supports_mount_setattr() -> bool {
    // SAFETY: mount_setattr(-1, "", 0, NULL, 0) only reads its arguments; with a bad dirfd and
    // a NULL attr it fails (EBADF/EINVAL/EFAULT) without touching any mount or memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            -1 as libc::c_int,
            c"".as_ptr(),
            0 as libc::c_uint,
            std::ptr::null::<libc::c_void>(),
            0 as libc::size_t,
        )
    };
    if rc == 0 {
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS)
}

/// Whether the OCI runtime binary at `runtime_path` implements the `rro` mount option:
/// `<runtime> features` lists it in `mountOptions` (runc >= 1.1, crun >= 1.9), else the
/// version from `<runtime> --version` is at least runc 1.1 / crun 1.4. Runs the binary (blocking;
/// call once at startup). Unknown runtimes or failures read as unsupported.
pub fn runtime_supports_rro(runtime_path: &Path) -> bool {
    if let Some(features) = run(runtime_path, "features") {
        if let Some(found) = features_lists_rro(&features) {
            return found;
        }
    }
    run(runtime_path, "--version")
        .map(|v| version_supports_rro(&v))
        .unwrap_or(false)
}

/// Whether the handler whose runtime binary is `runtime_path` can mount recursively
/// read-only on this host: [`kernel_supports_mount_setattr`] and [`runtime_supports_rro`].
/// This is the value of `RuntimeHandlerFeatures.recursive_read_only_mounts`.
pub fn recursive_read_only_supported(runtime_path: &Path) -> bool {
    kernel_supports_mount_setattr() && runtime_supports_rro(runtime_path)
}

fn run(runtime_path: &Path, arg: &str) -> Option<String> {
    let out = Command::new(runtime_path)
        .arg(arg)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| tracing::debug!(runtime = %runtime_path.display(), arg, "run: {e}"))
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `Some(listed)` when `json` is a features document with `mountOptions`; `None` otherwise.
fn features_lists_rro(json: &str) -> Option<bool> {
    let doc: serde_json::Value = serde_json::from_str(json).ok()?;
    let opts = doc.get("mountOptions")?.as_array()?;
    Some(opts.iter().any(|o| o.as_str() == Some("rro")))
}

/// Parses `runc version 1.1.5` / `crun version 1.8.1` (first line) and compares with the first
/// release that implements `rro`.
fn version_supports_rro(version_output: &str) -> bool {
    let Some(line) = version_output.lines().next() else {
        return false;
    };
    let mut words = line.split_whitespace();
    let (Some(name), Some("version"), Some(ver)) = (words.next(), words.next(), words.next())
    else {
        return false;
    };
    let min = match name {
        "runc" => (1, 1),
        "crun" => (1, 4),
        _ => return false,
    };
    let mut nums = ver
        .split(['.', '-', '+', '~'])
        .map(|p| p.parse::<u32>().ok());
    match (nums.next().flatten(), nums.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= min,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_table() {
        let cases: &[(&str, bool)] = &[
            ("runc version 1.1.5\ncommit: v1.1.5\nspec: 1.0.2-dev", true),
            ("runc version 1.0.3", false),
            ("runc version 1.2.0-rc.1", true),
            ("crun version 1.8.1\ncommit: f8a0", true),
            ("crun version 1.4", true),
            ("crun version 1.3.9", false),
            ("crun version 2.0", true),
            ("youki version 0.3.0", false),
            ("runc version", false),
            ("runc version x.y", false),
            ("", false),
        ];
        for (out, want) in cases {
            assert_eq!(version_supports_rro(out), *want, "{out:?}");
        }
    }

    #[test]
    fn features_table() {
        let cases: &[(&str, Option<bool>)] = &[
            (r#"{"mountOptions":["ro","rro","rbind"]}"#, Some(true)),
            (r#"{"mountOptions":["ro","rbind"]}"#, Some(false)),
            (r#"{"ociVersionMin":"1.0.0"}"#, None),
            ("unknown command features", None),
        ];
        for (json, want) in cases {
            assert_eq!(features_lists_rro(json), *want, "{json}");
        }
    }

    #[test]
    fn missing_runtime_is_unsupported() {
        assert!(!runtime_supports_rro(Path::new("/nonexistent/runtime")));
        assert!(!recursive_read_only_supported(Path::new(
            "/nonexistent/runtime"
        )));
    }

    #[test]
    fn kernel_probe_agrees_with_release() {
        // mount_setattr appeared in Linux 5.12.
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
        let mut nums = release.trim().split(['.', '-']).map(|p| p.parse::<u32>());
        let (major, minor) = match (nums.next(), nums.next()) {
            (Some(Ok(a)), Some(Ok(b))) => (a, b),
            _ => panic!("unparsable release {release:?}"),
        };
        if (major, minor) >= (5, 12) {
            assert!(kernel_supports_mount_setattr(), "{release}");
        }
    }

    #[test]
    fn installed_runtimes() {
        // The host provides runc 1.1.5 and crun 1.8.1 (scripts/host-setup.sh).
        for rt in ["runc", "crun"] {
            let path = std::env::var_os("PATH")
                .and_then(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join(rt))
                        .find(|p| p.exists())
                })
                .unwrap_or_else(|| panic!("{rt} not installed: run scripts/host-setup.sh"));
            assert!(runtime_supports_rro(&path), "{}", path.display());
        }
    }
}
