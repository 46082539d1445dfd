//! The capacity report: per region and in total, free space against the largest namespace that can be made.

use super::layout::Layout;
use super::region::RegionModel;
use crate::types::Mode;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// Usable bytes of the largest namespace that can be created now, per mode
/// (default layouts: map=dev, 2 MiB alignment, 4096-byte sectors).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct ModeSizes {
    /// fsdax.
    pub fsdax: u64,
    /// devdax.
    pub devdax: u64,
    /// sector.
    pub sector: u64,
    /// raw.
    pub raw: u64,
}

impl ModeSizes {
    /// The value for `mode`.
    pub fn get(&self, mode: Mode) -> u64 {
        match mode {
            Mode::Fsdax => self.fsdax,
            Mode::Devdax => self.devdax,
            Mode::Sector => self.sector,
            Mode::Raw => self.raw,
            Mode::Unknown(_) => 0,
        }
    }

    fn max(self, o: ModeSizes) -> ModeSizes {
        ModeSizes {
            fsdax: self.fsdax.max(o.fsdax),
            devdax: self.devdax.max(o.devdax),
            sector: self.sector.max(o.sector),
            raw: self.raw.max(o.raw),
        }
    }
}

/// Capacity of one region. All sizes in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct RegionCapacity {
    /// The region's name.
    pub region: String,
    /// Its size.
    pub size: u64,
    /// Free bytes (`available_size`).
    pub free: u64,
    /// The largest hole (`max_available_extent`), raw.
    pub max_extent: u64,
    /// Number of free holes.
    pub holes: usize,
    /// Largest namespace that can be made, usable bytes, per mode.
    pub largest: ModeSizes,
}

/// Capacity over all regions. All sizes in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct TotalCapacity {
    /// Sum of region sizes.
    pub size: u64,
    /// Sum of free bytes.
    pub free: u64,
    /// The largest hole of any region, raw.
    pub max_extent: u64,
    /// Number of free holes in all regions.
    pub holes: usize,
    /// Largest namespace that can be made in any one region, usable bytes, per mode.
    pub largest: ModeSizes,
}

/// What GetCapacity and MaximumVolumeSize serve: free space, and the largest
/// volume that can actually be made, per region and in total.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub struct CapacityReport {
    /// Per region, in order.
    pub regions: Vec<RegionCapacity>,
    /// Over all regions.
    pub total: TotalCapacity,
}

fn largest_usable(m: &RegionModel, mode: Mode) -> u64 {
    let layout = Layout::new(mode);
    let raw = m.largest_for(&layout);
    if raw == 0 {
        return 0;
    }
    m.first_fit(raw)
        .and_then(|hole| layout.usable(m.geometry(), hole.offset, raw))
        .unwrap_or(0)
}

impl CapacityReport {
    /// The report for regions in the given state.
    pub fn from_models(models: &[RegionModel]) -> Self {
        let regions: Vec<RegionCapacity> = models
            .iter()
            .map(|m| RegionCapacity {
                region: m.name().to_string(),
                size: m.geometry().size,
                free: m.available_size(),
                max_extent: m.max_available_extent(),
                holes: m.hole_count(),
                largest: ModeSizes {
                    fsdax: largest_usable(m, Mode::Fsdax),
                    devdax: largest_usable(m, Mode::Devdax),
                    sector: largest_usable(m, Mode::Sector),
                    raw: largest_usable(m, Mode::Raw),
                },
            })
            .collect();
        let total = regions
            .iter()
            .fold(TotalCapacity::default(), |t, r| TotalCapacity {
                size: t.size + r.size,
                free: t.free + r.free,
                max_extent: t.max_extent.max(r.max_extent),
                holes: t.holes + r.holes,
                largest: t.largest.max(r.largest),
            });
        CapacityReport { regions, total }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::geometry::{RegionGeometry, MIB};

    #[test]
    fn free_against_largest() {
        let g =
            |i: u64| RegionGeometry::labelled(format!("region{i}"), (4 + 2 * i) << 30, 1920 * MIB);
        let mut a = RegionModel::new(g(0)).unwrap();
        let b = RegionModel::new(g(1)).unwrap();
        let e: Vec<_> = [256, 256, 256, 256, 144]
            .iter()
            .map(|m| a.allocate(m * MIB).unwrap())
            .collect();
        a.remove(e[1].offset);
        a.remove(e[2].offset);
        let r = CapacityReport::from_models(&[a, b]);
        let r0 = &r.regions[0];
        assert_eq!(
            (r0.free, r0.max_extent, r0.holes),
            (1264 * MIB, 752 * MIB, 2)
        );
        assert_eq!(r0.largest.raw, 752 * MIB);
        // 752 MiB raw as fsdax: npfns = 192510, page map ~11.75 MiB -> 12 MiB reserved.
        assert_eq!(r0.largest.fsdax, 740 * MIB);
        assert_eq!(r.total.free, (1264 + 1920) * MIB);
        assert_eq!(r.total.largest.raw, 1920 * MIB);
        assert_eq!(r.total.holes, 3);
        assert_eq!(r.total.size, 3840 * MIB);
    }
}
