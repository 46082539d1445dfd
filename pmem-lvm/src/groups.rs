//! [`VolumeGroups`]: the crate's VGs as LVM reports them, the volume index, and the locks.
//!
//! The state is read from LVM when the value is opened (three report
//! commands) and by [`VolumeGroups::refresh`] and [`VolumeGroups::list`];
//! [`VolumeGroups::capacity`] rereads only the VGs (one report); create, delete and grow keep it current, so
//! that they run one LVM command each. One value is meant to own the
//! crate's VGs on a machine (the CSI node driver); a command that finds LVM
//! disagreeing with the index refreshes it and retries once.

use crate::error::Result;
use crate::names::{LvName, VgName, VolumeName, OWNER_TAG};
use crate::report::{LvRow, PvRow, Row, VgRow};
use crate::runner::{LvmCommand, Runner};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// A volume: an LV of one of the crate's VGs, under the user's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Volume {
    /// The user's name.
    pub name: VolumeName,
    /// The VG it lives in.
    pub vg: VgName,
    /// Its LV name (derived from the user's name).
    pub lv: LvName,
    /// Size, bytes (a multiple of the VG's extent size).
    pub size: u64,
    /// The block device, `/dev/<vg>/<lv>`.
    pub device: PathBuf,
    /// The LV's other tags (not the one that keeps its name): what the
    /// volume's owner recorded with [`VolumeGroups::create_tagged`] and
    /// [`VolumeGroups::retag`].
    pub tags: Vec<String>,
}

/// One of the crate's VGs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VgInfo {
    /// Its name, e.g. `pmem-rs-region0`.
    pub name: VgName,
    /// Size, bytes.
    pub size: u64,
    /// Free, bytes, as LVM last reported it less what running creates reserved.
    pub free: u64,
    /// Extent size, bytes: volume sizes are rounded up to it.
    pub extent_size: u64,
    /// Its PVs (the fsdax namespaces' block devices).
    pub pvs: Vec<String>,
    /// How many volumes it holds.
    pub volumes: usize,
    /// Whether its free extents may hold old bytes: a volume was removed
    /// from it unerased (VG tag [`crate::zeroed::DIRTY_TAG`]); a new volume
    /// there must be zeroed before its owner hands it out.
    pub dirty: bool,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) vgs: BTreeMap<VgName, VgInfo>,
    pub(crate) volumes: BTreeMap<VolumeName, Volume>,
    /// Bytes reserved per VG by creates whose `lvcreate` has not finished:
    /// LVM does not count them yet, so a reread subtracts them from its free.
    pub(crate) pending: BTreeMap<VgName, u64>,
}

/// The crate's volume groups and the volumes in them.
///
/// `Sync`: share it between threads. Operations on different VGs run in
/// parallel, operations on the same VG one at a time, operations on the
/// same volume name one at a time (so two concurrent creates of one name
/// make one volume).
#[derive(Debug)]
pub struct VolumeGroups {
    pub(crate) runner: Runner,
    pub(crate) state: Mutex<State>,
    vg_locks: Mutex<BTreeMap<VgName, Arc<Mutex<()>>>>,
    names: NameLocks,
}

impl VolumeGroups {
    /// Opens the VGs this crate made earlier (tagged `pmem-rs`), changing nothing.
    pub fn open(runner: Runner) -> Result<VolumeGroups> {
        let groups = VolumeGroups {
            runner,
            state: Mutex::new(State::default()),
            vg_locks: Mutex::new(BTreeMap::new()),
            names: NameLocks::default(),
        };
        groups.refresh()?;
        Ok(groups)
    }

    /// The runner the value uses.
    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    /// Rereads VGs, PVs and volumes from LVM.
    pub fn refresh(&self) -> Result<()> {
        let vgs = own_vgs(&self.runner)?;
        let pvs: Vec<PvRow> = self
            .runner
            .report("PVs", &LvmCommand::report("pvs", PvRow::FIELDS))?;
        let volumes = self.read_volumes(&vgs)?;
        let mut st = lock(&self.state);
        st.vgs = vgs
            .into_iter()
            .map(|vg| {
                let info = VgInfo {
                    pvs: pvs
                        .iter()
                        .filter(|p| p.vg == vg.name.as_str())
                        .map(|p| p.name.clone())
                        .collect(),
                    volumes: volumes.values().filter(|v| v.vg == vg.name).count(),
                    name: vg.name.clone(),
                    size: vg.size,
                    free: vg
                        .free
                        .saturating_sub(st.pending.get(&vg.name).copied().unwrap_or(0)),
                    extent_size: vg.extent_size,
                    dirty: vg.dirty,
                };
                (vg.name, info)
            })
            .collect();
        st.volumes = volumes;
        Ok(())
    }

    /// Rereads the sizes and free space of the crate's VGs (one `vgs`);
    /// a VG that appeared is added with the PVs and volumes of the next [`Self::refresh`].
    pub(crate) fn refresh_vgs(&self) -> Result<()> {
        let vgs = own_vgs(&self.runner)?;
        let mut st = lock(&self.state);
        let pending = st.pending.clone();
        let mut old = std::mem::take(&mut st.vgs);
        st.vgs = vgs
            .into_iter()
            .map(|vg| {
                let free = vg
                    .free
                    .saturating_sub(pending.get(&vg.name).copied().unwrap_or(0));
                let info = match old.remove(&vg.name) {
                    Some(known) => VgInfo {
                        size: vg.size,
                        free,
                        extent_size: vg.extent_size,
                        dirty: vg.dirty,
                        ..known
                    },
                    None => VgInfo {
                        name: vg.name.clone(),
                        size: vg.size,
                        free,
                        extent_size: vg.extent_size,
                        pvs: Vec::new(),
                        volumes: 0,
                        dirty: vg.dirty,
                    },
                };
                (vg.name, info)
            })
            .collect();
        Ok(())
    }

    /// Rereads the volumes of the crate's VGs (one `lvs`).
    fn read_volumes(&self, vgs: &[OwnVg]) -> Result<BTreeMap<VolumeName, Volume>> {
        let rows: Vec<LvRow> = self
            .runner
            .report("LVs", &LvmCommand::report("lvs", LvRow::FIELDS))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let Some(vg) = vgs.iter().find(|v| v.name.as_str() == row.vg) else {
                continue;
            };
            let Some(name) = row.tags.iter().find_map(|t| VolumeName::from_tag(t)) else {
                continue;
            };
            let Ok(lv) = LvName::new(row.name.clone()) else {
                continue;
            };
            let device = device_path(&vg.name, &lv);
            let tags = row
                .tags
                .iter()
                .filter(|t| VolumeName::from_tag(t).is_none())
                .cloned()
                .collect();
            out.insert(
                name.clone(),
                Volume {
                    name,
                    vg: vg.name.clone(),
                    lv,
                    size: row.size,
                    device,
                    tags,
                },
            );
        }
        Ok(out)
    }

    /// The crate's VGs, as last read or kept current.
    pub fn vgs(&self) -> Vec<VgInfo> {
        lock(&self.state).vgs.values().cloned().collect()
    }

    /// Every volume, reread from LVM, by name.
    pub fn list(&self) -> Result<Vec<Volume>> {
        self.refresh()?;
        Ok(lock(&self.state).volumes.values().cloned().collect())
    }

    /// The volume called `name`, if there is one.
    pub fn lookup(&self, name: &VolumeName) -> Option<Volume> {
        lock(&self.state).volumes.get(name).cloned()
    }

    /// The lock that serialises operations on `vg`.
    pub(crate) fn vg_lock(&self, vg: &VgName) -> Arc<Mutex<()>> {
        lock(&self.vg_locks).entry(vg.clone()).or_default().clone()
    }

    /// Waits until no other operation on `name` runs, and holds it off until the guard drops.
    pub(crate) fn name_lock(&self, name: &VolumeName) -> NameGuard<'_> {
        self.names.lock(name)
    }
}

/// A VG row that carries the crate's tag.
#[derive(Debug)]
pub(crate) struct OwnVg {
    pub(crate) name: VgName,
    size: u64,
    pub(crate) free: u64,
    extent_size: u64,
    pub(crate) dirty: bool,
}

/// Every VG tagged `pmem-rs` (one `vgs`), and every VG's name.
pub(crate) fn all_vgs(runner: &Runner) -> Result<(Vec<OwnVg>, Vec<String>)> {
    let rows: Vec<VgRow> = runner.report("VGs", &LvmCommand::report("vgs", VgRow::FIELDS))?;
    let names = rows.iter().map(|r| r.name.clone()).collect();
    let own = rows
        .into_iter()
        .filter(|r| r.tags.iter().any(|t| t == OWNER_TAG))
        .filter_map(|r| {
            Some(OwnVg {
                name: VgName::new(r.name).ok()?,
                size: r.size,
                free: r.free,
                extent_size: r.extent_size,
                dirty: r.tags.iter().any(|t| t == crate::zeroed::DIRTY_TAG),
            })
        })
        .collect();
    Ok((own, names))
}

fn own_vgs(runner: &Runner) -> Result<Vec<OwnVg>> {
    all_vgs(runner).map(|(own, _)| own)
}

/// `/dev/<vg>/<lv>`, the node LVM makes for an active LV.
pub(crate) fn device_path(vg: &VgName, lv: &LvName) -> PathBuf {
    PathBuf::from(format!("/dev/{vg}/{lv}"))
}

/// Locks a mutex; a panic in another thread does not make the plain data it guards invalid.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The set of volume names being operated on.
#[derive(Debug, Default)]
struct NameLocks {
    held: Mutex<HashSet<VolumeName>>,
    freed: Condvar,
}

impl NameLocks {
    fn lock(&self, name: &VolumeName) -> NameGuard<'_> {
        let mut held = lock(&self.held);
        while held.contains(name) {
            held = self
                .freed
                .wait(held)
                .unwrap_or_else(PoisonError::into_inner);
        }
        held.insert(name.clone());
        NameGuard {
            locks: self,
            name: name.clone(),
        }
    }
}

/// Holds one volume name; releases it on drop.
#[derive(Debug)]
pub(crate) struct NameGuard<'a> {
    locks: &'a NameLocks,
    name: VolumeName,
}

impl Drop for NameGuard<'_> {
    fn drop(&mut self) {
        lock(&self.locks.held).remove(&self.name);
        self.locks.freed.notify_all();
    }
}
