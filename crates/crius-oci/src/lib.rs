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
pub use create::{CreateOptions, CreatedContainer};
pub use error::{ErrorCode, OciError, Result};
pub use exec::{ExecSession, ExecSyncOutput, PtyMaster, EXEC_OUTPUT_CAP};
pub use id::{validate_id, MAX_ID_LEN};
pub use runtime::Runtime;
pub use signal::Signal;
pub use state::{read_exit_record, ContainerState, ContainerStatus, ExitRecord, RuntimeState};
pub use version::{parse_version, RuntimeVersion};
