//! Prometheus metrics: operations by method and code with latencies, and capacity per device manager.

use crate::driver::Driver;
use crate::volume::Params;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CapLabels {
    manager: String,
    kind: String,
}

/// The driver's metrics registry.
pub struct Metrics {
    registry: Registry,
    ops: Family<OpLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
    capacity: Family<CapLabels, Gauge<u64, AtomicU64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with the driver's metric families.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("pmem_csi");
        let ops = Family::<OpLabels, Counter>::default();
        let latency = Family::<MethodLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let capacity = Family::<CapLabels, Gauge<u64, AtomicU64>>::default();
        registry.register(
            "operations",
            "CSI operations by method and gRPC code",
            ops.clone(),
        );
        registry.register(
            "operation_duration_seconds",
            "CSI operation latency",
            latency.clone(),
        );
        registry.register(
            "capacity_bytes",
            "PMEM capacity: total, free and largest volume",
            capacity.clone(),
        );
        let zeroing = crate::zeroing::stats();
        registry.register(
            "zeroed_bytes",
            "Bytes zeroed before volumes got them",
            zeroing.zeroed.clone(),
        );
        registry.register(
            "zeroing_pending_bytes",
            "Bytes waiting to be zeroed, or being zeroed now",
            zeroing.pending.clone(),
        );
        Metrics {
            registry,
            ops,
            latency,
            capacity,
        }
    }

    /// Counts and times one operation.
    pub fn observe(&self, method: &str, code: tonic::Code, took: Duration) {
        self.ops
            .get_or_create(&OpLabels {
                method: method.into(),
                code: format!("{code:?}"),
            })
            .inc();
        self.latency
            .get_or_create(&MethodLabels {
                method: method.into(),
            })
            .observe(took.as_secs_f64());
    }

    /// Refreshes the capacity gauges from the device manager.
    pub fn refresh_capacity(&self, driver: &Driver) {
        if let Ok(c) = driver.capacity(&Params::default()) {
            let m = driver.manager().kind().to_string();
            for (kind, v) in [
                ("total", c.total),
                ("free", c.free),
                ("largest_volume", c.max_volume),
            ] {
                self.capacity
                    .get_or_create(&CapLabels {
                        manager: m.clone(),
                        kind: kind.into(),
                    })
                    .set(v);
            }
        }
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Serves `GET /metrics` (any path) over plain HTTP/1 on `listener`.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>, driver: Arc<Driver>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let (metrics, driver) = (metrics.clone(), driver.clone());
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let d = driver.clone();
            let m = metrics.clone();
            let _ = tokio::task::spawn_blocking(move || m.refresh_capacity(&d)).await;
            let body = metrics.render();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(body.as_bytes()).await;
        });
    }
}
