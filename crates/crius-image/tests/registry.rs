//! Pulls from the testenv registry (127.0.0.1:5000): manifest shapes, mirrors, digests,
//! listing, status, removal, rootfs mounts, and failures.

mod common;

use std::os::unix::fs::MetadataExt;

use common::*;
use crius_image::{ImageError, RootfsMode};

#[tokio::test]
async fn docker_manifest_list_via_mirror_keeps_requested_name() {
    let (dir, svc) = service().await;
    let info = svc.pull("registry.k8s.io/pause:3.9", None).await.unwrap();
    assert_eq!(
        info.repo_tags,
        vec!["registry.k8s.io/pause:3.9".to_string()]
    );
    assert_eq!(info.repo_digests.len(), 1);
    assert!(
        info.repo_digests[0].starts_with("registry.k8s.io/pause@sha256:"),
        "{:?}",
        info.repo_digests
    );
    assert!(info.id.starts_with("sha256:"));
    assert_eq!(info.uid, Some(65535));
    assert!(info.size > 0);

    // Found under the name asked for, by ID, and by ID prefix; not under the mirror's name.
    let by_name = svc
        .status("registry.k8s.io/pause:3.9")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_name.id, info.id);
    assert_eq!(svc.status(&info.id).await.unwrap().unwrap().id, info.id);
    let hex = info.id.trim_start_matches("sha256:");
    assert_eq!(svc.status(&hex[..12]).await.unwrap().unwrap().id, info.id);
    assert_eq!(
        svc.status(&info.repo_digests[0]).await.unwrap().unwrap().id,
        info.id
    );
    assert!(svc
        .status("127.0.0.1:5000/pause:3.9")
        .await
        .unwrap()
        .is_none());
    let listed = svc.list(None).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].repo_tags, info.repo_tags);

    // The records survive a restart.
    drop(svc);
    let mut cfg = crius_image::ImageServiceConfig::new(dir.path().join("store"));
    cfg.registries_conf = Some(dir.path().join("registries.conf"));
    let svc = crius_image::ImageService::open(cfg).await.unwrap();
    let again = svc
        .status("registry.k8s.io/pause:3.9")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, info);
    let cfg = svc.image_config(&info.id).await.unwrap();
    assert_eq!(
        cfg.config().as_ref().unwrap().user().as_deref(),
        Some("65535:65535")
    );
}

#[tokio::test]
async fn oci_index_short_name_and_rootfs_with_hardlinks() {
    let (_dir, svc) = service().await;
    let info = svc.pull("busybox:1", None).await.unwrap();
    assert_eq!(
        info.repo_tags,
        vec!["docker.io/library/busybox:1".to_string()]
    );
    assert!(info.repo_digests[0].starts_with("docker.io/library/busybox@sha256:"));
    let cfg = svc
        .image_config("docker.io/library/busybox:1")
        .await
        .unwrap();
    assert_eq!(
        cfg.config().as_ref().unwrap().cmd().clone().unwrap(),
        vec!["sh".to_string()]
    );

    let cid = unique("bb");
    let _g = RootfsGuard {
        svc: svc.clone(),
        id: cid.clone(),
    };
    let root = svc.mount_rootfs("busybox:1", &cid).await.unwrap();
    // Idempotent.
    assert_eq!(svc.mount_rootfs("busybox:1", &cid).await.unwrap(), root);
    let sh = std::fs::metadata(root.join("bin/sh")).unwrap();
    let ls = std::fs::metadata(root.join("bin/ls")).unwrap();
    assert_eq!(sh.ino(), ls.ino(), "applets are hard links of one busybox");
    assert!(sh.nlink() > 10);
    assert!(std::fs::read_to_string(root.join("etc/passwd"))
        .unwrap()
        .contains("nobody"));
    // Writes go to the container's upper dir, not the shared layer.
    std::fs::write(root.join("etc/crius-test"), b"x").unwrap();
    let cdir = root.parent().unwrap().to_path_buf();
    assert!(cdir.join("upper/etc/crius-test").exists());

    svc.unmount_rootfs(&cid).await.unwrap();
    assert!(!cdir.exists(), "container dir removed");
    svc.unmount_rootfs(&cid).await.unwrap(); // idempotent
    assert!(svc.rootfs_path(&cid).is_none());
}

#[tokio::test]
async fn bare_docker_manifest() {
    let (_dir, svc) = service().await;
    let r = "gcr.io/k8s-staging-cri-tools/hostnet-nginx-amd64:latest";
    let info = svc.pull(r, None).await.unwrap();
    assert_eq!(info.repo_tags, vec![r.to_string()]);
    let cid = unique("nginx");
    let _g = RootfsGuard {
        svc: svc.clone(),
        id: cid.clone(),
    };
    let root = svc.mount_rootfs(r, &cid).await.unwrap();
    assert!(root.join("usr/sbin/nginx").is_file());
    svc.unmount_rootfs(&cid).await.unwrap();
}

#[tokio::test]
async fn digest_reference_and_user_fields() {
    let (_dir, svc) = service().await;
    let first = svc
        .pull(
            "gcr.io/k8s-staging-cri-tools/test-image-user-uid:latest",
            None,
        )
        .await
        .unwrap();
    assert_eq!(first.uid, Some(1002));
    assert_eq!(first.username, "");
    let digest = first.repo_digests[0].split_once('@').unwrap().1.to_string();

    let (_dir2, svc2) = service().await;
    let by_digest = format!("gcr.io/k8s-staging-cri-tools/test-image-user-uid@{digest}");
    let info = svc2.pull(&by_digest, None).await.unwrap();
    assert_eq!(info.id, first.id);
    assert!(
        info.repo_tags.is_empty(),
        "a digest pull adds no tag: {:?}",
        info.repo_tags
    );
    assert_eq!(info.repo_digests, vec![by_digest.clone()]);
    assert_eq!(svc2.status(&by_digest).await.unwrap().unwrap().id, info.id);

    let u = svc
        .pull(
            "gcr.io/k8s-staging-cri-tools/test-image-user-username:latest",
            None,
        )
        .await
        .unwrap();
    assert_eq!((u.uid, u.username.as_str()), (None, "www-data"));
    let ug = svc
        .pull(
            "gcr.io/k8s-staging-cri-tools/test-image-user-uid-group:latest",
            None,
        )
        .await
        .unwrap();
    assert_eq!(ug.uid, Some(1003));
}

#[tokio::test]
async fn tags_of_one_image_and_removal() {
    let (_dir, svc) = service().await;
    let mut id = String::new();
    for t in ["1", "2", "3"] {
        id = svc
            .pull(
                &format!("gcr.io/k8s-staging-cri-tools/test-image-tags:{t}"),
                None,
            )
            .await
            .unwrap()
            .id;
    }
    let info = svc.status(&id).await.unwrap().unwrap();
    assert_eq!(info.repo_tags.len(), 3, "{:?}", info.repo_tags);
    assert_eq!(svc.list(None).await.unwrap().len(), 1);
    // Removing by one tag removes the image (CRI RemoveImage).
    let removed = svc
        .remove("gcr.io/k8s-staging-cri-tools/test-image-tags:2")
        .await
        .unwrap();
    assert_eq!(removed, Some(id.clone()));
    assert!(svc.status(&id).await.unwrap().is_none());
    assert!(svc.list(None).await.unwrap().is_empty());
    assert_eq!(layer_count(svc.root()), 0, "all layers freed");
    // Idempotent.
    assert_eq!(svc.remove(&id).await.unwrap(), None);
}

#[tokio::test]
async fn removing_one_of_two_images_keeps_shared_layers() {
    let (_dir, svc) = service().await;
    let a = svc
        .pull("gcr.io/k8s-staging-cri-tools/test-image-1:latest", None)
        .await
        .unwrap();
    let b = svc
        .pull("gcr.io/k8s-staging-cri-tools/test-image-2:latest", None)
        .await
        .unwrap();
    assert_ne!(a.id, b.id);
    let store = svc.root().to_path_buf();
    let before = layer_count(&store);
    let cfg_a = svc.image_config(&a.id).await.unwrap();
    let cfg_b = svc.image_config(&b.id).await.unwrap();
    let da = cfg_a.rootfs().diff_ids().clone();
    let db = cfg_b.rootfs().diff_ids().clone();
    assert_eq!(da[0], db[0], "test images share the busybox layer");
    let own_a = da.len() - 1; // layers only image a has (chain IDs differ after the first)

    // A live rootfs of b pins b's layers even when b is removed later.
    let cid = unique("shared");
    let _g = RootfsGuard {
        svc: svc.clone(),
        id: cid.clone(),
    };
    let root = svc.mount_rootfs(&b.id, &cid).await.unwrap();

    svc.remove(&a.id).await.unwrap();
    assert_eq!(layer_count(&store), before - own_a);
    assert!(svc.status(&b.id).await.unwrap().is_some());
    assert!(root.join("bin/busybox").is_file());

    svc.remove(&b.id).await.unwrap();
    assert!(layer_count(&store) > 0, "layers in use by a rootfs stay");
    assert!(root.join("bin/busybox").is_file());
    svc.unmount_rootfs(&cid).await.unwrap();
    assert_eq!(layer_count(&store), 0, "freed once the rootfs is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_share_downloads() {
    ensure_registry();
    let front = Front::start(None).await;
    let conf = format!(
        "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
        front.addr
    );
    let (_dir, svc) = service_with(&conf, RootfsMode::Auto).await;
    let r = format!("{}/e2e-test-images/busybox:1.29-2", front.addr);
    let (x, y, z) = tokio::join!(svc.pull(&r, None), svc.pull(&r, None), svc.pull(&r, None));
    let (x, y, z) = (x.unwrap(), y.unwrap(), z.unwrap());
    assert_eq!(x.id, y.id);
    assert_eq!(y.id, z.id);
    assert_eq!(svc.list(None).await.unwrap().len(), 1);
    assert!(
        names(&svc.root().join("tmp")).is_empty(),
        "no leftovers in tmp"
    );
    let cfg = svc.image_config(&x.id).await.unwrap();
    let layers = cfg.rootfs().diff_ids().len();
    let config_hex = x.id.trim_start_matches("sha256:");
    let blob_gets = front.count("/blobs/");
    let config_gets = front.count(config_hex);
    assert_eq!(
        blob_gets - config_gets,
        layers,
        "each layer downloaded once for three concurrent pulls: {:?}",
        front.paths.lock().unwrap()
    );
}

#[tokio::test]
async fn copy_mode_rootfs() {
    ensure_registry();
    let (_dir, svc) = service_with(MIRROR_CONF, RootfsMode::Copy).await;
    svc.pull("busybox:1", None).await.unwrap();
    let cid = unique("copy");
    let root = svc.mount_rootfs("busybox:1", &cid).await.unwrap();
    assert!(root.ends_with("rootfs"));
    let sh = std::fs::metadata(root.join("bin/sh")).unwrap();
    let ls = std::fs::metadata(root.join("bin/ls")).unwrap();
    assert_eq!(sh.ino(), ls.ino(), "hard links kept in the copy");
    svc.unmount_rootfs(&cid).await.unwrap();
    assert!(!root.exists());
}

#[tokio::test]
async fn unknown_image_is_not_found() {
    let (_dir, svc) = service().await;
    match svc
        .pull("gcr.io/k8s-staging-cri-tools/no-such-image:1", None)
        .await
    {
        Err(ImageError::NotFound { reference, .. }) => {
            assert_eq!(reference, "gcr.io/k8s-staging-cri-tools/no-such-image:1")
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    match svc
        .pull("docker.io/library/busybox:no-such-tag", None)
        .await
    {
        Err(ImageError::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(svc
        .status("docker.io/library/busybox:no-such-tag")
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        svc.image_config("nothing:here").await,
        Err(ImageError::NotFound { .. })
    ));
    assert!(matches!(
        svc.mount_rootfs("nothing:here", "c1").await,
        Err(ImageError::NotFound { .. })
    ));
}

#[tokio::test]
async fn unreachable_registry_is_unavailable_naming_all_endpoints() {
    let conf = r#"
[[registry]]
prefix = "example.invalid"
location = "127.0.0.1:9"
insecure = true
[[registry.mirror]]
location = "127.0.0.1:7"
insecure = true
"#;
    let (_dir, svc) = service_with(conf, RootfsMode::Auto).await;
    match svc.pull("example.invalid/foo:1", None).await {
        Err(e @ ImageError::Unavailable { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("example.invalid"), "{msg}");
            assert!(
                msg.contains("127.0.0.1:7") && msg.contains("127.0.0.1:9"),
                "{msg}"
            );
            if let ImageError::Unavailable { tried, .. } = e {
                assert_eq!(tried, vec!["http://127.0.0.1:7", "http://127.0.0.1:9"]);
            }
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn invalid_reference_is_rejected_with_reason() {
    let (_dir, svc) = service().await;
    match svc.pull("UPPER/case:1", None).await {
        Err(ImageError::InvalidReference { reference, reason }) => {
            assert_eq!(reference, "UPPER/case:1");
            assert!(!reason.is_empty());
        }
        other => panic!("expected InvalidReference, got {other:?}"),
    }
}

#[tokio::test]
async fn fs_info_counts_the_store() {
    let (_dir, svc) = service().await;
    let empty = svc.fs_info().await.unwrap();
    svc.pull("registry.k8s.io/pause:3.9", None).await.unwrap();
    let full = svc.fs_info().await.unwrap();
    assert_eq!(full.mountpoint, svc.root());
    assert!(full.used_bytes > empty.used_bytes);
    assert!(full.inodes_used > empty.inodes_used);
}

/// ImageFsInfo keeps each layer's usage after its first walk: what it reports must stay what a
/// full walk of the store finds (a second service on the same root starts with nothing kept),
/// through a pull, a rootfs with files written in its upper dir, and a removal.
#[tokio::test]
async fn fs_info_from_kept_layer_usage_matches_a_full_walk() {
    let (dir, svc) = service().await;
    let fresh = || async {
        let cfg = crius_image::ImageServiceConfig::new(dir.path().join("store"));
        let other = crius_image::ImageService::open(cfg).await.unwrap();
        let u = other.fs_info().await.unwrap();
        (u.used_bytes, u.inodes_used)
    };
    let kept = || async {
        let u = svc.fs_info().await.unwrap();
        (u.used_bytes, u.inodes_used)
    };
    let empty = kept().await;
    svc.pull("registry.k8s.io/pause:3.9", None).await.unwrap();
    let first = kept().await; // walks the new layers
    assert!(first.0 > empty.0 && first.1 > empty.1);
    assert_eq!(kept().await, first, "second call, from kept layer usage");
    assert_eq!(fresh().await, first, "a full walk");

    let id = unique("fsinfo");
    let rootfs = svc
        .mount_rootfs("registry.k8s.io/pause:3.9", &id)
        .await
        .unwrap();
    std::fs::write(rootfs.join("written"), vec![7u8; 256 * 1024]).unwrap();
    let with_upper = kept().await;
    assert!(with_upper.0 >= first.0 + 256 * 1024 && with_upper.1 > first.1);
    assert_eq!(fresh().await, with_upper);
    svc.unmount_rootfs(&id).await.unwrap();

    svc.remove("registry.k8s.io/pause:3.9").await.unwrap();
    let after = kept().await;
    assert_eq!(after, fresh().await);
    assert!(after.0 < first.0 && after.1 < first.1);
}

/// A container's writable layer figures are reused for `usage_max_age`, then walked again: a
/// service keeping them for an hour still reports what it saw before a write, one with a zero
/// max age sees the write at once, and a removed rootfs has no writable layer.
#[tokio::test]
async fn writable_layer_usage_is_kept_for_its_max_age() {
    let (dir, svc) = service().await;
    svc.pull("registry.k8s.io/pause:3.9", None).await.unwrap();
    let id = unique("wlayer");
    let rootfs = svc
        .mount_rootfs("registry.k8s.io/pause:3.9", &id)
        .await
        .unwrap();
    let open = |age| {
        let mut cfg = crius_image::ImageServiceConfig::new(dir.path().join("store"));
        cfg.usage_max_age = age;
        crius_image::ImageService::open(cfg)
    };
    let hour = open(std::time::Duration::from_secs(3600)).await.unwrap();
    let zero = open(std::time::Duration::ZERO).await.unwrap();
    let before = hour
        .writable_layer_usage(&id)
        .await
        .unwrap()
        .expect("upper");
    assert_eq!(zero.writable_layer_usage(&id).await.unwrap(), Some(before));

    std::fs::write(rootfs.join("grown"), vec![1u8; 1 << 20]).unwrap();
    assert_eq!(hour.writable_layer_usage(&id).await.unwrap(), Some(before));
    let after = zero
        .writable_layer_usage(&id)
        .await
        .unwrap()
        .expect("upper");
    assert!(
        after.0 >= before.0 + (1 << 20) && after.1 == before.1 + 1,
        "{before:?} -> {after:?}"
    );

    svc.unmount_rootfs(&id).await.unwrap();
    assert_eq!(zero.writable_layer_usage(&id).await.unwrap(), None);
}

/// Layers are made durable before they are named in `layers/`, and the image record after
/// them; a store where a crash kept an image's record but lost one of its layers skips that
/// image at open (with a warning), and the next pull makes it whole again.
#[tokio::test]
async fn an_image_with_a_lost_layer_is_pulled_again() {
    let (dir, svc) = service().await;
    svc.pull("registry.k8s.io/pause:3.9", None).await.unwrap();
    drop(svc);
    let store = dir.path().join("store");
    let layers = names(&store.join("layers"));
    assert!(!layers.is_empty());
    let lost = store.join("layers").join(&layers[0]);
    std::fs::rename(&lost, store.join("tmp").join("lost")).unwrap();

    // the same store, with the registries.conf `service` wrote beside it
    let mut cfg = crius_image::ImageServiceConfig::new(&store);
    cfg.registries_conf = Some(dir.path().join("registries.conf"));
    let svc = crius_image::ImageService::open(cfg).await.unwrap();
    assert_eq!(svc.status("registry.k8s.io/pause:3.9").await.unwrap(), None);
    svc.pull("registry.k8s.io/pause:3.9", None).await.unwrap();
    assert!(svc
        .status("registry.k8s.io/pause:3.9")
        .await
        .unwrap()
        .is_some());
    assert!(store
        .join("layers")
        .join(&layers[0])
        .join("layer.json")
        .is_file());
}
