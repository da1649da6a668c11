//! Container ID validation: done before any ID reaches a path or a command line.

use crate::error::{OciError, Result};

/// The longest container ID accepted (runc itself has no limit; paths do).
pub const MAX_ID_LEN: usize = 1024;

/// Checks that `id` matches `[A-Za-z0-9][A-Za-z0-9_.-]*` and is at most [`MAX_ID_LEN`] bytes, so
/// it can be used as a file name (no `/`, no `..`, not empty, no leading `-` or `.`).
pub fn validate_id(id: &str) -> Result<()> {
    let refuse = |reason| {
        Err(OciError::InvalidId {
            id: id.chars().take(80).collect(),
            reason,
        })
    };
    let Some(first) = id.bytes().next() else {
        return refuse("empty");
    };
    if id.len() > MAX_ID_LEN {
        return refuse("longer than 1024 bytes");
    }
    if !first.is_ascii_alphanumeric() {
        return refuse("must start with a letter or digit");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return refuse("only letters, digits, '_', '.' and '-' are allowed");
    }
    if id.contains("..") {
        return refuse("must not contain '..'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_usual_ids() {
        for id in ["abc", "a", "0f3e9b", "pod_1.ctr-2", "A.b_c-d"] {
            assert!(validate_id(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn refuses_bad_ids() {
        let long = "a".repeat(MAX_ID_LEN + 1);
        for id in [
            "",
            ".",
            "..",
            "a/..",
            "../x",
            "a/b",
            "/abs",
            "-rf",
            ".hidden",
            "a..b",
            "a b",
            "a\0b",
            "é",
            long.as_str(),
        ] {
            let err = validate_id(id).expect_err(id);
            assert!(matches!(err, OciError::InvalidId { .. }));
            assert_eq!(err.code(), crate::ErrorCode::InvalidArgument);
        }
        assert!(validate_id(&"a".repeat(MAX_ID_LEN)).is_ok());
    }
}
