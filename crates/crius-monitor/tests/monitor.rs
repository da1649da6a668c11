//! End-to-end tests: the compiled monitor, launched with conmon's arguments and real pipes, runs
//! busybox bundles under runc and crun (as root). Every wait is on a real event: a sync-pipe
//! message, an attach-socket record, an inotify event, or the monitor's exit seen via pidfd.
//!
//! `CRIUS_TEST_MONITOR=/usr/bin/conmon cargo test -p crius-monitor` runs the same protocol checks
//! against Debian's conmon.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxMemory, Spec};

const WAIT: Duration = Duration::from_secs(60);

fn monitor_bin() -> PathBuf {
    std::env::var_os("CRIUS_TEST_MONITOR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_crius-monitor")))
}

fn is_conmon() -> bool {
    std::env::var_os("CRIUS_TEST_MONITOR").is_some()
}

fn runtime_path(rt: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = Path::new(dir).join(rt);
        if p.exists() {
            return p;
        }
    }
    panic!("{rt} is not installed: bash scripts/host-setup.sh");
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid two-int array.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are new and owned here.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Waits until `pid` (not our child) has exited, via pidfd.
fn wait_gone(pid: i32, limit: Duration) -> bool {
    // SAFETY: pidfd_open takes a pid and flags only.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as RawFd;
    if fd < 0 {
        return true; // ESRCH: already gone
    }
    // SAFETY: pidfd_open returned a new descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let end = Instant::now() + limit;
    loop {
        let left = end.saturating_duration_since(Instant::now()).as_millis() as i32;
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, left) };
        if n > 0 {
            return true;
        }
        if n == 0 {
            return false;
        }
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// A tiny inotify watcher for one directory.
struct Inotify(OwnedFd);

impl Inotify {
    fn new(dir: &Path) -> Inotify {
        // SAFETY: plain syscall.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        assert!(fd >= 0);
        // SAFETY: new descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: valid path string.
        let w = unsafe {
            libc::inotify_add_watch(
                fd.as_raw_fd(),
                c.as_ptr(),
                libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_CLOSE_WRITE,
            )
        };
        assert!(w >= 0);
        Inotify(fd)
    }

    /// Waits for an event naming `name`.
    fn wait_for(&self, name: &str, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        let mut buf = [0u8; 4096];
        loop {
            let left = end.saturating_duration_since(Instant::now()).as_millis() as i32;
            if left == 0 {
                return false;
            }
            let mut pfd = libc::pollfd {
                fd: self.0.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, left) };
            // SAFETY: buf is writable for its length.
            let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            let mut off = 0usize;
            while n > 0 && off + 16 <= n as usize {
                let len = u32::from_ne_bytes(buf[off + 12..off + 16].try_into().unwrap()) as usize;
                let raw = &buf[off + 16..off + 16 + len];
                let ev_name = String::from_utf8_lossy(raw)
                    .trim_end_matches('\0')
                    .to_string();
                if ev_name == name {
                    return true;
                }
                off += 16 + len;
            }
        }
    }
}

/// A client of the attach socket.
struct AttachClient(OwnedFd);

impl AttachClient {
    fn connect(path: &Path) -> AttachClient {
        // SAFETY: plain syscall.
        let fd =
            unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0);
        // SAFETY: new descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_un is plain data.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let b = path.as_os_str().as_encoded_bytes();
        assert!(
            b.len() < addr.sun_path.len(),
            "attach path too long: {}",
            path.display()
        );
        for (d, s) in addr.sun_path.iter_mut().zip(b) {
            *d = *s as libc::c_char;
        }
        // SAFETY: addr is initialised.
        let r = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
            )
        };
        assert_eq!(
            r,
            0,
            "connect {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
        let tv = libc::timeval {
            tv_sec: 60,
            tv_usec: 0,
        };
        // SAFETY: valid timeval.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        AttachClient(fd)
    }

    /// One record: (stream byte, data); None at EOF or timeout.
    fn recv(&self) -> Option<(u8, Vec<u8>)> {
        let mut buf = vec![0u8; 8193 + 16];
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::recv(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            return None;
        }
        buf.truncate(n as usize);
        assert!(n as usize <= 8193, "record larger than 1 + 8192 bytes");
        Some((buf[0], buf[1..].to_vec()))
    }

    /// Receives records until the concatenated stdout data contains `needle`.
    fn recv_until(&self, needle: &str) -> String {
        let mut got = String::new();
        while !got.contains(needle) {
            let (stream, data) = self
                .recv()
                .unwrap_or_else(|| panic!("attach EOF before {needle:?}; got {got:?}"));
            assert!(stream == 2 || stream == 3, "stream byte {stream}");
            if stream == 2 {
                got.push_str(&String::from_utf8_lossy(&data));
            }
        }
        got
    }

    fn send(&self, data: &[u8]) {
        // SAFETY: data is readable for its length.
        let n = unsafe {
            libc::send(
                self.0.as_raw_fd(),
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        assert_eq!(n as usize, data.len());
    }

    fn close_write(&self) {
        // SAFETY: plain syscall.
        unsafe { libc::shutdown(self.0.as_raw_fd(), libc::SHUT_WR) };
    }
}

/// One CRI log record.
#[derive(Debug)]
struct Rec {
    stream: String,
    tag: String,
    text: String,
}

fn valid_timestamp(ts: &str) -> bool {
    // 2006-01-02T15:04:05.999999999+07:00
    let b = ts.as_bytes();
    b.len() == 35
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && (b[29] == b'+' || b[29] == b'-')
        && b[32] == b':'
        && ts
            .chars()
            .enumerate()
            .all(|(i, c)| [4, 7, 10, 13, 16, 19, 29, 32].contains(&i) || c.is_ascii_digit())
}

fn parse_log(path: &Path) -> Vec<Rec> {
    let content =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(
        content.is_empty() || content.ends_with('\n'),
        "log must end with a newline"
    );
    content
        .split_terminator('\n')
        .map(|line| {
            let mut parts = line.splitn(4, ' ');
            let (ts, stream, tag, text) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts
                    .next()
                    .unwrap_or_else(|| panic!("short record {line:?}")),
            );
            assert!(valid_timestamp(ts), "bad timestamp in {line:?}");
            assert!(
                stream == "stdout" || stream == "stderr",
                "bad stream in {line:?}"
            );
            assert!(tag == "F" || tag == "P", "bad tag in {line:?}");
            Rec {
                stream: stream.into(),
                tag: tag.into(),
                text: text.into(),
            }
        })
        .collect()
}

/// Reassembles one stream from records.
fn stream_text(recs: &[Rec], stream: &str) -> String {
    recs.iter()
        .filter(|r| r.stream == stream)
        .map(|r| {
            if r.tag == "F" {
                format!("{}\n", r.text)
            } else {
                r.text.clone()
            }
        })
        .collect()
}

/// A container under test; cleans up in Drop.
struct Fixture {
    runtime: PathBuf,
    cid: String,
    dir: tempfile::TempDir,
    monitor_pid: Option<i32>,
}

/// What a launch produced.
struct Launched {
    sync: BufReader<File>,
    status: std::process::ExitStatus,
    stderr: String,
}

impl Launched {
    fn next_msg(&mut self) -> serde_json::Value {
        let mut line = String::new();
        self.sync.read_line(&mut line).expect("read sync pipe");
        assert!(
            !line.is_empty(),
            "sync pipe closed without a message; monitor stderr: {}",
            self.stderr
        );
        serde_json::from_str(line.trim_end())
            .unwrap_or_else(|e| panic!("sync message {line:?}: {e}"))
    }
}

impl Fixture {
    fn new(rt: &str, prefix: &str, args: &[&str], edit: impl FnOnce(&mut Spec)) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        for d in ["bundle", "exits", "persist", "sock"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        crius_testutil::write_bundle_with(&dir.path().join("bundle"), args, edit).expect("bundle");
        Fixture {
            runtime: runtime_path(rt),
            cid: crius_testutil::unique_id(prefix),
            dir,
            monitor_pid: None,
        }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn bundle(&self) -> PathBuf {
        self.p("bundle")
    }

    fn create_args(&self) -> Vec<String> {
        let s = |p: PathBuf| p.to_string_lossy().into_owned();
        vec![
            "-b".into(),
            s(self.bundle()),
            "-c".into(),
            self.cid.clone(),
            "--exit-dir".into(),
            s(self.p("exits")),
            "-l".into(),
            s(self.p("ctr.log")),
            "--log-level".into(),
            "debug".into(),
            "-n".into(),
            format!("k8s_{}", self.cid),
            "-P".into(),
            s(self.bundle().join("conmon-pidfile")),
            "-p".into(),
            s(self.bundle().join("pidfile")),
            "--persist-dir".into(),
            s(self.p("persist")),
            "-r".into(),
            s(self.runtime.clone()),
            "--socket-dir-path".into(),
            s(self.p("sock")),
            "-u".into(),
            self.cid.clone(),
        ]
    }

    /// Runs the monitor with `args`, lets it go through the start pipe, waits for the launched
    /// process to exit (the monitor itself detaches unless --sync).
    fn launch(&self, args: &[String]) -> Launched {
        let (sync_r, sync_w) = pipe();
        let (start_r, start_w) = pipe();
        let mut cmd = Command::new(monitor_bin());
        cmd.args(args)
            .current_dir(self.bundle())
            .env("_OCI_SYNCPIPE", "3")
            .env("_OCI_STARTPIPE", "4")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let (s, t) = (sync_w.as_raw_fd(), start_r.as_raw_fd());
        // SAFETY: only async-signal-safe fcntl/dup2 calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let s2 = libc::fcntl(s, libc::F_DUPFD, 10);
                let t2 = libc::fcntl(t, libc::F_DUPFD, 10);
                if s2 < 0 || t2 < 0 || libc::dup2(s2, 3) < 0 || libc::dup2(t2, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn monitor");
        drop(sync_w);
        drop(start_r);
        // A monitor that failed early is already gone: EPIPE here is expected then.
        let _ = File::from(start_w).write_all(&[0]);
        let out = child.wait_with_output().expect("wait monitor");
        Launched {
            sync: BufReader::new(File::from(sync_r)),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Launches the create monitor and returns the reported pid.
    fn create(&mut self, extra: &[&str]) -> (i32, Launched) {
        let mut args = self.create_args();
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut l = self.launch(&args);
        assert!(
            l.status.success(),
            "monitor failed: {:?} {}",
            l.status,
            l.stderr
        );
        let mpid: i32 = std::fs::read_to_string(self.bundle().join("conmon-pidfile"))
            .expect("conmon pidfile")
            .trim()
            .parse()
            .expect("pid in conmon pidfile");
        self.monitor_pid = Some(mpid);
        let msg = l.next_msg();
        let key = if extra.contains(&"--api-version") {
            "data"
        } else {
            "pid"
        };
        let pid = msg[key]
            .as_i64()
            .unwrap_or_else(|| panic!("no {key} in {msg}; {}", l.stderr)) as i32;
        assert!(pid > 0, "create failed: {msg}");
        (pid, l)
    }

    fn runtime_cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.runtime)
            .args(args)
            .output()
            .expect("run runtime")
    }

    fn start(&self) {
        let o = self.runtime_cmd(&["start", &self.cid]);
        assert!(
            o.status.success(),
            "start: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn wait_monitor(&self) {
        let pid = self.monitor_pid.expect("monitor pid");
        assert!(wait_gone(pid, WAIT), "monitor {pid} still running");
    }

    fn exit_file(&self) -> String {
        std::fs::read_to_string(self.p("exits").join(&self.cid)).expect("exit file")
    }

    fn attach_path(&self) -> PathBuf {
        self.p("sock").join(&self.cid).join("attach")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.runtime_cmd(&["delete", "-f", &self.cid]);
        if let Some(pid) = self.monitor_pid {
            if alive(pid) && !wait_gone(pid, Duration::from_secs(10)) {
                // SAFETY: the monitor is a process this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

fn case_pid_exit_and_logs(rt: &str) {
    let mut f = Fixture::new(
        rt,
        "exit",
        &["sh", "-c", "echo out; echo err >&2; exit 42"],
        |_| {},
    );
    let (pid, _l) = f.create(&[]);
    assert!(alive(pid), "container init {pid} should exist after create");
    f.start();
    f.wait_monitor();
    assert_eq!(f.exit_file(), "42");
    assert_eq!(std::fs::read_to_string(f.p("persist/exit")).unwrap(), "42");
    let recs = parse_log(&f.p("ctr.log"));
    assert_eq!(stream_text(&recs, "stdout"), "out\n");
    assert_eq!(stream_text(&recs, "stderr"), "err\n");
    assert!(!f.p("persist/oom").exists() && !f.bundle().join("oom").exists());
}

fn case_long_and_unterminated_lines(rt: &str) {
    let script = "head -c 20480 /dev/zero | tr '\\0' a; echo; printf last";
    let mut f = Fixture::new(rt, "long", &["sh", "-c", script], |_| {});
    let _ = f.create(&["--api-version", "1"]);
    f.start();
    f.wait_monitor();
    assert_eq!(f.exit_file(), "0");
    let recs = parse_log(&f.p("ctr.log"));
    let text = stream_text(&recs, "stdout");
    assert_eq!(text, format!("{}\nlast", "a".repeat(20480)));
    let out: Vec<&Rec> = recs.iter().filter(|r| r.stream == "stdout").collect();
    assert!(
        out.len() >= 3,
        "the 20 KiB line must be split: {}",
        out.len()
    );
    assert!(
        out.iter().all(|r| r.text.len() <= 8192),
        "records are at most 8192 bytes of text"
    );
    assert!(
        out[0].tag == "P",
        "the long line starts with a partial record"
    );
    let last = out.last().unwrap();
    assert_eq!(
        (last.tag.as_str(), last.text.as_str()),
        ("P", "last"),
        "unterminated last line is a partial record"
    );
}

fn case_reopen_and_attach(rt: &str) {
    let script =
        "echo before; echo warn >&2; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo after";
    let mut f = Fixture::new(rt, "reopen", &["sh", "-c", script], |_| {});
    let _ = f.create(&[]);
    let client = AttachClient::connect(&f.attach_path());
    f.start();
    client.recv_until("before");
    // The monitor writes the log before relaying to attach clients: "before" is in the log now.
    let log = f.p("ctr.log");
    std::fs::rename(&log, f.p("ctr.log.1")).unwrap();
    let watch = Inotify::new(f.dir.path());
    let mut ctl = std::fs::OpenOptions::new()
        .write(true)
        .open(f.bundle().join("ctl"))
        .expect("open ctl");
    ctl.write_all(b"2 0 0\n").unwrap();
    assert!(watch.wait_for("ctr.log", WAIT), "log was not reopened");
    std::fs::write(f.bundle().join("rootfs/tmp/go"), b"").unwrap();
    client.recv_until("after");
    f.wait_monitor();
    assert_eq!(
        client.recv(),
        None,
        "attach socket closes when the container is gone"
    );
    let old = parse_log(&f.p("ctr.log.1"));
    assert!(stream_text(&old, "stdout").contains("before"));
    let new = parse_log(&log);
    assert_eq!(stream_text(&new, "stdout"), "after\n");
    if !is_conmon() {
        for leftover in ["ctl", "winsz", "attach"] {
            assert!(
                !f.bundle().join(leftover).exists(),
                "{leftover} left in the bundle"
            );
        }
        assert!(
            std::fs::symlink_metadata(f.p("sock").join(&f.cid)).is_err(),
            "attach symlink left"
        );
    }
}

fn case_terminal_resize(rt: &str) {
    let script = "while :; do s=$(stty size); [ \"$s\" = \"30 100\" ] && break; sleep 0.05; done; echo size=$s; exit 5";
    let mut f = Fixture::new(rt, "tty", &["sh", "-c", script], |s| {
        let mut p = s.process().clone().unwrap_or_default();
        p.set_terminal(Some(true));
        s.set_process(Some(p));
    });
    let _ = f.create(&["-t"]);
    let client = AttachClient::connect(&f.attach_path());
    f.start();
    let mut ctl = std::fs::OpenOptions::new()
        .write(true)
        .open(f.bundle().join("ctl"))
        .expect("open ctl");
    ctl.write_all(b"1 30 100\n").unwrap();
    client.recv_until("size=30 100");
    f.wait_monitor();
    assert_eq!(f.exit_file(), "5");
    let recs = parse_log(&f.p("ctr.log"));
    assert!(
        recs.iter().all(|r| r.stream == "stdout"),
        "a terminal has one stream"
    );
    assert!(
        stream_text(&recs, "stdout").contains("size=30 100\r\n"),
        "ONLCR is set on the pty"
    );
}

fn case_stdin_through_attach(rt: &str) {
    let mut f = Fixture::new(rt, "stdin", &["cat"], |_| {});
    let _ = f.create(&["-i"]);
    let client = AttachClient::connect(&f.attach_path());
    f.start();
    client.send(b"ping\n");
    client.recv_until("ping\n");
    client.close_write();
    f.wait_monitor();
    assert_eq!(f.exit_file(), "0", "cat ends when stdin closes");
    assert_eq!(stream_text(&parse_log(&f.p("ctr.log")), "stdout"), "ping\n");
}

fn case_outlives_launcher(rt: &str) {
    let mut f = Fixture::new(
        rt,
        "orphan",
        &[
            "sh",
            "-c",
            "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo late; exit 7",
        ],
        |_| {},
    );
    // The launcher: a shell that runs the monitor, then lingers like a daemon would, in its own
    // process group so that it can be killed with everything it owns.
    let (sync_r, sync_w) = pipe();
    let (start_r, start_w) = pipe();
    let mut args = vec![monitor_bin().to_string_lossy().into_owned()];
    args.extend(f.create_args());
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("\"$@\"; exec sleep 600")
        .arg("launcher")
        .args(&args)
        .current_dir(f.bundle())
        .env("_OCI_SYNCPIPE", "3")
        .env("_OCI_STARTPIPE", "4")
        .stdin(Stdio::null())
        .process_group(0);
    let (s, t) = (sync_w.as_raw_fd(), start_r.as_raw_fd());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let s2 = libc::fcntl(s, libc::F_DUPFD, 10);
            let t2 = libc::fcntl(t, libc::F_DUPFD, 10);
            if s2 < 0 || t2 < 0 || libc::dup2(s2, 3) < 0 || libc::dup2(t2, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut launcher = cmd.spawn().expect("spawn launcher");
    drop(sync_w);
    drop(start_r);
    File::from(start_w).write_all(&[0]).unwrap();
    let mut line = String::new();
    BufReader::new(File::from(sync_r))
        .read_line(&mut line)
        .unwrap();
    let msg: serde_json::Value = serde_json::from_str(line.trim_end()).expect("sync message");
    let pid = msg["pid"].as_i64().expect("pid") as i32;
    let mpid: i32 = std::fs::read_to_string(f.bundle().join("conmon-pidfile"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    f.monitor_pid = Some(mpid);
    // Kill the launcher and its whole process group, as if the daemon died.
    let lpid = launcher.id() as i32;
    // SAFETY: signalling the process group of a child this test started.
    unsafe { libc::kill(-lpid, libc::SIGKILL) };
    let _ = launcher.wait();
    assert!(alive(mpid), "monitor must survive its launcher");
    assert!(alive(pid), "container must survive the launcher");
    f.start();
    std::fs::write(f.bundle().join("rootfs/tmp/go"), b"").unwrap();
    f.wait_monitor();
    assert_eq!(f.exit_file(), "7");
    assert_eq!(stream_text(&parse_log(&f.p("ctr.log")), "stdout"), "late\n");
}

fn case_oom(rt: &str) {
    let limit = 16i64 << 20;
    let mut f = Fixture::new(
        rt,
        "oom",
        &[
            "sh",
            "-c",
            "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done",
        ],
        |s| {
            let mut linux = s.linux().clone().unwrap_or_default();
            let mut res = linux.resources().clone().unwrap_or_default();
            let mut mem = LinuxMemory::default();
            mem.set_limit(Some(limit));
            mem.set_swap(Some(limit));
            res.set_memory(Some(mem));
            linux.set_resources(Some(res));
            s.set_linux(Some(linux));
        },
    );
    let _ = f.create(&[]);
    f.start();
    f.wait_monitor();
    assert_eq!(f.exit_file(), "137", "killed by SIGKILL");
    assert!(
        f.bundle().join("oom").exists(),
        "<bundle>/oom marks the OOM kill"
    );
    if !is_conmon() {
        assert!(
            f.p("persist/oom").exists(),
            "<persist-dir>/oom marks the OOM kill"
        );
    }
}

fn case_failed_create(rt: &str) {
    let mut f = Fixture::new(rt, "fail", &["true"], |s| {
        let mut root = s.root().clone().unwrap_or_default();
        root.set_path(PathBuf::from("no-such-rootfs"));
        s.set_root(Some(root));
    });
    let mut args = f.create_args();
    args.push("--api-version".into());
    let mut l = f.launch(&args);
    assert!(
        l.status.success(),
        "the launched process detaches: {}",
        l.stderr
    );
    if let Ok(p) = std::fs::read_to_string(f.bundle().join("conmon-pidfile")) {
        f.monitor_pid = p.trim().parse().ok();
    }
    let msg = l.next_msg();
    assert_eq!(msg["data"], -1, "{msg}");
    let text = msg["message"].as_str().unwrap_or_default();
    assert!(!text.is_empty(), "the runtime's stderr is reported: {msg}");
    f.wait_monitor();
    let state = f.runtime_cmd(&["state", &f.cid]);
    assert!(
        !state.status.success(),
        "no container left: {}",
        String::from_utf8_lossy(&state.stdout)
    );
    if !is_conmon() {
        for leftover in ["ctl", "winsz", "attach", "oom"] {
            assert!(
                !f.bundle().join(leftover).exists(),
                "{leftover} left in the bundle"
            );
        }
        assert!(
            std::fs::symlink_metadata(f.p("sock").join(&f.cid)).is_err(),
            "attach symlink left"
        );
        assert!(!f.p("ctr.log").exists(), "unused log removed");
    }
    assert!(
        !f.p("exits").join(&f.cid).exists(),
        "no exit file for a container that never ran"
    );
}

/// Starts a long-running container for exec tests.
fn running(rt: &str, prefix: &str) -> Fixture {
    let mut f = Fixture::new(rt, prefix, &["sleep", "600"], |_| {});
    let _ = f.create(&[]);
    f.start();
    f
}

fn case_no_fd_leak(rt: &str) {
    // The shell lists its own descriptors: what the container process inherited.
    let mut f = Fixture::new(rt, "fds", &["sh", "-c", "ls /proc/$$/fd; true"], |_| {});
    let _ = f.create(&["-i"]);
    f.start();
    f.wait_monitor();
    assert_eq!(f.exit_file(), "0");
    let listed = stream_text(&parse_log(&f.p("ctr.log")), "stdout");
    assert_eq!(
        listed, "0\n1\n2\n",
        "the container inherits no descriptor but stdio"
    );
}

fn exec_args(f: &Fixture, cmd: &[&str], extra: &[&str]) -> Vec<String> {
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.bundle().join("config.json")).unwrap()).unwrap();
    let mut process = spec["process"].clone();
    process["args"] = serde_json::json!(cmd);
    let spec_path = f.p(&format!("exec-{}.json", crius_testutil::unique_id("p")));
    std::fs::write(&spec_path, serde_json::to_vec(&process).unwrap()).unwrap();
    let s = |p: PathBuf| p.to_string_lossy().into_owned();
    let mut a: Vec<String> = vec![
        "-c".into(),
        f.cid.clone(),
        "-n".into(),
        "exec".into(),
        "-r".into(),
        s(f.runtime.clone()),
        "-p".into(),
        s(f.p(&format!("{}.pid", spec_path.display()))),
        "-e".into(),
        "-l".into(),
        s(f.p("exec.log")),
        "--socket-dir-path".into(),
        s(f.p("sock")),
        "--exec-process-spec".into(),
        s(spec_path),
        "--sync".into(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn case_exec_sync(rt: &str) {
    let f = running(rt, "exec");
    // CRI-O's exec-sync call: no --api-version, one {"exit_code": N} message.
    let mut l = f.launch(&exec_args(
        &f,
        &["sh", "-c", "echo hi; echo oops >&2; exit 3"],
        &[],
    ));
    let msg = l.next_msg();
    assert_eq!(msg["exit_code"], 3, "{msg}");
    assert_eq!(l.status.code(), Some(3));
    let recs = parse_log(&f.p("exec.log"));
    assert_eq!(stream_text(&recs, "stdout"), "hi\n");
    assert_eq!(stream_text(&recs, "stderr"), "oops\n");
    // API version 1: the pid first, then the exit code, both under "data".
    let mut l = f.launch(&exec_args(
        &f,
        &["true"],
        &["--api-version", "1", "-u", &f.cid],
    ));
    assert!(l.next_msg()["data"].as_i64().unwrap() > 0);
    assert_eq!(l.next_msg()["data"], 0);
}

fn case_exec_timeout(rt: &str) {
    let f = running(rt, "extime");
    let mut l = f.launch(&exec_args(&f, &["sleep", "600"], &["-T", "1"]));
    let msg = l.next_msg();
    assert_eq!(msg["exit_code"], -1, "{msg}");
    assert_eq!(msg["message"], "command timed out");
}

macro_rules! per_runtime {
    ($($case:ident),* $(,)?) => {
        mod runc {
            $(#[test] fn $case() { super::$case("runc") })*
        }
        mod crun {
            $(#[test] fn $case() { super::$case("crun") })*
        }
    };
}

per_runtime!(
    case_pid_exit_and_logs,
    case_long_and_unterminated_lines,
    case_reopen_and_attach,
    case_stdin_through_attach,
    case_terminal_resize,
    case_no_fd_leak,
    case_outlives_launcher,
    case_oom,
    case_failed_create,
    case_exec_sync,
    case_exec_timeout,
);

#[test]
fn rejects_unknown_flags() {
    let out = Command::new(monitor_bin())
        .args([
            "-c",
            "x",
            "-u",
            "x",
            "-r",
            "/bin/true",
            "-l",
            "/dev/null",
            "--frobnicate",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(text.contains("frobnicate"), "{text}");
}

#[test]
fn early_failure_is_reported_on_the_sync_pipe() {
    let f = Fixture::new("runc", "early", &["true"], |_| {});
    let mut args = f.create_args();
    let i = args.iter().position(|a| a == "-l").unwrap();
    args[i + 1] = f.p("no-such-dir/ctr.log").to_string_lossy().into_owned();
    let mut l = f.launch(&args);
    assert_eq!(l.status.code(), Some(1), "{}", l.stderr);
    if !is_conmon() {
        assert!(l.stderr.contains("no-such-dir"), "{}", l.stderr);
        let msg = l.next_msg();
        assert_eq!(msg["pid"], -1);
        assert!(
            msg["message"]
                .as_str()
                .unwrap_or_default()
                .contains("no-such-dir"),
            "{msg}"
        );
    }
    assert!(!f.bundle().join("ctl").exists());
}
