//! Loading the network config from the CNI config directory.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::{Error, Result};

/// CNI versions whose config and result formats this crate speaks.
const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0"];

/// A parsed network config: a list of plugin configs (a single `.conf` is wrapped).
#[derive(Debug, PartialEq)]
pub(crate) struct NetworkConfig {
    /// The file it came from.
    pub file: PathBuf,
    /// The network name.
    pub name: String,
    /// The network's cniVersion, given to every plugin.
    pub cni_version: String,
    /// Plugin configs, each with a string `type`.
    pub plugins: Vec<Map<String, Value>>,
}

/// The `type` of a plugin config (validated non-empty at load time).
pub(crate) fn plugin_type(plugin: &Map<String, Value>) -> &str {
    plugin.get("type").and_then(Value::as_str).unwrap_or("")
}

/// Name, mtime, ctime and size of every candidate file: when it changes, the config is re-read.
type Fingerprint = Vec<(OsString, Option<SystemTime>, i64, u64)>;

/// Caches the loaded config and re-reads it when the directory's candidate files change.
#[derive(Debug)]
pub(crate) struct ConfigLoader {
    dir: PathBuf,
    cached: Mutex<Option<(Fingerprint, Arc<NetworkConfig>)>>,
}

fn is_candidate(name: &Path) -> bool {
    matches!(
        name.extension().and_then(|e| e.to_str()),
        Some("conflist" | "conf" | "json")
    )
}

/// True if `dir` holds at least one `*.conflist`, `*.conf` or `*.json` file.
pub(crate) fn has_config_files(dir: &Path) -> io::Result<bool> {
    Ok(!candidates(dir)?.is_empty())
}

/// Candidate files of `dir` with their fingerprint parts, in lexical order of file name.
fn candidates(dir: &Path) -> io::Result<Fingerprint> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if !is_candidate(Path::new(&name)) {
            continue;
        }
        // Follow symlinks (configs are often links); skip dangling links and non-files.
        let Ok(meta) = fs::metadata(entry.path()) else {
            continue;
        };
        if meta.is_file() {
            out.push((
                name,
                meta.modified().ok(),
                meta.ctime_nsec() + meta.ctime() * 1_000_000_000,
                meta.len(),
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

impl ConfigLoader {
    /// A loader for `dir`; nothing is read yet.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            cached: Mutex::new(None),
        }
    }

    /// The network config of the lexically first candidate file; re-parsed only if the set of
    /// candidate files or their mtime/ctime/size changed since the last call.
    pub fn load(&self) -> Result<Arc<NetworkConfig>> {
        let files = match candidates(&self.dir) {
            Ok(files) => files,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NoConfig {
                    dir: self.dir.clone(),
                })
            }
            Err(source) => {
                return Err(Error::ConfigDir {
                    dir: self.dir.clone(),
                    source,
                })
            }
        };
        let Some(first) = files.first() else {
            return Err(Error::NoConfig {
                dir: self.dir.clone(),
            });
        };
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((fp, net)) = cached.as_ref() {
            if *fp == files {
                return Ok(net.clone());
            }
        }
        let file = self.dir.join(&first.0);
        let net = Arc::new(load_file(&file)?);
        tracing::info!(file = %file.display(), network = %net.name, "loaded CNI network config");
        *cached = Some((files, net.clone()));
        Ok(net)
    }
}

/// Reads and parses one config file.
pub(crate) fn load_file(file: &Path) -> Result<NetworkConfig> {
    let bytes = fs::read(file).map_err(|e| Error::ConfigParse {
        file: file.to_path_buf(),
        msg: format!("read: {e}"),
    })?;
    parse(file, &bytes).map_err(|msg| Error::ConfigParse {
        file: file.to_path_buf(),
        msg,
    })
}

fn parse(file: &Path, bytes: &[u8]) -> std::result::Result<NetworkConfig, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let Value::Object(obj) = value else {
        return Err("not a JSON object".into());
    };
    let name = match obj.get("name") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err("missing or empty \"name\"".into()),
    };
    let cni_version = match obj.get("cniVersion") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err("missing \"cniVersion\"".into()),
    };
    if !SUPPORTED_VERSIONS.contains(&cni_version.as_str()) {
        return Err(format!(
            "cniVersion {cni_version:?} not supported (want one of {SUPPORTED_VERSIONS:?})"
        ));
    }
    let is_list = file.extension().and_then(|e| e.to_str()) == Some("conflist")
        || obj.contains_key("plugins");
    let plugins = if is_list {
        let Some(Value::Array(list)) = obj.get("plugins") else {
            return Err("missing \"plugins\" array".into());
        };
        if list.is_empty() {
            return Err("\"plugins\" is empty".into());
        }
        list.iter()
            .enumerate()
            .map(|(i, p)| match p {
                Value::Object(m) => Ok(m.clone()),
                _ => Err(format!("plugins[{i}] is not an object")),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?
    } else {
        vec![obj.clone()]
    };
    for (i, p) in plugins.iter().enumerate() {
        match p.get("type") {
            Some(Value::String(t)) if !t.is_empty() && !t.contains('/') => {}
            _ => return Err(format!("plugin {i}: missing or invalid \"type\"")),
        }
    }
    Ok(NetworkConfig {
        file: file.to_path_buf(),
        name,
        cni_version,
        plugins,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) {
        fs::write(dir.join(name), body).unwrap();
    }

    const LIST: &str =
        r#"{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"bridge"},{"type":"portmap"}]}"#;
    const CONF: &str = r#"{"cniVersion":"0.4.0","name":"b","type":"bridge","bridge":"x"}"#;

    #[test]
    fn lexical_first_file_wins_and_conf_is_wrapped() {
        let dir = tempfile::tempdir().unwrap();
        let loader = ConfigLoader::new(dir.path().to_path_buf());
        assert!(matches!(loader.load(), Err(Error::NoConfig { .. })));
        write(dir.path(), "20-a.conflist", LIST);
        write(dir.path(), "README.md", "not a config");
        assert_eq!(loader.load().unwrap().name, "a");
        assert_eq!(loader.load().unwrap().plugins.len(), 2);
        write(dir.path(), "10-b.conf", CONF);
        let net = loader.load().unwrap();
        assert_eq!(net.name, "b");
        assert_eq!(net.cni_version, "0.4.0");
        assert_eq!(net.plugins.len(), 1);
        assert_eq!(plugin_type(&net.plugins[0]), "bridge");
        assert_eq!(net.plugins[0]["bridge"], "x");
    }

    #[test]
    fn broken_file_is_named_and_change_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let loader = ConfigLoader::new(dir.path().to_path_buf());
        write(dir.path(), "05-broken.conflist", "{\"cniVersion\": ");
        write(dir.path(), "10-ok.conflist", LIST);
        let err = loader.load().unwrap_err().to_string();
        assert!(err.contains("05-broken.conflist"), "{err}");
        // Same name, new content and size: reloaded without restarting anything.
        write(dir.path(), "05-broken.conflist", LIST);
        assert_eq!(loader.load().unwrap().name, "a");
        fs::remove_file(dir.path().join("05-broken.conflist")).unwrap();
        write(
            dir.path(),
            "10-ok.conflist",
            &LIST.replace("\"a\"", "\"renamed\""),
        );
        assert_eq!(loader.load().unwrap().name, "renamed");
    }

    #[test]
    fn invalid_configs() {
        let p = Path::new("x.conflist");
        for (body, want) in [
            ("[]", "not a JSON object"),
            (r#"{"cniVersion":"1.0.0","plugins":[{"type":"a"}]}"#, "name"),
            (r#"{"name":"n","plugins":[{"type":"a"}]}"#, "cniVersion"),
            (
                r#"{"cniVersion":"9.9.9","name":"n","plugins":[{"type":"a"}]}"#,
                "not supported",
            ),
            (r#"{"cniVersion":"1.0.0","name":"n","plugins":[]}"#, "empty"),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"x":1}]}"#,
                "type",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../x"}]}"#,
                "type",
            ),
            (r#"{"cniVersion":"1.0.0","name":"n"}"#, "plugins"),
        ] {
            let err = parse(p, body.as_bytes()).unwrap_err();
            assert!(err.contains(want), "{body}: {err}");
        }
    }
}
