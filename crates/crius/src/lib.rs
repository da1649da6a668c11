//! crius: a Kubernetes CRI v1 container runtime daemon.
//!
//! The gRPC services in [`server`] (one file per CRI call) are thin layers over the pod logic
//! in [`sandbox`], the container logic in [`container`] and the durable [`state`]. The
//! collaborators (OCI runtime, images, network, spec generation) are reached through the traits
//! of [`backend`], implemented over the crius-* crates in [`adapters`].

pub mod adapters;
pub mod backend;
pub mod config;
pub mod container;
pub mod daemon;
pub mod error;
pub mod events;
pub mod metrics;
pub mod nri;
pub mod recover;
pub mod sandbox;
pub mod server;
pub mod service;
pub mod state;
pub mod stats;
pub mod streaming;
pub mod undo;

pub use config::Config;
pub use error::{Error, Result};
pub use service::Crius;
