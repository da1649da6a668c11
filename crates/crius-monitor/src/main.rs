//! crius-monitor: the per-container monitor ("conmon") of crius.
//!
//! It accepts conmon 2.1's command line and speaks its file and pipe protocol, so the daemon can
//! run it or Debian's `conmon` with the same arguments. One process per container: small,
//! synchronous, no async runtime. The protocol it implements is written down in PROTOCOL.md.

#[macro_use]
mod diag;
mod args;
mod attach;
mod crilog;
mod ctl;
mod monitor;
mod oom;
mod syncpipe;
mod sys;

fn main() {
    let cwd = std::env::current_dir().unwrap_or_else(|_| std::path::PathBuf::from("/"));
    let cfg = match args::parse(std::env::args_os().skip(1).collect(), &cwd) {
        Ok(args::Command::Run(c)) => c,
        Ok(args::Command::Version) => {
            println!(
                "crius-monitor version {}\nconmon protocol 2.1",
                env!("CARGO_PKG_VERSION")
            );
            return;
        }
        Ok(args::Command::Help) => {
            print!("{}", args::USAGE);
            return;
        }
        Err(e) => {
            eprintln!("crius-monitor: {e}");
            std::process::exit(1);
        }
    };
    diag::init(cfg.log_level, &cfg.cid, cfg.log_tag.as_deref(), cfg.syslog);
    match monitor::run(&cfg) {
        Ok(code) => std::process::exit(if (0..=255).contains(&code) { code } else { 255 }),
        Err(monitor::Fatal(msg)) => {
            diag!(Error, "{msg}");
            std::process::exit(1);
        }
    }
}
