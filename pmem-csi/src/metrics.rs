//! Prometheus metrics: operations by method and code with latencies, capacity per device manager,
//! and media health (per DIMM, bad sectors per region), served by a bounded HTTP/1 server whose
//! requests only read memory.

use crate::driver::Driver;
use crate::media::MediaReport;
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
use tokio::sync::Notify;

mod http;
pub use http::{serve, CONNECTION_DEADLINE, HEADER_TIMEOUT, MAX_CONNECTIONS};

/// How often the capacity gauges are refreshed when no operation changes capacity.
pub const CAPACITY_REFRESH: Duration = Duration::from_secs(30);
/// The shortest time between two refreshes (a burst of operations causes one).
pub const CAPACITY_REFRESH_GAP: Duration = Duration::from_secs(1);

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DimmLabels {
    dimm: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegionLabels {
    region: String,
}

/// The driver's metrics registry.
pub struct Metrics {
    registry: Registry,
    ops: Family<OpLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
    capacity: Family<CapLabels, Gauge<u64, AtomicU64>>,
    capacity_changed: Notify,
    dimm_health: Family<DimmLabels, Gauge>,
    dimm_unsafe_shutdowns: Family<DimmLabels, Gauge<u64, AtomicU64>>,
    dimm_temperature: Family<DimmLabels, Gauge<f64, AtomicU64>>,
    region_bad_sectors: Family<RegionLabels, Gauge<u64, AtomicU64>>,
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
        let dimm_health = Family::<DimmLabels, Gauge>::default();
        registry.register(
            "dimm_health_state",
            "DIMM SMART health: 0 ok, 1 non-critical, 2 critical, 3 fatal (absent without SMART)",
            dimm_health.clone(),
        );
        let dimm_unsafe_shutdowns = Family::<DimmLabels, Gauge<u64, AtomicU64>>::default();
        registry.register(
            "dimm_unsafe_shutdowns",
            "Unsafe (dirty) shutdowns a DIMM has counted (absent when it does not count)",
            dimm_unsafe_shutdowns.clone(),
        );
        let dimm_temperature = Family::<DimmLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "dimm_temperature_celsius",
            "DIMM media temperature (absent when the DIMM does not report it)",
            dimm_temperature.clone(),
        );
        let region_bad_sectors = Family::<RegionLabels, Gauge<u64, AtomicU64>>::default();
        registry.register(
            "region_bad_sectors",
            "Known bad 512-byte sectors (media errors) per region",
            region_bad_sectors.clone(),
        );
        Metrics {
            registry,
            ops,
            latency,
            capacity,
            capacity_changed: Notify::new(),
            dimm_health,
            dimm_unsafe_shutdowns,
            dimm_temperature,
            region_bad_sectors,
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

    /// Asks for the capacity gauges to be refreshed soon, off the caller's path
    /// (after an operation that may have changed capacity).
    pub fn capacity_changed(&self) {
        self.capacity_changed.notify_one();
    }

    /// Refreshes the capacity gauges from the device manager (blocks).
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

    /// Sets the media-health gauges from `report` (see [`Driver::refresh_media`]).
    pub fn set_media(&self, report: &MediaReport) {
        for d in &report.dimms {
            let l = DimmLabels {
                dimm: d.dimm.clone(),
            };
            if let Some(level) = d.state_level() {
                self.dimm_health.get_or_create(&l).set(level);
            }
            if let Some(n) = d.unsafe_shutdowns {
                self.dimm_unsafe_shutdowns.get_or_create(&l).set(n.into());
            }
            if let Some(t) = d.temperature_celsius {
                self.dimm_temperature.get_or_create(&l).set(t);
            }
        }
        for (region, bad) in &report.region_bad_sectors {
            self.region_bad_sectors
                .get_or_create(&RegionLabels {
                    region: region.clone(),
                })
                .set(*bad);
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

/// Keeps the capacity gauges current (and the media gauges, from the driver's last
/// media report, which its periodic pass over the devices rereads): refreshes them now, every
/// [`CAPACITY_REFRESH`], and after [`Metrics::capacity_changed`], at most once per
/// [`CAPACITY_REFRESH_GAP`]; runs until the runtime stops.
pub async fn keep_capacity_current(metrics: Arc<Metrics>, driver: Arc<Driver>) {
    loop {
        let (m, d) = (metrics.clone(), driver.clone());
        let _ = tokio::task::spawn_blocking(move || {
            m.refresh_capacity(&d);
            m.set_media(&d.media());
        })
        .await;
        tokio::select! {
            _ = tokio::time::sleep(CAPACITY_REFRESH) => {}
            _ = metrics.capacity_changed.notified() => {
                tokio::time::sleep(CAPACITY_REFRESH_GAP).await;
            }
        }
    }
}
