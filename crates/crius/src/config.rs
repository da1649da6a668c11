//! The daemon configuration: defaults, the TOML file, and command-line overrides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Default path of the configuration file.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/crius/crius.toml";

/// One OCI runtime handler (`[runtimes.<name>]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeHandlerConfig {
    /// Path of the runtime binary (runc, crun).
    pub path: PathBuf,
    /// The runtime's state directory (`--root`); empty means the runtime's default.
    #[serde(default)]
    pub root: Option<PathBuf>,
}

/// The whole configuration of the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The CRI gRPC unix socket.
    pub listen: PathBuf,
    /// Durable state: pod and container records, images.
    pub root: PathBuf,
    /// Volatile state: bundles, namespaces, /dev/shm mounts, exit files.
    pub runroot: PathBuf,
    /// Log level (error, warn, info, debug, trace) or a tracing filter.
    pub log_level: String,
    /// The runtime handler used when a pod names none.
    pub default_runtime: String,
    /// The per-container monitor binary (crius-monitor or conmon); empty = crius-monitor next
    /// to the crius binary, else in PATH.
    pub conmon: Option<PathBuf>,
    /// Directory of CNI network configurations.
    pub cni_config_dir: PathBuf,
    /// Directories searched for CNI plugins.
    pub cni_plugin_dirs: Vec<PathBuf>,
    /// containers-registries.conf(5) file with mirrors.
    pub registries_conf: PathBuf,
    /// Address the streaming server (exec/attach/port-forward) binds.
    pub stream_address: String,
    /// Port of the streaming server; 0 picks a free one.
    pub stream_port: u16,
    /// Image of the infra container (used only for pods sharing a PID namespace, whose infra
    /// process is crius-pause; the image is recorded for the kubelet's image GC).
    pub pause_image: String,
    /// Default cgroup parent of pods (cgroupfs path, relative to the cgroup roots).
    pub cgroup_parent: String,
    /// Size of each pod's /dev/shm tmpfs in bytes.
    pub shm_size: u64,
    /// Default `pids.max` of every container's cgroup; 0 or -1 = unlimited.
    pub pids_limit: i64,
    /// Make each pulled layer durable (one `syncfs` of the image store's filesystem) before
    /// it is used, so that a power loss cannot leave a layer with empty files that every later
    /// pull trusts; `false` trades that for faster pulls on busy disks.
    pub image_pull_sync_fs: bool,
    /// The OCI runtime handlers.
    pub runtimes: BTreeMap<String, RuntimeHandlerConfig>,
    /// NRI plugins (`[nri]`).
    pub nri: crate::nri::NriConfig,
}

impl Default for Config {
    fn default() -> Self {
        let mut runtimes = BTreeMap::new();
        runtimes.insert(
            "runc".to_string(),
            RuntimeHandlerConfig {
                path: find_in_path("runc").unwrap_or_else(|| "/usr/sbin/runc".into()),
                root: None,
            },
        );
        runtimes.insert(
            "crun".to_string(),
            RuntimeHandlerConfig {
                path: find_in_path("crun").unwrap_or_else(|| "/usr/bin/crun".into()),
                root: None,
            },
        );
        Config {
            listen: "/run/crius/crius.sock".into(),
            root: "/var/lib/crius".into(),
            runroot: "/run/crius".into(),
            log_level: "info".into(),
            default_runtime: "runc".into(),
            conmon: None,
            cni_config_dir: "/etc/cni/net.d".into(),
            cni_plugin_dirs: vec!["/opt/cni/bin".into(), "/usr/lib/cni".into()],
            registries_conf: "/etc/containers/registries.conf".into(),
            stream_address: "127.0.0.1".into(),
            stream_port: 0,
            pause_image: "registry.k8s.io/pause:3.10".into(),
            cgroup_parent: "/crius".into(),
            shm_size: 64 * 1024 * 1024,
            pids_limit: 0,
            image_pull_sync_fs: true,
            runtimes,
            nri: Default::default(),
        }
    }
}

/// Command-line values that override the file (`None` = not given).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--listen`
    pub listen: Option<PathBuf>,
    /// `--root`
    pub root: Option<PathBuf>,
    /// `--runroot`
    pub runroot: Option<PathBuf>,
    /// `--log-level`
    pub log_level: Option<String>,
    /// `--default-runtime`
    pub default_runtime: Option<String>,
    /// `--conmon`
    pub conmon: Option<PathBuf>,
    /// `--cni-config-dir`
    pub cni_config_dir: Option<PathBuf>,
    /// `--cni-plugin-dir` (repeatable; replaces the file's list when given)
    pub cni_plugin_dirs: Vec<PathBuf>,
    /// `--registries-conf`
    pub registries_conf: Option<PathBuf>,
    /// `--stream-address`
    pub stream_address: Option<String>,
    /// `--stream-port`
    pub stream_port: Option<u16>,
    /// `--pause-image`
    pub pause_image: Option<String>,
    /// `--cgroup-parent`
    pub cgroup_parent: Option<String>,
    /// `--nri-socket` (also enables NRI)
    pub nri_socket: Option<PathBuf>,
}

impl Config {
    /// Loads `path` if given (it must exist) or the default file if it exists, else defaults.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let (path, must_exist) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Config::parse(&text)
                .map_err(|e| Error::InvalidArgument(format!("config {}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {
                Ok(Config::default())
            }
            Err(e) => Err(Error::InvalidArgument(format!(
                "config {}: {e}",
                path.display()
            ))),
        }
    }

    /// Parses TOML text; missing keys keep their defaults. A `[runtimes]` table in the file
    /// is merged over the default handlers.
    pub fn parse(text: &str) -> std::result::Result<Config, toml::de::Error> {
        let mut cfg: Config = toml::from_str(text)?;
        let defaults = Config::default().runtimes;
        for (name, h) in defaults {
            cfg.runtimes.entry(name).or_insert(h);
        }
        Ok(cfg)
    }

    /// Applies command-line overrides (flags win over the file).
    pub fn apply(&mut self, o: Overrides) {
        macro_rules! set {
            ($f:ident) => {
                if let Some(v) = o.$f {
                    self.$f = v;
                }
            };
        }
        set!(listen);
        set!(root);
        set!(runroot);
        set!(log_level);
        set!(default_runtime);
        set!(cni_config_dir);
        set!(registries_conf);
        set!(stream_address);
        set!(stream_port);
        set!(pause_image);
        set!(cgroup_parent);
        if o.conmon.is_some() {
            self.conmon = o.conmon;
        }
        if !o.cni_plugin_dirs.is_empty() {
            self.cni_plugin_dirs = o.cni_plugin_dirs;
        }
        if let Some(p) = o.nri_socket {
            self.nri.enable = true;
            self.nri.socket_path = p;
        }
    }

    /// The monitor binary: the configured one, else crius-monitor next to this binary, else
    /// crius-monitor in PATH.
    pub fn monitor_path(&self) -> Result<PathBuf> {
        if let Some(p) = &self.conmon {
            return if p.is_file() {
                Ok(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
            } else {
                Err(Error::Unavailable(format!(
                    "monitor binary {} not found",
                    p.display()
                )))
            };
        }
        if let Ok(exe) = std::env::current_exe() {
            if let Some(dir) = exe.parent() {
                let p = dir.join("crius-monitor");
                if p.is_file() {
                    return Ok(p);
                }
            }
        }
        find_in_path("crius-monitor").ok_or_else(|| {
            Error::Unavailable(
                "monitor binary crius-monitor not found next to crius nor in PATH (set --conmon)"
                    .into(),
            )
        })
    }

    /// The crius-pause binary (next to this binary, else in PATH).
    pub fn pause_binary(&self) -> Option<PathBuf> {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join("crius-pause")))
            .filter(|p| p.is_file())
            .or_else(|| find_in_path("crius-pause"))
    }

    /// Checks what must exist before serving: the runtime binaries of all handlers (the
    /// default handler's is required), the monitor binary, and `pids_limit` (not below -1).
    pub fn validate(&self) -> Result<()> {
        if self.pids_limit < -1 {
            return Err(Error::InvalidArgument(format!(
                "pids_limit = {}: must be positive, or 0 / -1 for unlimited",
                self.pids_limit
            )));
        }
        let def = self.runtimes.get(&self.default_runtime).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "default runtime {:?} has no [runtimes.{0}] entry",
                self.default_runtime
            ))
        })?;
        if !def.path.is_file() {
            return Err(Error::Unavailable(format!(
                "runtime {:?}: binary {} not found",
                self.default_runtime,
                def.path.display()
            )));
        }
        self.monitor_path()?;
        Ok(())
    }

    /// Durable directory of the state records.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("state")
    }

    /// Directory of the image store.
    pub fn image_root(&self) -> PathBuf {
        self.root.join("storage")
    }

    /// Directory of container bundles (volatile).
    pub fn bundles_dir(&self) -> PathBuf {
        self.runroot.join("containers")
    }

    /// Directory of per-pod volatile files (hosts, resolv.conf, shm).
    pub fn pods_run_dir(&self) -> PathBuf {
        self.runroot.join("pods")
    }

    /// Directory of pinned namespaces.
    pub fn ns_dir(&self) -> PathBuf {
        self.runroot.join("ns")
    }

    /// The default configuration as commented TOML (`crius config`).
    pub fn default_toml() -> String {
        Config::default().to_commented_toml()
    }

    /// This configuration as commented TOML.
    pub fn to_commented_toml(&self) -> String {
        let q = |s: &str| toml::Value::String(s.to_string()).to_string();
        let p = |p: &Path| q(&p.to_string_lossy());
        let mut out = String::new();
        out.push_str("# crius configuration (/etc/crius/crius.toml). Command-line flags win over this file.\n\n");
        fn kv(out: &mut String, doc: &str, key: &str, val: String) {
            out.push_str(&format!("# {doc}\n{key} = {val}\n\n"));
        }
        kv(
            &mut out,
            "CRI gRPC unix socket (mode 0600).",
            "listen",
            p(&self.listen),
        );
        kv(
            &mut out,
            "Durable state: pod and container records, images.",
            "root",
            p(&self.root),
        );
        kv(
            &mut out,
            "Volatile state: bundles, pinned namespaces, /dev/shm mounts.",
            "runroot",
            p(&self.runroot),
        );
        kv(
            &mut out,
            "Log level: error, warn, info, debug, trace (or a tracing filter).",
            "log_level",
            q(&self.log_level),
        );
        kv(
            &mut out,
            "Runtime handler used when a pod names none.",
            "default_runtime",
            q(&self.default_runtime),
        );
        match &self.conmon {
            Some(c) => kv(&mut out, "Monitor binary (crius-monitor or conmon).", "conmon", p(c)),
            None => out.push_str(
                "# Monitor binary (crius-monitor or conmon). Default: crius-monitor next to crius, else in PATH.\n# conmon = \"/usr/libexec/crius/crius-monitor\"\n\n",
            ),
        }
        kv(
            &mut out,
            "Directory of CNI network configuration files.",
            "cni_config_dir",
            p(&self.cni_config_dir),
        );
        let dirs: Vec<String> = self.cni_plugin_dirs.iter().map(|d| p(d)).collect();
        kv(
            &mut out,
            "Directories searched for CNI plugin binaries.",
            "cni_plugin_dirs",
            format!("[{}]", dirs.join(", ")),
        );
        kv(
            &mut out,
            "Registries configuration (mirrors), containers-registries.conf(5).",
            "registries_conf",
            p(&self.registries_conf),
        );
        kv(
            &mut out,
            "Address of the streaming server (exec, attach, port-forward).",
            "stream_address",
            q(&self.stream_address),
        );
        kv(
            &mut out,
            "Port of the streaming server; 0 picks a free port.",
            "stream_port",
            self.stream_port.to_string(),
        );
        kv(
            &mut out,
            "Pause image recorded for pods that need an infra container (shared PID namespace).",
            "pause_image",
            q(&self.pause_image),
        );
        kv(
            &mut out,
            "Default cgroup parent of pods (cgroupfs).",
            "cgroup_parent",
            q(&self.cgroup_parent),
        );
        kv(
            &mut out,
            "Size of each pod's /dev/shm tmpfs, in bytes.",
            "shm_size",
            self.shm_size.to_string(),
        );
        kv(
            &mut out,
            "Maximum number of processes in each container (its cgroup's pids.max); 0 or -1 = unlimited.",
            "pids_limit",
            self.pids_limit.to_string(),
        );
        kv(
            &mut out,
            "syncfs after each pulled layer: a power loss cannot leave layers with empty files (false = faster pulls).",
            "image_pull_sync_fs",
            self.image_pull_sync_fs.to_string(),
        );
        out.push_str("# OCI runtime handlers: [runtimes.<handler>] path = binary, root = state dir (optional).\n");
        for (name, h) in &self.runtimes {
            out.push_str(&format!("[runtimes.{name}]\npath = {}\n", p(&h.path)));
            if let Some(r) = &h.root {
                out.push_str(&format!("root = {}\n", p(r)));
            }
            out.push('\n');
        }
        out.push_str(&self.nri.to_commented_toml());
        out
    }
}

/// Looks `name` up in PATH.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_toml_round_trips() {
        let text = Config::default_toml();
        let parsed = Config::parse(&text).expect("default config parses");
        assert_eq!(parsed, Config::default());
        assert!(text.contains("# CRI gRPC unix socket"));
    }

    #[test]
    fn file_then_flags() {
        let mut c = Config::parse(
            "root = \"/tmp/r\"\nstream_port = 1234\n[runtimes.runc]\npath = \"/x/runc\"\nroot = \"/tmp/runc\"\n",
        )
        .expect("parse");
        assert_eq!(c.root, PathBuf::from("/tmp/r"));
        assert_eq!(
            c.runtimes["runc"].root.as_deref(),
            Some(Path::new("/tmp/runc"))
        );
        assert!(c.runtimes.contains_key("crun"));
        c.apply(Overrides {
            root: Some("/tmp/flag".into()),
            cni_plugin_dirs: vec!["/a".into()],
            ..Default::default()
        });
        assert_eq!(c.root, PathBuf::from("/tmp/flag"));
        assert_eq!(c.stream_port, 1234);
        assert_eq!(c.cni_plugin_dirs, vec![PathBuf::from("/a")]);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(Config::parse("bogus = 1").is_err());
    }

    #[test]
    fn validate_names_missing_runtime() {
        let mut c = Config::default();
        c.runtimes.insert(
            "runc".into(),
            RuntimeHandlerConfig {
                path: "/nonexistent/runc".into(),
                root: None,
            },
        );
        let e = c.validate().expect_err("missing runtime");
        assert!(e.to_string().contains("/nonexistent/runc"), "{e}");
    }

    #[test]
    fn pids_limit_parsed_and_checked() {
        assert_eq!(Config::default().pids_limit, 0);
        let c = Config::parse("pids_limit = 2048\n").expect("parse");
        assert_eq!(c.pids_limit, 2048);
        assert!(Config::default_toml().contains("\npids_limit = 0\n"));
        let c = Config::parse("pids_limit = -2\n").expect("parse");
        let e = c.validate().expect_err("below -1");
        assert!(e.to_string().contains("pids_limit"), "{e}");
    }

    #[test]
    fn image_pull_sync_fs_defaults_on() {
        assert!(Config::default().image_pull_sync_fs);
        assert!(Config::default_toml().contains("\nimage_pull_sync_fs = true\n"));
        let c = Config::parse("image_pull_sync_fs = false\n").expect("parse");
        assert!(!c.image_pull_sync_fs);
    }
}
