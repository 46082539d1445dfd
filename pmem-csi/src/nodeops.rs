//! The node operations as plain functions: make filesystems, stage with `-o dax`, publish with bind
//! mounts, report usage, grow filesystems, and run ephemeral inline volumes.

use crate::cmd::{run, run_status, run_within, MKFS_TIMEOUT};
use crate::driver::{Driver, SizeRange};
use crate::error::{Error, Result};
use crate::mountinfo;
use crate::state::VolumeRecord;
use crate::volume::{Params, VolumeId, VolumeName};
use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// The volume-context key that marks an ephemeral inline volume.
pub const EPHEMERAL_KEY: &str = "csi.storage.k8s.io/ephemeral";

/// How a volume is accessed on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// A raw block device.
    Block,
    /// A filesystem (`ext4` by default, or `xfs`) with extra mount flags.
    Mount {
        /// Filesystem type.
        fs: String,
        /// Extra mount options.
        flags: Vec<String>,
    },
}

/// Usage of a published or staged volume.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Usage {
    /// Bytes: total, available, used.
    pub bytes: (u64, u64, u64),
    /// Inodes: total, available, used (filesystems only).
    pub inodes: Option<(u64, u64, u64)>,
    /// `Some(why)` when the volume is not mounted where it should be.
    pub abnormal: Option<String>,
}

/// Node-side operations of a driver.
pub struct NodeOps {
    /// The driver (for volume records and ephemeral volumes).
    pub driver: Arc<Driver>,
    /// Where ephemeral volumes are staged.
    pub ephemeral_dir: PathBuf,
}

/// Checks a path from a request: present, absolute, without `..`.
pub fn check_path(field: &str, p: &str) -> Result<PathBuf> {
    if p.is_empty() {
        return Err(Error::invalid(format!("{field} is missing")));
    }
    let path = PathBuf::from(p);
    if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
        return Err(Error::invalid(format!(
            "{field} {p:?} must be absolute and must not contain '..'"
        )));
    }
    Ok(path)
}

fn s(p: &Path) -> Result<&str> {
    p.to_str()
        .ok_or_else(|| Error::invalid(format!("path {} is not UTF-8", p.display())))
}

/// The `major:minor` of block device `dev`, as mountinfo prints it.
fn devno(dev: &str) -> Result<String> {
    let m = std::fs::metadata(dev)
        .map_err(|e| Error::FailedPrecondition(format!("device {dev}: {e}")))?;
    if !m.file_type().is_block_device() {
        return Err(Error::FailedPrecondition(format!(
            "{dev} is not a block device"
        )));
    }
    let r = m.rdev();
    Ok(format!("{}:{}", libc::major(r), libc::minor(r)))
}

/// The filesystem on `dev`, if any.
fn fs_on(dev: &str) -> Result<Option<String>> {
    let o = run_status("blkid", &["-p", "-o", "value", "-s", "TYPE", "--", dev])?;
    match o.code {
        0 => Ok(Some(o.stdout.trim().to_string()).filter(|t| !t.is_empty())),
        2 => Ok(None),
        c => Err(Error::Internal(format!(
            "blkid {dev} failed (exit {c}): {}",
            o.stderr.trim()
        ))),
    }
}

fn mkdir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| Error::Internal(format!("mkdir {}: {e}", p.display())))
}

impl NodeOps {
    /// The record of `id`: one of this driver's ids, or the name of an ephemeral volume.
    pub fn record(&self, id: &str) -> Result<VolumeRecord> {
        match self.driver.volume(id) {
            Err(Error::NotFound(_)) => self
                .ephemeral_record(id)
                .ok_or_else(|| Error::NotFound(format!("volume {id} does not exist"))),
            other => other,
        }
    }

    /// Stages volume `id` at `staging` (see the module doc); idempotent.
    pub fn stage(&self, id: &str, staging: &Path, access: &Access) -> Result<()> {
        let rec = self.record(id)?;
        let Access::Mount { fs, flags } = access else {
            return Ok(());
        };
        let dev = rec.device.as_str();
        let want = devno(dev)?;
        if let Some(m) = mountinfo::at(staging) {
            return if m.dev == want {
                Ok(())
            } else {
                Err(Error::FailedPrecondition(format!(
                    "{} is already mounted from {}",
                    staging.display(),
                    m.source
                )))
            };
        }
        match fs_on(dev)? {
            None => match fs.as_str() {
                "xfs" => drop(run_within(
                    MKFS_TIMEOUT,
                    "mkfs.xfs",
                    &["-q", "-m", "reflink=0", "--", dev],
                )?),
                _ => drop(run_within(
                    MKFS_TIMEOUT,
                    "mkfs.ext4",
                    &["-q", "-F", "-b", "4096", "--", dev],
                )?),
            },
            Some(found) if found == *fs => {}
            Some(found) => {
                return Err(Error::FailedPrecondition(format!(
                    "volume {id}: {dev} holds {found}, not {fs}; it is never reformatted"
                )))
            }
        }
        mkdir(staging)?;
        let mut opts: Vec<String> = flags.clone();
        if rec.params.dax {
            opts.push("dax".into());
        }
        let mut args = vec!["-t", fs.as_str()];
        let joined = opts.join(",");
        if !joined.is_empty() {
            args.extend(["-o", joined.as_str()]);
        }
        args.extend(["--", dev, s(staging)?]);
        run("mount", &args)?;
        if fs == "xfs" && rec.params.dax {
            // New files inherit a 2 MiB extent size: huge-page-sized DAX mappings.
            run("xfs_io", &["-c", "extsize 2m", "--", s(staging)?])?;
        }
        Ok(())
    }

    /// Unmounts `staging` if mounted and removes the directory; idempotent.
    pub fn unstage(&self, id: &str, staging: &Path) -> Result<()> {
        self.record(id)?;
        unmount_and_remove(staging)
    }

    /// Publishes volume `id` at `target` (see the module doc); idempotent.
    pub fn publish(
        &self,
        id: &str,
        staging: Option<&Path>,
        target: &Path,
        access: &Access,
        readonly: bool,
    ) -> Result<()> {
        let rec = self.record(id)?;
        match access {
            Access::Block => {
                // A bind of a device node shows as the node's path inside devtmpfs.
                let node = std::fs::canonicalize(&rec.device).map_err(|e| {
                    Error::FailedPrecondition(format!("device {}: {e}", rec.device))
                })?;
                let want_root = node
                    .strip_prefix("/dev")
                    .map(|p| format!("/{}", p.display()))
                    .unwrap_or_default();
                if let Some(m) = mountinfo::at(target) {
                    return if m.root == want_root {
                        Ok(())
                    } else {
                        Err(Error::FailedPrecondition(format!(
                            "{} is already mounted from {}",
                            target.display(),
                            m.source
                        )))
                    };
                }
                if let Some(dir) = target.parent() {
                    mkdir(dir)?;
                }
                if !target.exists() {
                    std::fs::File::create(target)
                        .map_err(|e| Error::Internal(format!("{}: {e}", target.display())))?;
                }
                run("mount", &["--bind", "--", &rec.device, s(target)?])?;
            }
            Access::Mount { .. } => {
                let staging =
                    staging.ok_or_else(|| Error::invalid("staging target path is missing"))?;
                let staged = mountinfo::at(staging).ok_or_else(|| {
                    Error::FailedPrecondition(format!(
                        "volume {id} is not staged at {}",
                        staging.display()
                    ))
                })?;
                if let Some(m) = mountinfo::at(target) {
                    return if m.dev == staged.dev {
                        Ok(())
                    } else {
                        Err(Error::FailedPrecondition(format!(
                            "{} is already mounted from {}",
                            target.display(),
                            m.source
                        )))
                    };
                }
                mkdir(target)?;
                run("mount", &["--bind", "--", s(staging)?, s(target)?])?;
            }
        }
        if readonly {
            run("mount", &["-o", "remount,bind,ro", "--", s(target)?])?;
        }
        Ok(())
    }

    /// Unmounts `target` and removes it; an ephemeral volume is then deleted. Idempotent.
    pub fn unpublish(&self, id: &str, target: &Path) -> Result<()> {
        let rec = self.record(id)?;
        unmount_and_remove(target)?;
        if rec.ephemeral {
            unmount_and_remove(&self.ephemeral_dir.join(rec.id.as_str()))?;
            self.driver.delete_volume(rec.id.as_str())?;
        }
        Ok(())
    }

    fn ephemeral_record(&self, name: &str) -> Option<VolumeRecord> {
        let id = VolumeId::for_name(&VolumeName::parse(name).ok()?);
        self.driver.volume(id.as_str()).ok().filter(|r| r.ephemeral)
    }

    /// Creates, stages and publishes an ephemeral inline volume in one call.
    pub fn publish_ephemeral(
        &self,
        name: &str,
        context: &HashMap<String, String>,
        target: &Path,
        access: &Access,
        readonly: bool,
    ) -> Result<()> {
        let size = context
            .get("size")
            .map(|v| parse_quantity(v))
            .transpose()?
            .unwrap_or(0);
        let params: HashMap<String, String> = context
            .iter()
            .filter(|(k, _)| k.as_str() != "size" && !k.starts_with("csi.storage.k8s.io/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let params = Params::parse(&params)?;
        let rec = self.driver.create_ephemeral(
            name,
            SizeRange {
                required: size,
                limit: 0,
            },
            params,
        )?;
        let staging = self.ephemeral_dir.join(rec.id.as_str());
        let result = self
            .stage(rec.id.as_str(), &staging, access)
            .and_then(|()| self.publish(rec.id.as_str(), Some(&staging), target, access, readonly));
        if result.is_err() {
            let _ = unmount_and_remove(&staging);
            let _ = self.driver.delete_volume(rec.id.as_str());
        }
        result
    }

    /// Usage of the volume at `path`.
    pub fn stats(&self, id: &str, path: &Path) -> Result<Usage> {
        let rec = self.record(id)?;
        let meta = std::fs::metadata(path).map_err(|_| {
            Error::NotFound(format!("volume path {} does not exist", path.display()))
        })?;
        let mounted = mountinfo::at(path);
        let abnormal = match (&mounted, devno(&rec.device)) {
            (None, _) => Some(format!("volume {id} is not mounted at {}", path.display())),
            (Some(m), Ok(d)) if m.dev != d => Some(format!(
                "{} is mounted from {}, not the volume",
                path.display(),
                m.source
            )),
            _ => None,
        };
        if !meta.is_dir() {
            let size = pmem_ndctl::erase::device_size(Path::new(&rec.device)).unwrap_or(rec.size);
            return Ok(Usage {
                bytes: (size, 0, size),
                inodes: None,
                abnormal,
            });
        }
        let v = statvfs(path)?;
        Ok(Usage { abnormal, ..v })
    }

    /// Grows the filesystem of the volume mounted at `path` to its device; returns its size.
    pub fn expand(&self, id: &str, path: &Path) -> Result<u64> {
        let rec = self.record(id)?;
        let m = mountinfo::at(path).ok_or_else(|| {
            Error::NotFound(format!("volume {id} is not mounted at {}", path.display()))
        })?;
        match m.fstype.as_str() {
            "ext4" => drop(run("resize2fs", &["--", &rec.device])?),
            "xfs" => drop(run("xfs_growfs", &["--", s(path)?])?),
            "devtmpfs" => return Ok(rec.size),
            other => {
                return Err(Error::FailedPrecondition(format!(
                    "cannot grow a {other} filesystem"
                )))
            }
        }
        Ok(statvfs(path)?.bytes.0)
    }
}

/// Unmounts every mount stacked at `p` and removes it (file or empty directory).
fn unmount_and_remove(p: &Path) -> Result<()> {
    while mountinfo::at(p).is_some() {
        run("umount", &["--", s(p)?])?;
    }
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir(p)
            .map_err(|e| Error::Internal(format!("rmdir {}: {e}", p.display()))),
        Ok(_) => {
            std::fs::remove_file(p).map_err(|e| Error::Internal(format!("rm {}: {e}", p.display())))
        }
        Err(_) => Ok(()),
    }
}

/// Parses a Kubernetes quantity (`1Gi`, `512Mi`, `2G`, `1000`) into bytes.
pub fn parse_quantity(v: &str) -> Result<u64> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| Error::invalid(format!("size {v:?} is not a quantity like 1Gi")))?;
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1000,
        "M" => 1000_u64.pow(2),
        "G" => 1000_u64.pow(3),
        "T" => 1000_u64.pow(4),
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return Err(Error::invalid(format!("size {v:?}: unknown unit {unit:?}"))),
    };
    n.checked_mul(mult)
        .ok_or_else(|| Error::invalid(format!("size {v:?} is too large")))
}

fn statvfs(path: &Path) -> Result<Usage> {
    let c = std::ffi::CString::new(s(path)?).map_err(|_| Error::invalid("path contains NUL"))?;
    // SAFETY: an all-zero statvfs is a valid value to be overwritten.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `st` is a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(Error::Internal(format!(
            "statvfs {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        )));
    }
    let f = st.f_frsize as u64;
    let (total, avail, free) = (
        st.f_blocks as u64 * f,
        st.f_bavail as u64 * f,
        st.f_bfree as u64 * f,
    );
    let (it, ia) = (st.f_files as u64, st.f_favail as u64);
    Ok(Usage {
        bytes: (total, avail, total - free),
        inodes: Some((it, ia, it.saturating_sub(st.f_ffree as u64))),
        abnormal: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_be_absolute_without_dotdot() {
        assert!(check_path("target path", "/var/lib/kubelet/x").is_ok());
        for bad in ["", "relative/x", "/var/../etc", "/a/b/.."] {
            assert_eq!(
                check_path("target path", bad).unwrap_err().code(),
                tonic::Code::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("1Gi").unwrap(), 1 << 30);
        assert_eq!(parse_quantity("512Mi").unwrap(), 512 << 20);
        assert_eq!(parse_quantity("2G").unwrap(), 2_000_000_000);
        assert_eq!(parse_quantity("4096").unwrap(), 4096);
        assert!(parse_quantity("1.5Gi").is_err());
        assert!(parse_quantity("Gi").is_err());
        assert!(parse_quantity("99999999999Ti").is_err());
    }
}
