//! crius-spec
