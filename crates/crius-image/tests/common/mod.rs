//! Shared test support: the local registry, stores in temp dirs, and building and pushing
//! small images.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use crius_image::{ImageService, ImageServiceConfig, RootfsMode};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth as OciAuth;
use sha2::{Digest, Sha256};

/// The shared test registry.
pub const LOCAL: &str = "127.0.0.1:5000";
const TESTENV: &str = "/work/shared/testenv";

/// registries.conf mapping the testenv's upstream names onto the local registry.
/// registry.k8s.io goes through a mirror; its own location is a closed local port, so a
/// successful pull proves the mirror served it (and nothing leaves the machine).
pub const MIRROR_CONF: &str = r#"
[[registry]]
prefix = "registry.k8s.io"
location = "127.0.0.1:9"
insecure = true
[[registry.mirror]]
location = "127.0.0.1:5000"
insecure = true

[[registry]]
prefix = "docker.io"
location = "127.0.0.1:5000"
insecure = true

[[registry]]
prefix = "gcr.io"
location = "127.0.0.1:5000"
insecure = true

[[registry]]
location = "127.0.0.1:5000"
insecure = true
"#;

/// HTTP status of `GET path` on host:port, if it answers.
pub fn http_status(addr: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let line = String::from_utf8_lossy(&buf[..n]);
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Starts the testenv registry and publishes its images, once per test binary.
pub fn ensure_registry() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if http_status(LOCAL, "/v2/") != Some(200) {
            let st = Command::new("bash")
                .arg(format!("{TESTENV}/registry.sh"))
                .arg("start")
                .status()
                .expect("run registry.sh");
            assert!(st.success(), "registry.sh start failed");
        }
        if http_status(LOCAL, "/v2/pause/manifests/3.9") != Some(200)
            || http_status(
                LOCAL,
                "/v2/k8s-staging-cri-tools/test-image-tags/manifests/3",
            ) != Some(200)
        {
            // one writer of the shared fixture at a time (images.sh rebuilds its layouts dir)
            let st = Command::new("flock")
                .args(["/tmp/crius-testenv.lock", "bash"])
                .arg(format!("{TESTENV}/images.sh"))
                .status()
                .expect("run images.sh");
            assert!(st.success(), "images.sh failed");
        }
    });
}

/// An image service over a fresh temp dir, with `conf` as registries.conf.
pub async fn service_with(conf: &str, mode: RootfsMode) -> (tempfile::TempDir, ImageService) {
    let dir = tempfile::Builder::new()
        .prefix("crius-image-test-")
        .tempdir()
        .unwrap();
    let conf_path = dir.path().join("registries.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut cfg = ImageServiceConfig::new(dir.path().join("store"));
    cfg.registries_conf = Some(conf_path);
    cfg.rootfs_mode = mode;
    let svc = ImageService::open(cfg).await.unwrap();
    (dir, svc)
}

/// Same, with [`MIRROR_CONF`] and overlay rootfs.
pub async fn service() -> (tempfile::TempDir, ImageService) {
    ensure_registry();
    service_with(MIRROR_CONF, RootfsMode::Auto).await
}

/// Number of unpacked layers in a store.
pub fn layer_count(store: &Path) -> usize {
    std::fs::read_dir(store.join("layers")).unwrap().count()
}

/// Entries of a directory (names), sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Unmounts a container rootfs on drop (test cleanup on failure).
pub struct RootfsGuard {
    pub svc: ImageService,
    pub id: String,
}

impl Drop for RootfsGuard {
    fn drop(&mut self) {
        if let Some(p) = self.svc.rootfs_path(&self.id) {
            let _ = Command::new("umount").arg("-l").arg(&p).status();
        }
    }
}

/// A unique-ish id for containers in tests.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), rand::random::<u32>())
}

/// A front for the testenv registry on a free loopback port that logs request paths and,
/// with a token, requires `Authorization: Bearer <token>`: without it the answer is a 401
/// with a Bearer challenge whose token endpoint (served here too) hands out a token the
/// front refuses. Each request is forwarded on its own upstream connection. Stops on drop.
pub struct Front {
    pub addr: String,
    pub paths: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Front {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Front {
    pub async fn start(token: Option<&str>) -> Front {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let realm = format!("http://{addr}/token");
        let expected = token.map(|t| format!("authorization: bearer {t}"));
        let paths = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = paths.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let realm = realm.clone();
                let expected = expected.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match conn.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let text = String::from_utf8_lossy(&head).into_owned();
                    let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
                    if path.starts_with("/token") {
                        let body = r#"{"token":"anonymous-token"}"#;
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = conn.write_all(resp.as_bytes()).await;
                        return;
                    }
                    let authorized = match &expected {
                        None => true,
                        Some(e) => text.lines().any(|l| l.eq_ignore_ascii_case(e)),
                    };
                    if !authorized {
                        let body =
                            r#"{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}"#;
                        let resp = format!(
                            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"{realm}\",service=\"crius-test\"\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = conn.write_all(resp.as_bytes()).await;
                        return;
                    }
                    log.lock().unwrap().push(path);
                    let mut fwd: String = text
                        .trim_end()
                        .lines()
                        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                        .map(|l| format!("{l}\r\n"))
                        .collect();
                    fwd.push_str("Connection: close\r\n\r\n");
                    let Ok(mut up) = tokio::net::TcpStream::connect(LOCAL).await else {
                        return;
                    };
                    if up.write_all(fwd.as_bytes()).await.is_err() {
                        return;
                    }
                    let _ = tokio::io::copy_bidirectional(&mut conn, &mut up).await;
                });
            }
        });
        Front { addr, paths, task }
    }

    /// Logged request paths containing `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.paths
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.contains(needle))
            .count()
    }
}

// ---------- building and pushing images ----------

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug)]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

/// Builds a tar in memory.
pub struct TarBuilder {
    b: tar::Builder<Vec<u8>>,
}

impl Default for TarBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TarBuilder {
    pub fn new() -> Self {
        let mut b = tar::Builder::new(Vec::new());
        b.mode(tar::HeaderMode::Deterministic);
        TarBuilder { b }
    }

    /// An entry whose name (and link name) are written raw, unchecked.
    pub fn raw(
        &mut self,
        name: &[u8],
        kind: tar::EntryType,
        link: &[u8],
        data: &[u8],
        mode: u32,
    ) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        {
            let g = h.as_gnu_mut().unwrap();
            g.name[..name.len()].copy_from_slice(name);
            g.linkname[..link.len()].copy_from_slice(link);
        }
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    /// A character device node.
    pub fn chardev(&mut self, name: &str, major: u32, minor: u32) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(tar::EntryType::Char);
        h.set_size(0);
        h.set_mode(0o666);
        h.set_mtime(1_700_000_000);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_cksum();
        self.b.append(&h, &b""[..]).unwrap();
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8], mode: u32) -> &mut Self {
        self.raw(name.as_bytes(), tar::EntryType::Regular, b"", data, mode)
    }

    pub fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.raw(name.as_bytes(), tar::EntryType::Directory, b"", b"", mode)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(
            name.as_bytes(),
            tar::EntryType::Symlink,
            target.as_bytes(),
            b"",
            0o777,
        )
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(
            name.as_bytes(),
            tar::EntryType::Link,
            target.as_bytes(),
            b"",
            0o644,
        )
    }

    /// A big file (uses GNU long names when needed via the tar crate).
    pub fn big_file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        self.b.append_data(&mut h, name, data).unwrap();
        self
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn compress(tar: &[u8], c: Compression) -> (Vec<u8>, &'static str) {
    match c {
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).unwrap();
            (
                e.finish().unwrap(),
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        }
        Compression::Zstd => (
            zstd::encode_all(tar, 3).unwrap(),
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
        Compression::None => (tar.to_vec(), "application/vnd.oci.image.layer.v1.tar"),
    }
}

/// A client that talks plain HTTP to loopback registries.
pub fn push_client(hosts: &[&str]) -> oci_client::Client {
    oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(hosts.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    })
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Pushes an OCI image made of `layers` (tar bytes + compression) to `reference`
/// (`host:port/repo:tag`), with `config` as the image config's `config` object.
/// Returns the manifest digest.
pub async fn push_image(
    reference: &str,
    layers: &[(Vec<u8>, Compression)],
    config: serde_json::Value,
    auth: &OciAuth,
) -> String {
    let r: oci_client::Reference = reference.parse().unwrap();
    let client = push_client(&[r.registry()]);
    client.store_auth_if_needed(r.registry(), auth).await;
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for (tar, c) in layers {
        diff_ids.push(sha256(tar));
        let (blob, mt) = compress(tar, *c);
        let d = sha256(&blob);
        client
            .auth(&r, auth, oci_client::RegistryOperation::Push)
            .await
            .unwrap();
        client.push_blob(&r, blob.clone(), &d).await.unwrap();
        descs.push(serde_json::json!({"mediaType": mt, "digest": d, "size": blob.len()}));
    }
    let cfg = serde_json::json!({
        "architecture": host_arch(),
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let cfg_bytes = serde_json::to_vec(&cfg).unwrap();
    let cfg_digest = sha256(&cfg_bytes);
    client
        .push_blob(&r, cfg_bytes.clone(), &cfg_digest)
        .await
        .unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_digest, "size": cfg_bytes.len()},
        "layers": descs,
    });
    let mbytes = serde_json::to_vec(&manifest).unwrap();
    client
        .push_manifest_raw(
            &r,
            mbytes.clone(),
            http::HeaderValue::from_static("application/vnd.oci.image.manifest.v1+json"),
        )
        .await
        .unwrap();
    sha256(&mbytes)
}
