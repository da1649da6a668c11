//! Per-pod files shared by the pod's containers: hostname, /etc/hosts, /etc/resolv.conf and the
//! /dev/shm tmpfs, all under the pod's run directory.

use std::path::{Path, PathBuf};

use k8s_cri::v1 as cri;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{Context, Error, Result};

/// The pod-shared file paths under a pod run directory.
#[derive(Debug, Clone)]
pub struct PodFiles {
    /// The run directory.
    pub dir: PathBuf,
}

impl PodFiles {
    /// Paths under `dir`.
    pub fn new(dir: PathBuf) -> PodFiles {
        PodFiles { dir }
    }
    /// `hostname` file.
    pub fn hostname(&self) -> PathBuf {
        self.dir.join("hostname")
    }
    /// `hosts` file.
    pub fn hosts(&self) -> PathBuf {
        self.dir.join("hosts")
    }
    /// `resolv.conf` file.
    pub fn resolv(&self) -> PathBuf {
        self.dir.join("resolv.conf")
    }
    /// The /dev/shm tmpfs mount point.
    pub fn shm(&self) -> PathBuf {
        self.dir.join("shm")
    }
}

/// The contents of /etc/resolv.conf from a DNSConfig; `None` when the config is empty (use
/// the host's file).
pub fn resolv_conf(dns: Option<&cri::DnsConfig>) -> Option<String> {
    let dns = dns?;
    if dns.servers.is_empty() && dns.searches.is_empty() && dns.options.is_empty() {
        return None;
    }
    let mut s = String::new();
    if !dns.searches.is_empty() {
        s.push_str(&format!("search {}\n", dns.searches.join(" ")));
    }
    for srv in &dns.servers {
        s.push_str(&format!("nameserver {srv}\n"));
    }
    if !dns.options.is_empty() {
        s.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    Some(s)
}

/// The contents of /etc/hosts for a pod with its own network namespace.
pub fn hosts_file(hostname: &str, ip: Option<&str>) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    if let Some(ip) = ip.filter(|i| !i.is_empty()) {
        if !hostname.is_empty() {
            s.push_str(&format!("{ip}\t{hostname}\n"));
        }
    }
    s
}

/// Writes hostname, resolv.conf and a provisional hosts file (rewritten with the IP later).
pub fn write_base(
    files: &PodFiles,
    hostname: &str,
    dns: Option<&cri::DnsConfig>,
    host_network: bool,
) -> Result<()> {
    std::fs::create_dir_all(&files.dir).ctx(format!("create {}", files.dir.display()))?;
    std::fs::write(files.hostname(), format!("{hostname}\n")).ctx("write hostname")?;
    match resolv_conf(dns) {
        Some(text) => std::fs::write(files.resolv(), text).ctx("write resolv.conf")?,
        None => copy_or_empty(Path::new("/etc/resolv.conf"), &files.resolv())?,
    }
    if host_network {
        copy_or_empty(Path::new("/etc/hosts"), &files.hosts())?;
    } else {
        std::fs::write(files.hosts(), hosts_file(hostname, None)).ctx("write hosts")?;
    }
    Ok(())
}

/// Rewrites /etc/hosts once the pod IP is known.
pub fn write_hosts(files: &PodFiles, hostname: &str, ip: Option<&str>) -> Result<()> {
    crate::state::store::write_atomic_volatile(&files.hosts(), hosts_file(hostname, ip).as_bytes())
}

fn copy_or_empty(src: &Path, dst: &Path) -> Result<()> {
    match std::fs::read(src) {
        Ok(b) => std::fs::write(dst, b).ctx(format!("write {}", dst.display())),
        Err(_) => std::fs::write(dst, b"").ctx(format!("write {}", dst.display())),
    }
}

/// Mounts the pod's /dev/shm tmpfs of `size` bytes.
pub fn mount_shm(files: &PodFiles, size: u64) -> Result<()> {
    let p = files.shm();
    std::fs::create_dir_all(&p).ctx(format!("create {}", p.display()))?;
    let data = format!("mode=1777,size={size}");
    mount(
        Some("shm"),
        &p,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(data.as_str()),
    )
    .map_err(|e| Error::internal(format!("mount shm tmpfs at {}", p.display()), e))
}

/// Unmounts the pod's /dev/shm (idempotent).
pub fn unmount_shm(files: &PodFiles) -> Result<()> {
    let p = files.shm();
    match umount2(&p, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(Error::internal(format!("unmount {}", p.display()), e)),
    }
}

/// Removes the pod run directory (after unmounting shm).
pub fn remove_dir(files: &PodFiles) -> Result<()> {
    unmount_shm(files)?;
    match std::fs::remove_dir_all(&files.dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::internal(
            format!("remove {}", files.dir.display()),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_from_dns_config() {
        let dns = cri::DnsConfig {
            servers: vec!["10.0.0.10".into(), "8.8.8.8".into()],
            searches: vec!["svc.cluster.local".into(), "cluster.local".into()],
            options: vec!["ndots:5".into()],
        };
        assert_eq!(
            resolv_conf(Some(&dns)).expect("some"),
            "search svc.cluster.local cluster.local\nnameserver 10.0.0.10\nnameserver 8.8.8.8\noptions ndots:5\n"
        );
        assert_eq!(resolv_conf(Some(&cri::DnsConfig::default())), None);
        assert_eq!(resolv_conf(None), None);
    }

    #[test]
    fn hosts_has_pod_ip() {
        let h = hosts_file("web-0", Some("10.88.0.5"));
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("10.88.0.5\tweb-0\n"));
        assert!(!hosts_file("web-0", None).contains("web-0"));
    }
}
