//! Command-line parsing for conmon 2.1's option set.
//!
//! The parser follows GLib's option rules as conmon uses them: long options take their value as
//! `--opt value` or `--opt=value`, short options as `-o value` or `-ovalue`, boolean short flags
//! may be grouped (`-ti`), and list options (`--runtime-arg`, `-l`, ...) may repeat. Unknown
//! options and stray arguments are rejected.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// Where the container's output goes, from one `-l/--log-path` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogDriver {
    /// CRI log file (`PATH` or `k8s-file:PATH`).
    K8sFile(PathBuf),
    /// `none`, `off` or `null`: no log.
    Off,
}

/// Everything the monitor was asked to do.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `-c/--cid`: container id (runtime's name for it).
    pub cid: String,
    /// `-u/--cuuid`: names the attach socket directory.
    pub cuuid: Option<String>,
    /// `-n/--name`: container name (diagnostics only).
    pub name: Option<String>,
    /// `-r/--runtime`: OCI runtime binary.
    pub runtime: PathBuf,
    /// `-b/--bundle`: OCI bundle; defaults to the working directory unless `--exec`.
    pub bundle: Option<PathBuf>,
    /// `-p/--container-pidfile`.
    pub container_pidfile: PathBuf,
    /// `-P/--conmon-pidfile`.
    pub conmon_pidfile: Option<PathBuf>,
    /// `-l/--log-path`, in order.
    pub log_drivers: Vec<LogDriver>,
    /// `--log-size-max` (bytes, <= 0 means unlimited).
    pub log_size_max: i64,
    /// `--log-global-size-max` (bytes, <= 0 means unlimited).
    pub log_global_size_max: i64,
    /// `--exit-dir`: `<dir>/<cid>` receives the exit code.
    pub exit_dir: Option<PathBuf>,
    /// `-0/--persist-dir`: `<dir>/exit` and `<dir>/oom`.
    pub persist_dir: Option<PathBuf>,
    /// `--socket-dir-path`: parent of the `<cuuid>` symlink to the bundle.
    pub socket_dir: PathBuf,
    /// `--full-attach`: bind the attach socket in the bundle, no symlink.
    pub full_attach: bool,
    /// `-t/--terminal`.
    pub terminal: bool,
    /// `-i/--stdin`.
    pub stdin: bool,
    /// `--leave-stdin-open`.
    pub leave_stdin_open: bool,
    /// `-e/--exec`.
    pub exec: bool,
    /// `--exec-attach`.
    pub exec_attach: bool,
    /// `--exec-process-spec`.
    pub exec_process_spec: Option<PathBuf>,
    /// `--restore`: checkpoint image path.
    pub restore: Option<PathBuf>,
    /// `-T/--timeout` in seconds (0 = none).
    pub timeout: u32,
    /// `--runtime-arg`: global runtime options, before the subcommand.
    pub runtime_args: Vec<OsString>,
    /// `--runtime-opt`/`--restore-arg`: options after the subcommand.
    pub runtime_opts: Vec<OsString>,
    /// `--log-level`.
    pub log_level: Level,
    /// `--syslog`.
    pub syslog: bool,
    /// `--log-tag`.
    pub log_tag: Option<String>,
    /// `--api-version` given.
    pub api_version: u32,
    /// `-s/--systemd-cgroup`.
    pub systemd_cgroup: bool,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// `--no-new-keyring`.
    pub no_new_keyring: bool,
    /// `--no-sync-log`.
    pub no_sync_log: bool,
    /// `--sync`: fork once only, the caller's child stays the monitor.
    pub sync: bool,
    /// `--replace-listen-pid`.
    pub replace_listen_pid: bool,
    /// `--exit-command`.
    pub exit_command: Option<PathBuf>,
    /// `--exit-command-arg`.
    pub exit_command_args: Vec<OsString>,
    /// `--exit-delay` in seconds.
    pub exit_delay: u32,
}

/// Verbosity of the monitor's own diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Level {
    /// Fatal errors only.
    Error,
    /// Warnings (conmon's default).
    #[default]
    Warn,
    /// Informational.
    Info,
    /// Debugging.
    Debug,
    /// Everything.
    Trace,
}

impl Level {
    /// Parses conmon's level names (case-insensitive).
    pub fn parse(s: &str) -> Option<Level> {
        match s.to_ascii_lowercase().as_str() {
            "error" | "fatal" | "panic" => Some(Level::Error),
            "warn" | "warning" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" => Some(Level::Debug),
            "trace" => Some(Level::Trace),
            _ => None,
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Monitor a container (or exec session).
    Run(Box<Config>),
    /// `--version`.
    Version,
    /// `-h/--help`.
    Help,
}

/// A command-line error: printed as is, exit status 1.
#[derive(Debug, PartialEq, Eq)]
pub struct ArgError(pub String);

impl std::fmt::Display for ArgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Option kinds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Flag,
    Value,
}

/// (long name, short letter, kind)
const OPTIONS: &[(&str, Option<char>, Kind)] = &[
    ("api-version", None, Kind::Flag),
    ("bundle", Some('b'), Kind::Value),
    ("cid", Some('c'), Kind::Value),
    ("conmon-pidfile", Some('P'), Kind::Value),
    ("container-pidfile", Some('p'), Kind::Value),
    ("pidfile", None, Kind::Value),
    ("cuuid", Some('u'), Kind::Value),
    ("exec", Some('e'), Kind::Flag),
    ("exec-attach", None, Kind::Flag),
    ("exec-process-spec", None, Kind::Value),
    ("exit-command", None, Kind::Value),
    ("exit-command-arg", None, Kind::Value),
    ("exit-delay", None, Kind::Value),
    ("exit-dir", None, Kind::Value),
    ("leave-stdin-open", None, Kind::Flag),
    ("log-level", None, Kind::Value),
    ("log-path", Some('l'), Kind::Value),
    ("log-size-max", None, Kind::Value),
    ("log-global-size-max", None, Kind::Value),
    ("log-tag", None, Kind::Value),
    ("log-label", None, Kind::Value),
    ("name", Some('n'), Kind::Value),
    ("no-new-keyring", None, Kind::Flag),
    ("no-pivot", None, Kind::Flag),
    ("no-sync-log", None, Kind::Flag),
    ("persist-dir", Some('0'), Kind::Value),
    ("replace-listen-pid", None, Kind::Flag),
    ("restore", None, Kind::Value),
    ("restore-arg", None, Kind::Value),
    ("runtime", Some('r'), Kind::Value),
    ("runtime-arg", None, Kind::Value),
    ("runtime-opt", None, Kind::Value),
    ("sdnotify-socket", None, Kind::Value),
    ("socket-dir-path", None, Kind::Value),
    ("stdin", Some('i'), Kind::Flag),
    ("sync", None, Kind::Flag),
    ("syslog", None, Kind::Flag),
    ("systemd-cgroup", Some('s'), Kind::Flag),
    ("terminal", Some('t'), Kind::Flag),
    ("timeout", Some('T'), Kind::Value),
    ("version", None, Kind::Flag),
    ("full-attach", None, Kind::Flag),
    ("seccomp-notify-socket", None, Kind::Value),
    ("seccomp-notify-plugins", None, Kind::Value),
    ("help", Some('h'), Kind::Flag),
];

/// conmon's default `--socket-dir-path`.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/crio";

/// Usage text for `--help`.
pub const USAGE: &str =
    "Usage: crius-monitor -c CID -u CUUID -r RUNTIME [-b BUNDLE] -l LOG_PATH [OPTIONS]\n\
Speaks conmon 2.1's command-line protocol; see conmon --help for the option list.\n";

fn err<T>(msg: impl Into<String>) -> Result<T, ArgError> {
    Err(ArgError(msg.into()))
}

fn to_string(name: &str, v: OsString) -> Result<String, ArgError> {
    v.into_string()
        .or_else(|_| err(format!("--{name}: value is not valid UTF-8")))
}

fn parse_int<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, ArgError> {
    v.trim()
        .parse()
        .or_else(|_| err(format!("--{name}: cannot parse integer value '{v}'")))
}

/// Parses `args` (without the program name). `cwd` supplies the defaults conmon derives from
/// the working directory.
pub fn parse(args: Vec<OsString>, cwd: &std::path::Path) -> Result<Command, ArgError> {
    let mut raw: Vec<(&'static str, Option<OsString>)> = Vec::new();
    let mut it = args.into_iter().peekable();
    while let Some(arg) = it.next() {
        let bytes = arg.clone().into_vec();
        if bytes == b"--" {
            if let Some(extra) = it.next() {
                return err(format!("unexpected argument '{}'", extra.to_string_lossy()));
            }
            break;
        }
        if let Some(rest) = bytes.strip_prefix(b"--") {
            let (name, inline) = match rest.iter().position(|&b| b == b'=') {
                Some(i) => (&rest[..i], Some(OsString::from_vec(rest[i + 1..].to_vec()))),
                None => (rest, None),
            };
            let name = String::from_utf8_lossy(name);
            let Some(&(long, _, kind)) = OPTIONS.iter().find(|(l, _, _)| *l == name) else {
                return err(format!("unknown option --{name}"));
            };
            match kind {
                Kind::Flag => {
                    if long == "api-version" {
                        // conmon declares it as a flag, but callers pass `--api-version 1`.
                        let value = match inline {
                            Some(v) => Some(v),
                            None => match it.peek() {
                                Some(n) if is_number(n) => it.next(),
                                _ => None,
                            },
                        };
                        raw.push((long, value));
                    } else if inline.is_some() {
                        return err(format!("option --{long} does not take a value"));
                    } else {
                        raw.push((long, None));
                    }
                }
                Kind::Value => {
                    let value = match inline {
                        Some(v) => v,
                        None => match it.next() {
                            Some(v) => v,
                            None => return err(format!("missing value for --{long}")),
                        },
                    };
                    raw.push((long, Some(value)));
                }
            }
        } else if bytes.len() > 1 && bytes[0] == b'-' {
            let mut i = 1;
            while i < bytes.len() {
                let c = bytes[i] as char;
                let Some(&(long, _, kind)) = OPTIONS.iter().find(|(_, s, _)| *s == Some(c)) else {
                    return err(format!("unknown option -{c}"));
                };
                if kind == Kind::Flag {
                    raw.push((long, None));
                    i += 1;
                    continue;
                }
                let value = if i + 1 < bytes.len() {
                    OsString::from_vec(bytes[i + 1..].to_vec())
                } else {
                    match it.next() {
                        Some(v) => v,
                        None => return err(format!("missing value for -{c}")),
                    }
                };
                raw.push((long, Some(value)));
                break;
            }
        } else {
            return err(format!("unexpected argument '{}'", arg.to_string_lossy()));
        }
    }
    build(raw, cwd)
}

fn is_number(s: &OsString) -> bool {
    let b = s.as_encoded_bytes();
    !b.is_empty() && b.iter().all(u8::is_ascii_digit)
}

fn parse_log_driver(v: &str) -> Result<Option<LogDriver>, ArgError> {
    if v.is_empty() {
        return err("--log-path must not be empty");
    }
    let (driver, path) = match v.split_once(':') {
        Some((d, p)) => (d, Some(p)),
        None => (v, None),
    };
    match (driver, path) {
        ("off" | "null" | "none", _) => Ok(Some(LogDriver::Off)),
        ("k8s-file", Some(p)) if !p.is_empty() => Ok(Some(LogDriver::K8sFile(PathBuf::from(p)))),
        ("k8s-file", _) => err("k8s-file requires a filename"),
        ("journald", _) => err("log driver journald is not supported by crius-monitor"),
        ("passthrough", _) => err("log driver passthrough is not supported by crius-monitor"),
        // A colon with an empty driver (":/path") is a plain path, as in conmon.
        ("", Some(p)) if !p.is_empty() => Ok(Some(LogDriver::K8sFile(PathBuf::from(p)))),
        (_, None) => Ok(Some(LogDriver::K8sFile(PathBuf::from(v)))),
        (d, Some(_)) => err(format!("no such log driver {d}")),
    }
}

fn build(
    raw: Vec<(&'static str, Option<OsString>)>,
    cwd: &std::path::Path,
) -> Result<Command, ArgError> {
    let mut c = Config {
        log_size_max: -1,
        log_global_size_max: -1,
        socket_dir: PathBuf::from(DEFAULT_SOCKET_DIR),
        ..Config::default()
    };
    let mut cid = None;
    let mut runtime = None;
    let mut container_pidfile = None;
    let mut log_paths = Vec::new();
    for (name, value) in raw {
        // Flags carry no value except --api-version; value options always carry one.
        let v = value.unwrap_or_default();
        match name {
            "help" => return Ok(Command::Help),
            "version" => return Ok(Command::Version),
            "api-version" => {
                let s = to_string(name, v)?;
                c.api_version = if s.is_empty() {
                    1
                } else {
                    parse_int(name, &s)?
                };
            }
            "bundle" => c.bundle = Some(PathBuf::from(v)),
            "cid" => cid = Some(to_string(name, v)?),
            "conmon-pidfile" => c.conmon_pidfile = Some(PathBuf::from(v)),
            "container-pidfile" | "pidfile" => container_pidfile = Some(PathBuf::from(v)),
            "cuuid" => c.cuuid = Some(to_string(name, v)?),
            "exec" => c.exec = true,
            "exec-attach" => c.exec_attach = true,
            "exec-process-spec" => c.exec_process_spec = Some(PathBuf::from(v)),
            "exit-command" => c.exit_command = Some(PathBuf::from(v)),
            "exit-command-arg" => c.exit_command_args.push(v),
            "exit-delay" => {
                let d: i64 = parse_int(name, &to_string(name, v)?)?;
                if d < 0 {
                    return err(
                        "Delay before invoking exit command must be greater than or equal to 0",
                    );
                }
                c.exit_delay = u32::try_from(d).unwrap_or(u32::MAX);
            }
            "exit-dir" => c.exit_dir = Some(PathBuf::from(v)),
            "leave-stdin-open" => c.leave_stdin_open = true,
            "log-level" => {
                let s = to_string(name, v)?;
                c.log_level =
                    Level::parse(&s).ok_or_else(|| ArgError(format!("No such log level {s}")))?;
            }
            "log-path" => log_paths.push(to_string(name, v)?),
            "log-size-max" => c.log_size_max = parse_int(name, &to_string(name, v)?)?,
            "log-global-size-max" => c.log_global_size_max = parse_int(name, &to_string(name, v)?)?,
            "log-tag" => c.log_tag = Some(to_string(name, v)?),
            // Labels only apply to journald, which this monitor does not write.
            "log-label" => {}
            "name" => c.name = Some(to_string(name, v)?),
            "no-new-keyring" => c.no_new_keyring = true,
            "no-pivot" => c.no_pivot = true,
            "no-sync-log" => c.no_sync_log = true,
            "persist-dir" => c.persist_dir = Some(PathBuf::from(v)),
            "replace-listen-pid" => c.replace_listen_pid = true,
            "restore" => c.restore = Some(PathBuf::from(v)),
            "restore-arg" | "runtime-opt" => c.runtime_opts.push(v),
            "runtime" => runtime = Some(PathBuf::from(v)),
            "runtime-arg" => c.runtime_args.push(v),
            "sdnotify-socket" => return err("--sdnotify-socket is not supported by crius-monitor"),
            "seccomp-notify-socket" | "seccomp-notify-plugins" => {
                return err(format!("--{name} is not supported by crius-monitor"))
            }
            "socket-dir-path" => c.socket_dir = PathBuf::from(v),
            "full-attach" => c.full_attach = true,
            "stdin" => c.stdin = true,
            "sync" => c.sync = true,
            "syslog" => c.syslog = true,
            "systemd-cgroup" => c.systemd_cgroup = true,
            "terminal" => c.terminal = true,
            "timeout" => {
                let t: i64 = parse_int(name, &to_string(name, v)?)?;
                c.timeout = u32::try_from(t.max(0)).unwrap_or(u32::MAX);
            }
            other => return err(format!("unhandled option --{other}")),
        }
    }
    c.cid = match cid {
        Some(cid) if !cid.is_empty() => cid,
        _ => return err("Container ID not provided. Use --cid"),
    };
    if cid_is_unsafe(&c.cid) {
        return err(format!("invalid container ID '{}'", c.cid));
    }
    if c.restore.is_some() && c.exec {
        return err("Cannot use 'exec' and 'restore' at the same time");
    }
    if c.exec_attach && !c.exec {
        return err("Attach can only be specified with exec");
    }
    if c.exec_attach && c.api_version < 1 {
        return err("Attach can only be specified for a non-legacy exec session");
    }
    if c.cuuid.is_none() && (!c.exec || c.api_version >= 1) {
        return err("Container UUID not provided. Use --cuuid");
    }
    if let Some(u) = &c.cuuid {
        if cid_is_unsafe(u) {
            return err(format!("invalid container UUID '{u}'"));
        }
    }
    c.runtime =
        runtime.ok_or_else(|| ArgError("Runtime path not provided. Use --runtime".into()))?;
    if c.exec && c.exec_process_spec.is_none() {
        return err("Exec process spec path not provided. Use --exec-process-spec");
    }
    if c.bundle.is_none() && !c.exec {
        c.bundle = Some(cwd.to_path_buf());
    }
    c.container_pidfile =
        container_pidfile.unwrap_or_else(|| cwd.join(format!("pidfile-{}", c.cid)));
    if log_paths.is_empty() {
        return err("Log driver not provided. Use --log-path");
    }
    for p in &log_paths {
        if let Some(d) = parse_log_driver(p)? {
            c.log_drivers.push(d);
        }
    }
    Ok(Command::Run(Box::new(c)))
}

/// An id that would escape the directory it names a file in.
fn cid_is_unsafe(id: &str) -> bool {
    id.is_empty() || id == "." || id == ".." || id.contains('/') || id.contains('\0')
}

impl Config {
    /// The CRI log file, if any (the last `k8s-file` wins, as in conmon).
    pub fn k8s_log_path(&self) -> Option<&std::path::Path> {
        self.log_drivers.iter().rev().find_map(|d| match d {
            LogDriver::K8sFile(p) => Some(p.as_path()),
            LogDriver::Off => None,
        })
    }

    /// Builds the runtime's argv, conmon's order: runtime [--systemd-cgroup] [runtime-args]
    /// create|restore|exec ... [runtime-opts] [--console-socket S] CID.
    pub fn runtime_argv(&self, console_socket: Option<&std::path::Path>) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![self.runtime.clone().into_os_string()];
        if !self.exec && self.systemd_cgroup {
            a.push("--systemd-cgroup".into());
        }
        a.extend(self.runtime_args.iter().cloned());
        if self.exec {
            a.push("exec".into());
            a.push("--pid-file".into());
            a.push(self.container_pidfile.clone().into_os_string());
            a.push("--process".into());
            a.push(
                self.exec_process_spec
                    .clone()
                    .unwrap_or_default()
                    .into_os_string(),
            );
            a.push("--detach".into());
        } else {
            a.push(
                if self.restore.is_some() {
                    "restore"
                } else {
                    "create"
                }
                .into(),
            );
            a.push("--bundle".into());
            a.push(self.bundle.clone().unwrap_or_default().into_os_string());
            a.push("--pid-file".into());
            a.push(self.container_pidfile.clone().into_os_string());
            if self.no_pivot {
                a.push("--no-pivot".into());
            }
            if self.no_new_keyring {
                a.push("--no-new-keyring".into());
            }
            if let Some(image) = &self.restore {
                a.push("--detach".into());
                a.push("--image-path".into());
                a.push(image.clone().into_os_string());
                a.push("--work-path".into());
                a.push(self.bundle.clone().unwrap_or_default().into_os_string());
            }
        }
        a.extend(self.runtime_opts.iter().cloned());
        if let Some(cs) = console_socket {
            a.push("--console-socket".into());
            a.push(cs.as_os_str().to_owned());
        }
        a.push(self.cid.clone().into());
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn p(args: &[&str]) -> Result<Command, ArgError> {
        parse(args.iter().map(OsString::from).collect(), Path::new("/cwd"))
    }

    fn cfg(args: &[&str]) -> Config {
        match p(args) {
            Ok(Command::Run(c)) => *c,
            other => panic!("unexpected {other:?}"),
        }
    }

    const BASE: &[&str] = &[
        "-c",
        "abc",
        "-u",
        "abc",
        "-r",
        "/usr/bin/runc",
        "-l",
        "/tmp/log",
    ];

    #[test]
    fn crio_create_line() {
        let c = cfg(&[
            "-b",
            "/b",
            "-c",
            "abc",
            "--exit-dir",
            "/e",
            "-l",
            "/l/0.log",
            "--log-level",
            "info",
            "-n",
            "k8s_x",
            "-P",
            "/b/conmon-pidfile",
            "-p",
            "/b/pidfile",
            "--persist-dir",
            "/p",
            "-r",
            "/usr/bin/runc",
            "--runtime-arg",
            "--root=/run/runc",
            "--socket-dir-path",
            "/s",
            "--syslog",
            "-u",
            "abc",
            "-s",
            "--log-size-max",
            "1024",
            "-t",
            "--api-version",
            "1",
        ]);
        assert_eq!(c.cid, "abc");
        assert_eq!(c.bundle.as_deref(), Some(Path::new("/b")));
        assert_eq!(c.k8s_log_path(), Some(Path::new("/l/0.log")));
        assert_eq!(c.log_level, Level::Info);
        assert_eq!(c.api_version, 1);
        assert!(c.syslog && c.terminal && c.systemd_cgroup);
        assert_eq!(c.log_size_max, 1024);
        let argv: Vec<String> = c
            .runtime_argv(Some(Path::new("/tmp/cs")))
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        assert_eq!(
            argv,
            [
                "/usr/bin/runc",
                "--systemd-cgroup",
                "--root=/run/runc",
                "create",
                "--bundle",
                "/b",
                "--pid-file",
                "/b/pidfile",
                "--console-socket",
                "/tmp/cs",
                "abc"
            ]
        );
    }

    #[test]
    fn exec_line_and_defaults() {
        let c = cfg(&[
            "-c",
            "abc",
            "-n",
            "x",
            "-r",
            "/usr/bin/runc",
            "-p",
            "/tmp/pid",
            "-e",
            "-l",
            "k8s-file:/tmp/l",
            "--exec-process-spec",
            "/tmp/spec",
            "-T",
            "5",
            "--sync",
        ]);
        assert!(c.exec && c.sync);
        assert_eq!(c.timeout, 5);
        assert_eq!(c.bundle, None);
        assert_eq!(c.k8s_log_path(), Some(Path::new("/tmp/l")));
        let argv: Vec<String> = c
            .runtime_argv(None)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        assert_eq!(
            argv,
            [
                "/usr/bin/runc",
                "exec",
                "--pid-file",
                "/tmp/pid",
                "--process",
                "/tmp/spec",
                "--detach",
                "abc"
            ]
        );
        let c = cfg(BASE);
        assert_eq!(c.bundle.as_deref(), Some(Path::new("/cwd")));
        assert_eq!(c.container_pidfile, Path::new("/cwd/pidfile-abc"));
        assert_eq!(c.socket_dir, Path::new(DEFAULT_SOCKET_DIR));
    }

    #[test]
    fn forms_of_values_and_flags() {
        let mut a = BASE.to_vec();
        a.extend([
            "--exit-dir=/e",
            "-ti",
            "-T3",
            "--runtime-arg",
            "--debug",
            "--runtime-arg=--x",
            "--log-label",
            "a=b",
        ]);
        let c = cfg(&a);
        assert_eq!(c.exit_dir.as_deref(), Some(Path::new("/e")));
        assert!(c.terminal && c.stdin);
        assert_eq!(c.timeout, 3);
        assert_eq!(
            c.runtime_args,
            [OsString::from("--debug"), OsString::from("--x")]
        );
    }

    #[test]
    fn rejects_bad_input() {
        let mut a = BASE.to_vec();
        a.push("--bogus");
        assert_eq!(
            p(&a).unwrap_err(),
            ArgError("unknown option --bogus".into())
        );
        let mut a = BASE.to_vec();
        a.push("-Z");
        assert!(p(&a).is_err());
        let mut a = BASE.to_vec();
        a.push("stray");
        assert!(p(&a).is_err());
        assert!(p(&["-u", "x", "-r", "/r", "-l", "/l"])
            .unwrap_err()
            .0
            .contains("--cid"));
        assert!(p(&["-c", "x", "-r", "/r", "-l", "/l"])
            .unwrap_err()
            .0
            .contains("--cuuid"));
        assert!(p(&["-c", "x", "-u", "x", "-l", "/l"])
            .unwrap_err()
            .0
            .contains("--runtime"));
        assert!(p(&["-c", "x", "-u", "x", "-r", "/r"])
            .unwrap_err()
            .0
            .contains("--log-path"));
        assert!(p(&["-c", "../x", "-u", "x", "-r", "/r", "-l", "/l"]).is_err());
        let mut a = BASE.to_vec();
        a.extend(["-l", "journald:"]);
        assert!(p(&a).is_err());
        let mut a = BASE.to_vec();
        a.push("--timeout");
        assert!(p(&a).unwrap_err().0.contains("missing value"));
        let mut a = BASE.to_vec();
        a.extend(["--log-size-max", "lots"]);
        assert!(p(&a).is_err());
        let mut a = BASE.to_vec();
        a.push("--exec");
        assert!(p(&a).unwrap_err().0.contains("exec-process-spec"));
    }

    #[test]
    fn log_drivers() {
        assert_eq!(parse_log_driver("none").unwrap(), Some(LogDriver::Off));
        assert_eq!(
            parse_log_driver("/a/b").unwrap(),
            Some(LogDriver::K8sFile("/a/b".into()))
        );
        assert_eq!(
            parse_log_driver("k8s-file:/a").unwrap(),
            Some(LogDriver::K8sFile("/a".into()))
        );
        assert!(parse_log_driver("k8s-file:").is_err());
        assert!(parse_log_driver("weird:/a").is_err());
        assert!(matches!(p(&["--version"]), Ok(Command::Version)));
    }
}
