//! The metrics endpoint: `GET /metrics`, and `GET /healthz` for the kubelet's liveness probe,
//! over HTTP/1 (hyper), with a connection cap and deadlines.
//!
//! Anyone who can reach the port can open connections, so each one is
//! bounded: at most [`MAX_CONNECTIONS`] are served at once (more are closed
//! as soon as they are accepted), the request head must arrive within
//! [`HEADER_TIMEOUT`], one request is served per connection, and no connection
//! lives longer than [`CONNECTION_DEADLINE`]. A request only renders what is
//! in memory; it never calls the device manager.

use super::{keep_capacity_current, Metrics};
use crate::driver::Driver;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Connections served at once; more are closed when accepted.
pub const MAX_CONNECTIONS: usize = 64;
/// The time a client has to send its request head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a connection lives, whatever it does.
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
/// How long accepting pauses after an error (out of file descriptors), instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `GET /metrics` and `GET /healthz` on `listener` and keeps the capacity gauges of
/// `driver` current in the background; runs until the runtime stops.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>, driver: Arc<Driver>) {
    tokio::spawn(keep_capacity_current(metrics.clone(), driver.clone()));
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(false)
        .max_buf_size(16 << 10);
    let http = Arc::new(http);
    loop {
        let sock = match listener.accept().await {
            Ok((sock, _)) => sock,
            Err(e) => {
                tracing::debug!(error = %e, "metrics: accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(sock);
            continue;
        };
        let (http, metrics, driver) = (http.clone(), metrics.clone(), driver.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (m, ready) = (metrics.clone(), driver.is_ready());
                async move { Ok::<_, Infallible>(answer(&req, &m, ready)) }
            });
            let conn = http.serve_connection(TokioIo::new(sock), service);
            let _ = tokio::time::timeout(CONNECTION_DEADLINE, conn).await;
            drop(slot);
        });
    }
}

/// The answer to one request: the metrics at `GET /metrics`; at `GET
/// /healthz` 200 `ok` when the driver [is ready](Driver::is_ready), else 503;
/// 405 for another method there, 404 elsewhere.
fn answer<B>(req: &Request<B>, metrics: &Metrics, ready: bool) -> Response<Full<Bytes>> {
    let (status, body) = match (req.uri().path(), req.method()) {
        ("/metrics", &Method::GET) => (StatusCode::OK, metrics.render()),
        ("/healthz", &Method::GET) if ready => (StatusCode::OK, "ok".into()),
        ("/healthz", &Method::GET) => (StatusCode::SERVICE_UNAVAILABLE, "not ready".into()),
        ("/metrics" | "/healthz", _) => (StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into()),
        _ => (
            StatusCode::NOT_FOUND,
            "metrics are at /metrics, health at /healthz\n".into(),
        ),
    };
    let openmetrics = req.uri().path() == "/metrics" && status == StatusCode::OK;
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    if status == StatusCode::METHOD_NOT_ALLOWED {
        h.insert(ALLOW, HeaderValue::from_static("GET"));
    }
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(if openmetrics {
            OPENMETRICS
        } else {
            "text/plain"
        }),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(method: Method, path: &str, ready: bool) -> Response<Full<Bytes>> {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap();
        answer(&req, &Metrics::new(), ready)
    }

    #[test]
    fn only_get_metrics_and_healthz_are_served() {
        let ok = get(Method::GET, "/metrics", true);
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()[CONTENT_TYPE], OPENMETRICS);
        assert_eq!(get(Method::GET, "/", true).status(), StatusCode::NOT_FOUND);
        assert_eq!(
            get(Method::GET, "/metricsx", true).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get(Method::GET, "/healthz/", true).status(),
            StatusCode::NOT_FOUND
        );
        for path in ["/metrics", "/healthz"] {
            let post = get(Method::POST, path, true);
            assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
            assert_eq!(post.headers()[ALLOW], "GET");
        }
    }

    #[test]
    fn healthz_follows_readiness() {
        let ok = get(Method::GET, "/healthz", true);
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()[CONTENT_TYPE], "text/plain");
        let not = get(Method::GET, "/healthz", false);
        assert_eq!(not.status(), StatusCode::SERVICE_UNAVAILABLE);
        // Metrics are served whether or not the driver is ready.
        assert_eq!(get(Method::GET, "/metrics", false).status(), StatusCode::OK);
    }
}
