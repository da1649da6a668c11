//! Image references, normalised as the kubelet and Docker do.

use std::fmt;

use crate::error::{ImageError, Result};

/// A fully qualified image reference: `registry/repository[:tag][@digest]`.
///
/// `busybox` normalises to `docker.io/library/busybox:latest`; a reference with a digest
/// and no tag keeps no tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    /// Registry host\[:port\], e.g. `docker.io`, `registry.k8s.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// Repository path, e.g. `library/busybox`.
    pub repository: String,
    /// Tag, if any (`latest` is filled in when neither tag nor digest is given).
    pub tag: Option<String>,
    /// Digest (`sha256:<hex>`), if any.
    pub digest: Option<String>,
}

impl ImageReference {
    /// Parses and normalises a reference; errors with [`ImageError::InvalidReference`].
    pub fn parse(input: &str) -> Result<Self> {
        let invalid = |reason: String| ImageError::InvalidReference {
            reference: input.to_string(),
            reason,
        };
        if input.is_empty() {
            return Err(invalid("empty reference".into()));
        }
        if input.trim() != input {
            return Err(invalid("leading or trailing whitespace".into()));
        }
        // Not oci_client's parser: its regex (Unicode \w with {0,127}) costs ~7 MiB compiled
        // plus a 2.6 MiB search cache per thread, for the daemon's whole life.
        let (registry, repository, tag, digest) = split_reference(input).map_err(invalid)?;
        if let Some(d) = &digest {
            validate_digest(d).map_err(invalid)?;
        }
        validate_repository(&repository).map_err(invalid)?;
        Ok(ImageReference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// `registry/repository:tag`, if the reference has a tag and no digest (the form stored
    /// in RepoTags; a tag+digest reference is pulled by digest and, as Docker does, keeps no tag).
    pub fn repo_tag(&self) -> Option<String> {
        match (&self.tag, &self.digest) {
            (Some(t), None) => Some(format!("{}:{}", self.name(), t)),
            _ => None,
        }
    }

    /// `registry/repository@digest` for the given manifest digest (the RepoDigests form).
    pub fn repo_digest(&self, digest: &str) -> String {
        format!("{}@{}", self.name(), digest)
    }

    /// What to ask the registry for: the digest if any, else the tag.
    pub fn tag_or_digest(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The same repository on another registry/repository (for mirrors), for oci-client.
    pub(crate) fn to_oci(&self, registry: &str, repository: &str) -> oci_client::Reference {
        match (&self.tag, &self.digest) {
            (_, Some(d)) => {
                oci_client::Reference::with_digest(registry.into(), repository.into(), d.clone())
            }
            (Some(t), None) => {
                oci_client::Reference::with_tag(registry.into(), repository.into(), t.clone())
            }
            (None, None) => {
                oci_client::Reference::with_tag(registry.into(), repository.into(), "latest".into())
            }
        }
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// The parts of a reference as written: (registry, repository, tag, digest), normalised as
/// Docker does (`busybox` -> `docker.io`, `library/busybox`, tag `latest`). Checks the
/// distribution grammar's shape (domain, tag, digest syntax, name length); the caller checks
/// repository components and digest algorithms.
fn split_reference(
    input: &str,
) -> std::result::Result<(String, String, Option<String>, Option<String>), String> {
    let (rest, digest) = match input.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (input, None),
    };
    if let Some(d) = digest {
        let (alg, hex) = d
            .split_once(':')
            .ok_or_else(|| format!("digest {d:?} has no algorithm"))?;
        let alg_ok = !alg.is_empty()
            && alg.as_bytes()[0].is_ascii_alphabetic()
            && alg.split(['-', '_', '+', '.']).all(|p| {
                !p.is_empty()
                    && p.as_bytes()[0].is_ascii_alphabetic()
                    && p.bytes().all(|b| b.is_ascii_alphanumeric())
            });
        if !alg_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("digest {d:?} is not algorithm:hex"));
        }
    }
    // A tag is what follows the last ':' after the last '/' (a ':' before it is a port).
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(t) = tag {
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let ok = !t.is_empty()
            && t.len() <= 128
            && word(t.as_bytes()[0])
            && t.bytes().all(|b| word(b) || b == b'.' || b == b'-');
        if !ok {
            return Err(format!(
                "tag {t:?} must be [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"
            ));
        }
    }
    if name.is_empty() {
        return Err("no repository name".into());
    }
    // Docker's rule: the first component is a registry when it has a '.' or a ':' or is
    // "localhost", and more components follow.
    let (mut registry, mut repository) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            if !valid_domain(first) {
                return Err(format!("registry {first:?} is not host[:port]"));
            }
            (first.to_string(), rest.to_string())
        }
        _ => ("docker.io".to_string(), name.to_string()),
    };
    if registry == "index.docker.io" {
        registry = "docker.io".into();
    }
    if registry == "docker.io" && !repository.contains('/') {
        repository = format!("library/{repository}");
    }
    if repository.len() > 255 {
        return Err("repository name longer than 255 characters".into());
    }
    let tag = match (tag, digest) {
        (None, None) => Some("latest".to_string()),
        (t, _) => t.map(str::to_string),
    };
    Ok((registry, repository, tag, digest.map(str::to_string)))
}

/// `host[:port]`: dot-separated labels of ASCII letters, digits and inner hyphens.
fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        })
}

/// Checks each path component of a repository against the distribution grammar:
/// lowercase alphanumerics separated by `.`, `_`, `__` or runs of `-`.
fn validate_repository(repo: &str) -> std::result::Result<(), String> {
    for comp in repo.split('/') {
        let ok = !comp.is_empty()
            && comp.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && comp.as_bytes()[0].is_ascii_alphanumeric()
            && comp.as_bytes()[comp.len() - 1].is_ascii_alphanumeric()
            && !comp.contains("..")
            && !comp.contains("___")
            && !comp.contains("._")
            && !comp.contains("_.")
            && !comp.contains(".-")
            && !comp.contains("-.")
            && !comp.contains("_-")
            && !comp.contains("-_");
        if !ok {
            if comp.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(format!("repository name {repo:?} must be lowercase"));
            }
            return Err(format!(
                "repository path component {comp:?} must be lowercase letters and digits separated by '.', '_', '__' or '-'"
            ));
        }
    }
    Ok(())
}

/// Checks `algorithm:hex` with a known algorithm and the right length.
pub(crate) fn validate_digest(d: &str) -> std::result::Result<(), String> {
    let (alg, hex) = d
        .split_once(':')
        .ok_or_else(|| format!("digest {d:?} has no algorithm"))?;
    let len = match alg {
        "sha256" => 64,
        "sha512" => 128,
        other => return Err(format!("unsupported digest algorithm {other:?}")),
    };
    if hex.len() != len
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!("digest {d:?} is not {len} lowercase hex digits"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalises_like_docker() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            (
                "index.docker.io/library/busybox",
                "docker.io/library/busybox:latest",
            ),
            ("quay.io/foo/bar", "quay.io/foo/bar:latest"),
            ("localhost/foo", "localhost/foo:latest"),
            ("127.0.0.1:5000/pause:3.9", "127.0.0.1:5000/pause:3.9"),
            ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
            ("localhost:5000/a/b:t_1.x-y", "localhost:5000/a/b:t_1.x-y"),
            ("my.host/a__b/c-d:v1", "my.host/a__b/c-d:v1"),
        ];
        for (input, want) in cases {
            let r = ImageReference::parse(input).unwrap();
            assert_eq!(r.to_string(), want, "{input}");
        }
    }

    #[test]
    fn digest_forms() {
        let r = ImageReference::parse(&format!("busybox@{D}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(D));
        assert_eq!(r.repo_tag(), None);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{D}"));

        let r = ImageReference::parse(&format!("busybox:1@{D}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.digest.as_deref(), Some(D));
        assert_eq!(r.tag_or_digest(), D);
        assert_eq!(r.repo_digest(D), format!("docker.io/library/busybox@{D}"));
    }

    #[test]
    fn rejects_invalid_with_reason() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox@sha256:abc",
            "busybox@md5:0123456789abcdef0123456789abcdef",
            "a//b",
            " busybox",
            "busybox:bad tag",
            "UPPER/case:1",
            "docker.io/Foo/bar",
            "foo/-bar",
            "quay.io:x/foo",
            "bad-.io/foo",
            "reg.io/foo:.tag",
            "@sha256:0123456789abcdef0123456789abcdef",
        ] {
            match ImageReference::parse(bad) {
                Err(ImageError::InvalidReference { reference, reason }) => {
                    assert_eq!(reference, bad);
                    assert!(!reason.is_empty());
                }
                other => panic!("{bad:?}: expected InvalidReference, got {other:?}"),
            }
        }
    }
}
