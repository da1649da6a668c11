//! crius-pause: PID 1 of a pod's shared PID namespace. It blocks every signal except SIGTERM,
//! SIGINT (which end it) and SIGCHLD (which makes it reap orphaned zombies), and does nothing
//! else. Only `std` and `libc`: built with `-C target-feature=+crt-static` it has no runtime
//! dependency and can be bind-mounted into an empty rootfs.

fn main() {
    // SAFETY: plain libc calls on a local, zero-initialized sigset; no pointers escape.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        loop {
            let mut sig: libc::c_int = 0;
            if libc::sigwait(&set, &mut sig) != 0 {
                continue;
            }
            match sig {
                libc::SIGTERM | libc::SIGINT => std::process::exit(0),
                libc::SIGCHLD => {
                    while libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
                }
                _ => {}
            }
        }
    }
}
