//! Growing a volume on its node (NodeExpandVolume): the device first, then the filesystem on it.
//!
//! The driver runs on every node and only the node holding a volume can
//! grow its device, so both steps happen here, under the volume's lock: the
//! external-resizer only records the new size and the kubelet asks the node.

use super::{devno, run, s, shows, Access, NodeOps};
use crate::driver::SizeRange;
use crate::error::{Error, Result};
use crate::mountinfo;
use crate::state::VolumeRecord;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// What is at a volume's path, as far as growing it is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target<'a> {
    /// A raw block volume: growing the device is all there is to do.
    Block,
    /// A filesystem of this type, mounted from the volume.
    Filesystem(&'a str),
}

impl NodeOps {
    /// Grows volume `id`, used at `path`: its device to at least
    /// `range.required` bytes (nothing when it is that large already or
    /// nothing is required), then the filesystem mounted at `path`, if it
    /// is used as one. The path tells how the volume is used (a bound device
    /// node: block; another mount of the volume: its filesystem); where
    /// nothing is mounted, `access` (the request's capability) does, and
    /// without it a block device file of the volume means block. Returns the
    /// device's size.
    pub fn expand(
        &self,
        id: &str,
        path: &Path,
        range: SizeRange,
        access: Option<&Access>,
    ) -> Result<u64> {
        let (rec, _guard) = self.hold(id)?;
        let rec = self.driver.present_volume(rec.id.as_str())?;
        let mount = mountinfo::at(path);
        let not_here = || {
            Error::NotFound(format!(
                "volume {} is not published at {}",
                rec.id,
                path.display()
            ))
        };
        if mount.as_ref().is_some_and(|m| !shows(m, &rec)) {
            return Err(not_here());
        }
        // What is mounted at the path decides; the capability only where nothing is.
        let target = match (&mount, access) {
            (Some(m), _) if m.fstype == "devtmpfs" => Target::Block,
            (Some(m), _) => Target::Filesystem(m.fstype.as_str()),
            (None, Some(Access::Mount { .. })) => return Err(not_here()),
            // Block by the capability, or (without one) by a block device file at the path.
            (None, access) => {
                let is_block =
                    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device());
                if access.is_none() && !is_block {
                    return Err(not_here());
                }
                check_block_path(path, &rec).map_err(|()| not_here())?;
                Target::Block
            }
        };
        if let Target::Filesystem(fs) = target {
            if !matches!(fs, "ext4" | "xfs") {
                return Err(Error::FailedPrecondition(format!(
                    "volume {}: cannot grow a {fs} filesystem",
                    rec.id
                )));
            }
        }
        let size = self.driver.grow_locked(&rec.id, range)?;
        match target {
            Target::Filesystem("ext4") => drop(run("resize2fs", &["--", &rec.device])?),
            Target::Filesystem(_) => drop(run("xfs_growfs", &["--", s(path)?])?),
            Target::Block => {}
        }
        Ok(size)
    }
}

/// Whether `path` can be a block volume's published path: it exists and,
/// if it is a block device file, it is the device of `rec`.
fn check_block_path(path: &Path, rec: &VolumeRecord) -> std::result::Result<(), ()> {
    let meta = std::fs::metadata(path).map_err(|_| ())?;
    if !meta.file_type().is_block_device() {
        return Ok(());
    }
    let here = format!("{}:{}", libc::major(meta.rdev()), libc::minor(meta.rdev()));
    match devno(&rec.device) {
        Ok(d) if d == here => Ok(()),
        _ => Err(()),
    }
}
