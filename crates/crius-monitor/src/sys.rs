//! Thin, safe wrappers over the few system calls std does not offer.
//!
//! Every descriptor created here is close-on-exec; ownership is carried by `OwnedFd`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Turns a `-1` return into the current `errno`.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Like [`cvt`], retrying on `EINTR`.
fn cvt_retry(mut f: impl FnMut() -> libc::c_int) -> io::Result<libc::c_int> {
    loop {
        match cvt(f()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Wraps a freshly returned descriptor.
fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    let fd = cvt(fd)?;
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both descriptors are new and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sets or clears `O_NONBLOCK`.
pub fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL only read and write the flags of `fd`; a bad fd yields EBADF.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let new = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if new != flags {
        // SAFETY: as above.
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, new) })?;
    }
    Ok(())
}

/// Marks a descriptor close-on-exec.
pub fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_SETFD only changes the descriptor flags of `fd`.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) }).map(|_| ())
}

/// Whether `fd` is an open descriptor.
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD has no side effects.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// `read(2)` retrying on EINTR.
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    let n =
        cvt_retry(|| unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) as libc::c_int })?;
    Ok(n as usize)
}

/// `write(2)` retrying on EINTR.
pub fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
    let n =
        cvt_retry(|| unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) as libc::c_int })?;
    Ok(n as usize)
}

/// Writes all of `buf` (for blocking descriptors).
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = write(fd, buf)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
    }
    Ok(())
}

/// Result of [`fork`].
pub enum Fork {
    /// In the parent, with the child's pid.
    Parent(libc::pid_t),
    /// In the child.
    Child,
}

/// `fork(2)`. The monitor is single-threaded, so the child may keep running Rust code.
pub fn fork() -> io::Result<Fork> {
    // SAFETY: the process has a single thread (no runtime, no helper threads), so the child
    // inherits consistent state for the allocator and every lock.
    match cvt(unsafe { libc::fork() })? {
        0 => Ok(Fork::Child),
        pid => Ok(Fork::Parent(pid)),
    }
}

/// Leaves the caller's session.
pub fn setsid() -> io::Result<()> {
    // SAFETY: no memory is involved.
    cvt(unsafe { libc::setsid() }).map(|_| ())
}

/// Makes this process the subreaper of its descendants.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer argument only.
    cvt(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) })
        .map(|_| ())
}

/// Asks for `sig` when the parent dies.
pub fn set_pdeathsig(sig: libc::c_int) -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes an integer argument only.
    cvt(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) }).map(|_| ())
}

/// `kill(2)`.
pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: no memory is involved.
    cvt(unsafe { libc::kill(pid, sig) }).map(|_| ())
}

/// `getpgid(2)`.
pub fn getpgid(pid: libc::pid_t) -> io::Result<libc::pid_t> {
    // SAFETY: no memory is involved.
    cvt(unsafe { libc::getpgid(pid) })
}

/// A reaped child: pid and raw wait status.
pub fn waitpid_nohang() -> io::Result<Option<(libc::pid_t, libc::c_int)>> {
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer.
    let pid = cvt_retry(|| unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) })?;
    Ok(if pid == 0 { None } else { Some((pid, status)) })
}

/// conmon's mapping of a wait status to an exit code: the code, or 128 + signal.
pub fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        -1
    }
}

/// A signal set.
pub fn sigset(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it fully before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t.
    unsafe {
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
    }
    set
}

/// Replaces the signal mask, returning the old one.
pub fn set_sigmask(how: libc::c_int, set: &libc::sigset_t) -> io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain data, fully written by sigprocmask on success.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid sigset_t.
    let r = unsafe { libc::pthread_sigmask(how, set, &mut old) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(old)
}

/// Ignores a signal (SIG_IGN) or restores its default action.
pub fn set_signal_disposition(sig: libc::c_int, ignore: bool) {
    let handler = if ignore { libc::SIG_IGN } else { libc::SIG_DFL };
    // SAFETY: installing SIG_IGN/SIG_DFL runs no code of ours in signal context.
    unsafe {
        libc::signal(sig, handler);
    }
}

/// A non-blocking signalfd for `set`.
pub fn signalfd(set: &libc::sigset_t) -> io::Result<OwnedFd> {
    // SAFETY: `set` is a valid sigset_t; -1 asks for a new descriptor.
    owned(unsafe { libc::signalfd(-1, set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) })
}

/// Reads one pending signal number from a signalfd, if any.
pub fn read_signal(fd: RawFd) -> io::Result<Option<u32>> {
    // SAFETY: signalfd_siginfo is plain data.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: `info` is valid for writes of `size` bytes.
    let n = unsafe { libc::read(fd, (&mut info as *mut libc::signalfd_siginfo).cast(), size) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
            _ => Err(e),
        };
    }
    Ok(if n as usize == size {
        Some(info.ssi_signo)
    } else {
        None
    })
}

/// `poll(2)`; EINTR counts as "nothing ready".
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: `fds` is a valid, writable array of `fds.len()` pollfd structs.
    match cvt(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) }) {
        Ok(n) => Ok(n as usize),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}

/// A close-on-exec eventfd.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: no memory is involved.
    owned(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })
}

/// Path to a NUL-terminated C string.
pub fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `mkfifo(3)` with mode 0660.
pub fn mkfifo(path: &Path) -> io::Result<()> {
    let c = cstr(path)?;
    // SAFETY: `c` is a valid NUL-terminated path.
    cvt(unsafe { libc::mkfifo(c.as_ptr(), 0o660) }).map(|_| ())
}

/// Opens `path` with `flags | O_CLOEXEC`.
pub fn open(path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    // SAFETY: `c` is a valid NUL-terminated path.
    owned(unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o600) })
}

/// A close-on-exec, non-blocking SOCK_SEQPACKET socket bound to `path` (resolved through
/// `/proc/self/fd` of its parent so long paths work) and listening.
pub fn seqpacket_listen(dir: &Path, name: &str) -> io::Result<OwnedFd> {
    let dirfd = open(dir, libc::O_PATH | libc::O_DIRECTORY)?;
    let addr_path = format!("/proc/self/fd/{}/{}", dirfd.as_raw_fd(), name);
    // SAFETY: no memory is involved.
    let sock = owned(unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    })?;
    // SAFETY: sockaddr_un is plain data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = addr_path.as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path too long",
        ));
    }
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: `addr` is a fully initialised sockaddr_un of `len` bytes.
    cvt(unsafe {
        libc::bind(
            sock.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len,
        )
    })?;
    // SAFETY: no memory is involved.
    cvt(unsafe { libc::listen(sock.as_raw_fd(), 10) })?;
    Ok(sock)
}

/// Accepts one connection (close-on-exec, blocking), or None when none is pending.
pub fn accept(fd: RawFd) -> io::Result<Option<OwnedFd>> {
    // SAFETY: null address pointers are allowed by accept4.
    let r = unsafe {
        libc::accept4(
            fd,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    };
    match owned(r) {
        Ok(fd) => Ok(Some(fd)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            Ok(None)
        }
        Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sends one record without blocking longer than the socket's send timeout; no SIGPIPE.
pub fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
    let n = cvt_retry(|| unsafe {
        libc::send(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL | libc::MSG_EOR,
        ) as libc::c_int
    })?;
    Ok(n as usize)
}

/// Receives without blocking (one record on a SEQPACKET socket).
pub fn recv_nowait(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    let n = cvt_retry(|| unsafe {
        libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) as libc::c_int
    })?;
    Ok(n as usize)
}

/// Sets SO_SNDTIMEO.
pub fn set_send_timeout(fd: RawFd, secs: i64) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: secs as libc::time_t,
        tv_usec: 0,
    };
    // SAFETY: `tv` is a valid timeval of the given size.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// `shutdown(2)`.
pub fn shutdown(fd: RawFd, how: libc::c_int) {
    // SAFETY: no memory is involved; errors (already shut down) do not matter.
    unsafe {
        libc::shutdown(fd, how);
    }
}

/// Receives one descriptor passed with SCM_RIGHTS (runtime's console socket protocol).
pub fn recv_fd(sock: RawFd) -> io::Result<OwnedFd> {
    let mut data = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // Room for one control message carrying a few descriptors.
    let mut control = [0u64; 16];
    // SAFETY: msghdr is plain data; every pointer field is set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `msg` points at live buffers of the advertised sizes.
    cvt_retry(|| unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) as libc::c_int })?;
    let mut result = None;
    // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR walk the control buffer the kernel filled, bounded by
    // msg_controllen; CMSG_DATA points inside the current header's payload.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let payload = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let count = payload / std::mem::size_of::<libc::c_int>();
                let ptr = libc::CMSG_DATA(cmsg) as *const libc::c_int;
                for i in 0..count {
                    let fd = std::ptr::read_unaligned(ptr.add(i));
                    let fd = OwnedFd::from_raw_fd(fd);
                    if result.is_none() {
                        result = Some(fd);
                    }
                    // Extra descriptors are dropped (closed) here.
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    result.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "no descriptor received on console socket",
        )
    })
}

/// Sets ONLCR on a terminal, as the kubelet expects.
pub fn tty_set_onlcr(fd: RawFd) -> io::Result<()> {
    // SAFETY: termios is plain data, filled by tcgetattr.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a valid termios out-pointer.
    cvt(unsafe { libc::tcgetattr(fd, &mut t) })?;
    t.c_oflag |= libc::ONLCR;
    // SAFETY: `t` is a valid termios.
    cvt(unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) }).map(|_| ())
}

/// Sets a terminal's window size.
pub fn tty_resize(fd: RawFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct, which `ws` is.
    cvt(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) }).map(|_| ())
}

/// Whether `path` is on a cgroup2 filesystem.
pub fn is_cgroup2(path: &Path) -> bool {
    let Ok(c) = cstr(path) else { return false };
    // SAFETY: statfs is plain data, filled on success.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid path, `s` a valid out-pointer.
    let r = unsafe { libc::statfs(c.as_ptr(), &mut s) };
    // The field and constant types differ between architectures.
    #[allow(clippy::unnecessary_cast)]
    let cgroup2 = s.f_type as i64 == libc::CGROUP2_SUPER_MAGIC as i64;
    r == 0 && cgroup2
}

/// Local time of `secs` since the epoch: (year, month, day, hour, min, sec, utc offset seconds).
pub fn localtime(secs: i64) -> Option<(i32, u32, u32, u32, u32, u32, i64)> {
    let t = secs as libc::time_t;
    // SAFETY: tm is plain data, filled by localtime_r on success.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid; localtime_r is the reentrant variant.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return None;
    }
    Some((
        tm.tm_year + 1900,
        (tm.tm_mon + 1) as u32,
        tm.tm_mday as u32,
        tm.tm_hour as u32,
        tm.tm_min as u32,
        tm.tm_sec as u32,
        tm.tm_gmtoff,
    ))
}

/// Closes every descriptor from `first` upwards (used in the runtime child before exec).
pub fn close_from(first: RawFd) {
    // SAFETY: close_range only closes descriptors; the child owns nothing it still needs there.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            0 as libc::c_uint,
        )
    };
    if r == 0 {
        return;
    }
    // Older kernels: close what /proc/self/fd lists, or a fixed range.
    let max = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
            .max()
            .unwrap_or(1024),
        Err(_) => 1024,
    };
    for fd in first..=max {
        // SAFETY: closing a descriptor number we do not use any more; EBADF is harmless.
        unsafe {
            libc::close(fd);
        }
    }
}

/// `dup2(2)`, retrying on EINTR (target keeps no close-on-exec flag).
pub fn dup2(old: RawFd, new: RawFd) -> io::Result<()> {
    // SAFETY: no memory is involved; `new` is a stdio slot the caller means to replace.
    cvt_retry(|| unsafe { libc::dup2(old, new) }).map(|_| ())
}

/// `dup(2)` with close-on-exec.
pub fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: no memory is involved.
    owned(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) })
}

/// Replaces the process image; returns only on failure.
pub fn execve(argv: &[CString], envp: &[CString]) -> io::Error {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    if a.len() < 2 {
        return io::ErrorKind::InvalidInput.into();
    }
    // SAFETY: both arrays are NULL-terminated and point at live NUL-terminated strings.
    unsafe { libc::execve(a[0], a.as_ptr(), e.as_ptr()) };
    io::Error::last_os_error()
}

/// `_exit(2)`: leaves without running atexit handlers or destructors (for forked children).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: terminates the process immediately.
    unsafe { libc::_exit(code) }
}
