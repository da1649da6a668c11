//! Pulls from a second registry with htpasswd basic auth, started by the test on a free
//! loopback port, plus a corrupted blob there (digest mismatch).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use common::*;
use crius_image::{ImageError, RegistryAuth, RootfsMode};
use oci_client::secrets::RegistryAuth as OciAuth;

/// A docker-registry process with htpasswd auth; killed on drop.
struct AuthRegistry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
    storage: PathBuf,
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const USER: &str = "crius";
const PASS: &str = "s3cret-pass";

fn start_auth_registry() -> AuthRegistry {
    let dir = tempfile::Builder::new()
        .prefix("crius-auth-registry-")
        .tempdir()
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let hash = bcrypt::hash_with_result(PASS, 5)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    std::fs::write(dir.path().join("htpasswd"), format!("{USER}:{hash}\n")).unwrap();
    let storage = dir.path().join("storage");
    let config = format!(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n  secret: crius-image-test\nauth:\n  htpasswd:\n    realm: crius-test\n    path: {}\n",
        storage.display(),
        dir.path().join("htpasswd").display()
    );
    let cfg = dir.path().join("config.yml");
    std::fs::write(&cfg, config).unwrap();
    let child = Command::new("/usr/bin/docker-registry")
        .arg("serve")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start docker-registry");
    let mut reg = AuthRegistry {
        child,
        addr,
        _dir: dir,
        storage,
    };
    // Wait (bounded) until it answers /v2/ with 401.
    for _ in 0..200 {
        if http_status(&reg.addr, "/v2/") == Some(401) {
            return reg;
        }
        if let Ok(Some(st)) = reg.child.try_wait() {
            panic!("docker-registry exited: {st}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = reg.child.kill();
    panic!("auth registry did not come up on {}", reg.addr);
}

fn conf_for(addr: &str) -> String {
    format!("[[registry]]\nlocation = \"{addr}\"\ninsecure = true\n")
}

fn small_image() -> Vec<(Vec<u8>, Compression)> {
    let mut t = TarBuilder::new();
    t.file("hello", b"world", 0o644);
    vec![(t.finish(), Compression::Gzip)]
}

#[tokio::test]
async fn basic_auth_registry() {
    let reg = start_auth_registry();
    let r = format!("{}/private/img:1", reg.addr);
    push_image(
        &r,
        &small_image(),
        serde_json::json!({}),
        &OciAuth::Basic(USER.into(), PASS.into()),
    )
    .await;
    let conf = conf_for(&reg.addr);

    let (_d, svc) = service_with(&conf, RootfsMode::Auto).await;
    match svc.pull(&r, None).await {
        Err(ImageError::Unauthorized { .. }) => {}
        other => panic!("anonymous pull: expected Unauthorized, got {other:?}"),
    }
    let wrong = RegistryAuth {
        username: USER.into(),
        password: "nope".into(),
        ..Default::default()
    };
    match svc.pull(&r, Some(&wrong)).await {
        Err(ImageError::Unauthorized { .. }) => {}
        other => panic!("wrong password: expected Unauthorized, got {other:?}"),
    }
    assert!(svc.list(None).await.unwrap().is_empty());

    let userpass = RegistryAuth {
        username: USER.into(),
        password: PASS.into(),
        ..Default::default()
    };
    let info = svc.pull(&r, Some(&userpass)).await.unwrap();
    assert_eq!(info.repo_tags, vec![r.clone()]);

    let (_d2, svc2) = service_with(&conf, RootfsMode::Auto).await;
    let b64 = RegistryAuth {
        auth: base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}")),
        ..Default::default()
    };
    let info2 = svc2.pull(&r, Some(&b64)).await.unwrap();
    assert_eq!(info2.id, info.id);
}

#[tokio::test]
async fn corrupted_blob_is_a_digest_mismatch() {
    let reg = start_auth_registry();
    let r = format!("{}/private/corrupt:1", reg.addr);
    let mut t = TarBuilder::new();
    t.file("payload", &vec![7u8; 100_000], 0o644);
    let layers = vec![(t.finish(), Compression::None)];
    let layer_digest = sha256(&layers[0].0);
    push_image(
        &r,
        &layers,
        serde_json::json!({}),
        &OciAuth::Basic(USER.into(), PASS.into()),
    )
    .await;
    // Flip bytes of the stored layer, keeping its length.
    let hex = layer_digest.trim_start_matches("sha256:");
    let data = reg
        .storage
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    let mut bytes = std::fs::read(&data).unwrap();
    let n = bytes.len();
    bytes[n - 2000] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();

    let (_d, svc) = service_with(&conf_for(&reg.addr), RootfsMode::Auto).await;
    let auth = RegistryAuth {
        username: USER.into(),
        password: PASS.into(),
        ..Default::default()
    };
    match svc.pull(&r, Some(&auth)).await {
        Err(ImageError::DigestMismatch { blob, .. }) => {
            assert!(blob.contains(&layer_digest), "{blob}")
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert!(names(&svc.root().join("layers")).is_empty());
    assert!(names(&svc.root().join("tmp")).is_empty());
    assert!(svc.list(None).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_auth() {
    ensure_registry();
    let front = Front::start(Some("good-token")).await;
    let r = format!("{}/pause:3.9", front.addr);
    let (_d, svc) = service_with(&conf_for(&front.addr), RootfsMode::Auto).await;

    match svc.pull(&r, None).await {
        Err(ImageError::Unauthorized { .. }) => {}
        other => panic!("anonymous: expected Unauthorized, got {other:?}"),
    }
    let bad = RegistryAuth {
        registry_token: "bad-token".into(),
        ..Default::default()
    };
    match svc.pull(&r, Some(&bad)).await {
        Err(ImageError::Unauthorized { .. }) => {}
        other => panic!("bad token: expected Unauthorized, got {other:?}"),
    }
    let good = RegistryAuth {
        registry_token: "good-token".into(),
        ..Default::default()
    };
    let info = svc.pull(&r, Some(&good)).await.unwrap();
    assert_eq!(info.repo_tags, vec![r.clone()]);
    assert_eq!(info.uid, Some(65535));

    let (_d2, svc2) = service_with(&conf_for(&front.addr), RootfsMode::Auto).await;
    let ident = RegistryAuth {
        identity_token: "good-token".into(),
        ..Default::default()
    };
    assert_eq!(svc2.pull(&r, Some(&ident)).await.unwrap().id, info.id);
}
