//! Serving: build the device manager and the driver, then serve gRPC on the unix socket (and the
//! kubelet's plugin registration, when asked) until SIGTERM/SIGINT or a refused registration.

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
use crate::registration::RegistrationService;
use crate::state::StateStore;
use pmem_ndctl::alloc::parse_region_sizes;
use std::sync::Arc;
use tokio::net::UnixListener;
use tokio::sync::watch;

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
        ManagerKind::Lvm => Arc::new(LvmManager::setup(c.pmem_percentage, c.join_numa)?),
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
    let listener = crate::socket::listen(&c.endpoint, c.socket_group)?;
    tracing::info!(endpoint = %c.endpoint.display(), manager = driver.manager().kind(), node = %driver.node_id, "serving CSI");
    tokio::spawn(maintain(
        driver.clone(),
        MAINTAIN_EVERY.min(c.orphan_grace.max(std::time::Duration::from_secs(1))),
    ));
    // Stops both servers: a termination signal, or the kubelet refusing the registration.
    let stop = watch::Sender::new(false);
    let refused = watch::Sender::new(None::<String>);
    let stopping = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let mut refusal = refused.subscribe();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            _ = refusal.wait_for(Option::is_some) => {}
        }
        stop.send_replace(true);
        Ok(())
    };
    let csi = serve(
        listener,
        driver.clone(),
        metrics,
        NodePaths::new(&c.state_dir, &c.kubelet_dir),
        stopped(&stop),
    );
    let registration = register(&c, &driver, &refused, &stop);
    let overdue = async {
        stopped(&stop).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let served = tokio::select! {
        r = async { tokio::try_join!(csi, registration, stopping) } => r.map(|_| ()),
        () = overdue => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "connections still open at shutdown: closed");
            Ok(())
        }
    };
    crate::socket::remove(&c.endpoint);
    if let Some(reg) = &c.registration {
        crate::socket::remove(&reg.socket);
    }
    served?;
    let refusal = refused.borrow().clone();
    match refusal {
        Some(e) => Err(Error::Internal(format!(
            "the kubelet refused the registration: {e}"
        ))),
        None => Ok(()),
    }
}

/// How long the servers may take to stop after a termination signal: the
/// requests in flight finish, but a client that keeps its connection open
/// (or never speaks on it) cannot hold the driver's exit past this.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Completes once `stop` is set.
fn stopped(stop: &watch::Sender<bool>) -> impl std::future::Future<Output = ()> {
    let mut rx = stop.subscribe();
    async move {
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// Serves the kubelet's plugin registration, if configured, from the moment
/// the CSI endpoint serves (the kubelet calls it right after registering)
/// until `stop`; its socket is removed when it stops.
async fn register(
    c: &Config,
    driver: &Driver,
    refused: &watch::Sender<Option<String>>,
    stop: &watch::Sender<bool>,
) -> Result<()> {
    let Some(reg) = &c.registration else {
        return Ok(());
    };
    tokio::select! {
        _ = driver.ready() => {}
        _ = stopped(stop) => return Ok(()),
    }
    let listener = crate::socket::listen(&reg.socket, c.socket_group)?;
    tracing::info!(socket = %reg.socket.display(), endpoint = %reg.kubelet_endpoint.display(), "serving kubelet registration");
    let service = RegistrationService {
        name: c.driver_name.clone(),
        endpoint: reg.kubelet_endpoint.display().to_string(),
        refused: refused.clone(),
    };
    let served = crate::registration::serve(listener, service, stopped(stop)).await;
    crate::socket::remove(&reg.socket);
    served
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
/// completes; the node service works within `node`'s paths. The driver is
/// [ready](Driver::is_ready) while this serves.
pub async fn serve(
    listener: UnixListener,
    driver: Arc<Driver>,
    metrics: Arc<Metrics>,
    node: NodePaths,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let ops = Arc::new(NodeOps::new(driver.clone(), node)?);
    let router = tonic::transport::Server::builder()
        .add_service(IdentityServer::new(IdentityService(driver.clone())))
        .add_service(ControllerServer::new(ControllerService {
            driver: driver.clone(),
            metrics: metrics.clone(),
        }))
        .add_service(NodeServer::new(NodeService { ops, metrics }));
    // The listener is bound: connections from now on are taken.
    driver.set_serving(true);
    let served = router
        .serve_with_incoming_shutdown(crate::authority::incoming(listener), shutdown)
        .await;
    driver.set_serving(false);
    served.map_err(|e| Error::Internal(format!("gRPC server: {e}")))
}
