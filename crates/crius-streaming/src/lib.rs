//! crius-streaming
