//! crius-cni
