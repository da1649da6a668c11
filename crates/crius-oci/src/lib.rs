//! crius-oci: the OCI runtime layer of crius.
//!
//! A [`Runtime`] drives one runtime handler (runc or crun). Containers are created through a
//! monitor process speaking conmon's command-line protocol (Debian's `conmon` or our
//! `crius-monitor`), which keeps the container's stdio, writes its CRI log and records its exit
//! code in `<exit-dir>/<id>`, so containers outlive the daemon. Everything else (start, kill,
//! pause, update, state, delete, exec) calls the runtime directly.

mod attach;
mod config;
mod create;
mod error;
mod events;
mod exec;
mod id;
mod runtime;
mod signal;
mod state;
mod stop;
mod version;

pub use attach::{AttachStream, AttachStreamKind};
pub use config::{MonitorConfig, MonitorKind, RuntimeHandler};
pub use create::{CreateOptions, CreatedContainer, PendingCreate};
pub use error::{operator_hint, ErrorCode, OciError, Result};
pub use exec::{ExecSession, ExecSyncOutput, PtyMaster, EXEC_OUTPUT_CAP};
pub use id::{validate_id, MAX_ID_LEN};
pub use runtime::Runtime;
pub use signal::Signal;
pub use state::{read_exit_record, ContainerState, ContainerStatus, ExitRecord, RuntimeState};
pub use version::{parse_version, RuntimeVersion};

#[cfg(test)]
mod send_tests {
    //! The daemon runs these futures on a multi-threaded runtime (tonic): they must be Send.
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    #[allow(dead_code)]
    fn futures_are_send(rt: &Runtime, opts: &CreateOptions, p: &oci_spec::runtime::Process) {
        let r = oci_spec::runtime::LinuxResources::default();
        assert_send(&rt.create(opts));
        assert_send(&rt.start("x"));
        assert_send(&rt.stop("x", std::time::Duration::ZERO, None));
        assert_send(&rt.exec_sync("x", &[], None));
        assert_send(&rt.exec("x", p, true));
        assert_send(&rt.delete("x"));
        assert_send(&rt.update("x", &r));
        assert_send(&rt.status("x", None));
        assert_send(&rt.wait_exit("x", None, std::time::Duration::ZERO));
        assert_send(&rt.attach("x"));
        assert_send(&rt.resize("x", 1, 1));
        assert_send(&rt.version());
    }

    #[test]
    fn runtime_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Runtime>();
    }
}
