//! Serving: build the device manager and the driver, then serve gRPC on the unix socket until SIGTERM/SIGINT.

use crate::config::{Config, ManagerKind};
use crate::controller::ControllerService;
use crate::driver::Driver;
use crate::error::{Error, Result};
use crate::identity::IdentityService;
use crate::manager::{CachedManager, DeviceManager, LvmManager, NamespaceManager};
use crate::metrics::Metrics;
use crate::node::NodeService;
use crate::nodeops::{NodeOps, NodePaths};
use crate::proto::{
    controller_server::ControllerServer, identity_server::IdentityServer, node_server::NodeServer,
};
use crate::state::StateStore;
use pmem_ndctl::alloc::parse_region_sizes;
use std::sync::Arc;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;

/// Builds the device manager the configuration names, its capacity reports cached.
pub fn manager(c: &Config) -> Result<Arc<dyn DeviceManager>> {
    Ok(Arc::new(CachedManager::new(raw_manager(c)?)))
}

fn raw_manager(c: &Config) -> Result<Arc<dyn DeviceManager>> {
    Ok(match c.manager {
        ManagerKind::Sim => {
            let sizes = parse_region_sizes(&c.sim_regions)?;
            std::fs::create_dir_all(&c.state_dir)
                .map_err(|e| Error::Internal(format!("{}: {e}", c.state_dir.display())))?;
            Arc::new(NamespaceManager::sim(
                &sizes,
                c.state_dir.join("sim-regions.json"),
            )?)
        }
        ManagerKind::Direct => Arc::new(NamespaceManager::direct()?),
        ManagerKind::Lvm => Arc::new(LvmManager::setup(c.pmem_percentage)?),
    })
}

/// Runs the driver until a termination signal.
pub async fn run(c: Config) -> Result<()> {
    let cfg = c.clone();
    let (driver, notes) = tokio::task::spawn_blocking(move || {
        let m = manager(&cfg)?;
        Driver::start(
            cfg.driver_name.clone(),
            cfg.node_id.clone(),
            m,
            StateStore::open(&cfg.state_dir)?,
        )
        .map(|(d, notes)| (d.with_orphan_grace(cfg.orphan_grace), notes))
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))??;
    for n in notes {
        let n = crate::handler::loggable(&n, crate::handler::LOGGED_ERROR_MAX);
        tracing::warn!(reconcile = %n, "state reconciled with the device manager");
    }
    let driver = Arc::new(driver);
    let metrics = Arc::new(Metrics::new());
    if let Some(addr) = c.metrics_listen {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Internal(format!("metrics on {addr}: {e}")))?;
        tokio::spawn(crate::metrics::serve(l, metrics.clone(), driver.clone()));
    }
    if let Ok(meta) = std::fs::symlink_metadata(&c.endpoint) {
        use std::os::unix::fs::FileTypeExt;
        if meta.file_type().is_socket() {
            let _ = std::fs::remove_file(&c.endpoint);
        }
    }
    if let Some(dir) = c.endpoint.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let listener = crate::socket::bind(&c.endpoint, c.socket_group)?;
    tracing::info!(endpoint = %c.endpoint.display(), manager = driver.manager().kind(), node = %driver.node_id, "serving CSI");
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    };
    tokio::spawn(maintain(
        driver.clone(),
        MAINTAIN_EVERY.min(c.orphan_grace.max(std::time::Duration::from_secs(1))),
    ));
    serve(
        listener,
        driver,
        metrics,
        NodePaths::new(&c.state_dir, &c.kubelet_dir),
        shutdown,
    )
    .await?;
    let _ = std::fs::remove_file(&c.endpoint);
    Ok(())
}

/// How often the driver looks at its devices (missing ones back, orphans past their grace).
pub const MAINTAIN_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs [`Driver::maintain`] every `every` (at most [`MAINTAIN_EVERY`], at
/// least as often as the orphan grace period), logging what changed.
async fn maintain(driver: Arc<Driver>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let d = driver.clone();
        if let Ok(notes) = tokio::task::spawn_blocking(move || d.maintain()).await {
            for n in notes {
                tracing::warn!(maintain = %n, "devices checked");
            }
        }
    }
}

/// Serves the CSI services of `driver` on `listener` until `shutdown`
/// completes; the node service works within `node`'s paths.
pub async fn serve(
    listener: UnixListener,
    driver: Arc<Driver>,
    metrics: Arc<Metrics>,
    node: NodePaths,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let ops = Arc::new(NodeOps::new(driver.clone(), node)?);
    tonic::transport::Server::builder()
        .add_service(IdentityServer::new(IdentityService(driver.clone())))
        .add_service(ControllerServer::new(ControllerService {
            driver: driver.clone(),
            metrics: metrics.clone(),
        }))
        .add_service(NodeServer::new(NodeService { ops, metrics }))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await
        .map_err(|e| Error::Internal(format!("gRPC server: {e}")))
}
