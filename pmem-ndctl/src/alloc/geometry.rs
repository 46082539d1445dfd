//! Region geometry and the kernel's size rules: alignment, minimum size, label state, names.

use crate::error::{Error, Result};
use crate::size::Size;
use serde::{Deserialize, Serialize};

/// One mebibyte, in bytes.
pub(crate) const MIB: u64 = 1 << 20;

/// The region alignment the kernel picks by default (`MEMREMAP_COMPAT_ALIGN_MAX`).
pub const DEFAULT_REGION_ALIGN: u64 = 16 * MIB;

/// The longest alternate name a namespace label holds, without its NUL.
pub const MAX_NAME_LEN: usize = 63;

/// Whether a region's DIMMs carry namespace labels, and which version.
///
/// A label-less region exposes one raw namespace covering the whole region
/// that cannot be subdivided; the label version decides where a sector
/// namespace's BTT starts (4 KiB in for v1.1, at 0 for v1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Labels {
    /// No label area: one fixed raw namespace, nothing can be created.
    None,
    /// Labels of version 1.1 (ndctl's `init-labels` default).
    #[serde(rename = "v1.1")]
    V1_1,
    /// Labels of version 1.2.
    #[serde(rename = "v1.2")]
    V1_2,
}

/// What the allocator needs to know about a region, as libndctl reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The least common multiple of two non-zero alignments (saturating).
pub(crate) fn lcm(a: u64, b: u64) -> u64 {
    (a / gcd(a, b)).saturating_mul(b)
}

/// Checks a namespace's alternate name: 1 to 63 bytes, no NUL or newline.
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid("namespace name", "must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::invalid(
            name,
            format!(
                "name is {} bytes long, the label holds at most {MAX_NAME_LEN}",
                name.len()
            ),
        ));
    }
    if name.contains(['\0', '\n']) {
        return Err(Error::invalid(
            name.escape_default(),
            "name must not contain NUL or newline characters",
        ));
    }
    Ok(())
}

/// The message for a size that breaks an alignment rule; shared by every
/// backend so that the wording is identical.
pub(crate) fn misaligned(region: &str, size: u64, align: u64) -> Error {
    Error::invalid(
        region,
        format!(
            "size {} is not a multiple of the {} alignment",
            Size(size),
            Size(align)
        ),
    )
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
        assert_eq!(lcm(16 * MIB, 2 * MIB), 16 * MIB);
        assert_eq!(lcm(16 * MIB, 6 * MIB), 48 * MIB);
    }

    #[test]
    fn names_are_checked_like_labels() {
        assert!(validate_name("pvc-1234").is_ok());
        assert!(validate_name(&"a".repeat(63)).is_ok());
        let e = validate_name(&"a".repeat(64)).unwrap_err();
        assert!(e
            .to_string()
            .ends_with("name is 64 bytes long, the label holds at most 63"));
        assert_eq!(
            validate_name("").unwrap_err().to_string(),
            "namespace name: must not be empty"
        );
        assert!(validate_name("a\nb").is_err());
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
