//! The platform's persistence domain, read from sysfs: whether the CPU
//! caches are inside it (eADR), and a region's `deep_flush` trigger.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const ND_DEVICES: &str = "/sys/bus/nd/devices";

/// Where a region's stores become durable, from its `persistence_domain`
/// (named apart from `pmem_ndctl::PersistenceDomain`, which has the same source).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// The CPU caches are flushed on power loss (eADR): no flush needed.
    CpuCache,
    /// The memory controller's queues are flushed on power loss (ADR).
    MemoryController,
    /// Not reported (older kernels, emulated DIMMs).
    Unknown,
}

/// One NVDIMM region as pmem-dax sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Region {
    /// Kernel name, e.g. `region0`.
    pub name: String,
    /// Its persistence domain.
    pub domain: Durability,
    /// Its `deep_flush` attribute, when the region offers a deep flush
    /// (the kernel makes it writable only when the platform has flush
    /// hints; read-only otherwise).
    pub deep_flush: Option<PathBuf>,
}

/// Parses a `persistence_domain` attribute's text.
pub fn parse_domain(text: &str) -> Durability {
    match text.trim() {
        "cpu_cache" => Durability::CpuCache,
        "memory_controller" => Durability::MemoryController,
        _ => Durability::Unknown,
    }
}

/// Lists the NVDIMM regions under `/sys/bus/nd/devices` (none when the bus
/// is absent).
pub fn regions() -> Vec<Region> {
    regions_in(Path::new(ND_DEVICES))
}

/// Lists the regions under `dir`, a directory laid out like
/// `/sys/bus/nd/devices`.
pub fn regions_in(dir: &Path) -> Vec<Region> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<Region> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if !name.starts_with("region") {
                return None;
            }
            let path = e.path();
            let domain = fs::read_to_string(path.join("persistence_domain"))
                .map(|t| parse_domain(&t))
                .unwrap_or(Durability::Unknown);
            let flush = path.join("deep_flush");
            let deep_flush = offers_deep_flush(&flush).then_some(flush);
            Some(Region {
                name,
                domain,
                deep_flush,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Whether the platform is eADR: at least one region, and every region's
/// persistence domain is `cpu_cache`.
pub fn is_eadr(regions: &[Region]) -> bool {
    !regions.is_empty() && regions.iter().all(|r| r.domain == Durability::CpuCache)
}

pub(crate) fn platform_is_eadr() -> bool {
    is_eadr(&regions())
}

/// Finds the region holding a device, from its sysfs directory (e.g.
/// `/sys/dev/block/259:0`): the nearest `regionN` among its ancestors.
pub(crate) fn region_of(sys_dev: &Path) -> Result<PathBuf> {
    let real = fs::canonicalize(sys_dev).map_err(|e| Error::Sysfs {
        path: sys_dev.to_owned(),
        reason: format!("cannot resolve: {e}"),
    })?;
    real.ancestors()
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("region") && n[6..].bytes().all(|b| b.is_ascii_digit())
            })
        })
        .map(Path::to_owned)
        .ok_or_else(|| Error::Sysfs {
            path: real.clone(),
            reason: "not on an NVDIMM region".into(),
        })
}

fn offers_deep_flush(attr: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(attr).is_ok_and(|m| m.permissions().mode() & 0o200 != 0)
}

/// Writes `1` to `<region>/deep_flush`: the platform then flushes its
/// write-pending queues, beyond what ADR guarantees. Needs root.
pub(crate) fn deep_flush_region(region: &Path) -> Result<()> {
    let attr = region.join("deep_flush");
    if !offers_deep_flush(&attr) {
        return Err(Error::Sysfs {
            path: attr,
            reason: "the region offers no deep flush (no flush hints)".into(),
        });
    }
    fs::write(&attr, "1").map_err(|e| Error::io(attr, "write", e))
}
