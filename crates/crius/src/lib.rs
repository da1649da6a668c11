//! crius: a CRI runtime.
