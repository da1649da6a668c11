//! The daemon spawns these futures on a multi-threaded runtime: they must be `Send`.

use crius_image::{ImageService, RegistryAuth};

fn assert_send<T: Send>(_: &T) {}

#[allow(dead_code)]
fn futures_are_send(svc: &ImageService, auth: &RegistryAuth) {
    let f = svc.pull("busybox", Some(auth));
    assert_send(&f);
    assert_send(&svc.list(None));
    assert_send(&svc.status("x"));
    assert_send(&svc.remove("x"));
    assert_send(&svc.image_config("x"));
    assert_send(&svc.fs_info());
    assert_send(&svc.mount_rootfs("x", "c"));
    assert_send(&svc.unmount_rootfs("c"));
}

#[tokio::test]
async fn pull_runs_in_tokio_spawn() {
    // Compiles only if the pull future is Send + 'static once its inputs are owned.
    let dir = tempfile::tempdir().unwrap();
    let svc = ImageService::open(crius_image::ImageServiceConfig::new(dir.path().join("s")))
        .await
        .unwrap();
    let h = tokio::spawn(async move { svc.pull("Invalid_Ref!", None).await });
    assert!(matches!(
        h.await.unwrap(),
        Err(crius_image::ImageError::InvalidReference { .. })
    ));
}
