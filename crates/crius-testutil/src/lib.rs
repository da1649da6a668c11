//! crius-testutil
