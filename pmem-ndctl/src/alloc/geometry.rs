//! Region geometry and the kernel's size rules: alignment, minimum size, label state, names.

use crate::error::{Error, Result};
use crate::size::Size;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// One mebibyte, in bytes.
pub(crate) const MIB: u64 = 1 << 20;

pub(crate) use crate::rules::misaligned;
pub use crate::rules::{check_name as validate_name, DEFAULT_REGION_ALIGN, MAX_NAME_LEN};

/// Whether a region's DIMMs carry namespace labels, and which version.
///
/// A label-less region exposes one raw namespace covering the whole region
/// that cannot be subdivided; the label version decides where a sector
/// namespace's BTT starts (4 KiB in for v1.1, at 0 for v1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum Labels {
    /// No label area: one fixed raw namespace, nothing can be created.
    None,
    /// Labels of version 1.1 (ndctl's `init-labels` default).
    #[cfg_attr(feature = "serde", serde(rename = "v1.1"))]
    V1_1,
    /// Labels of version 1.2.
    #[cfg_attr(feature = "serde", serde(rename = "v1.2"))]
    V1_2,
}

/// What the allocator needs to know about a region, as libndctl reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct RegionGeometry {
    /// The device name, e.g. `region0`.
    pub name: String,
    /// Physical start address (libndctl's region resource), in bytes.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
    /// The region's `align`, in bytes: every namespace size is a multiple of it.
    pub align: u64,
    /// Interleave ways (number of DIMM mappings).
    pub ways: u64,
    /// Label state of the region's DIMMs.
    pub labels: Labels,
}

impl RegionGeometry {
    /// A labelled (v1.1), non-interleaved region with the default 16 MiB
    /// alignment, like one emulated DIMM of the project's VM.
    pub fn labelled(name: impl Into<String>, base: u64, size: u64) -> Self {
        RegionGeometry {
            name: name.into(),
            base,
            size,
            align: DEFAULT_REGION_ALIGN,
            ways: 1,
            labels: Labels::V1_1,
        }
    }

    /// Checks that the geometry itself is coherent (non-zero alignment and ways).
    pub fn validate(&self) -> Result<()> {
        if self.align == 0 || self.ways == 0 {
            return Err(Error::invalid(
                &self.name,
                format!(
                    "invalid geometry: align {} and interleave ways {} must be non-zero",
                    Size(self.align),
                    self.ways
                ),
            ));
        }
        Ok(())
    }
}

/// Rounds `x` up to a multiple of `a` (`a > 0`); `None` on overflow.
pub(crate) fn align_up(x: u64, a: u64) -> Option<u64> {
    if a.is_power_of_two() {
        return x.checked_add(a - 1).map(|y| y & !(a - 1));
    }
    let r = x % a;
    if r == 0 {
        Some(x)
    } else {
        x.checked_add(a - r)
    }
}

/// Rounds `x` down to a multiple of `a` (`a > 0`).
pub(crate) fn align_down(x: u64, a: u64) -> u64 {
    if a.is_power_of_two() {
        x & !(a - 1)
    } else {
        x - x % a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_helpers() {
        assert_eq!(align_up(17 * MIB, 16 * MIB), Some(32 * MIB));
        assert_eq!(align_up(32 * MIB, 16 * MIB), Some(32 * MIB));
        assert_eq!(align_up(u64::MAX, 16 * MIB), None);
        assert_eq!(align_down(31 * MIB, 16 * MIB), 16 * MIB);
    }

    #[test]
    fn geometry_must_be_coherent() {
        let mut g = RegionGeometry::labelled("region3", 0, 1 << 30);
        assert!(g.validate().is_ok());
        g.align = 0;
        assert!(g
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("region3: "));
    }
}
