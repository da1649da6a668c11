//! Atomic, durable JSON records on disk: `<root>/state/{pods,containers,names}/`.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Context, Result};

/// The directory tree of durable records.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// The kinds of records.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Pod sandbox records.
    Pod,
    /// Container records.
    Container,
    /// Name reservations written by older crius versions (file name = SHA-256 of the name,
    /// content = `[name, id]`): read at recovery and removed on release; names now live in
    /// the pod and container records.
    Name,
}

impl Kind {
    fn dir(self) -> &'static str {
        match self {
            Kind::Pod => "pods",
            Kind::Container => "containers",
            Kind::Name => "names",
        }
    }
}

impl Store {
    /// Opens (creating) the tree under `dir`.
    pub fn open(dir: &Path) -> Result<Store> {
        for k in [Kind::Pod, Kind::Container, Kind::Name] {
            let d = dir.join(k.dir());
            fs::create_dir_all(&d).ctx(format!("create state dir {}", d.display()))?;
        }
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, kind: Kind, key: &str) -> PathBuf {
        let file = match kind {
            Kind::Name => {
                use sha2::Digest;
                hex::encode(sha2::Sha256::digest(key.as_bytes()))
            }
            _ => format!("{key}.json"),
        };
        self.dir.join(kind.dir()).join(file)
    }

    /// Writes a record atomically: temp file, fsync, rename, fsync of the directory.
    pub fn put<T: Serialize>(&self, kind: Kind, key: &str, value: &T) -> Result<()> {
        let data = serde_json::to_vec_pretty(value).ctx(format!("encode {key}"))?;
        write_atomic(&self.path(kind, key), &data)
    }

    /// Rewrites an existing record: temp file, fsync, rename, but no fsync of the directory
    /// (one journal commit instead of two). After a machine crash the record is the old or the
    /// new version, never a torn one: for updates whose loss only takes the object back to a
    /// state recovery already handles (a `Created` record back to `Creating` is rolled back, a
    /// `Removing` one back to its last state is removed again). New records use [`Store::put`].
    pub fn update<T: Serialize>(&self, kind: Kind, key: &str, value: &T) -> Result<()> {
        let data = serde_json::to_vec_pretty(value).ctx(format!("encode {key}"))?;
        write_temp_and_rename(&self.path(kind, key), &data, Sync::File)
    }

    /// Writes a new record atomically (a daemon crash leaves the old or the new version) but
    /// not yet durably: [`Store::sync`] then makes it survive a machine crash, so that its
    /// fsyncs can overlap work that makes nothing durable (processes, files under the runroot).
    pub fn put_unsynced<T: Serialize>(&self, kind: Kind, key: &str, value: &T) -> Result<()> {
        let data = serde_json::to_vec_pretty(value).ctx(format!("encode {key}"))?;
        write_temp_and_rename(&self.path(kind, key), &data, Sync::None)
    }

    /// Makes a record durable: fsync of the file, then of its directory.
    pub fn sync(&self, kind: Kind, key: &str) -> Result<()> {
        let p = self.path(kind, key);
        File::open(&p)
            .and_then(|f| f.sync_all())
            .ctx(format!("fsync {}", p.display()))?;
        sync_dir(p.parent().unwrap_or(&self.dir))
    }

    /// Reads a record; `None` when absent.
    pub fn get<T: DeserializeOwned>(&self, kind: Kind, key: &str) -> Result<Option<T>> {
        let p = self.path(kind, key);
        match fs::read(&p) {
            Ok(d) => Ok(Some(
                serde_json::from_slice(&d).ctx(format!("decode {}", p.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(crate::error::Error::internal(
                format!("read {}", p.display()),
                e,
            )),
        }
    }

    /// Removes a record; idempotent.
    pub fn delete(&self, kind: Kind, key: &str) -> Result<()> {
        let p = self.path(kind, key);
        match fs::remove_file(&p) {
            Ok(()) => sync_dir(p.parent().unwrap_or(&self.dir)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(crate::error::Error::internal(
                format!("remove {}", p.display()),
                e,
            )),
        }
    }

    /// All records of a kind as (key, value) (for names the key is the file's hash: keep the
    /// name in the value); undecodable files are logged and skipped.
    pub fn all<T: DeserializeOwned>(&self, kind: Kind) -> Result<Vec<(String, T)>> {
        let d = self.dir.join(kind.dir());
        let mut out = Vec::new();
        for ent in fs::read_dir(&d).ctx(format!("read {}", d.display()))? {
            let ent = ent.ctx(format!("read {}", d.display()))?;
            let name = ent.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                // A temp file left by a crash during put: the rename never happened.
                let _ = fs::remove_file(ent.path());
                continue;
            }
            let key = match kind {
                Kind::Name => name.clone(),
                _ => match name.strip_suffix(".json") {
                    Some(k) => k.to_string(),
                    None => continue,
                },
            };
            match fs::read(ent.path())
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<T>(&b).map_err(|e| e.to_string()))
            {
                Ok(v) => out.push((key, v)),
                Err(e) => {
                    tracing::warn!(file = %ent.path().display(), error = %e, "skipping bad state record")
                }
            }
        }
        Ok(out)
    }
}

/// Writes `data` to `path` atomically (temp file, rename) without fsync: for files under the
/// runroot (bundles' config.json, a pod's hosts), which do not outlive a reboot by design; a
/// daemon crash still leaves the old or the new content, never a partial file.
pub fn write_atomic_volatile(path: &Path, data: &[u8]) -> Result<()> {
    write_temp_and_rename(path, data, Sync::None)
}

/// Writes `data` to `path` atomically and durably.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    write_temp_and_rename(path, data, Sync::FileAndDir)
}

/// What a write makes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sync {
    /// Nothing (atomic against a daemon crash only).
    None,
    /// The new content before the rename (old or new version after a machine crash).
    File,
    /// The content and the rename (the new version survives a machine crash).
    FileAndDir,
}

fn write_temp_and_rename(path: &Path, data: &[u8], sync: Sync) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let res = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        if sync != Sync::None {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(crate::error::Error::internal(
            format!("write {}", path.display()),
            e,
        ));
    }
    if sync == Sync::FileAndDir {
        sync_dir(dir)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(format!("fsync {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_all_delete() {
        let t = tempfile::tempdir().expect("tempdir");
        let s = Store::open(t.path()).expect("open");
        s.put(Kind::Pod, "abc", &vec![1, 2, 3]).expect("put");
        let long = "k8s_".to_string() + &"x".repeat(400);
        s.put(Kind::Name, &long, &(long.clone(), "abc"))
            .expect("put long name");
        assert_eq!(
            s.get::<Vec<i32>>(Kind::Pod, "abc").expect("get"),
            Some(vec![1, 2, 3])
        );
        assert_eq!(s.get::<Vec<i32>>(Kind::Pod, "nope").expect("get"), None);
        let names: Vec<(String, (String, String))> = s.all(Kind::Name).expect("all");
        assert_eq!(names.len(), 1);
        assert_eq!(names[0].1, (long.clone(), "abc".to_string()));
        s.delete(Kind::Name, &long).expect("delete name");
        assert!(s
            .all::<(String, String)>(Kind::Name)
            .expect("all")
            .is_empty());
        std::fs::write(t.path().join("pods/.x.json.tmp"), b"{").expect("write tmp");
        assert_eq!(s.all::<Vec<i32>>(Kind::Pod).expect("all").len(), 1);
        assert!(!t.path().join("pods/.x.json.tmp").exists());
        s.put_unsynced(Kind::Pod, "new", &vec![5])
            .expect("put unsynced");
        s.sync(Kind::Pod, "new").expect("sync");
        assert_eq!(
            s.get::<Vec<i32>>(Kind::Pod, "new").expect("get"),
            Some(vec![5])
        );
        s.delete(Kind::Pod, "new").expect("delete");
        s.sync(Kind::Pod, "new")
            .expect_err("sync of a missing record");
        s.update(Kind::Pod, "abc", &vec![4]).expect("update");
        assert_eq!(
            s.get::<Vec<i32>>(Kind::Pod, "abc").expect("get"),
            Some(vec![4])
        );
        s.delete(Kind::Pod, "abc").expect("delete");
        s.delete(Kind::Pod, "abc").expect("delete twice");
        assert_eq!(s.get::<Vec<i32>>(Kind::Pod, "abc").expect("get"), None);
    }
}
