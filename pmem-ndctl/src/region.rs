//! Regions (`region0`): sizes, alignment, free space, DIMM mappings, state; enable and disable.

use crate::ctx::Context;
use crate::dimm::Dimm;
use crate::error::{Error, Result};
use crate::health::{BadBlock, SECTOR};
use crate::iter::{object, string, RawIter};
use crate::namespace::Namespaces;
use crate::types::RegionType;
use std::ptr::NonNull;

object!(
    /// A region: an interleave set of DIMM capacity that namespaces are carved from.
    Region, Regions, ndctl_sys::ndctl_region
);

/// Where a write must reach before it is persistent (`persistence_domain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PersistenceDomain {
    /// CPU caches are persistent (eADR): no flush needed, only fences.
    CpuCache,
    /// Writes are persistent once they reach the memory controller (ADR).
    MemoryController,
    /// The platform guarantees nothing.
    None,
    /// The platform does not say.
    Unknown,
}

impl PersistenceDomain {
    /// The name ndctl prints.
    pub fn as_str(self) -> &'static str {
        match self {
            PersistenceDomain::CpuCache => "cpu_cache",
            PersistenceDomain::MemoryController => "memory_controller",
            PersistenceDomain::None => "none",
            PersistenceDomain::Unknown => "unknown",
        }
    }
}

/// One DIMM's share of a region (`mappings` in `ndctl list -RD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The DIMM's device name, e.g. `nmem0`.
    pub dimm: String,
    /// Offset of the share in the DIMM's DPA space, bytes.
    pub offset: u64,
    /// Length of the share, bytes.
    pub length: u64,
    /// Position in the interleave set, when known.
    pub position: Option<u32>,
}

impl<'ctx> Region<'ctx> {
    /// The device name, e.g. `region0`.
    pub fn name(&self) -> String {
        // SAFETY: the region is alive for 'ctx; the string is owned by libndctl.
        unsafe { string(ndctl_sys::ndctl_region_get_devname(self.ptr())) }.unwrap_or_default()
    }

    /// The kernel's id (the `N` of `regionN`).
    pub fn id(&self) -> u32 {
        // SAFETY: the region is alive for 'ctx.
        unsafe { ndctl_sys::ndctl_region_get_id(self.ptr()) }
    }

    /// Total capacity, bytes.
    pub fn size(&self) -> u64 {
        // SAFETY: as above.
        unsafe { ndctl_sys::ndctl_region_get_size(self.ptr()) }
    }

    /// Namespace size granularity (16 MiB by default), when the kernel reports it.
    pub fn align(&self) -> Option<u64> {
        // SAFETY: as above.
        let a = unsafe { ndctl_sys::ndctl_region_get_align(self.ptr()) };
        (a != std::os::raw::c_ulong::MAX).then_some(a)
    }

    /// Free capacity, in all holes together, bytes.
    pub fn available_size(&self) -> u64 {
        // SAFETY: as above.
        unsafe { ndctl_sys::ndctl_region_get_available_size(self.ptr()) }
    }

    /// The largest contiguous hole, bytes, when the kernel reports it.
    pub fn max_available_extent(&self) -> Option<u64> {
        // SAFETY: as above.
        let e = unsafe { ndctl_sys::ndctl_region_get_max_available_extent(self.ptr()) };
        (e != u64::MAX).then_some(e)
    }

    /// Physical start address, when readable (root only).
    pub fn resource(&self) -> Option<u64> {
        // SAFETY: as above.
        let r = unsafe { ndctl_sys::ndctl_region_get_resource(self.ptr()) };
        (r != u64::MAX).then_some(r)
    }

    /// Number of DIMMs interleaved in the region.
    pub fn interleave_ways(&self) -> u32 {
        // SAFETY: as above.
        unsafe { ndctl_sys::ndctl_region_get_interleave_ways(self.ptr()) }
    }

    /// The region type; a type this crate does not know is [`RegionType::Unknown`].
    pub fn region_type(&self) -> Result<RegionType> {
        // SAFETY: as above.
        Ok(
            match unsafe { ndctl_sys::ndctl_region_get_type(self.ptr()) } {
                ndctl_sys::ND_DEVICE_REGION_PMEM => RegionType::Pmem,
                ndctl_sys::ND_DEVICE_REGION_BLK => RegionType::Blk,
                t => RegionType::Unknown(t),
            },
        )
    }

    /// Whether the region's DIMMs carry namespace labels. A label-less region
    /// has one fixed namespace the size of the region that cannot be subdivided.
    pub fn is_labelled(&self) -> bool {
        // SAFETY: as above.
        unsafe {
            ndctl_sys::ndctl_region_get_nstype(self.ptr()) == ndctl_sys::ND_DEVICE_NAMESPACE_PMEM
        }
    }

    /// The NUMA node, when the platform reports one.
    pub fn numa_node(&self) -> Option<u32> {
        // SAFETY: as above.
        let n = unsafe { ndctl_sys::ndctl_region_get_numa_node(self.ptr()) };
        u32::try_from(n).ok()
    }

    /// The target (memory-only) NUMA node, when the platform reports one.
    pub fn target_node(&self) -> Option<u32> {
        // SAFETY: as above.
        let n = unsafe { ndctl_sys::ndctl_region_get_target_node(self.ptr()) };
        u32::try_from(n).ok()
    }

    /// The interleave-set cookie (`iset_id`), for labelled regions.
    pub fn iset_id(&self) -> Option<u64> {
        // SAFETY: as above; the interleave set is embedded in the region.
        let iset = unsafe { ndctl_sys::ndctl_region_get_interleave_set(self.ptr()) };
        // SAFETY: non-null interleave sets are alive with their region.
        (!iset.is_null()).then(|| unsafe { ndctl_sys::ndctl_interleave_set_get_cookie(iset) })
    }

    /// Where writes become persistent.
    pub fn persistence_domain(&self) -> PersistenceDomain {
        // SAFETY: as above.
        match unsafe { ndctl_sys::ndctl_region_get_persistence_domain(self.ptr()) } {
            ndctl_sys::PERSISTENCE_CPU_CACHE => PersistenceDomain::CpuCache,
            ndctl_sys::PERSISTENCE_MEM_CTRL => PersistenceDomain::MemoryController,
            ndctl_sys::PERSISTENCE_NONE => PersistenceDomain::None,
            _ => PersistenceDomain::Unknown,
        }
    }

    /// Whether the region is enabled.
    pub fn is_enabled(&self) -> bool {
        // SAFETY: as above.
        unsafe { ndctl_sys::ndctl_region_is_enabled(self.ptr()) == 1 }
    }

    /// Whether the region is read-only.
    pub fn is_read_only(&self) -> bool {
        // SAFETY: as above.
        unsafe { ndctl_sys::ndctl_region_get_ro(self.ptr()) == 1 }
    }

    /// Each DIMM's share of the region.
    pub fn mappings(&self) -> Vec<Mapping> {
        // SAFETY: the region is alive for 'ctx and so is its mapping list.
        let first = unsafe { ndctl_sys::ndctl_mapping_get_first(self.ptr()) };
        RawIter::<'ctx, _>::new(first, ndctl_sys::ndctl_mapping_get_next)
            .map(|m| {
                let m = m.as_ptr();
                // SAFETY: `m` is an element of the region's live mapping list,
                // and its DIMM is alive with the bus.
                unsafe {
                    let dimm = ndctl_sys::ndctl_mapping_get_dimm(m);
                    Mapping {
                        dimm: string(ndctl_sys::ndctl_dimm_get_devname(dimm)).unwrap_or_default(),
                        offset: ndctl_sys::ndctl_mapping_get_offset(m),
                        length: ndctl_sys::ndctl_mapping_get_length(m),
                        position: u32::try_from(ndctl_sys::ndctl_mapping_get_position(m)).ok(),
                    }
                }
            })
            .collect()
    }

    /// The DIMMs the region spans.
    pub fn dimms(&self) -> Vec<Dimm<'ctx>> {
        let mut out = Vec::new();
        // SAFETY: the region is alive for 'ctx; get_first/get_next_dimm walk the
        // bus's DIMM list, which lives as long.
        let mut d = unsafe { ndctl_sys::ndctl_region_get_first_dimm(self.ptr()) };
        while let Some(nn) = NonNull::new(d) {
            out.push(Dimm::from_raw(nn));
            // SAFETY: `d` is a live DIMM of this region's bus.
            d = unsafe { ndctl_sys::ndctl_region_get_next_dimm(self.ptr(), d) };
        }
        out
    }

    /// The region's namespaces, idle seeds included.
    pub fn namespaces(&self) -> Namespaces<'ctx> {
        // SAFETY: the region is alive for 'ctx and so is its namespace list.
        let first = unsafe { ndctl_sys::ndctl_namespace_get_first(self.ptr()) };
        Namespaces(RawIter::new(first, ndctl_sys::ndctl_namespace_get_next))
    }

    /// The region's bad blocks (known media errors), in 512-byte sectors from the region's
    /// start, as the kernel lists them in the region's `badblocks` file.
    pub fn badblocks(&self) -> Vec<BadBlock> {
        let mut out = Vec::new();
        // SAFETY: the region is alive for 'ctx. libndctl keeps one read position per
        // region; this loop runs it from first to last before anything else can use it
        // (the context is !Sync and the loop calls nothing else).
        let mut bb = unsafe { ndctl_sys::ndctl_region_get_first_badblock(self.ptr()) };
        while !bb.is_null() {
            // SAFETY: a non-null badblock points into the region's iterator state,
            // valid until the next call.
            let b = unsafe { *bb };
            out.push(BadBlock::new(b.offset, b.len));
            // SAFETY: as above.
            bb = unsafe { ndctl_sys::ndctl_region_get_next_badblock(self.ptr()) };
        }
        out
    }

    /// The DIMMs that hold bad block `bb` of this region, in `nmemN` order, found the way
    /// ndctl finds them: by asking the platform which DIMM backs each of its sectors. Empty
    /// when the region's address is unreadable (not root) or the platform cannot say.
    pub fn badblock_dimms(&self, bb: &BadBlock) -> Vec<Dimm<'ctx>> {
        let Some(start) = self.resource() else {
            return Vec::new();
        };
        let ways = usize::try_from(self.interleave_ways()).unwrap_or(usize::MAX);
        // SAFETY: the region is alive; its bus lives as long.
        let bus = unsafe { ndctl_sys::ndctl_region_get_bus(self.ptr()) };
        let (off, len) = bb.bytes();
        let mut found: Vec<Dimm<'ctx>> = Vec::new();
        let mut addr = start.saturating_add(off);
        let end = addr.saturating_add(len);
        while addr < end && found.len() < ways {
            // SAFETY: the bus is alive; the call only queries the platform.
            let d = unsafe { ndctl_sys::ndctl_bus_get_dimm_by_physical_address(bus, addr) };
            if let Some(d) = NonNull::new(d) {
                if !found.iter().any(|x| x.raw == d) {
                    found.push(Dimm::from_raw(d));
                }
            }
            addr += SECTOR;
        }
        found.sort_by_key(|d| d.id());
        found
    }

    pub(crate) fn namespace_seed(&self) -> Option<crate::namespace::Namespace<'ctx>> {
        // SAFETY: the region is alive; the seed, if any, is on its namespace list.
        NonNull::new(unsafe { ndctl_sys::ndctl_region_get_namespace_seed(self.ptr()) })
            .map(crate::namespace::Namespace::from_raw)
    }
}

/// Enables region `ident` (see [`Context::enable_region`]).
pub(crate) fn enable(ctx: &mut Context, ident: &str) -> Result<()> {
    let region = ctx.region(ident)?;
    // SAFETY: the region is alive; enabling frees no libndctl object.
    let rc = unsafe { ndctl_sys::ndctl_region_enable(region.ptr()) };
    if rc < 0 {
        return Err(Error::from_errno(region.name(), "enable", rc));
    }
    Ok(())
}

/// Disables region `ident` and its namespaces (see [`Context::disable_region`]).
pub(crate) fn disable(ctx: &mut Context, ident: &str) -> Result<()> {
    let region = ctx.region(ident)?;
    for ns in region.namespaces() {
        if let Some(reason) = ns.busy_reason() {
            return Err(Error::Busy {
                object: ns.name(),
                reason,
            });
        }
    }
    let name = region.name();
    // SAFETY: we hold &mut Context, so no wrapper of this region's children
    // outlives the call, which frees them (they are rescanned on next access).
    let rc = unsafe { ndctl_sys::ndctl_region_disable_invalidate(region.ptr()) };
    if rc < 0 {
        return Err(Error::from_errno(name, "disable", rc));
    }
    Ok(())
}
