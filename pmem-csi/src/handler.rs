//! What every gRPC handler does around its work: run it on the blocking pool under a span,
//! count and time it, log a failure, and turn a panic into INTERNAL instead of a lost server.

use crate::error::Error;
use crate::metrics::Metrics;
use std::sync::Arc;
use tonic::Status;

/// The most bytes of a request's volume name or id that reach a log line.
pub const LOGGED_NAME_MAX: usize = 128;
/// The most bytes of an error message that reach a log line.
pub const LOGGED_ERROR_MAX: usize = 512;

/// The methods that may change the capacity left (ephemeral volumes are made and removed by the node ones).
const CHANGES_CAPACITY: &[&str] = &[
    "CreateVolume",
    "DeleteVolume",
    "NodeExpandVolume",
    "NodePublishVolume",
    "NodeUnpublishVolume",
];

/// `text` made safe for a log line: at most `max` bytes of it (cut at a
/// character boundary, `…` marking the cut), with newlines, control and
/// other non-printable characters escaped as Rust does (`\n`, `\u{1b}`), so
/// that no request can forge or flood log lines.
pub fn loggable(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out: String = text[..end].escape_debug().collect();
    if end < text.len() {
        out.push('…');
    }
    out
}

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
    let volume = loggable(volume, LOGGED_NAME_MAX);
    let span = tracing::info_span!("csi", method, volume = %volume);
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
        let error = loggable(&e.to_string(), LOGGED_ERROR_MAX);
        tracing::warn!(method, volume = %volume, code = ?e.code(), error = %error, "request failed");
    }
    out.map_err(Status::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loggable_escapes_and_bounds() {
        assert_eq!(loggable("a\nb\u{1b}[31m", 100), "a\\nb\\u{1b}[31m");
        assert_eq!(
            loggable(&"x".repeat(1000), 128),
            format!("{}…", "x".repeat(128))
        );
        // A cut never splits a character.
        assert_eq!(loggable("ééé", 3), "é…");
        assert_eq!(loggable("", 10), "");
    }
}
