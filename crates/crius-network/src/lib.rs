//! crius-network
