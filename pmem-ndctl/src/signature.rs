//! What a device already holds: the on-disk signatures of filesystems, volume managers,
//! partition tables and namespace personalities, read from its first bytes.
//!
//! A label-less namespace is converted in place ([`crate::Context::convert_label_less`]),
//! which overwrites its start: before that, [`probe`] tells whether anyone's data is there.

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

/// How many bytes [`probe`] reads: enough for every signature in [`Signature`].
pub const PROBE_LEN: usize = 68 << 10;

/// A recognised on-disk signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signature {
    /// An ext2, ext3 or ext4 filesystem.
    Ext,
    /// An XFS filesystem.
    Xfs,
    /// A btrfs filesystem.
    Btrfs,
    /// An LVM physical volume.
    LvmPv,
    /// Linux swap.
    Swap,
    /// A GPT partition table.
    Gpt,
    /// An MBR partition table (or boot sector).
    Mbr,
    /// A namespace personality's info block (fsdax, devdax or sector).
    NamespaceInfo,
}

impl Signature {
    /// What it is, in words: `ext4 filesystem`, `LVM physical volume`.
    pub fn describe(self) -> &'static str {
        match self {
            Signature::Ext => "ext2/3/4 filesystem",
            Signature::Xfs => "XFS filesystem",
            Signature::Btrfs => "btrfs filesystem",
            Signature::LvmPv => "LVM physical volume",
            Signature::Swap => "swap space",
            Signature::Gpt => "GPT partition table",
            Signature::Mbr => "MBR partition table",
            Signature::NamespaceInfo => "namespace info block (fsdax/devdax/sector)",
        }
    }
}

impl std::fmt::Display for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

fn at(buf: &[u8], off: usize, magic: &[u8]) -> bool {
    buf.get(off..off + magic.len()) == Some(magic)
}

/// The first signature found in `buf`, a device's first bytes (up to [`PROBE_LEN`];
/// a shorter buffer is probed for what fits in it).
pub fn find(buf: &[u8]) -> Option<Signature> {
    if at(buf, 0, b"XFSB") {
        return Some(Signature::Xfs);
    }
    if at(buf, 1024 + 56, &[0x53, 0xEF]) {
        return Some(Signature::Ext);
    }
    if at(buf, 65536 + 64, b"_BHRfS_M") {
        return Some(Signature::Btrfs);
    }
    if (0..4).any(|s| at(buf, s * 512, b"LABELONE") && at(buf, s * 512 + 24, b"LVM2 001")) {
        return Some(Signature::LvmPv);
    }
    if [4096, 8192, 16384, 65536]
        .iter()
        .any(|page| at(buf, page - 10, b"SWAPSPACE2") || at(buf, page - 10, b"SWAP-SPACE"))
    {
        return Some(Signature::Swap);
    }
    if at(buf, 512, b"EFI PART") {
        return Some(Signature::Gpt);
    }
    if [
        &b"NVDIMM_PFN_INFO\0"[..],
        b"NVDIMM_DAX_INFO\0",
        b"BTT_ARENA_INFO\0",
    ]
    .iter()
    .any(|m| at(buf, 4096, m))
    {
        return Some(Signature::NamespaceInfo);
    }
    // A boot sector's signature: a partition table or a boot loader, someone's either way.
    if at(buf, 510, &[0x55, 0xAA]) {
        return Some(Signature::Mbr);
    }
    None
}

/// Reads the first [`PROBE_LEN`] bytes of `device` and returns the first
/// signature found. The device is opened read-only.
pub fn probe(device: &Path) -> Result<Option<Signature>> {
    let name = device.display().to_string();
    let io =
        |e: std::io::Error| Error::from_errno(&name, "read", e.raw_os_error().unwrap_or(libc::EIO));
    let f = std::fs::File::open(device).map_err(io)?;
    let mut buf = Vec::with_capacity(PROBE_LEN);
    f.take(PROBE_LEN as u64).read_to_end(&mut buf).map_err(io)?;
    Ok(find(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(off: usize, magic: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; PROBE_LEN];
        b[off..off + magic.len()].copy_from_slice(magic);
        b
    }

    #[test]
    fn zeroes_hold_nothing() {
        assert_eq!(find(&vec![0u8; PROBE_LEN]), None);
        assert_eq!(find(&[]), None);
        // Random-looking bytes without a magic at a known place are not a signature.
        let b: Vec<u8> = (0..PROBE_LEN).map(|i| (i * 7 + 3) as u8).collect();
        assert_eq!(find(&b), None);
    }

    #[test]
    fn every_signature_is_found_where_its_tools_write_it() {
        assert_eq!(find(&with(0, b"XFSB")), Some(Signature::Xfs));
        assert_eq!(find(&with(1080, &[0x53, 0xEF])), Some(Signature::Ext));
        assert_eq!(find(&with(65600, b"_BHRfS_M")), Some(Signature::Btrfs));
        let mut pv = with(512, b"LABELONE");
        pv[536..544].copy_from_slice(b"LVM2 001");
        assert_eq!(find(&pv), Some(Signature::LvmPv));
        assert_eq!(
            find(&with(512, b"LABELONE")),
            None,
            "LABELONE alone is not LVM's"
        );
        assert_eq!(find(&with(4086, b"SWAPSPACE2")), Some(Signature::Swap));
        assert_eq!(find(&with(512, b"EFI PART")), Some(Signature::Gpt));
        assert_eq!(
            find(&with(4096, b"NVDIMM_PFN_INFO\0")),
            Some(Signature::NamespaceInfo)
        );
        assert_eq!(
            find(&with(4096, b"BTT_ARENA_INFO\0")),
            Some(Signature::NamespaceInfo)
        );
        assert_eq!(find(&with(510, &[0x55, 0xAA])), Some(Signature::Mbr));
    }

    #[test]
    fn a_short_buffer_is_probed_for_what_fits() {
        assert_eq!(find(&with(0, b"XFSB")[..16]), Some(Signature::Xfs));
        assert_eq!(find(&with(65600, b"_BHRfS_M")[..4096]), None);
    }

    #[test]
    fn probe_reads_a_file_and_names_it_when_missing() {
        let dir = std::env::temp_dir().join(format!("pmem-ndctl-sig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("dev");
        std::fs::write(&f, with(1080, &[0x53, 0xEF])).unwrap();
        assert_eq!(probe(&f).unwrap(), Some(Signature::Ext));
        std::fs::write(&f, [0u8; 100]).unwrap();
        assert_eq!(probe(&f).unwrap(), None);
        let e = probe(&dir.join("missing")).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
