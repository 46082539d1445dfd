//! What every gRPC handler does around its work: run it on the blocking pool under a span,
//! count and time it, log a failure, and turn a panic into INTERNAL instead of a lost server.

use crate::error::Error;
use crate::metrics::Metrics;
use std::sync::Arc;
use tonic::Status;

/// The methods that may change the capacity left (ephemeral volumes are made and removed by the node ones).
const CHANGES_CAPACITY: &[&str] = &[
    "CreateVolume",
    "DeleteVolume",
    "ControllerExpandVolume",
    "NodePublishVolume",
    "NodeUnpublishVolume",
];

/// Runs `f(&state)` for gRPC method `method` about `volume`.
pub async fn run<S, T>(
    state: &Arc<S>,
    metrics: &Metrics,
    method: &'static str,
    volume: &str,
    f: impl FnOnce(&S) -> Result<T, Error> + Send + 'static,
) -> Result<T, Status>
where
    S: Send + Sync + 'static,
    T: Send + 'static,
{
    let span = tracing::info_span!("csi", method, volume);
    let state = state.clone();
    let start = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(move || span.in_scope(|| f(&state)))
        .await
        .unwrap_or_else(|e| Err(Error::Internal(format!("{method} failed: {e}"))));
    metrics.observe(
        method,
        out.as_ref().err().map_or(tonic::Code::Ok, Error::code),
        start.elapsed(),
    );
    if CHANGES_CAPACITY.contains(&method) {
        metrics.capacity_changed();
    }
    if let Err(e) = &out {
        tracing::warn!(method, volume, code = ?e.code(), error = %e, "request failed");
    }
    out.map_err(Status::from)
}
