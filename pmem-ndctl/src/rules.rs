//! The kernel's rules for a namespace, in one place: name length, alignments, minimum sizes.
//!
//! Both the request check of [`Context::create_namespace`](crate::Context::create_namespace)
//! ([`validate`](crate::validate)) and the allocator's layouts ([`alloc`](crate::alloc)) take
//! their limits and their wording from here.

use crate::error::{Error, Result};
use crate::size::Size;
use crate::types::Mode;

const MIB: u64 = 1 << 20;

/// The longest alternate name a namespace label holds, without its NUL.
pub const MAX_NAME_LEN: usize = 63;

/// The region alignment the kernel picks by default (`MEMREMAP_COMPAT_ALIGN_MAX`).
pub const DEFAULT_REGION_ALIGN: u64 = 16 * MIB;

/// The mapping alignment of fsdax and devdax namespaces when none is asked (x86: 2 MiB).
pub const DEFAULT_PFN_ALIGN: u64 = 2 * MIB;

/// The pfn/dax alignments the kernel accepts on x86 (4 KiB, 2 MiB, 1 GiB).
pub const PFN_ALIGNMENTS: [u64; 3] = [4096, 2 * MIB, 1 << 30];

/// The sector sizes a BTT (sector mode) accepts.
pub const SECTOR_SIZES: [u64; 7] = [512, 520, 528, 4096, 4104, 4160, 4224];

/// The smallest namespace the kernel accepts in `mode` (raw size): 16 MiB, none for raw.
pub fn min_size(mode: Mode) -> u64 {
    match mode {
        Mode::Raw => 0,
        _ => 16 * MIB,
    }
}

/// Whether `mode` has a pfn/dax personality, with a mapping alignment and a page map.
pub fn has_pfn(mode: Mode) -> bool {
    matches!(mode, Mode::Fsdax | Mode::Devdax)
}

/// The page size, the mapping alignment of raw and sector namespaces.
pub const PAGE_SIZE: u64 = 4096;

/// Every raw size in a region must be a multiple of this: the region alignment and the
/// mapping alignment × interleave ways (`align`: the pfn/dax alignment for fsdax/devdax,
/// the page size otherwise).
pub fn size_unit(region_align: u64, align: u64, ways: u64) -> u64 {
    lcm(
        region_align.max(1),
        align.max(1).saturating_mul(ways.max(1)),
    )
}

/// Checks a namespace's alternate name: 1 to [`MAX_NAME_LEN`] bytes, no NUL or newline.
pub fn check_name(name: &str) -> Result<()> {
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

/// The error for a size that breaks an alignment rule, worded the same by every check.
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

/// The error for a size below the mode's minimum.
pub(crate) fn too_small(region: &str, mode: Mode, size: u64) -> Error {
    Error::invalid(
        region,
        format!(
            "size {} is below the {} minimum for {mode}",
            Size(size),
            Size(min_size(mode)),
        ),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_like_labels() {
        assert!(check_name("pvc-1234").is_ok());
        assert!(check_name(&"a".repeat(63)).is_ok());
        let e = check_name(&"a".repeat(64)).unwrap_err();
        assert!(e
            .to_string()
            .ends_with("name is 64 bytes long, the label holds at most 63"));
        assert_eq!(
            check_name("").unwrap_err().to_string(),
            "namespace name: must not be empty"
        );
        assert!(check_name("a\nb").is_err());
    }

    #[test]
    fn size_unit_combines_region_and_mapping_alignment() {
        assert_eq!(lcm(16 * MIB, 2 * MIB), 16 * MIB);
        assert_eq!(lcm(16 * MIB, 6 * MIB), 48 * MIB);
        assert_eq!(size_unit(16 * MIB, 2 * MIB, 3), 48 * MIB);
        assert_eq!(size_unit(16 * MIB, 1 << 30, 1), 1 << 30);
        assert_eq!(size_unit(16 * MIB, PAGE_SIZE, 4), 16 * MIB);
        assert_eq!(size_unit(MIB, 2 * MIB, 3), 6 * MIB);
        assert_eq!(min_size(Mode::Raw), 0);
        assert_eq!(min_size(Mode::Fsdax), 16 * MIB);
    }
}
