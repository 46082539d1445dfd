//! The driver's cache of its volume records: one JSON file per volume, written atomically.
//!
//! The devices carry the records (see [`crate::record`]); this directory is a
//! cache that may vanish at any time and is rebuilt from the devices at start.
//! Write: temp file, fsync, rename, fsync the directory. Each record carries a
//! format version: format 1 records (no phase) are read as acknowledged;
//! fields this release does not know are kept and written back unchanged, and
//! a record one version newer is still read, so an upgrade or downgrade by one
//! release loses nothing.

use crate::error::{Error, Result};
use crate::volume::{Params, VolumeId};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The record format this driver writes.
pub const FORMAT: u32 = 2;

/// Where a volume is in its creation: a device is made `pending` and becomes
/// `acknowledged` (on the device itself) before CreateVolume answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Made, not yet confirmed to any client: removed after the orphan grace
    /// period unless a retry by name claims it.
    Pending,
    /// Confirmed to a client: only DeleteVolume removes it.
    #[default]
    Acknowledged,
    /// (Cache only.) DeleteVolume is removing the device: a record in this
    /// phase whose device is gone was deleted, not lost.
    Deleting,
}

/// What the driver keeps about one volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    /// Record format version.
    #[serde(default = "format_default")]
    pub format: u32,
    /// The volume id.
    pub id: VolumeId,
    /// The name the volume was created with.
    pub name: String,
    /// The capacity acknowledged to the client, bytes.
    pub size: u64,
    /// The StorageClass parameters it was created with.
    pub params: Params,
    /// The device node, e.g. `/dev/pmem0.1` or `/dev/pmem-rs-region0/...`.
    pub device: String,
    /// Whether it is a CSI ephemeral inline volume (deleted at unpublish).
    #[serde(default)]
    pub ephemeral: bool,
    /// Pending or acknowledged (format 1 had no phase: acknowledged).
    #[serde(default)]
    pub phase: Phase,
    /// The volume this one was cloned from (CSI volume content source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<VolumeId>,
    /// Fields of a newer format, kept as read and written back unchanged.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn format_default() -> u32 {
    FORMAT
}

/// The directory of volume records.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
}

fn io(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Internal(format!("state {}: {what}: {e}", path.display()))
}

impl StateStore {
    /// Opens (creating) the state directory `dir/volumes`.
    pub fn open(dir: &Path) -> Result<Self> {
        let dir = dir.join("volumes");
        fs::create_dir_all(&dir).map_err(|e| io(&dir, "create", e))?;
        Ok(StateStore { dir })
    }

    fn path(&self, id: &VolumeId) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Every record; leftovers of interrupted writes (`*.tmp`) are removed,
    /// records newer than one release ahead or unreadable are errors.
    pub fn load(&self) -> Result<Vec<VolumeRecord>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| io(&self.dir, "read", e))? {
            let path = entry.map_err(|e| io(&self.dir, "read", e))?.path();
            match path.extension().and_then(|e| e.to_str()) {
                Some("tmp") => {
                    let _ = fs::remove_file(&path);
                }
                Some("json") => {
                    let text = fs::read_to_string(&path).map_err(|e| io(&path, "read", e))?;
                    let rec: VolumeRecord = serde_json::from_str(&text)
                        .map_err(|e| Error::Internal(format!("state {}: {e}", path.display())))?;
                    if rec.format > FORMAT + 1 {
                        return Err(Error::Internal(format!(
                            "state {}: format {} is more than one release newer than {FORMAT}",
                            path.display(),
                            rec.format
                        )));
                    }
                    out.push(rec);
                }
                _ => {}
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Writes `rec` atomically.
    pub fn put(&self, rec: &VolumeRecord) -> Result<()> {
        let path = self.path(&rec.id);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(rec).map_err(|e| Error::Internal(e.to_string()))?;
        let mut f = File::create(&tmp).map_err(|e| io(&tmp, "create", e))?;
        f.write_all(&text).map_err(|e| io(&tmp, "write", e))?;
        f.sync_all().map_err(|e| io(&tmp, "fsync", e))?;
        fs::rename(&tmp, &path).map_err(|e| io(&path, "rename", e))?;
        sync_dir(&self.dir)
    }

    /// Removes the record of `id` (no error if there is none).
    pub fn remove(&self, id: &VolumeId) -> Result<()> {
        let path = self.path(id);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path, "remove", e)),
        }
    }
}

/// Makes a rename or removal in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, "fsync", e))
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync dir).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(|e| io(&tmp, "create", e))?;
    f.write_all(bytes).map_err(|e| io(&tmp, "write", e))?;
    f.sync_all().map_err(|e| io(&tmp, "fsync", e))?;
    fs::rename(&tmp, path).map_err(|e| io(path, "rename", e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::VolumeName;

    fn rec(name: &str) -> VolumeRecord {
        VolumeRecord {
            format: FORMAT,
            id: VolumeId::for_name(&VolumeName::parse(name).unwrap()),
            name: name.into(),
            size: 64 << 20,
            params: Params::default(),
            device: "/dev/pmem0.1".into(),
            ephemeral: false,
            phase: Phase::Acknowledged,
            source: None,
            extra: Default::default(),
        }
    }

    /// A record as format 1 wrote it (no phase).
    const FORMAT_1: &str = r#"{
  "format": 1,
  "id": "pmem-0123456789abcdef0123456789abcdef",
  "name": "pvc-old",
  "size": 67108864,
  "params": { "erase_after": true, "mode": "fsdax", "dax": true },
  "device": "/dev/pmem0.1",
  "ephemeral": false
}"#;

    #[test]
    fn records_of_the_previous_format_are_read_as_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateStore::open(dir.path()).unwrap();
        std::fs::write(
            dir.path()
                .join("volumes/pmem-0123456789abcdef0123456789abcdef.json"),
            FORMAT_1,
        )
        .unwrap();
        let all = s.load().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].name, "pvc-old");
        assert_eq!(all[0].phase, Phase::Acknowledged);
        assert_eq!(all[0].size, 64 << 20);
    }

    #[test]
    fn downgrade_and_upgrade_lose_nothing() {
        // Written by the next format: a field this release does not know.
        let dir = tempfile::tempdir().unwrap();
        let s = StateStore::open(dir.path()).unwrap();
        let r = rec("next");
        let mut next = serde_json::to_value(&r).unwrap();
        next["format"] = (FORMAT + 1).into();
        next["placement"] = serde_json::json!({"numa": 1, "tier": "fast"});
        let path = dir.path().join(format!("volumes/{}.json", r.id));
        std::fs::write(&path, next.to_string()).unwrap();
        // Read by this release, rewritten as an expansion does, read again.
        let mut read = s.load().unwrap().remove(0);
        read.size *= 2;
        s.put(&read).unwrap();
        let back: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back["placement"], next["placement"], "unknown field kept");
        assert_eq!(
            back["format"], next["format"],
            "format left as the newer release wrote it"
        );
        assert_eq!(back["size"], serde_json::json!(r.size * 2));
        let mut expect = next.clone();
        expect["size"] = (r.size * 2).into();
        assert_eq!(back, expect, "nothing else changed");
    }

    #[test]
    fn put_load_remove_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateStore::open(dir.path()).unwrap();
        s.put(&rec("a")).unwrap();
        s.put(&rec("b")).unwrap();
        std::fs::write(dir.path().join("volumes/x.json.tmp"), b"{half").unwrap();
        let all = s.load().unwrap();
        assert_eq!(all.len(), 2);
        assert!(all.contains(&rec("a")));
        assert!(
            !dir.path().join("volumes/x.json.tmp").exists(),
            "interrupted writes are cleaned up"
        );
        s.remove(&rec("a").id).unwrap();
        s.remove(&rec("a").id).unwrap();
        assert_eq!(s.load().unwrap(), vec![rec("b")]);
    }

    #[test]
    fn newer_records_by_one_release_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateStore::open(dir.path()).unwrap();
        let r = rec("next");
        let mut v = serde_json::to_value(&r).unwrap();
        v["format"] = (FORMAT + 1).into();
        v["added_in_next_release"] = "whatever".into();
        std::fs::write(
            dir.path().join(format!("volumes/{}.json", r.id)),
            v.to_string(),
        )
        .unwrap();
        assert_eq!(s.load().unwrap()[0].name, "next");
        v["format"] = (FORMAT + 2).into();
        std::fs::write(
            dir.path().join(format!("volumes/{}.json", r.id)),
            v.to_string(),
        )
        .unwrap();
        assert!(s.load().is_err());
    }
}
