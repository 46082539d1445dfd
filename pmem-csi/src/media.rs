//! Media health of the node's PMEM: each DIMM's SMART state, bad blocks per region, and
//! the volumes whose devices hold bad blocks or sit on an unhealthy DIMM.

use pmem_ndctl::health::sector_count;
use pmem_ndctl::{BadBlock, Context, DimmHealth, Namespace};
use std::collections::BTreeMap;
use std::path::Path;

/// One DIMM's health as the driver reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DimmMedia {
    /// The DIMM, e.g. `nmem0`.
    pub dimm: String,
    /// Its health state as ndctl names it (`ok`, `non-critical`, `critical`, `fatal`);
    /// `None` when the DIMM answers no SMART (QEMU's do not).
    pub state: Option<String>,
    /// Whether volumes on it are sound as far as its SMART data tells.
    pub healthy: bool,
    /// Unsafe shutdowns it has counted, when it reports them.
    pub unsafe_shutdowns: Option<u32>,
    /// Its media temperature, when it reports one.
    pub temperature_celsius: Option<f64>,
}

impl DimmMedia {
    fn new(dimm: String, health: pmem_ndctl::Result<Option<DimmHealth>>) -> Self {
        match health {
            Ok(Some(h)) => DimmMedia {
                dimm,
                state: h.state.map(|s| s.as_str().to_owned()),
                healthy: h.is_healthy(),
                unsafe_shutdowns: h.unsafe_shutdown_count,
                temperature_celsius: h.temperature_celsius,
            },
            Ok(None) => DimmMedia {
                dimm,
                healthy: true,
                ..DimmMedia::default()
            },
            // The query failed: ndctl says "unknown"; volumes are not condemned on that alone.
            Err(_) => DimmMedia {
                dimm,
                state: Some("unknown".into()),
                healthy: true,
                ..DimmMedia::default()
            },
        }
    }

    /// The state as a number for a gauge: 0 ok, 1 non-critical, 2 critical, 3 fatal.
    pub fn state_level(&self) -> Option<i64> {
        match self.state.as_deref()? {
            "ok" => Some(0),
            "non-critical" => Some(1),
            "critical" => Some(2),
            "fatal" => Some(3),
            _ => None,
        }
    }
}

/// The node's media health at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaReport {
    /// Every DIMM.
    pub dimms: Vec<DimmMedia>,
    /// Bad 512-byte sectors per region (`region0`), zero included.
    pub region_bad_sectors: Vec<(String, u64)>,
    /// Why a volume's device (by its path, as the manager lists it) is unsound.
    pub devices: BTreeMap<String, String>,
}

impl MediaReport {
    /// Why the device at `path` is unsound, or `None`.
    pub fn problem(&self, path: &str) -> Option<&str> {
        self.devices.get(path).map(String::as_str)
    }
}

/// What the kernel lists as bad in namespace `ns`'s device: its block device's list (raw
/// and fsdax: what I/O fails on now), or its region's bad blocks in it (devdax).
fn namespace_bad_blocks(ns: &Namespace<'_>) -> Vec<BadBlock> {
    if ns.dax().is_some() {
        ns.badblocks()
    } else {
        ns.block_device_badblocks()
    }
}

/// The namespace devices (`pmem0.1`, `dax0.1`) a volume's device node stands on: itself,
/// or for a device-mapper device (an LV), the devices under it.
fn underlying(path: &str) -> Vec<String> {
    let Ok(real) = std::fs::canonicalize(path) else {
        return Vec::new();
    };
    let Some(name) = real.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    if !name.starts_with("dm-") {
        return vec![name.to_owned()];
    }
    let slaves = Path::new("/sys/class/block").join(name).join("slaves");
    std::fs::read_dir(slaves)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// What matters about one namespace device (`pmem0.1`, `dax0.1`) for the volumes on it.
#[derive(Debug, Clone, Default)]
struct NamespaceMedia {
    /// Bad 512-byte sectors in it.
    bad_sectors: u64,
    /// Its region's unhealthy DIMMs, as `nmem0 (critical)`.
    sick_dimms: Vec<String>,
}

/// Why each volume device is unsound, given the namespace devices each stands on
/// (itself, or an LV's physical volumes) and what is known of those.
fn problems(
    stands_on: &[(String, Vec<String>)],
    namespaces: &BTreeMap<String, NamespaceMedia>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (path, devs) in stands_on {
        let mut why = Vec::new();
        for dev in devs {
            let Some(ns) = namespaces.get(dev) else {
                continue;
            };
            let bad = ns.bad_sectors;
            if bad > 0 && path.ends_with(&format!("/{dev}")) {
                why.push(format!("the device {path} has {bad} bad 512-byte sectors"));
            } else if bad > 0 {
                why.push(format!(
                    "/dev/{dev}, under {path}, has {bad} bad 512-byte sectors"
                ));
            }
            if !ns.sick_dimms.is_empty() {
                why.push(format!(
                    "it sits on unhealthy DIMMs: {}",
                    ns.sick_dimms.join(", ")
                ));
            }
        }
        if !why.is_empty() {
            out.insert(path.clone(), why.join("; "));
        }
    }
    out
}

/// Reads the machine's media health with libndctl; `devices` are the volumes' device
/// nodes. A DIMM answering no SMART counts as healthy, with no state.
pub fn read(devices: &[String]) -> pmem_ndctl::Result<MediaReport> {
    let ctx = Context::new()?;
    let dimms: Vec<DimmMedia> = ctx
        .dimms()
        .map(|d| DimmMedia::new(d.name(), d.health()))
        .collect();
    let mut report = MediaReport {
        dimms,
        ..MediaReport::default()
    };
    let mut namespaces: BTreeMap<String, NamespaceMedia> = BTreeMap::new();
    for region in ctx.regions() {
        report
            .region_bad_sectors
            .push((region.name(), sector_count(&region.badblocks())));
        let sick: Vec<String> = region
            .dimms()
            .iter()
            .filter_map(|d| {
                let m = report.dimms.iter().find(|m| m.dimm == d.name())?;
                (!m.healthy)
                    .then(|| format!("{} ({})", m.dimm, m.state.as_deref().unwrap_or("unhealthy")))
            })
            .collect();
        for ns in region.namespaces().filter(|n| n.is_active()) {
            let Ok(info) = ns.info() else { continue };
            let bad = sector_count(&namespace_bad_blocks(&ns));
            for dev in [info.blockdev, info.chardev].into_iter().flatten() {
                namespaces.insert(
                    dev,
                    NamespaceMedia {
                        bad_sectors: bad,
                        sick_dimms: sick.clone(),
                    },
                );
            }
        }
    }
    let stands_on: Vec<(String, Vec<String>)> =
        devices.iter().map(|p| (p.clone(), underlying(p))).collect();
    report.devices = problems(&stands_on, &namespaces);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(bad_sectors: u64, sick: &[&str]) -> NamespaceMedia {
        NamespaceMedia {
            bad_sectors,
            sick_dimms: sick.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn volumes_on_bad_blocks_or_sick_dimms_are_named_with_the_cause() {
        let namespaces: BTreeMap<String, NamespaceMedia> = [
            ("pmem0.1".to_string(), ns(8, &[])),
            ("pmem0.2".to_string(), ns(0, &[])),
            ("pmem1".to_string(), ns(0, &["nmem1 (critical)"])),
            ("pmem2".to_string(), ns(16, &[])),
        ]
        .into();
        let stands_on = vec![
            ("/dev/pmem0.1".to_string(), vec!["pmem0.1".to_string()]),
            ("/dev/pmem0.2".to_string(), vec!["pmem0.2".to_string()]),
            (
                "/dev/pmem-rs-lvm/vol".to_string(),
                vec!["pmem1".to_string(), "pmem2".to_string()],
            ),
            ("/dev/elsewhere".to_string(), vec!["sda".to_string()]),
        ];
        let p = problems(&stands_on, &namespaces);
        assert_eq!(
            p.get("/dev/pmem0.1").map(String::as_str),
            Some("the device /dev/pmem0.1 has 8 bad 512-byte sectors")
        );
        assert_eq!(
            p.get("/dev/pmem-rs-lvm/vol").map(String::as_str),
            Some(
                "it sits on unhealthy DIMMs: nmem1 (critical); \
                 /dev/pmem2, under /dev/pmem-rs-lvm/vol, has 16 bad 512-byte sectors"
            )
        );
        assert!(!p.contains_key("/dev/pmem0.2"), "sound");
        assert!(!p.contains_key("/dev/elsewhere"), "not PMEM");
    }

    #[test]
    fn gauge_levels_follow_ndctl_state_names() {
        let level = |s: Option<&str>| {
            DimmMedia {
                state: s.map(str::to_string),
                ..DimmMedia::default()
            }
            .state_level()
        };
        assert_eq!(level(Some("ok")), Some(0));
        assert_eq!(level(Some("non-critical")), Some(1));
        assert_eq!(level(Some("critical")), Some(2));
        assert_eq!(level(Some("fatal")), Some(3));
        assert_eq!(level(Some("unknown")), None);
        assert_eq!(level(None), None);
    }
}
