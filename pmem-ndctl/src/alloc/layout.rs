//! A namespace's personality (mode, map location, alignment, sector size) and its metadata overhead.
//!
//! The usable size follows the kernel's own arithmetic:
//! - fsdax/devdax (`nd_pfn_init`): the info block and, with `map=dev`, 64
//!   bytes of `struct page` per 4 KiB page are reserved at the start,
//!   rounded up to the alignment; a misaligned tail is truncated:
//!   `reserve = ALIGN(start + 8K + 64 * npfns, align) - start` with
//!   `npfns = (size - 8K) / 4K` (map=mem: `ALIGN(start + 8K, align) - start`).
//! - sector (`btt.c`): the namespace is cut into arenas of at most 512 GiB;
//!   each loses two info blocks, a 16 KiB flog, its map (4 bytes a block)
//!   and 256 free blocks. BTT v1.1 (labels v1.1) starts 4 KiB in.
//! - raw: no metadata.

use super::geometry::{align_down, align_up, misaligned, Labels, RegionGeometry, MIB};
use crate::error::{Error, Result};
use crate::rules;
use crate::size::Size;
use crate::types::{MapLocation, Mode};
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

const PAGE: u64 = 4096;
/// `memremap_compat_align()` on x86: namespaces with a pfn/dax device start on it.
const COMPAT_ALIGN: u64 = 2 * MIB;
const KIB_8: u64 = 8192;
/// Bytes of `struct page` reserved per page with map=dev (`MAX_STRUCT_PAGE_SIZE`).
const STRUCT_PAGE: u64 = 64;

const ARENA_MIN: u64 = 16 * MIB;
const ARENA_MAX: u64 = 1 << 39;
const BTT_PAGE: u64 = 4096;
const BTT_NFREE: u64 = 256;
const BTT_LOG_GROUP: u64 = 64;
const BTT_MAP_ENTRY: u64 = 4;
const BTT_LBA_ALIGN: u64 = 64;

pub use crate::rules::{PFN_ALIGNMENTS, SECTOR_SIZES};

/// How a namespace is to be set up. Sizes handed to the allocator are raw
/// namespace sizes (what `ndctl create-namespace --size` takes); [`Layout::usable`]
/// says what the device will expose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Layout {
    /// The namespace mode.
    #[cfg_attr(feature = "serde", serde(with = "super::serde_str"))]
    pub mode: Mode,
    /// Where the page map lives (fsdax/devdax only).
    #[cfg_attr(feature = "serde", serde(with = "super::serde_str"))]
    pub map: MapLocation,
    /// pfn/dax alignment in bytes (fsdax/devdax only).
    pub align: u64,
    /// Logical sector size in bytes (sector mode only).
    pub sector_size: u64,
}

impl Layout {
    /// The defaults of `ndctl create-namespace -m MODE`: map=dev, 2 MiB
    /// alignment, 4096-byte sectors.
    pub fn new(mode: Mode) -> Self {
        Layout {
            mode,
            map: MapLocation::Dev,
            align: rules::DEFAULT_PFN_ALIGN,
            sector_size: 4096,
        }
    }

    fn has_pfn(&self) -> bool {
        rules::has_pfn(self.mode)
    }

    /// Every raw size in `region` must be a multiple of this: the region
    /// alignment and, for fsdax/devdax, the pfn alignment × interleave ways.
    pub fn size_align(&self, region: &RegionGeometry) -> u64 {
        let align = if self.has_pfn() {
            self.align
        } else {
            rules::PAGE_SIZE
        };
        rules::size_unit(region.align, align, region.ways)
    }

    /// The smallest raw size the kernel accepts for this layout in `region`
    /// (mode minimum, rounded up to the size alignment, with room for metadata).
    pub fn min_size(&self, region: &RegionGeometry) -> u64 {
        let a = self.size_align(region);
        let mut n = align_up(self.mode.min_size().max(1), a).unwrap_or(u64::MAX);
        while n <= region.size && self.usable(region, 0, n).is_none() {
            n = n.saturating_add(a);
        }
        n
    }

    /// Checks a raw size for this layout in `region`, with the wording every
    /// backend reports. Does not look at free space.
    pub fn check(&self, region: &RegionGeometry, size: u64) -> Result<()> {
        let name = region.name.as_str();
        if let Mode::Unknown(_) = self.mode {
            return Err(Error::invalid(
                name,
                format!("cannot create a namespace of mode {}", self.mode),
            ));
        }
        if region.labels == Labels::None {
            return Err(Error::invalid(
                name,
                "label-less region: its one raw namespace cannot be subdivided (initialise labels first)",
            ));
        }
        if self.has_pfn() && !PFN_ALIGNMENTS.contains(&self.align) {
            return Err(Error::invalid(
                name,
                format!(
                    "{} is not a supported {} alignment (4 KiB, 2 MiB or 1 GiB)",
                    Size(self.align),
                    self.mode
                ),
            ));
        }
        if self.mode == Mode::Sector && !SECTOR_SIZES.contains(&self.sector_size) {
            return Err(Error::invalid(
                name,
                format!(
                    "{} is not a supported sector size (512, 520, 528, 4096, 4104, 4160 or 4224)",
                    self.sector_size
                ),
            ));
        }
        if size == 0 {
            return Err(Error::invalid(name, "size must not be zero"));
        }
        let a = self.size_align(region);
        if size % a != 0 {
            return Err(misaligned(name, size, a));
        }
        if size < self.mode.min_size() {
            return Err(rules::too_small(name, self.mode, size));
        }
        if self.usable(region, 0, size).is_none() {
            return Err(Error::invalid(
                name,
                format!(
                    "a {} namespace of {} leaves no room for data after its metadata (at least {} needed)",
                    self.mode,
                    Size(size),
                    Size(self.min_size(region))
                ),
            ));
        }
        Ok(())
    }

    /// The bytes the device will expose for a namespace of raw `size` at
    /// region offset `offset`, or `None` when the kernel would refuse it.
    pub fn usable(&self, region: &RegionGeometry, offset: u64, size: u64) -> Option<u64> {
        match self.mode {
            Mode::Raw => Some(size),
            Mode::Fsdax | Mode::Devdax => {
                pfn_usable(region.base.checked_add(offset)?, size, self.align, self.map)
            }
            Mode::Sector => {
                let initial = if region.labels == Labels::V1_2 {
                    0
                } else {
                    PAGE
                };
                btt_usable(size.checked_sub(initial)?, self.sector_size)
            }
            Mode::Unknown(_) => None,
        }
    }

    /// The smallest valid raw size in `region` whose usable size (at region
    /// offset `offset`) is at least `usable`; `None` if none fits the region.
    pub fn raw_for_usable(&self, region: &RegionGeometry, offset: u64, usable: u64) -> Option<u64> {
        let a = self.size_align(region);
        let mut n = align_up(usable.max(self.mode.min_size()).max(1), a)?;
        while n <= region.size {
            if self.usable(region, offset, n).is_some_and(|u| u >= usable) {
                return Some(n);
            }
            n = n.checked_add(a)?;
        }
        None
    }
}

fn pfn_usable(start: u64, size: u64, pfn_align: u64, map: MapLocation) -> Option<u64> {
    let align = pfn_align.max(COMPAT_ALIGN);
    if start % COMPAT_ALIGN != 0 || size <= KIB_8 {
        return None;
    }
    let end = start.checked_add(size)?;
    let end_trunc = end - align_down(end, align);
    let meta_end = match map {
        MapLocation::Dev => {
            let npfns = (size - KIB_8) / PAGE;
            start + KIB_8 + STRUCT_PAGE * npfns
        }
        MapLocation::Mem => start + KIB_8,
    };
    let reserve = align_up(meta_end, align)? - start;
    if reserve >= size - end_trunc {
        return None;
    }
    Some(align_down(size - reserve - end_trunc, PAGE))
}

fn btt_usable(rawsize: u64, lbasize: u64) -> Option<u64> {
    if rawsize < ARENA_MIN {
        return None;
    }
    let internal_lbasize = align_up(lbasize, BTT_LBA_ALIGN)?;
    let sector = if lbasize >= 4096 { 4096 } else { 512 };
    let log = align_up(BTT_NFREE * BTT_LOG_GROUP, BTT_PAGE)?;
    let mut remaining = rawsize;
    let mut nlba = 0;
    while remaining > 0 {
        let arena = remaining.min(ARENA_MAX);
        remaining -= arena;
        if arena < ARENA_MIN {
            break;
        }
        let available = align_down(arena, BTT_PAGE) - 2 * BTT_PAGE - log;
        let internal_nlba = (available - BTT_PAGE) / (internal_lbasize + BTT_MAP_ENTRY);
        nlba += internal_nlba - BTT_NFREE;
    }
    Some(nlba * sector)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm_region() -> RegionGeometry {
        RegionGeometry::labelled("region0", 4 << 30, 1920 * MIB)
    }

    #[test]
    fn fsdax_256m_map_dev_gives_250m() {
        let r = vm_region();
        for mode in [Mode::Fsdax, Mode::Devdax] {
            assert_eq!(Layout::new(mode).usable(&r, 0, 256 * MIB), Some(250 * MIB));
        }
        let mem = Layout {
            map: MapLocation::Mem,
            ..Layout::new(Mode::Fsdax)
        };
        assert_eq!(mem.usable(&r, 0, 256 * MIB), Some(254 * MIB));
        assert_eq!(
            Layout::new(Mode::Raw).usable(&r, 0, 256 * MIB),
            Some(256 * MIB)
        );
    }

    #[test]
    fn one_gib_devdax_reserves_a_whole_gib() {
        let r = vm_region();
        let dax = Layout {
            align: 1 << 30,
            ..Layout::new(Mode::Devdax)
        };
        // The page map area rounds up to a whole 1 GiB: 2 GiB raw -> 1 GiB.
        assert_eq!(dax.usable(&r, 0, 2 << 30), Some(1 << 30));
        // 16 MiB past a boundary the reserve shrinks by what the tail loses.
        assert_eq!(dax.usable(&r, 16 * MIB, 2 << 30), Some(1 << 30));
        assert_eq!(dax.usable(&r, 0, 1 << 30), None);
        assert_eq!(dax.usable(&r, 16 * MIB, 1 << 30), None);
        assert_eq!(dax.min_size(&r), 2 << 30);
        assert_eq!(dax.size_align(&r), 1 << 30);
    }

    #[test]
    fn sector_overhead_follows_the_btt_layout() {
        let r = vm_region();
        let l = Layout::new(Mode::Sector);
        // v1.1: 4 KiB offset, one arena: (256M-4K) rounded to pages, minus
        // 2 info pages and 16 KiB of log, one page of slack, / (4096 + 4).
        let internal = (256 * MIB - 4096 - 8192 - 16384 - 4096) / 4100;
        assert_eq!(l.usable(&r, 0, 256 * MIB), Some((internal - 256) * 4096));
        // The BTT needs 16 MiB after its offset: 16 MiB is too small with v1.1 labels.
        assert_eq!(l.usable(&r, 0, 16 * MIB), None);
        assert_eq!(l.min_size(&r), 32 * MIB);
        let v12 = RegionGeometry {
            labels: Labels::V1_2,
            ..r.clone()
        };
        assert!(l.usable(&v12, 0, 16 * MIB).is_some());
        let e = l.check(&r, 16 * MIB).unwrap_err();
        assert_eq!(
            e.to_string(),
            "region0: a sector namespace of 16 MiB leaves no room for data after its metadata (at least 32 MiB needed)"
        );
    }

    #[test]
    fn checks_use_one_wording() {
        let r = RegionGeometry::labelled("region1", 0, 1920 * MIB);
        let fsdax = Layout::new(Mode::Fsdax);
        assert_eq!(
            fsdax.check(&r, 17 * MIB).unwrap_err().to_string(),
            "region1: size 17 MiB is not a multiple of the 16 MiB alignment"
        );
        assert_eq!(
            Layout::new(Mode::Raw).check(&r, 0).unwrap_err().to_string(),
            "region1: size must not be zero"
        );
        let odd = Layout {
            align: 64 * 1024,
            ..fsdax
        };
        assert_eq!(
            odd.check(&r, 16 * MIB).unwrap_err().to_string(),
            "region1: 64 KiB is not a supported fsdax alignment (4 KiB, 2 MiB or 1 GiB)"
        );
        let unlabelled = RegionGeometry {
            labels: Labels::None,
            ..r.clone()
        };
        assert!(fsdax
            .check(&unlabelled, 16 * MIB)
            .unwrap_err()
            .to_string()
            .starts_with("region1: label-less region"));
        assert!(fsdax.check(&r, 16 * MIB).is_ok());
        // Interleaved over 3 DIMMs with 2 MiB pages: sizes are multiples of 48 MiB.
        let three = RegionGeometry { ways: 3, ..r };
        assert_eq!(fsdax.size_align(&three), 48 * MIB);
        assert_eq!(
            fsdax.check(&three, 32 * MIB).unwrap_err().to_string(),
            "region1: size 32 MiB is not a multiple of the 48 MiB alignment"
        );
    }

    #[test]
    fn raw_for_usable_rounds_up_past_the_metadata() {
        let r = vm_region();
        let fsdax = Layout::new(Mode::Fsdax);
        assert_eq!(fsdax.raw_for_usable(&r, 0, 250 * MIB), Some(256 * MIB));
        assert_eq!(fsdax.raw_for_usable(&r, 0, 251 * MIB), Some(272 * MIB));
        assert_eq!(fsdax.raw_for_usable(&r, 0, 1920 * MIB), None);
        assert_eq!(
            Layout::new(Mode::Raw).raw_for_usable(&r, 0, 1),
            Some(16 * MIB)
        );
    }
}
