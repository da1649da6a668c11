//! crius-network: pod namespaces pinned by bind mount, and CNI networking.
//!
//! - [`namespace`]: create a pod's network, IPC and UTS namespaces without a long-running
//!   process, remove them, and run code inside a pod's network namespace.
//! - [`userns`]: the user namespace of a pod with `userns_options` mode POD (made by a helper
//!   process, owning the pod's other namespaces).
//! - [`cni`]: load the CNI network config, run the plugin chain on pod setup/teardown (with an
//!   on-disk result cache so teardown works after a daemon restart), and report network status.

#![warn(missing_docs)]

pub mod cni;
mod error;
pub mod namespace;
pub mod userns;

pub use cni::{
    Cni, CniOptions, DnsConfig, PodNetwork, PodNetworkStatus, PortMapping, Protocol,
    DEFAULT_CONFLIST, DEFAULT_CONFLIST_NAME,
};
pub use error::{Error, Result};
pub use namespace::{NamespaceDirs, NamespaceSet, PodNamespaces};
pub use userns::{IdRange, UsernsMappings, UsernsProcess};

/// Checks that a pod ID is safe as a file name and valid as a CNI container ID.
pub(crate) fn check_pod_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidPodId(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::check_pod_id;

    #[test]
    fn pod_ids() {
        assert!(check_pod_id("abc-123_x.y").is_ok());
        for bad in ["", ".", "..", "-a", "a/b", "a b", "a;b", &"x".repeat(129)] {
            assert!(check_pod_id(bad).is_err(), "{bad:?} accepted");
        }
    }
}
