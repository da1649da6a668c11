//! containers-registries.conf (v2) mirrors and insecure (plain HTTP) registries.

use std::path::Path;

use serde::Deserialize;

use crate::error::{ImageError, Result};
use crate::reference::ImageReference;

/// The parts of registries.conf v2 we use.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RegistriesConf {
    /// `[[registry]]` tables.
    #[serde(default, rename = "registry")]
    pub registries: Vec<RegistryEntry>,
}

/// One `[[registry]]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RegistryEntry {
    /// Names this entry applies to (`example.com`, `example.com/ns`, `*.example.com`);
    /// defaults to `location`.
    #[serde(default)]
    pub prefix: String,
    /// Where to pull from instead of `prefix` (host\[:port\]\[/path\]).
    #[serde(default)]
    pub location: String,
    /// Plain HTTP.
    #[serde(default)]
    pub insecure: bool,
    /// Refuse pulls from this registry.
    #[serde(default)]
    pub blocked: bool,
    /// `all` (default), `digest-only` or `tag-only`.
    #[serde(default)]
    pub pull_from_mirror: String,
    /// `[[registry.mirror]]` tables, tried in order before `location`.
    #[serde(default, rename = "mirror")]
    pub mirrors: Vec<MirrorEntry>,
}

/// One `[[registry.mirror]]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MirrorEntry {
    /// host\[:port\]\[/path\].
    pub location: String,
    /// Plain HTTP.
    #[serde(default)]
    pub insecure: bool,
    /// `all`, `digest-only` or `tag-only` (overrides the registry's setting).
    #[serde(default)]
    pub pull_from_mirror: String,
}

/// A place to pull one reference from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// host\[:port\] to talk to.
    pub registry: String,
    /// Repository on that host.
    pub repository: String,
    /// Plain HTTP.
    pub insecure: bool,
    /// A mirror (false for the registry's own location).
    pub mirror: bool,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.insecure { "http" } else { "https" };
        write!(f, "{scheme}://{}", self.registry)
    }
}

impl RegistriesConf {
    /// Reads the file; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(ImageError::Config {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })
            }
        };
        Self::parse(&text).map_err(|reason| ImageError::Config {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses the TOML text.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut conf: RegistriesConf = toml::from_str(text).map_err(|e| e.to_string())?;
        for r in &mut conf.registries {
            if r.prefix.is_empty() {
                r.prefix = r.location.clone();
            }
            if r.prefix.is_empty() {
                return Err("[[registry]] with neither prefix nor location".into());
            }
            if r.location.is_empty() && !r.prefix.starts_with("*.") {
                r.location = r.prefix.clone();
            }
        }
        Ok(conf)
    }

    /// Every host\[:port\] configured as insecure (plain HTTP).
    pub fn insecure_hosts(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.registries {
            if r.insecure && !r.location.is_empty() {
                out.push(host_of(&r.location).to_string());
            }
            for m in &r.mirrors {
                if m.insecure {
                    out.push(host_of(&m.location).to_string());
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The entry with the longest prefix matching `name` (`registry/repository`).
    fn find(&self, name: &str) -> Option<&RegistryEntry> {
        self.registries
            .iter()
            .filter(|r| prefix_matches(&r.prefix, name))
            .max_by_key(|r| r.prefix.len())
    }

    /// Where to pull `r` from, in order: mirrors, then the registry's location. Errors when
    /// the registry is blocked.
    pub fn endpoints(&self, r: &ImageReference) -> Result<Vec<Endpoint>> {
        let name = r.name();
        let Some(entry) = self.find(&name) else {
            return Ok(vec![Endpoint {
                registry: r.registry.clone(),
                repository: r.repository.clone(),
                insecure: false,
                mirror: false,
            }]);
        };
        if entry.blocked {
            return Err(ImageError::InvalidReference {
                reference: r.to_string(),
                reason: format!("registry {} is blocked in registries.conf", entry.prefix),
            });
        }
        // The part of the name after the prefix ("" or "/rest").
        let rest = if let Some(host_suffix) = entry.prefix.strip_prefix("*.") {
            let _ = host_suffix;
            &name[r.registry.len()..]
        } else {
            &name[entry.prefix.len()..]
        };
        let mut out = Vec::new();
        for m in &entry.mirrors {
            let mode = if m.pull_from_mirror.is_empty() {
                entry.pull_from_mirror.as_str()
            } else {
                m.pull_from_mirror.as_str()
            };
            let by_digest = r.digest.is_some();
            let allowed = match mode {
                "digest-only" => by_digest,
                "tag-only" => !by_digest,
                _ => true,
            };
            if allowed {
                out.push(endpoint(&m.location, rest, m.insecure, true));
            }
        }
        if entry.location.is_empty() {
            // Wildcard prefix without location: the name's own registry.
            out.push(Endpoint {
                registry: r.registry.clone(),
                repository: r.repository.clone(),
                insecure: entry.insecure,
                mirror: false,
            });
        } else {
            out.push(endpoint(&entry.location, rest, entry.insecure, false));
        }
        Ok(out)
    }
}

fn endpoint(location: &str, rest: &str, insecure: bool, mirror: bool) -> Endpoint {
    let full = format!("{}{}", location.trim_end_matches('/'), rest);
    let (registry, repository) = full.split_once('/').unwrap_or((full.as_str(), ""));
    Endpoint {
        registry: registry.to_string(),
        repository: repository.to_string(),
        insecure,
        mirror,
    }
}

fn host_of(location: &str) -> &str {
    location.split('/').next().unwrap_or(location)
}

fn prefix_matches(prefix: &str, name: &str) -> bool {
    if let Some(suffix) = prefix.strip_prefix("*.") {
        let host = host_of(name);
        return host.ends_with(&format!(".{suffix}"));
    }
    match name.strip_prefix(prefix) {
        Some("") => true,
        Some(rest) => rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = r#"
unqualified-search-registries = ["docker.io"]

[[registry]]
prefix = "registry.k8s.io"
location = "registry.k8s.io"
[[registry.mirror]]
location = "127.0.0.1:5000"
insecure = true
[[registry.mirror]]
location = "mirror.example:5001/k8s"

[[registry]]
prefix = "docker.io"
location = "127.0.0.1:5000"
insecure = true

[[registry]]
prefix = "docker.io/special/repo"
location = "other.example/x"

[[registry]]
location = "blocked.example"
blocked = true
"#;

    fn eps(conf: &RegistriesConf, r: &str) -> Vec<(String, String, bool, bool)> {
        conf.endpoints(&ImageReference::parse(r).unwrap())
            .unwrap()
            .into_iter()
            .map(|e| (e.registry, e.repository, e.insecure, e.mirror))
            .collect()
    }

    #[test]
    fn mirrors_in_order_then_location() {
        let c = RegistriesConf::parse(CONF).unwrap();
        assert_eq!(
            eps(&c, "registry.k8s.io/pause:3.9"),
            vec![
                ("127.0.0.1:5000".into(), "pause".into(), true, true),
                (
                    "mirror.example:5001".into(),
                    "k8s/pause".into(),
                    false,
                    true
                ),
                ("registry.k8s.io".into(), "pause".into(), false, false),
            ]
        );
    }

    #[test]
    fn location_rewrite_and_longest_prefix() {
        let c = RegistriesConf::parse(CONF).unwrap();
        assert_eq!(
            eps(&c, "busybox"),
            vec![(
                "127.0.0.1:5000".into(),
                "library/busybox".into(),
                true,
                false
            )]
        );
        assert_eq!(
            eps(&c, "docker.io/special/repo:1"),
            vec![("other.example".into(), "x".into(), false, false)]
        );
        // "docker.io/special/repository" must not match the "docker.io/special/repo" prefix.
        assert_eq!(
            eps(&c, "docker.io/special/repository:1"),
            vec![(
                "127.0.0.1:5000".into(),
                "special/repository".into(),
                true,
                false
            )]
        );
        assert_eq!(
            eps(&c, "quay.io/a/b"),
            vec![("quay.io".into(), "a/b".into(), false, false)]
        );
        assert_eq!(c.insecure_hosts(), vec!["127.0.0.1:5000".to_string()]);
    }

    #[test]
    fn blocked_is_refused() {
        let c = RegistriesConf::parse(CONF).unwrap();
        let r = ImageReference::parse("blocked.example/a:1").unwrap();
        assert!(matches!(
            c.endpoints(&r),
            Err(ImageError::InvalidReference { .. })
        ));
    }

    #[test]
    fn missing_file_is_empty() {
        let c = RegistriesConf::load(Path::new("/nonexistent/registries.conf")).unwrap();
        assert!(c.registries.is_empty());
    }
}
