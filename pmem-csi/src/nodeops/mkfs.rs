//! The one place that says how the driver makes a filesystem: 4 KiB blocks, and for DAX volumes 2 MiB-aligned extents.
//!
//! DAX maps a file with 2 MiB (PMD) pages only where its 2 MiB-aligned
//! ranges are 2 MiB-aligned on the device (the device itself starts on a
//! 2 MiB boundary: see `pmem_lvm::align` and the namespaces' pfn
//! alignment). So a DAX volume's filesystem is told that the device is
//! striped in 2 MiB units, and both allocators then align large
//! allocations to 2 MiB:
//! - ext4: `-E stride=512,stripe_width=512` (in 4 KiB blocks); mballoc
//!   aligns requests that are a multiple of the stripe, and a PMD fault on
//!   a hole asks for exactly 2 MiB.
//! - xfs: `-d su=2m,sw=1`, and a 2 MiB extent size hint that every new
//!   file and directory inherits (`extszinherit`, in blocks), so that even
//!   a file written in small pieces gets whole 2 MiB extents. A stripe unit
//!   makes mkfs.xfs assume a RAID array and cut a small filesystem into
//!   more allocation groups than its internal log fits in (it refuses 512
//!   MiB and less); `agcount` keeps its single-device count instead: 4, or
//!   one per TiB above 4 TiB. `reflink=0`: DAX and reflink exclude each other.
//!
//! ext4 always gets 4 KiB blocks: on small devices mkfs.ext4 would pick
//! 1 KiB blocks, which DAX refuses to mount.

/// Filesystem block size, bytes.
const BLOCK: u64 = 4096;
/// The x86 huge page (PMD) size, the unit large extents are aligned to.
const HUGE_PAGE: u64 = 2 << 20;
/// Huge page in filesystem blocks (ext4 stride, xfs extent size hint).
const HUGE_PAGE_BLOCKS: u64 = HUGE_PAGE / BLOCK;
/// The largest xfs allocation group, bytes.
const XFS_MAX_AG: u64 = 1 << 40;
/// mkfs.xfs's allocation group count on one device of 128 MiB to 4 TiB.
const XFS_SINGLE_DEVICE_AGS: u64 = 4;

/// The program and arguments that make a `fs` filesystem (`xfs`, else
/// ext4) on `dev`, a device of `size` bytes; `dax`: laid out for
/// huge-page DAX mappings.
pub(crate) fn mkfs(fs: &str, dev: &str, size: u64, dax: bool) -> (&'static str, Vec<String>) {
    let mut args: Vec<String> = Vec::new();
    let mut add = |a: &[&str]| args.extend(a.iter().map(|s| s.to_string()));
    let program = if fs == "xfs" {
        add(&["-q", "-b", &format!("size={BLOCK}"), "-m", "reflink=0"]);
        if dax {
            let ags = size.div_ceil(XFS_MAX_AG).max(XFS_SINGLE_DEVICE_AGS);
            add(&[
                "-d",
                &format!(
                    "su={}m,sw=1,extszinherit={HUGE_PAGE_BLOCKS},agcount={ags}",
                    HUGE_PAGE >> 20
                ),
            ]);
        }
        "mkfs.xfs"
    } else {
        add(&["-q", "-F", "-b", &BLOCK.to_string()]);
        if dax {
            add(&[
                "-E",
                &format!("stride={HUGE_PAGE_BLOCKS},stripe_width={HUGE_PAGE_BLOCKS}"),
            ]);
        }
        "mkfs.ext4"
    };
    args.extend(["--".to_string(), dev.to_string()]);
    (program, args)
}

#[cfg(test)]
mod tests {
    use super::mkfs;

    const GIB: u64 = 1 << 30;
    const TIB: u64 = 1 << 40;

    fn line(fs: &str, size: u64, dax: bool) -> String {
        let (program, args) = mkfs(fs, "/dev/pmem0.1", size, dax);
        format!("{program} {}", args.join(" "))
    }

    #[test]
    fn ext4_on_dax_has_4k_blocks_and_a_2m_stripe() {
        assert_eq!(
            line("ext4", GIB, true),
            "mkfs.ext4 -q -F -b 4096 -E stride=512,stripe_width=512 -- /dev/pmem0.1"
        );
        assert_eq!(
            line("", GIB, true),
            line("ext4", GIB, true),
            "ext4 is the default"
        );
    }

    #[test]
    fn xfs_on_dax_has_a_2m_stripe_unit_and_extent_size_hint() {
        assert_eq!(
            line("xfs", GIB, true),
            "mkfs.xfs -q -b size=4096 -m reflink=0 \
             -d su=2m,sw=1,extszinherit=512,agcount=4 -- /dev/pmem0.1"
        );
    }

    #[test]
    fn xfs_keeps_the_single_device_allocation_group_count() {
        let ags = |size| {
            let (_, args) = mkfs("xfs", "/dev/x", size, true);
            let d = args.iter().find(|a| a.starts_with("su=")).unwrap().clone();
            d.rsplit_once("agcount=").unwrap().1.parse::<u64>().unwrap()
        };
        // The smallest xfs (300 MB) up to 4 TiB: 4 groups; above, groups of at most 1 TiB.
        assert_eq!(ags(300 << 20), 4);
        assert_eq!(ags(4 * TIB), 4);
        assert_eq!(ags(4 * TIB + 1), 5);
        assert_eq!(ags(6 * TIB), 6);
    }

    #[test]
    fn without_dax_no_stripe_and_no_hint() {
        assert_eq!(
            line("ext4", GIB, false),
            "mkfs.ext4 -q -F -b 4096 -- /dev/pmem0.1"
        );
        assert_eq!(
            line("xfs", GIB, false),
            "mkfs.xfs -q -b size=4096 -m reflink=0 -- /dev/pmem0.1"
        );
    }

    #[test]
    fn the_device_is_the_last_operand_after_double_dash() {
        for fs in ["ext4", "xfs"] {
            for dax in [false, true] {
                let (_, args) = mkfs(fs, "-rf", GIB, dax);
                assert_eq!(args[args.len() - 2..], ["--", "-rf"], "{fs} dax={dax}");
            }
        }
    }
}
