//! Namespace personalities: pfn (fsdax), dax (devdax) and btt (sector) devices, read and set up.

use crate::error::{Error, Result};
use crate::iter::{object, string};
use crate::types::MapLocation;

object!(
    /// A pfn device: gives an fsdax namespace its `struct page` map (`pfn0.1`).
    Pfn, Pfns, pmem_sys::ndctl_pfn
);
object!(
    /// A dax device: turns a namespace into device-dax (`dax0.1`).
    Dax, Daxes, pmem_sys::ndctl_dax
);
object!(
    /// A btt device: gives a sector-mode namespace atomic sector updates (`btt0.1`).
    Btt, Btts, pmem_sys::ndctl_btt
);

fn location(loc: pmem_sys::ndctl_pfn_loc) -> Option<MapLocation> {
    match loc {
        pmem_sys::NDCTL_PFN_LOC_RAM => Some(MapLocation::Mem),
        pmem_sys::NDCTL_PFN_LOC_PMEM => Some(MapLocation::Dev),
        _ => None,
    }
}

fn raw_location(loc: MapLocation) -> pmem_sys::ndctl_pfn_loc {
    match loc {
        MapLocation::Mem => pmem_sys::NDCTL_PFN_LOC_RAM,
        MapLocation::Dev => pmem_sys::NDCTL_PFN_LOC_PMEM,
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
        unsafe { string(pmem_sys::ndctl_pfn_get_devname(self.ptr())) }.unwrap_or_default()
    }
    /// Usable size after the metadata reservation, bytes.
    pub fn size(&self) -> u64 {
        // SAFETY: the pfn is alive for 'ctx.
        unsafe { pmem_sys::ndctl_pfn_get_size(self.ptr()) }
    }
    /// Where the page map lives.
    pub fn location(&self) -> Option<MapLocation> {
        // SAFETY: as above.
        location(unsafe { pmem_sys::ndctl_pfn_get_location(self.ptr()) })
    }
    /// Mapping alignment, bytes.
    pub fn align(&self) -> u64 {
        // SAFETY: as above.
        unsafe { pmem_sys::ndctl_pfn_get_align(self.ptr()) }
    }
    /// Alignments the kernel supports for this device.
    pub fn supported_alignments(&self) -> Vec<u64> {
        // SAFETY: as above; indices are below the reported count.
        unsafe {
            let n = pmem_sys::ndctl_pfn_get_num_alignments(self.ptr());
            (0..n)
                .map(|i| pmem_sys::ndctl_pfn_get_supported_alignment(self.ptr(), i))
                .collect()
        }
    }
    /// The personality's uuid.
    pub fn uuid(&self) -> [u8; 16] {
        let mut u = [0u8; 16];
        // SAFETY: `u` is the 16-byte uuid_t libndctl writes.
        unsafe { pmem_sys::ndctl_pfn_get_uuid(self.ptr(), u.as_mut_ptr()) };
        u
    }
    /// The block device, e.g. `pmem0.1`, when enabled.
    pub fn block_device(&self) -> Option<String> {
        // SAFETY: as above.
        unsafe { string(pmem_sys::ndctl_pfn_get_block_device(self.ptr())) }
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
                pmem_sys::ndctl_pfn_set_uuid(p, uuid.as_ptr() as *mut u8),
            )?;
            check(
                &n,
                "set location",
                pmem_sys::ndctl_pfn_set_location(p, raw_location(loc)),
            )?;
            if pmem_sys::ndctl_pfn_has_align(p) != 0 {
                check(
                    &n,
                    "set align",
                    pmem_sys::ndctl_pfn_set_align(p, align as _),
                )?;
            }
            check(
                &n,
                "set namespace",
                pmem_sys::ndctl_pfn_set_namespace(p, ns.ptr()),
            )?;
            check(&n, "enable", pmem_sys::ndctl_pfn_enable(p))
        }
    }
}

impl<'ctx> Dax<'ctx> {
    /// The device name, e.g. `dax0.1`.
    pub fn name(&self) -> String {
        // SAFETY: the dax is alive for 'ctx; libndctl owns the string.
        unsafe { string(pmem_sys::ndctl_dax_get_devname(self.ptr())) }.unwrap_or_default()
    }
    /// Usable size after the metadata reservation, bytes.
    pub fn size(&self) -> u64 {
        // SAFETY: the dax is alive for 'ctx.
        unsafe { pmem_sys::ndctl_dax_get_size(self.ptr()) }
    }
    /// Where the page map lives.
    pub fn location(&self) -> Option<MapLocation> {
        // SAFETY: as above.
        location(unsafe { pmem_sys::ndctl_dax_get_location(self.ptr()) })
    }
    /// Mapping alignment, bytes.
    pub fn align(&self) -> u64 {
        // SAFETY: as above.
        unsafe { pmem_sys::ndctl_dax_get_align(self.ptr()) }
    }
    /// Alignments the kernel supports for this device.
    pub fn supported_alignments(&self) -> Vec<u64> {
        // SAFETY: as above; indices are below the reported count.
        unsafe {
            let n = pmem_sys::ndctl_dax_get_num_alignments(self.ptr());
            (0..n)
                .map(|i| pmem_sys::ndctl_dax_get_supported_alignment(self.ptr(), i))
                .collect()
        }
    }
    /// The personality's uuid.
    pub fn uuid(&self) -> [u8; 16] {
        let mut u = [0u8; 16];
        // SAFETY: `u` is the 16-byte uuid_t libndctl writes.
        unsafe { pmem_sys::ndctl_dax_get_uuid(self.ptr(), u.as_mut_ptr()) };
        u
    }
    /// The character device, e.g. `dax0.1` (from libdaxctl), when enabled.
    pub fn char_device(&self) -> Option<String> {
        // SAFETY: the dax is alive; its daxctl region and devices are owned
        // by the daxctl context embedded in the ndctl context.
        unsafe {
            let region = pmem_sys::ndctl_dax_get_daxctl_region(self.ptr());
            if region.is_null() {
                return None;
            }
            let dev = pmem_sys::daxctl_dev_get_first(region);
            if dev.is_null() {
                return None;
            }
            string(pmem_sys::daxctl_dev_get_devname(dev))
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
                pmem_sys::ndctl_dax_set_uuid(p, uuid.as_ptr() as *mut u8),
            )?;
            check(
                &n,
                "set location",
                pmem_sys::ndctl_dax_set_location(p, raw_location(loc)),
            )?;
            check(
                &n,
                "set align",
                pmem_sys::ndctl_dax_set_align(p, align as _),
            )?;
            check(
                &n,
                "set namespace",
                pmem_sys::ndctl_dax_set_namespace(p, ns.ptr()),
            )?;
            check(&n, "enable", pmem_sys::ndctl_dax_enable(p))
        }
    }
}

impl<'ctx> Btt<'ctx> {
    /// The device name, e.g. `btt0.1`.
    pub fn name(&self) -> String {
        // SAFETY: the btt is alive for 'ctx; libndctl owns the string.
        unsafe { string(pmem_sys::ndctl_btt_get_devname(self.ptr())) }.unwrap_or_default()
    }
    /// Usable size after the BTT's metadata, bytes.
    pub fn size(&self) -> u64 {
        // SAFETY: the btt is alive for 'ctx.
        unsafe { pmem_sys::ndctl_btt_get_size(self.ptr()) }
    }
    /// Logical sector size, bytes.
    pub fn sector_size(&self) -> u32 {
        // SAFETY: as above.
        unsafe { pmem_sys::ndctl_btt_get_sector_size(self.ptr()) }
    }
    /// Sector sizes the kernel supports for a BTT.
    pub fn supported_sector_sizes(&self) -> Vec<u32> {
        // SAFETY: as above; indices are below the reported count.
        unsafe {
            let n = pmem_sys::ndctl_btt_get_num_sector_sizes(self.ptr());
            (0..n)
                .map(|i| pmem_sys::ndctl_btt_get_supported_sector_size(self.ptr(), i))
                .collect()
        }
    }
    /// The personality's uuid.
    pub fn uuid(&self) -> [u8; 16] {
        let mut u = [0u8; 16];
        // SAFETY: `u` is the 16-byte uuid_t libndctl writes.
        unsafe { pmem_sys::ndctl_btt_get_uuid(self.ptr(), u.as_mut_ptr()) };
        u
    }
    /// The block device, e.g. `pmem0.1s`, when enabled.
    pub fn block_device(&self) -> Option<String> {
        // SAFETY: as above.
        unsafe { string(pmem_sys::ndctl_btt_get_block_device(self.ptr())) }
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
                pmem_sys::ndctl_btt_set_uuid(p, uuid.as_ptr() as *mut u8),
            )?;
            check(
                &n,
                "set sector size",
                pmem_sys::ndctl_btt_set_sector_size(p, sector_size),
            )?;
            check(
                &n,
                "set namespace",
                pmem_sys::ndctl_btt_set_namespace(p, ns.ptr()),
            )?;
            check(&n, "enable", pmem_sys::ndctl_btt_enable(p))
        }
    }
}
