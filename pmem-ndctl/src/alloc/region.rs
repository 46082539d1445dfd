//! The extent map of one region and the kernel's rules over it: holes, free space, first-fit placement.

use super::geometry::{align_down, align_up, RegionGeometry};
use super::layout::Layout;
use crate::error::{Error, Result};
use crate::size::Size;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// A contiguous byte range of a region, by offset from the region's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Extent {
    /// Offset from the start of the region, in bytes.
    pub offset: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Extent {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.offset + self.size
    }
}

/// A region's used extents, kept sorted by offset, and what the kernel
/// derives from them: `available_size`, `max_available_extent`, and where
/// the next namespace of a given size will go (`scan_allocate`: the lowest
/// aligned hole that holds it whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionModel {
    geometry: RegionGeometry,
    used: Vec<Extent>,
    used_bytes: u64,
    /// The largest hole, kept current on every change.
    max_hole: u64,
}

impl RegionModel {
    /// An empty region.
    pub fn new(geometry: RegionGeometry) -> Result<Self> {
        geometry.validate()?;
        let mut m = RegionModel {
            geometry,
            used: Vec::new(),
            used_bytes: 0,
            max_hole: 0,
        };
        m.refresh();
        Ok(m)
    }

    fn refresh(&mut self) {
        self.max_hole = self.holes().map(|h| h.size).max().unwrap_or(0);
    }

    /// A region holding `extents`; refuses extents that overlap or leave the region.
    pub fn with_extents(
        geometry: RegionGeometry,
        extents: impl IntoIterator<Item = Extent>,
    ) -> Result<Self> {
        let mut m = RegionModel::new(geometry)?;
        let mut extents: Vec<Extent> = extents.into_iter().collect();
        extents.sort_unstable();
        for e in extents {
            // Sorted input: each extent goes last, and only its predecessor can overlap.
            m.check_fits(e)?;
            if m.used.last().is_some_and(|last| last.end() > e.offset) {
                return Err(m.overlap(e));
            }
            m.used.push(e);
            m.used_bytes += e.size;
        }
        m.refresh();
        Ok(m)
    }

    /// The region's geometry.
    pub fn geometry(&self) -> &RegionGeometry {
        &self.geometry
    }

    /// The region's name.
    pub fn name(&self) -> &str {
        &self.geometry.name
    }

    /// Used extents, sorted by offset.
    pub fn extents(&self) -> &[Extent] {
        &self.used
    }

    /// Bytes held by namespaces.
    pub fn used(&self) -> u64 {
        self.used_bytes
    }

    /// Free holes, lowest first, each trimmed to the region alignment as the
    /// kernel trims them; empty remnants are skipped.
    pub fn holes(&self) -> impl Iterator<Item = Extent> + '_ {
        let align = self.geometry.align;
        let size = self.geometry.size;
        let starts = std::iter::once(0).chain(self.used.iter().map(Extent::end));
        let ends = self
            .used
            .iter()
            .map(|e| e.offset)
            .chain(std::iter::once(size));
        starts.zip(ends).filter_map(move |(s, e)| {
            let s = align_up(s, align)?;
            let e = align_down(e, align);
            (e > s).then(|| Extent {
                offset: s,
                size: e - s,
            })
        })
    }

    /// Total free bytes, as the kernel's `available_size` reports them.
    pub fn available_size(&self) -> u64 {
        align_down(self.geometry.size - self.used_bytes, self.geometry.align)
    }

    /// The largest hole, as the kernel's `max_available_extent` reports it.
    pub fn max_available_extent(&self) -> u64 {
        self.max_hole
    }

    /// The number of free holes.
    pub fn hole_count(&self) -> usize {
        self.holes().count()
    }

    /// The hole the kernel will carve a namespace of raw `size` from (it
    /// starts at the hole's offset), or `None` if no hole holds it.
    pub fn first_fit(&self, size: u64) -> Option<Extent> {
        if size > self.max_hole {
            return None;
        }
        self.holes().find(|h| h.size >= size)
    }

    /// The largest raw size that `layout` can be created with right now.
    pub fn largest_for(&self, layout: &Layout) -> u64 {
        let a = layout.size_align(&self.geometry);
        let min = layout.mode.min_size();
        self.holes()
            .map(|h| {
                let mut n = align_down(h.size, a);
                while n >= min.max(1) && layout.usable(&self.geometry, h.offset, n).is_none() {
                    n -= a;
                }
                if n < min.max(1) {
                    0
                } else {
                    n
                }
            })
            .max()
            .unwrap_or(0)
    }

    fn check_fits(&self, e: Extent) -> Result<()> {
        if e.size == 0
            || e.offset
                .checked_add(e.size)
                .map_or(true, |end| end > self.geometry.size)
        {
            return Err(Error::invalid(
                &self.geometry.name,
                format!(
                    "extent at offset {:#x} of {} does not fit in the region's {}",
                    e.offset,
                    Size(e.size),
                    Size(self.geometry.size)
                ),
            ));
        }
        Ok(())
    }

    fn overlap(&self, e: Extent) -> Error {
        Error::invalid(
            &self.geometry.name,
            format!(
                "extent at offset {:#x} of {} overlaps a namespace",
                e.offset,
                Size(e.size)
            ),
        )
    }

    /// Records a used extent; refuses one that overlaps another or leaves the region.
    pub fn insert(&mut self, e: Extent) -> Result<()> {
        self.check_fits(e)?;
        let i = self.used.partition_point(|u| u.offset < e.offset);
        let overlaps_prev = i > 0 && self.used[i - 1].end() > e.offset;
        let overlaps_next = i < self.used.len() && self.used[i].offset < e.end();
        if overlaps_prev || overlaps_next {
            return Err(self.overlap(e));
        }
        self.used.insert(i, e);
        self.used_bytes += e.size;
        self.refresh();
        Ok(())
    }

    /// Removes the extent starting at `offset`, returning it.
    pub fn remove(&mut self, offset: u64) -> Option<Extent> {
        let i = self.used.binary_search_by_key(&offset, |e| e.offset).ok()?;
        let e = self.used.remove(i);
        self.used_bytes -= e.size;
        self.refresh();
        Some(e)
    }

    /// Places a namespace of raw `size` where the kernel would, records it and
    /// returns its extent; [`Error::NoSpace`] (nothing changed) if no hole holds it.
    pub fn allocate(&mut self, size: u64) -> Result<Extent> {
        let hole = self.first_fit(size).ok_or_else(|| Error::NoSpace {
            object: self.geometry.name.clone(),
            requested: Size(size),
            largest: Size(self.max_available_extent()),
        })?;
        let e = Extent {
            offset: hole.offset,
            size,
        };
        self.insert(e)?;
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::geometry::MIB;
    use crate::types::Mode;

    fn vm_region() -> RegionModel {
        RegionModel::new(RegionGeometry::labelled("region0", 4 << 30, 1920 * MIB)).unwrap()
    }

    #[test]
    fn kernel_example_four_fsdax_one_devdax_destroy_two() {
        // 4 x 256 MiB fsdax, then a 144 MiB devdax, on the VM's 1920 MiB
        // region; destroying two adjacent fsdax namespaces leaves the figures
        // the kernel reported: available 1264 MiB, largest extent 752 MiB.
        let mut r = vm_region();
        let ext: Vec<_> = [256, 256, 256, 256, 144]
            .iter()
            .map(|m| r.allocate(m * MIB).unwrap())
            .collect();
        assert_eq!(ext[4].offset, 1024 * MIB);
        r.remove(ext[1].offset).unwrap();
        r.remove(ext[2].offset).unwrap();
        assert_eq!(r.available_size(), 1264 * MIB);
        assert_eq!(r.max_available_extent(), 752 * MIB);
        assert_eq!(r.hole_count(), 2);
        // The kernel fills the lowest hole first: a 512 MiB request lands at 256 MiB.
        assert_eq!(r.first_fit(512 * MIB).unwrap().offset, 256 * MIB);
        assert_eq!(r.first_fit(528 * MIB).unwrap().offset, 1168 * MIB);
        let e = r.allocate(768 * MIB).unwrap_err();
        assert_eq!(
            e.to_string(),
            "region0: no room for 768 MiB: the largest that fits is 752 MiB"
        );
        assert_eq!(
            r.available_size(),
            1264 * MIB,
            "failed request changed nothing"
        );
    }

    #[test]
    fn largest_per_mode_accounts_for_alignment_and_minimum() {
        let mut r = vm_region();
        r.insert(Extent {
            offset: 0,
            size: 1904 * MIB,
        })
        .unwrap();
        assert_eq!(r.largest_for(&Layout::new(Mode::Fsdax)), 16 * MIB);
        // Sector with v1.1 labels needs 32 MiB: nothing fits in 16 MiB.
        assert_eq!(r.largest_for(&Layout::new(Mode::Sector)), 0);
    }

    #[test]
    fn refuses_overlap_and_overflow() {
        let mut r = vm_region();
        r.insert(Extent {
            offset: 16 * MIB,
            size: 32 * MIB,
        })
        .unwrap();
        let e = r
            .insert(Extent {
                offset: 32 * MIB,
                size: 16 * MIB,
            })
            .unwrap_err();
        assert!(e
            .to_string()
            .starts_with("region0: extent at offset 0x2000000"));
        assert!(r
            .insert(Extent {
                offset: 1904 * MIB,
                size: 32 * MIB
            })
            .is_err());
        assert_eq!(r.used(), 32 * MIB);
        assert_eq!(r.holes().count(), 2);
    }
}
