//! The crius daemon binary: `crius [serve]`, `crius config`, `crius version`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use crius::config::{Config, Overrides};

/// crius: a Kubernetes CRI v1 container runtime.
#[derive(Parser, Debug)]
#[command(name = "crius", version, about)]
struct Cli {
    /// Configuration file (default /etc/crius/crius.toml when it exists).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// CRI gRPC unix socket.
    #[arg(long, global = true)]
    listen: Option<PathBuf>,
    /// Durable state directory.
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Volatile state directory.
    #[arg(long, global = true)]
    runroot: Option<PathBuf>,
    /// Log level (error, warn, info, debug, trace) or a tracing filter; RUST_LOG also works.
    #[arg(long, global = true)]
    log_level: Option<String>,
    /// Runtime handler used when a pod names none.
    #[arg(long, global = true)]
    default_runtime: Option<String>,
    /// Monitor binary (crius-monitor or conmon).
    #[arg(long, global = true)]
    conmon: Option<PathBuf>,
    /// CNI configuration directory.
    #[arg(long, global = true)]
    cni_config_dir: Option<PathBuf>,
    /// CNI plugin directory (repeatable).
    #[arg(long = "cni-plugin-dir", global = true)]
    cni_plugin_dir: Vec<PathBuf>,
    /// registries.conf with mirrors.
    #[arg(long, global = true)]
    registries_conf: Option<PathBuf>,
    /// Streaming server address.
    #[arg(long, global = true)]
    stream_address: Option<String>,
    /// Streaming server port (0 = any free port).
    #[arg(long, global = true)]
    stream_port: Option<u16>,
    /// Pause image recorded for pods with an infra container.
    #[arg(long, global = true)]
    pause_image: Option<String>,
    /// Default cgroup parent of pods.
    #[arg(long, global = true)]
    cgroup_parent: Option<String>,
    /// NRI socket for plugins (enables NRI).
    #[arg(long, global = true)]
    nri_socket: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the daemon (the default).
    Serve,
    /// Print the configuration (defaults, file, flags) as commented TOML.
    Config {
        /// Print the built-in defaults only, ignoring the file and flags.
        #[arg(long)]
        default: bool,
    },
    /// Print the version.
    Version,
}

impl Cli {
    fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen.clone(),
            root: self.root.clone(),
            runroot: self.runroot.clone(),
            log_level: self.log_level.clone(),
            default_runtime: self.default_runtime.clone(),
            conmon: self.conmon.clone(),
            cni_config_dir: self.cni_config_dir.clone(),
            cni_plugin_dirs: self.cni_plugin_dir.clone(),
            registries_conf: self.registries_conf.clone(),
            stream_address: self.stream_address.clone(),
            stream_port: self.stream_port,
            pause_image: self.pause_image.clone(),
            cgroup_parent: self.cgroup_parent.clone(),
            nri_socket: self.nri_socket.clone(),
        }
    }
}

fn load(cli: &Cli) -> anyhow::Result<Config> {
    let mut cfg = Config::load(cli.config.as_deref())?;
    cfg.apply(cli.overrides());
    Ok(cfg)
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("crius: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Some(Cmd::Version) => {
            println!("crius version {}", env!("CARGO_PKG_VERSION"));
            println!("CRI API v1");
            Ok(())
        }
        Some(Cmd::Config { default }) => {
            let cfg = if default {
                Config::default()
            } else {
                load(&cli)?
            };
            print!("{}", cfg.to_commented_toml());
            Ok(())
        }
        None | Some(Cmd::Serve) => {
            let cfg = load(&cli)?;
            let filter = std::env::var("RUST_LOG")
                .ok()
                .filter(|_| cli.log_level.is_none())
                .unwrap_or(cfg.log_level.clone());
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_new(&filter)
                        .unwrap_or_else(|_| "info".into()),
                )
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .init();
            crius::daemon::tune_allocator();
            // The daemon mostly waits on child processes and files: a few workers are enough,
            // and each one costs memory (stack, allocator caches) on a many-core host.
            let workers = std::thread::available_parallelism()
                .map(|n| n.get().min(4))
                .unwrap_or(2);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()?;
            rt.block_on(crius::daemon::serve(cfg))?;
            Ok(())
        }
    }
}
