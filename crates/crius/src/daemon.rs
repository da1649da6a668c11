//! Serving: checks, state recovery, the gRPC server on the unix socket, graceful shutdown.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use k8s_cri::v1::image_service_server::ImageServiceServer;
use k8s_cri::v1::runtime_service_server::RuntimeServiceServer;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;

use crate::config::Config;
use crate::error::{Context, Error, Result};
use crate::service::Crius;
use crate::state::{State, Store};

/// How long open connections may drain after a shutdown signal.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// How long the shutdown waits for container removals finishing in the background.
const CLEANUP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Largest gRPC message (ExecSync output can be 2 × 16 MiB).
const MAX_MESSAGE: usize = 64 << 20;

/// Allocator settings for a long-running daemon whose large allocations come in bursts (image
/// pulls): at most two malloc arenas, and fixed mmap/trim thresholds so that buffers of 128 KiB
/// and more go back to the kernel when freed (glibc's dynamic threshold otherwise raises itself
/// after the first such free and keeps later ones in the heap). Call before other threads start.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called from main before any other
    // thread exists, and a refused value (return 0) leaves glibc's default in place.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

/// Hands the allocator's free pages back to the kernel (after a burst such as an image pull).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes each arena's lock itself and has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Removes a stale socket; refuses when another daemon answers on it.
async fn claim_socket(path: &Path) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    if tokio::net::UnixStream::connect(path).await.is_ok() {
        return Err(Error::FailedPrecondition(format!(
            "another daemon is listening on {}; refusing to start",
            path.display()
        )));
    }
    std::fs::remove_file(path).ctx(format!("remove stale socket {}", path.display()))
}

/// Prepares everything and returns the shared context (used by `serve` and by tests).
pub async fn prepare(cfg: Config) -> Result<Arc<Crius>> {
    cfg.validate()?;
    for d in [
        &cfg.root,
        &cfg.runroot,
        &cfg.bundles_dir(),
        &cfg.pods_run_dir(),
    ] {
        std::fs::create_dir_all(d).ctx(format!("create {}", d.display()))?;
    }
    let backends = crate::adapters::build(&cfg).await?;
    let store = Store::open(&cfg.state_dir())?;
    let crius = Arc::new(Crius::new(cfg, State::new(store), backends));
    crius.recover().await?;
    crate::nri::start(&crius)?;
    crate::adapters::streaming::start(&crius).await?;
    Ok(crius)
}

/// Runs the daemon until SIGTERM or SIGINT. Containers keep running after it returns.
pub async fn serve(cfg: Config) -> Result<()> {
    let listen = cfg.listen.clone();
    if let Some(dir) = listen.parent() {
        std::fs::create_dir_all(dir).ctx(format!("create {}", dir.display()))?;
    }
    claim_socket(&listen).await?;
    let crius = prepare(cfg).await?;
    let listener = UnixListener::bind(&listen).ctx(format!("listen on {}", listen.display()))?;
    std::fs::set_permissions(&listen, std::fs::Permissions::from_mode(0o600))
        .ctx(format!("chmod {}", listen.display()))?;
    tracing::info!(socket = %listen.display(), "crius serving CRI v1");

    let runtime = RuntimeServiceServer::new(crate::server::Runtime(crius.clone()))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let images = ImageServiceServer::new(crate::server::Images(crius.clone()))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    // On SIGTERM/SIGINT the server stops accepting and drains calls; clients that keep their
    // connection (or an event stream) open get a short grace period, then the daemon exits.
    let stop = Arc::new(tokio::sync::Notify::new());
    let stopped = stop.clone();
    let server = tonic::transport::Server::builder()
        .layer(crate::server::deadline::DeadlineLayer)
        .add_service(runtime)
        .add_service(images)
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async move {
            shutdown_signal().await;
            stopped.notify_one();
        });
    let res = tokio::select! {
        r = server => r,
        _ = async {
            stop.notified().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::info!("connections still open after the grace period; exiting");
            Ok(())
        }
    };
    let _ = std::fs::remove_file(&listen);
    // Container removals still finishing in the background (the next start would finish them).
    if !crius.cleanups.wait_all(CLEANUP_GRACE).await {
        tracing::warn!("container cleanups still running; the next start finishes them");
    }
    tracing::info!("crius stopped (containers keep running)");
    res.map_err(|e| Error::internal("gRPC server", e))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}
