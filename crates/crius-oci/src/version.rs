//! Parsing `<runtime> --version` output (runc and crun) without ever panicking.

use serde::Serialize;

/// What `<runtime> --version` told us. Fields the output did not contain are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuntimeVersion {
    /// Runtime name from the first line ("runc", "crun"), when present.
    pub name: Option<String>,
    /// Version string ("1.1.5", "1.8.1"); `"unknown"` when none could be found.
    pub version: String,
    /// Git commit, when printed.
    pub commit: Option<String>,
    /// The OCI runtime-spec version the runtime supports, when printed.
    pub spec: Option<String>,
}

/// Parses the output of `runc --version` / `crun --version`.
///
/// runc prints `runc version 1.1.5\ncommit: v1.1.5\nspec: 1.0.2-dev\ngo: ...`; crun prints
/// `crun version 1.8.1\ncommit: ...\nrundir: ...\nspec: 1.0.0\n+SYSTEMD ...`. Anything else
/// yields `version: "unknown"` or the best guess, never a panic.
pub fn parse_version(output: &str) -> RuntimeVersion {
    let mut v = RuntimeVersion {
        version: "unknown".to_string(),
        ..Default::default()
    };
    let mut found_version = false;
    for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some((key, value)) = line.split_once(':') {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match key.trim().to_ascii_lowercase().as_str() {
                "commit" => v.commit = Some(value.to_string()),
                "spec" => v.spec = Some(value.to_string()),
                "version" if !found_version => {
                    v.version = value.to_string();
                    found_version = true;
                }
                _ => {}
            }
            continue;
        }
        if found_version {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(pos) = words.iter().position(|w| w.eq_ignore_ascii_case("version")) {
            if let Some(ver) = words.get(pos + 1) {
                v.version = ver.to_string();
                found_version = true;
                if pos > 0 {
                    v.name = Some(words[..pos].join(" "));
                }
            }
        } else if let Some(last) = words.last() {
            if last.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                v.version = last.to_string();
                found_version = true;
                if words.len() > 1 {
                    v.name = Some(words[..words.len() - 1].join(" "));
                }
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_output() {
        let v = parse_version(
            "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1\nspec: 1.0.2-dev\ngo: go1.19.8\nlibseccomp: 2.5.4\n",
        );
        assert_eq!(v.name.as_deref(), Some("runc"));
        assert_eq!(v.version, "1.1.5+ds1");
        assert_eq!(v.commit.as_deref(), Some("1.1.5+ds1-1"));
        assert_eq!(v.spec.as_deref(), Some("1.0.2-dev"));
    }

    #[test]
    fn crun_output() {
        let v = parse_version(
            "crun version 1.8.1\ncommit: f8a096be060b22ccd3d5f3ebe44108517fbf6c30\nrundir: /run/crun\nspec: 1.0.0\n+SYSTEMD +SELINUX +APPARMOR +CAP +SECCOMP +EBPF +YAJL\n",
        );
        assert_eq!(v.name.as_deref(), Some("crun"));
        assert_eq!(v.version, "1.8.1");
        assert_eq!(v.spec.as_deref(), Some("1.0.0"));
    }

    #[test]
    fn odd_outputs_never_panic() {
        let odd = [
            "",
            "\n",
            "\n\n\n",
            "version",
            "runc version",
            "runc version\n",
            ":",
            "commit:",
            "spec: \n",
            " \t ",
            "1.2.3",
            "weird-runtime 0.9",
            "no digits here",
            "é ü version ß",
            "version: 2.0\nversion: 3.0",
            "\u{0}\u{1}\u{2}",
        ];
        for out in odd {
            let v = parse_version(out);
            assert!(!v.version.is_empty(), "{out:?}");
        }
        assert_eq!(parse_version("").version, "unknown");
        assert_eq!(parse_version("runc version").version, "unknown");
        assert_eq!(parse_version("1.2.3").version, "1.2.3");
        assert_eq!(parse_version("weird-runtime 0.9").version, "0.9");
        assert_eq!(parse_version("version: 2.0\nversion: 3.0").version, "2.0");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic fuzz: every prefix of a mixed input.
        let input = "runc version 1.1.5\ncommit: x\n:\n\u{feff}version\tspec:1\n";
        for end in 0..=input.len() {
            if input.is_char_boundary(end) {
                assert!(!parse_version(&input[..end]).version.is_empty());
            }
        }
    }
}
