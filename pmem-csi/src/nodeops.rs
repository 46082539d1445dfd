//! The node operations as plain functions: make filesystems (module `mkfs`), stage with `-o dax`,
//! publish with bind mounts, report usage, grow volumes (module `expand`), and run ephemeral inline volumes.
//!
//! Every operation holds the volume's lock (the controller's: ABORTED on a
//! conflict), acts only on paths the node service checked beneath the
//! kubelet directory, and removes only mount points and files it made for
//! that volume ([`crate::paths::Made`]).

use crate::cmd::{run, run_status, run_within, MKFS_TIMEOUT};
use crate::driver::{Driver, SizeRange};
use crate::error::{Error, Result};
use crate::locks::Guard;
use crate::mountinfo;
use crate::paths::{KubeletDir, Made};
use crate::state::VolumeRecord;
use crate::volume::{shown, Params, VolumeId, VolumeName};
use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod expand;
mod mkfs;

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
    /// `Some(why)` when the volume is not healthy.
    pub abnormal: Option<String>,
}

/// Node-side operations of a driver.
pub struct NodeOps {
    /// The driver (for volume records and ephemeral volumes).
    pub driver: Arc<Driver>,
    /// Where ephemeral volumes are staged.
    pub ephemeral_dir: PathBuf,
    /// Every staging and target path lies beneath it.
    pub kubelet: KubeletDir,
    /// What the node operations made, per path.
    pub made: Made,
}

/// Where the node operations keep and find things.
#[derive(Debug, Clone)]
pub struct NodePaths {
    /// Where ephemeral volumes are staged.
    pub ephemeral_dir: PathBuf,
    /// The kubelet's directory.
    pub kubelet_dir: PathBuf,
    /// The record of what the node operations made (none: memory only).
    pub made_file: Option<PathBuf>,
}

impl NodePaths {
    /// The paths of a driver whose state is in `state_dir`, serving the kubelet at `kubelet_dir`.
    pub fn new(state_dir: &Path, kubelet_dir: &Path) -> Self {
        NodePaths {
            ephemeral_dir: state_dir.join("ephemeral"),
            kubelet_dir: kubelet_dir.to_path_buf(),
            made_file: Some(state_dir.join("node-paths.json")),
        }
    }
}

impl NodeOps {
    /// The node operations of `driver` with `paths`.
    pub fn new(driver: Arc<Driver>, paths: NodePaths) -> Result<Self> {
        Ok(NodeOps {
            driver,
            ephemeral_dir: paths.ephemeral_dir,
            kubelet: KubeletDir::new(&paths.kubelet_dir)?,
            made: Made::open(paths.made_file),
        })
    }
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

/// Whether mount `m` shows volume `rec`'s device: a filesystem on it, or a bind of its node.
fn shows(m: &mountinfo::Mount, rec: &VolumeRecord) -> bool {
    if let Ok(d) = devno(&rec.device) {
        if m.dev == d {
            return true;
        }
    }
    std::fs::canonicalize(&rec.device)
        .ok()
        .and_then(|n| {
            n.strip_prefix("/dev")
                .ok()
                .map(|p| format!("/{}", p.display()))
        })
        .is_some_and(|root| m.fstype == "devtmpfs" && m.root == root)
}

impl NodeOps {
    /// The record of `id` (one of this driver's ids, or the name of an
    /// ephemeral volume) and the keys its lock takes.
    fn resolve(&self, id: &str) -> Result<(VolumeRecord, Vec<String>)> {
        match self.driver.volume(id) {
            Ok(rec) => Ok((rec, vec![id.to_string()])),
            Err(Error::NotFound(_)) => {
                let eid = VolumeName::parse(id)
                    .ok()
                    .map(|n| VolumeId::for_name(&n))
                    .ok_or_else(|| {
                        Error::NotFound(format!("volume \"{}\" does not exist", shown(id)))
                    })?;
                let rec = self
                    .driver
                    .volume(eid.as_str())
                    .ok()
                    .filter(|r| r.ephemeral)
                    .ok_or_else(|| {
                        Error::NotFound(format!("volume \"{}\" does not exist", shown(id)))
                    })?;
                Ok((rec, vec![id.to_string(), eid.to_string()]))
            }
            Err(e) => Err(e),
        }
    }

    /// Locks volume `id` and returns its record, with its device present.
    fn hold(&self, id: &str) -> Result<(VolumeRecord, Guard)> {
        let (_, keys) = self.resolve(id)?;
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let guard = self.driver.lock_volume(&keys)?;
        let (rec, _) = self.resolve(id)?;
        Ok((rec, guard))
    }

    /// The record of `id` (without its lock), for callers that check existence first.
    pub fn record(&self, id: &str) -> Result<VolumeRecord> {
        self.resolve(id).map(|(r, _)| r)
    }

    /// Makes directory `p` for volume `id` if it is not there, recording it.
    fn make_dir(&self, p: &Path, id: &str) -> Result<()> {
        if p.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(p)
            .map_err(|e| Error::Internal(format!("mkdir {}: {e}", p.display())))?;
        self.made.add(p, id)
    }

    /// Unmounts the mounts of `rec` stacked at `p` (any other mount there is
    /// refused) and removes `p` if this driver made it for the volume.
    fn unmount_and_remove(&self, p: &Path, rec: &VolumeRecord, made_for: &str) -> Result<()> {
        while let Some(m) = mountinfo::at(p) {
            if !shows(&m, rec) {
                return Err(Error::FailedPrecondition(format!(
                    "{} is mounted from {}, not from volume {}: left as it is",
                    p.display(),
                    m.source,
                    rec.id
                )));
            }
            run("umount", &["--", s(p)?])?;
        }
        if !self.made.is_made_for(p, made_for) {
            return Ok(());
        }
        let removed = match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => std::fs::remove_dir(p),
            Ok(m) if m.is_file() && m.len() == 0 => std::fs::remove_file(p),
            Ok(_) => {
                return Err(Error::FailedPrecondition(format!(
                    "{} is no longer what the driver made there: left as it is",
                    p.display()
                )))
            }
            Err(_) => Ok(()),
        };
        removed.map_err(|e| Error::Internal(format!("remove {}: {e}", p.display())))?;
        self.made.forget(p)
    }

    /// Stages volume `id` at `staging`; idempotent.
    pub fn stage(&self, id: &str, staging: &Path, access: &Access) -> Result<()> {
        let (rec, _guard) = self.hold(id)?;
        self.stage_locked(&rec, staging, access)
    }

    fn stage_locked(&self, rec: &VolumeRecord, staging: &Path, access: &Access) -> Result<()> {
        let rec = &self.driver.present_volume(rec.id.as_str())?;
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
            None => {
                let size = pmem_ndctl::erase::device_size(Path::new(dev))
                    .map_err(|e| Error::FailedPrecondition(e.to_string()))?;
                let (program, args) = mkfs::mkfs(fs, dev, size, rec.params.dax);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                drop(run_within(MKFS_TIMEOUT, program, &args)?);
            }
            Some(found) if found == *fs => {}
            Some(found) => {
                return Err(Error::FailedPrecondition(format!(
                    "volume {}: {dev} holds {found}, not {fs}; it is never reformatted",
                    rec.id
                )))
            }
        }
        self.make_dir(staging, rec.id.as_str())?;
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
        Ok(())
    }

    /// Unmounts `staging` if the volume is mounted there and removes it if
    /// the driver made it; idempotent.
    pub fn unstage(&self, id: &str, staging: &Path) -> Result<()> {
        let (rec, _guard) = self.hold(id)?;
        self.unmount_and_remove(staging, &rec, rec.id.as_str())
    }

    /// Publishes volume `id` at `target`; idempotent.
    pub fn publish(
        &self,
        id: &str,
        staging: Option<&Path>,
        target: &Path,
        access: &Access,
        readonly: bool,
    ) -> Result<()> {
        let (rec, _guard) = self.hold(id)?;
        self.publish_locked(&rec, staging, target, access, readonly)
    }

    fn publish_locked(
        &self,
        rec: &VolumeRecord,
        staging: Option<&Path>,
        target: &Path,
        access: &Access,
        readonly: bool,
    ) -> Result<()> {
        let rec = &self.driver.present_volume(rec.id.as_str())?;
        let id = rec.id.as_str();
        if let Some(m) = mountinfo::at(target) {
            return if shows(&m, rec) {
                Ok(())
            } else {
                Err(Error::FailedPrecondition(format!(
                    "{} is already mounted from {}",
                    target.display(),
                    m.source
                )))
            };
        }
        match access {
            Access::Block => {
                if let Some(dir) = target.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| Error::Internal(format!("mkdir {}: {e}", dir.display())))?;
                }
                if !target.exists() {
                    std::fs::File::create(target)
                        .map_err(|e| Error::Internal(format!("{}: {e}", target.display())))?;
                    self.made.add(target, id)?;
                }
                run("mount", &["--bind", "--", &rec.device, s(target)?])?;
            }
            Access::Mount { .. } => {
                let staging =
                    staging.ok_or_else(|| Error::invalid("staging target path is missing"))?;
                let staged = mountinfo::at(staging).filter(|m| shows(m, rec));
                if staged.is_none() {
                    return Err(Error::FailedPrecondition(format!(
                        "volume {id} is not staged at {}",
                        staging.display()
                    )));
                }
                self.make_dir(target, id)?;
                run("mount", &["--bind", "--", s(staging)?, s(target)?])?;
            }
        }
        if readonly {
            run("mount", &["-o", "remount,bind,ro", "--", s(target)?])?;
        }
        Ok(())
    }

    /// Unmounts the volume at `target` and removes `target` if the driver
    /// made it; an ephemeral volume is then deleted. Idempotent.
    pub fn unpublish(&self, id: &str, target: &Path) -> Result<()> {
        let (rec, _guard) = self.hold(id)?;
        self.unmount_and_remove(target, &rec, rec.id.as_str())?;
        if rec.ephemeral {
            let staging = self.ephemeral_dir.join(rec.id.as_str());
            self.unmount_and_remove(&staging, &rec, rec.id.as_str())?;
            self.driver.delete_locked(&rec.id)?;
        }
        Ok(())
    }

    /// Creates, stages and publishes an ephemeral inline volume in one call.
    /// On failure, only a volume this call created is deleted again.
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
        let vname = VolumeName::parse(name)?;
        let vid = VolumeId::for_name(&vname);
        let _guard = self.driver.lock_volume(&[name, vid.as_str()])?;
        let mut range = SizeRange {
            required: size,
            limit: 0,
        };
        if let Access::Mount { fs, .. } = access {
            if let Some((min, what)) = crate::volume::filesystem_minimum(fs) {
                range = range.at_least(min, what)?;
            }
        }
        let (rec, created) = self.driver.create_locked(&vname, range, params, true)?;
        let staging = self.ephemeral_dir.join(rec.id.as_str());
        let result = self
            .stage_locked(&rec, &staging, access)
            .and_then(|()| self.publish_locked(&rec, Some(&staging), target, access, readonly));
        if result.is_err() && created {
            let _ = self.unmount_and_remove(target, &rec, rec.id.as_str());
            let _ = self.unmount_and_remove(&staging, &rec, rec.id.as_str());
            let _ = self.driver.delete_locked(&rec.id);
        }
        result
    }

    /// Usage of volume `id` published (or staged) at `path`; NOT_FOUND where
    /// the volume is not mounted.
    pub fn stats(&self, id: &str, path: &Path) -> Result<Usage> {
        let (rec, _guard) = self.hold(id)?;
        let not_here = || {
            Error::NotFound(format!(
                "volume {} is not published at {}",
                rec.id,
                path.display()
            ))
        };
        let m = mountinfo::at(path).ok_or_else(not_here)?;
        if let Some(why) = self.driver.missing(&rec.id) {
            return Ok(Usage {
                bytes: (rec.size, 0, 0),
                inodes: None,
                abnormal: Some(why),
            });
        }
        if !shows(&m, &rec) {
            return Err(not_here());
        }
        let mut usage = if m.fstype == "devtmpfs" {
            let size = pmem_ndctl::erase::device_size(Path::new(&rec.device)).unwrap_or(rec.size);
            Usage {
                bytes: (size, 0, size),
                inodes: None,
                abnormal: None,
            }
        } else {
            statvfs(path)?
        };
        // Still mounted and usable, but bad blocks or an unhealthy DIMM put its data at risk.
        usage.abnormal = self.driver.media_condition(&rec.id);
        Ok(usage)
    }
}

/// Parses a Kubernetes quantity (`1Gi`, `512Mi`, `2G`, `1000`) into bytes.
pub fn parse_quantity(v: &str) -> Result<u64> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| Error::invalid(format!("size \"{}\" is not a quantity like 1Gi", shown(v))))?;
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
        _ => {
            return Err(Error::invalid(format!(
                "size \"{}\": unknown unit",
                shown(v)
            )))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| Error::invalid(format!("size \"{}\" is too large", shown(v))))
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
    use crate::manager::NamespaceManager;
    use crate::state::StateStore;

    fn ops(dir: &Path) -> NodeOps {
        let m = NamespaceManager::sim(&[1 << 30], dir.join("sim-regions.json")).unwrap();
        let (d, _) = Driver::start(
            "t".into(),
            "n".into(),
            Arc::new(m),
            StateStore::open(dir).unwrap(),
        )
        .unwrap();
        NodeOps::new(Arc::new(d), NodePaths::new(dir, dir)).unwrap()
    }

    #[test]
    fn failed_ephemeral_publish_deletes_only_what_it_created() {
        let dir = tempfile::tempdir().unwrap();
        let o = ops(dir.path());
        let target = dir.path().join("pod/target");
        let ctx = HashMap::from([("size".to_string(), "64Mi".to_string())]);
        let mount = Access::Mount {
            fs: "ext4".into(),
            flags: vec![],
        };
        // A sim volume has no block device: staging fails after the create.
        let existing = VolumeName::parse("csi-existing").unwrap();
        let range = SizeRange {
            required: 64 << 20,
            limit: 0,
        };
        let (rec, created) = o
            .driver
            .create_locked(&existing, range, Params::default(), true)
            .unwrap();
        assert!(created);
        assert!(o
            .publish_ephemeral("csi-existing", &ctx, &target, &mount, false)
            .is_err());
        assert!(
            o.driver.volume(rec.id.as_str()).is_ok(),
            "a failed retry keeps the volume it did not create"
        );
        assert!(o
            .publish_ephemeral("csi-new", &ctx, &target, &mount, false)
            .is_err());
        let new = VolumeId::for_name(&VolumeName::parse("csi-new").unwrap());
        assert!(
            o.driver.volume(new.as_str()).is_err(),
            "a failed first publish removes the volume it created"
        );
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
