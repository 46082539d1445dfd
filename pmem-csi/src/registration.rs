//! Kubelet plugin registration: the `pluginregistration.Registration` service on a socket in
//! the kubelet's plugin registry, so that the kubelet finds the CSI socket without a sidecar.
//!
//! The kubelet watches its plugin registry directory; on a new socket it
//! calls `GetInfo` (answered: a `CSIPlugin` named as the driver, its CSI
//! socket as the host sees it, CSI 1.0.0), then connects to the CSI socket
//! and reports the outcome with `NotifyRegistrationStatus`. A refusal is
//! logged as an error and stops the driver, which exits non-zero: the pod
//! restarts and a new socket makes the kubelet try again (the kubelet does
//! not retry a socket it refused).

use crate::error::{Error, Result};
use proto::registration_server::{Registration, RegistrationServer};
use proto::{InfoRequest, PluginInfo, RegistrationStatus, RegistrationStatusResponse};
use tokio::net::UnixListener;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

pub mod proto {
    //! The kubelet's plugin registration messages and service (generated from
    //! `proto/pluginregistration.proto`).
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("pluginregistration");
}

/// The plugin type of a CSI driver.
pub const CSI_PLUGIN: &str = "CSIPlugin";
/// The CSI versions the driver serves, as the kubelet names them.
pub const SUPPORTED_VERSIONS: &[&str] = &["1.0.0"];

/// Serves registration for one CSI driver.
pub struct RegistrationService {
    /// The CSI driver name.
    pub name: String,
    /// The CSI socket, as the kubelet on the host sees it.
    pub endpoint: String,
    /// Set to the kubelet's error when it refuses the registration.
    pub refused: watch::Sender<Option<String>>,
}

#[tonic::async_trait]
impl Registration for RegistrationService {
    async fn get_info(&self, _: Request<InfoRequest>) -> Result<Response<PluginInfo>, Status> {
        tracing::info!(name = %self.name, endpoint = %self.endpoint, "the kubelet asks for the plugin's registration");
        Ok(Response::new(PluginInfo {
            r#type: CSI_PLUGIN.into(),
            name: self.name.clone(),
            endpoint: self.endpoint.clone(),
            supported_versions: SUPPORTED_VERSIONS.iter().map(|v| v.to_string()).collect(),
        }))
    }

    async fn notify_registration_status(
        &self,
        req: Request<RegistrationStatus>,
    ) -> Result<Response<RegistrationStatusResponse>, Status> {
        let r = req.into_inner();
        if r.plugin_registered {
            tracing::info!(name = %self.name, "registered with the kubelet");
        } else {
            let error = crate::handler::loggable(&r.error, crate::handler::LOGGED_ERROR_MAX);
            tracing::error!(name = %self.name, error = %error, "the kubelet refused the registration; stopping so that the pod restarts and registers again");
            self.refused.send_replace(Some(error));
        }
        Ok(Response::new(RegistrationStatusResponse {}))
    }
}

/// Serves `service` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: UnixListener,
    service: RegistrationService,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    tonic::transport::Server::builder()
        .add_service(RegistrationServer::new(service))
        .serve_with_incoming_shutdown(crate::authority::incoming(listener), shutdown)
        .await
        .map_err(|e| Error::Internal(format!("registration server: {e}")))
}
