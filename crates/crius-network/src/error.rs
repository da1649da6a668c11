//! The crate's error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while pinning namespaces or running CNI plugins.
///
/// Each variant names the object (pod, file, plugin) and the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A pod ID that cannot be used as a file name or a CNI container ID.
    #[error("invalid pod id {0:?}: want 1-128 characters of [A-Za-z0-9_.-] starting with a letter or digit")]
    InvalidPodId(String),

    /// A hostname the kernel would refuse (empty or longer than 64 bytes).
    #[error("invalid pod hostname {0:?}: want 1-64 bytes")]
    InvalidHostname(String),

    /// Creating, pinning or removing a pod namespace failed.
    #[error("pod {pod}: {step}: {source}")]
    Namespace {
        /// The pod ID.
        pod: String,
        /// What was being done, e.g. "bind-mount net namespace onto /run/.../netns/x".
        step: String,
        /// The system error.
        #[source]
        source: io::Error,
    },

    /// User namespace mappings that cannot be used (empty, overflowing, no container ID 0).
    #[error("invalid user namespace mappings: {0}")]
    InvalidUserns(String),

    /// Creating a user namespace (its helper process or its ID maps) failed.
    #[error("user namespace: {step}: {source}")]
    Userns {
        /// What was being done.
        step: String,
        /// The system error.
        #[source]
        source: io::Error,
    },

    /// Entering a pinned network namespace failed.
    #[error("enter network namespace {path}: {step}: {source}")]
    EnterNetns {
        /// The pinned netns file.
        path: PathBuf,
        /// "open" or "setns".
        step: &'static str,
        /// The system error.
        #[source]
        source: io::Error,
    },

    /// Connecting to an address inside a pod's network namespace failed (port-forward).
    #[error("connect to {addr} in network namespace {netns}: {source}")]
    Connect {
        /// The pinned netns file.
        netns: PathBuf,
        /// The address inside the pod.
        addr: std::net::SocketAddr,
        /// The system error.
        #[source]
        source: io::Error,
    },

    /// A worker thread panicked (the closure given to `run_in_netns`, or namespace setup).
    #[error("{what}: worker thread panicked")]
    ThreadPanicked {
        /// What the thread was doing.
        what: String,
    },

    /// The CNI config directory holds no `*.conflist`, `*.conf` or `*.json` file.
    #[error("no CNI network config (*.conflist, *.conf, *.json) in {dir}")]
    NoConfig {
        /// The configured CNI config directory.
        dir: PathBuf,
    },

    /// The CNI config directory could not be read.
    #[error("read CNI config dir {dir}: {source}")]
    ConfigDir {
        /// The configured CNI config directory.
        dir: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
    },

    /// The first CNI config file is not a valid network config.
    #[error("parse error in CNI config file {file}: {msg}")]
    ConfigParse {
        /// The file that was loaded.
        file: PathBuf,
        /// What is wrong with it.
        msg: String,
    },

    /// A plugin named by the network config has no executable in any plugin directory.
    #[error("CNI network {network:?} (from {file}): plugin {plugin:?} not found in {dirs:?}")]
    PluginNotFound {
        /// The network name.
        network: String,
        /// The config file the network came from.
        file: PathBuf,
        /// The plugin `type`.
        plugin: String,
        /// The directories searched.
        dirs: Vec<PathBuf>,
    },

    /// A plugin ran and reported failure (the CNI error JSON, or its stderr).
    #[error("pod {pod}: CNI {command} {plugin}: {msg}")]
    Plugin {
        /// The pod ID (CNI_CONTAINERID).
        pod: String,
        /// "ADD" or "DEL".
        command: &'static str,
        /// The plugin `type`.
        plugin: String,
        /// The CNI error code, when the plugin printed the error JSON.
        code: Option<u64>,
        /// The plugin's message (`msg`, `details`), plus any cleanup failure.
        msg: String,
    },

    /// A plugin binary could not be started or waited for.
    #[error("pod {pod}: CNI {command} {plugin}: run {binary}: {source}")]
    PluginSpawn {
        /// The pod ID.
        pod: String,
        /// "ADD" or "DEL".
        command: &'static str,
        /// The plugin `type`.
        plugin: String,
        /// The binary that was run.
        binary: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
    },

    /// A plugin succeeded but printed something that is not a CNI result.
    #[error("pod {pod}: CNI ADD {plugin}: invalid result: {msg}")]
    BadResult {
        /// The pod ID.
        pod: String,
        /// The plugin `type`.
        plugin: String,
        /// What is wrong with the output.
        msg: String,
    },

    /// The on-disk CNI result cache could not be written or read.
    #[error("pod {pod}: CNI cache {path}: {msg}")]
    Cache {
        /// The pod ID.
        pod: String,
        /// The cache file.
        path: PathBuf,
        /// What failed.
        msg: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
