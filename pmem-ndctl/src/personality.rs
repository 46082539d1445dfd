//! Namespace personalities: pfn (fsdax), dax (devdax) and btt (sector) devices, read and set up.

use crate::error::{Error, Result};
use crate::iter::{object, string};
use crate::types::MapLocation;

object!(
    /// A pfn device: gives an fsdax namespace its `struct page` map (`pfn0.1`).
    Pfn, Pfns, ndctl_sys::ndctl_pfn
);
object!(
    /// A dax device: turns a namespace into device-dax (`dax0.1`).
    Dax, Daxes, ndctl_sys::ndctl_dax
);
object!(
    /// A btt device: gives a sector-mode namespace atomic sector updates (`btt0.1`).
    Btt, Btts, ndctl_sys::ndctl_btt
);

/// A device-dax region (libdaxctl's view of a devdax namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DaxRegionInfo {
    /// The daxctl region id.
    pub id: i32,
    /// Size, bytes, when known.
    pub size: Option<u64>,
    /// Capacity not assigned to a device, bytes.
    pub available_size: u64,
    /// Alignment, bytes, when known.
    pub align: Option<u64>,
    /// Its device-dax instances.
    pub devices: Vec<DaxDeviceInfo>,
}

/// One device-dax instance (`/dev/daxX.Y`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DaxDeviceInfo {
    /// Character device name, e.g. `dax0.1`.
    pub chardev: String,
    /// Size, bytes.
    pub size: u64,
    /// Target NUMA node.
    pub target_node: Option<u32>,
    /// Mapping alignment, bytes.
    pub align: Option<u64>,
    /// Whether it is onlined as system RAM (kmem) rather than a devdax device.
    pub system_ram: bool,
    /// Whether its driver is bound.
    pub enabled: bool,
}

fn location(loc: ndctl_sys::ndctl_pfn_loc) -> Option<MapLocation> {
    match loc {
        ndctl_sys::NDCTL_PFN_LOC_RAM => Some(MapLocation::Mem),
        ndctl_sys::NDCTL_PFN_LOC_PMEM => Some(MapLocation::Dev),
        _ => None,
    }
}

fn raw_location(loc: MapLocation) -> ndctl_sys::ndctl_pfn_loc {
    match loc {
        MapLocation::Mem => ndctl_sys::NDCTL_PFN_LOC_RAM,
        MapLocation::Dev => ndctl_sys::NDCTL_PFN_LOC_PMEM,
    }
}

/// Turns a libndctl return code into `Ok` or an error about `object` doing `op`.
pub(crate) fn check(object: &str, op: &str, rc: i32) -> Result<()> {
    if rc < 0 {
        Err(Error::from_errno(object, op, rc))
    } else {
        Ok(())
    }
}

impl<'ctx> Pfn<'ctx> {
    /// The device name, e.g. `pfn0.1`.
    pub fn name(&self) -> String {
        // SAFETY: the pfn is alive for 'ctx; libndctl owns the string.
        unsafe { string(ndctl_sys::ndctl_pfn_get_devname(self.ptr())) }.unwrap_or_default()
    }
    /// Usable size after the metadata reservation, bytes.
    pub fn size(&self) -> u64 {
        // SAFETY: the pfn is alive for 'ctx.
        unsafe { ndctl_sys::ndctl_pfn_get_size(self.ptr()) }
    }
    /// Where the page map lives.
    pub fn location(&self) -> Option<MapLocation> {
        // SAFETY: as above.
        location(unsafe { ndctl_sys::ndctl_pfn_get_location(self.ptr()) })
    }
    /// Physical start address of the data (after the metadata), when readable (root only).
    pub fn resource(&self) -> Option<u64> {
        // SAFETY: as above.
        let r = unsafe { ndctl_sys::ndctl_pfn_get_resource(self.ptr()) };
        (r != u64::MAX).then_some(r)
    }
    /// Mapping alignment, bytes.
    pub fn align(&self) -> u64 {
        // SAFETY: as above.
        unsafe { ndctl_sys::ndctl_pfn_get_align(self.ptr()) }
    }
    /// Alignments the kernel supports for this device.
    pub fn supported_alignments(&self) -> Vec<u64> {
        // SAFETY: as above; indices are below the reported count.
        unsafe {
            let n = ndctl_sys::ndctl_pfn_get_num_alignments(self.ptr());
            (0..n)
                .map(|i| ndctl_sys::ndctl_pfn_get_supported_alignment(self.ptr(), i))
                .collect()
        }
    }
    /// The personality's uuid.
    pub fn uuid(&self) -> [u8; 16] {
        let mut u = [0u8; 16];
        // SAFETY: `u` is the 16-byte uuid_t libndctl writes.
        unsafe { ndctl_sys::ndctl_pfn_get_uuid(self.ptr(), u.as_mut_ptr()) };
        u
    }
    /// The block device, e.g. `pmem0.1`, when enabled.
    pub fn block_device(&self) -> Option<String> {
        // SAFETY: as above.
        unsafe { string(ndctl_sys::ndctl_pfn_get_block_device(self.ptr())) }
            .filter(|s| !s.is_empty())
    }
    /// Configures this (seed) pfn for `ns` and enables it.
    pub(crate) fn setup(
        &self,
        ns: &crate::Namespace<'ctx>,
        uuid: &[u8; 16],
        loc: MapLocation,
        align: u64,
    ) -> Result<()> {
        let n = self.name();
        let p = self.ptr();
        // SAFETY: the pfn and namespace are alive; setters copy their inputs.
        unsafe {
            check(
                &n,
                "set uuid",
                ndctl_sys::ndctl_pfn_set_uuid(p, { *uuid }.as_mut_ptr()),
            )?;
            check(
                &n,
                "set location",
                ndctl_sys::ndctl_pfn_set_location(p, raw_location(loc)),
            )?;
            if ndctl_sys::ndctl_pfn_has_align(p) != 0 {
                check(
                    &n,
                    "set align",
                    ndctl_sys::ndctl_pfn_set_align(p, align as _),
                )?;
            }
            check(
                &n,
                "set namespace",
                ndctl_sys::ndctl_pfn_set_namespace(p, ns.ptr()),
            )?;
            check(&n, "enable", ndctl_sys::ndctl_pfn_enable(p))
        }
    }
}

impl<'ctx> Dax<'ctx> {
    /// The device name, e.g. `dax0.1`.
    pub fn name(&self) -> String {
        // SAFETY: the dax is alive for 'ctx; libndctl owns the string.
        unsafe { string(ndctl_sys::ndctl_dax_get_devname(self.ptr())) }.unwrap_or_default()
    }
    /// Usable size after the metadata reservation, bytes.
    pub fn size(&self) -> u64 {
        // SAFETY: the dax is alive for 'ctx.
        unsafe { ndctl_sys::ndctl_dax_get_size(self.ptr()) }
    }
    /// Where the page map lives.
    pub fn location(&self) -> Option<MapLocation> {
        // SAFETY: as above.
        location(unsafe { ndctl_sys::ndctl_dax_get_location(self.ptr()) })
    }
    /// Physical start address of the data (after the metadata), when readable (root only).
    pub fn resource(&self) -> Option<u64> {
        // SAFETY: as above.
        let r = unsafe { ndctl_sys::ndctl_dax_get_resource(self.ptr()) };
        (r != u64::MAX).then_some(r)
    }
    /// Mapping alignment, bytes.
    pub fn align(&self) -> u64 {
        // SAFETY: as above.
        unsafe { ndctl_sys::ndctl_dax_get_align(self.ptr()) }
    }
    /// Alignments the kernel supports for this device.
    pub fn supported_alignments(&self) -> Vec<u64> {
        // SAFETY: as above; indices are below the reported count.
        unsafe {
            let n = ndctl_sys::ndctl_dax_get_num_alignments(self.ptr());
            (0..n)
                .map(|i| ndctl_sys::ndctl_dax_get_supported_alignment(self.ptr(), i))
                .collect()
        }
    }
    /// The personality's uuid.
    pub fn uuid(&self) -> [u8; 16] {
        let mut u = [0u8; 16];
        // SAFETY: `u` is the 16-byte uuid_t libndctl writes.
        unsafe { ndctl_sys::ndctl_dax_get_uuid(self.ptr(), u.as_mut_ptr()) };
        u
    }
    /// The character device, e.g. `dax0.1` (from libdaxctl), when enabled.
    pub fn char_device(&self) -> Option<String> {
        // SAFETY: the dax is alive; its daxctl region and devices are owned
        // by the daxctl context embedded in the ndctl context.
        unsafe {
            let region = ndctl_sys::ndctl_dax_get_daxctl_region(self.ptr());
            if region.is_null() {
                return None;
            }
            let dev = ndctl_sys::daxctl_dev_get_first(region);
            if dev.is_null() {
                return None;
            }
            string(ndctl_sys::daxctl_dev_get_devname(dev))
        }
    }
    /// The device-dax region and its devices, as libdaxctl reports them.
    pub fn dax_region(&self) -> Option<DaxRegionInfo> {
        // SAFETY: the dax is alive; its daxctl region and devices are owned by
        // the daxctl context embedded in the ndctl context, alive for 'ctx.
        unsafe {
            let region = ndctl_sys::ndctl_dax_get_daxctl_region(self.ptr());
            if region.is_null() {
                return None;
            }
            let mut devices = Vec::new();
            let mut dev = ndctl_sys::daxctl_dev_get_first(region);
            while !dev.is_null() {
                devices.push(DaxDeviceInfo {
                    chardev: string(ndctl_sys::daxctl_dev_get_devname(dev)).unwrap_or_default(),
                    size: ndctl_sys::daxctl_dev_get_size(dev),
                    target_node: u32::try_from(ndctl_sys::daxctl_dev_get_target_node(dev)).ok(),
                    align: Some(ndctl_sys::daxctl_dev_get_align(dev)).filter(|a| *a > 0),
                    system_ram: !ndctl_sys::daxctl_dev_get_memory(dev).is_null(),
                    enabled: ndctl_sys::daxctl_dev_is_enabled(dev) == 1,
                });
                dev = ndctl_sys::daxctl_dev_get_next(dev);
            }
            let align = ndctl_sys::daxctl_region_get_align(region);
            let size = ndctl_sys::daxctl_region_get_size(region);
            Some(DaxRegionInfo {
                id: ndctl_sys::daxctl_region_get_id(region),
                size: (size != u64::MAX).then_some(size),
                available_size: ndctl_sys::daxctl_region_get_available_size(region),
                align: (align != std::os::raw::c_ulong::MAX).then_some(align),
                devices,
            })
        }
    }

    /// Configures this (seed) dax for `ns` and enables it.
    pub(crate) fn setup(
        &self,
        ns: &crate::Namespace<'ctx>,
        uuid: &[u8; 16],
        loc: MapLocation,
        align: u64,
    ) -> Result<()> {
        let n = self.name();
        let p = self.ptr();
        // SAFETY: the dax and namespace are alive; setters copy their inputs.
        unsafe {
            check(
                &n,
                "set uuid",
                ndctl_sys::ndctl_dax_set_uuid(p, { *uuid }.as_mut_ptr()),
            )?;
            check(
                &n,
                "set location",
                ndctl_sys::ndctl_dax_set_location(p, raw_location(loc)),
            )?;
            check(
                &n,
                "set align",
                ndctl_sys::ndctl_dax_set_align(p, align as _),
            )?;
            check(
                &n,
                "set namespace",
                ndctl_sys::ndctl_dax_set_namespace(p, ns.ptr()),
            )?;
            check(&n, "enable", ndctl_sys::ndctl_dax_enable(p))
        }
    }
}

impl<'ctx> Btt<'ctx> {
    /// The device name, e.g. `btt0.1`.
    pub fn name(&self) -> String {
        // SAFETY: the btt is alive for 'ctx; libndctl owns the string.
        unsafe { string(ndctl_sys::ndctl_btt_get_devname(self.ptr())) }.unwrap_or_default()
    }
    /// Usable size after the BTT's metadata, bytes.
    pub fn size(&self) -> u64 {
        // SAFETY: the btt is alive for 'ctx.
        unsafe { ndctl_sys::ndctl_btt_get_size(self.ptr()) }
    }
    /// Logical sector size, bytes.
    pub fn sector_size(&self) -> u32 {
        // SAFETY: as above.
        unsafe { ndctl_sys::ndctl_btt_get_sector_size(self.ptr()) }
    }
    /// Sector sizes the kernel supports for a BTT.
    pub fn supported_sector_sizes(&self) -> Vec<u32> {
        // SAFETY: as above; indices are below the reported count.
        unsafe {
            let n = ndctl_sys::ndctl_btt_get_num_sector_sizes(self.ptr());
            (0..n)
                .map(|i| ndctl_sys::ndctl_btt_get_supported_sector_size(self.ptr(), i))
                .collect()
        }
    }
    /// The personality's uuid.
    pub fn uuid(&self) -> [u8; 16] {
        let mut u = [0u8; 16];
        // SAFETY: `u` is the 16-byte uuid_t libndctl writes.
        unsafe { ndctl_sys::ndctl_btt_get_uuid(self.ptr(), u.as_mut_ptr()) };
        u
    }
    /// The block device, e.g. `pmem0.1s`, when enabled.
    pub fn block_device(&self) -> Option<String> {
        // SAFETY: as above.
        unsafe { string(ndctl_sys::ndctl_btt_get_block_device(self.ptr())) }
            .filter(|s| !s.is_empty())
    }
    /// Configures this (seed) btt for `ns` and enables it.
    pub(crate) fn setup(
        &self,
        ns: &crate::Namespace<'ctx>,
        uuid: &[u8; 16],
        sector_size: u32,
    ) -> Result<()> {
        let n = self.name();
        let p = self.ptr();
        // SAFETY: the btt and namespace are alive; setters copy their inputs.
        unsafe {
            check(
                &n,
                "set uuid",
                ndctl_sys::ndctl_btt_set_uuid(p, { *uuid }.as_mut_ptr()),
            )?;
            check(
                &n,
                "set sector size",
                ndctl_sys::ndctl_btt_set_sector_size(p, sector_size),
            )?;
            check(
                &n,
                "set namespace",
                ndctl_sys::ndctl_btt_set_namespace(p, ns.ptr()),
            )?;
            check(&n, "enable", ndctl_sys::ndctl_btt_enable(p))
        }
    }
}
