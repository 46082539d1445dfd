//! Rebuilding the volume table from the devices, and the periodic pass that keeps it true.
//!
//! The devices are the truth: every device the manager lists is a volume,
//! with the record it carries (or, for a device from before devices carried
//! records, the cached record, or an adopted default). A cached record
//! whose device is not listed is kept and marked missing. Nothing is ever
//! removed here but a pending device whose creation no client was told of,
//! after the orphan grace period, when nothing holds it.

use crate::driver::{device_record, Driver, Entry};
use crate::error::Error;
use crate::manager::{Device, DeviceManager};
use crate::state::{Phase, StateStore, VolumeRecord, FORMAT};
use crate::volume::{Params, VolumeId};
use std::collections::BTreeMap;
use std::time::Instant;

/// The record of device `d`, from what it carries and what was cached.
fn record_of(
    manager: &dyn DeviceManager,
    d: &Device,
    cached: Option<VolumeRecord>,
    notes: &mut Vec<String>,
) -> VolumeRecord {
    match (&d.record, cached) {
        (Some(dr), cached) => {
            let (format, name, source, extra) = match cached {
                Some(c) => (c.format.max(FORMAT), c.name, c.source, c.extra),
                None => (FORMAT, String::new(), None, Default::default()),
            };
            VolumeRecord {
                format,
                id: d.id.clone(),
                name: dr.name.clone().unwrap_or(name),
                size: dr.acknowledged_size(d.size),
                params: dr.params.clone(),
                device: d.path.clone(),
                ephemeral: dr.ephemeral,
                phase: dr.phase,
                source: dr.source.clone().or(source),
                extra,
            }
        }
        (None, cached) => {
            let rec = match cached {
                Some(c) => VolumeRecord {
                    format: c.format.max(FORMAT),
                    device: d.path.clone(),
                    // Present, so not deleted: a deletion that stopped before the device went.
                    phase: Phase::Acknowledged,
                    ..c
                },
                None => {
                    notes.push(format!(
                        "device {} of volume {} has no record: adopted as acknowledged",
                        d.path, d.id
                    ));
                    VolumeRecord {
                        format: FORMAT,
                        id: d.id.clone(),
                        name: String::new(),
                        size: d.size,
                        params: Params::default(),
                        device: d.path.clone(),
                        ephemeral: false,
                        phase: Phase::Acknowledged,
                        source: None,
                        extra: Default::default(),
                    }
                }
            };
            // Migration: the device carries its record from now on, where it can.
            if manager.can_update_record() {
                if let Err(e) = manager.update_record(&rec.id, &device_record(&rec, 0)) {
                    notes.push(format!("device {}: record not written: {e}", d.path));
                }
            }
            rec
        }
    }
}

/// Builds the volume table from `devices` and the `cached` records; writes
/// the cache back where it differs. Removes nothing.
pub(crate) fn rebuild(
    manager: &dyn DeviceManager,
    state: &StateStore,
    cached: Vec<VolumeRecord>,
    devices: Vec<Device>,
    now: Instant,
) -> (BTreeMap<VolumeId, Entry>, Vec<String>) {
    let mut notes = Vec::new();
    let mut cache: BTreeMap<VolumeId, VolumeRecord> =
        cached.into_iter().map(|r| (r.id.clone(), r)).collect();
    let mut table = BTreeMap::new();
    for d in devices {
        let old = cache.remove(&d.id);
        let rec = record_of(manager, &d, old.clone(), &mut notes);
        if old.as_ref() != Some(&rec) {
            if let Err(e) = state.put(&rec) {
                notes.push(format!("state cache for {}: {e}", rec.id));
            }
        }
        if rec.phase == Phase::Pending {
            notes.push(format!(
                "device {} of volume {} is pending: kept for a retry",
                d.path, d.id
            ));
        }
        table.insert(d.id, Entry::new(rec, now));
    }
    for (id, rec) in cache {
        if rec.phase == Phase::Deleting {
            notes.push(format!(
                "volume {id} was being deleted and its device is gone: done"
            ));
            if let Err(e) = state.remove(&id) {
                notes.push(format!("state cache for {id}: {e}"));
            }
            continue;
        }
        notes.push(format!(
            "the device {} of volume {id} is missing: the volume is kept and reported abnormal",
            rec.device
        ));
        let mut e = Entry::new(rec, now);
        e.missing = true;
        e.pending_since = None;
        table.insert(id, e);
    }
    (table, notes)
}

impl Driver {
    /// One pass over the devices: volumes whose device came back are served
    /// again, volumes whose device vanished are marked missing (never
    /// forgotten), devices that appeared are taken in, and pending devices
    /// older than the orphan grace period that nothing holds are removed.
    /// Volumes with an operation in flight are left for the next pass.
    /// Returns what changed, for the log.
    pub fn maintain(&self) -> Vec<String> {
        if self.table().values().any(|e| e.missing) {
            if let Err(e) = self.manager.rescan() {
                return vec![format!("devices not rescanned: {e}")];
            }
        }
        let devices = match self.manager.list() {
            Ok(d) => d,
            Err(e) => return vec![format!("devices not listed: {e}")],
        };
        let mut notes = Vec::new();
        if let Err(e) = self.refresh_media(&devices) {
            notes.push(format!("media health not read: {e}"));
        }
        let now = Instant::now();
        let mut listed: BTreeMap<VolumeId, Device> =
            devices.into_iter().map(|d| (d.id.clone(), d)).collect();
        let known: Vec<VolumeId> = self.table().keys().cloned().collect();
        for id in known {
            let Ok(_guard) = self.lock_volume(&[id.as_str()]) else {
                listed.remove(&id);
                continue;
            };
            let Some(entry) = self.table().get(&id).cloned() else {
                continue;
            };
            match listed.remove(&id) {
                Some(d) if entry.missing => {
                    notes.push(format!("the device {} of volume {id} is back", d.path));
                    let rec = record_of(self.manager(), &d, Some(entry.rec), &mut notes);
                    self.cache(&rec);
                    self.table().insert(id, Entry::new(rec, now));
                }
                Some(_) => {
                    let expired = entry
                        .pending_since
                        .is_some_and(|t| now.duration_since(t) >= self.orphan_grace);
                    if entry.rec.phase == Phase::Pending && expired {
                        notes.push(self.remove_orphan(&id));
                    }
                }
                None if !entry.missing => {
                    notes.push(format!(
                        "the device {} of volume {id} is missing: the volume is kept and reported abnormal",
                        entry.rec.device
                    ));
                    if let Some(e) = self.table().get_mut(&id) {
                        e.missing = true;
                    }
                }
                None => {}
            }
        }
        for (id, d) in listed {
            let Ok(_guard) = self.lock_volume(&[id.as_str()]) else {
                continue;
            };
            if self.table().contains_key(&id) {
                continue;
            }
            let rec = record_of(self.manager(), &d, None, &mut notes);
            notes.push(format!(
                "device {} of volume {id} appeared: taken in",
                d.path
            ));
            self.cache(&rec);
            self.table().insert(id, Entry::new(rec, now));
        }
        notes
    }

    /// Removes a pending device no client was told of (the lock is held).
    fn remove_orphan(&self, id: &VolumeId) -> String {
        match self.manager.delete(id, true) {
            Ok(()) => {
                let _ = self.state.remove(id);
                self.table().remove(id);
                format!("pending volume {id} was not claimed within the grace period: removed")
            }
            Err(e @ Error::FailedPrecondition(_)) => {
                format!("pending volume {id} is in use: kept ({e})")
            }
            Err(e) => format!("pending volume {id} not removed: {e}"),
        }
    }

    /// The acknowledged volume `id` with a device present; a missing device
    /// is looked for once more, and is UNAVAILABLE while it stays missing.
    pub fn present_volume(&self, id: &str) -> crate::error::Result<VolumeRecord> {
        let rec = self.volume(id)?;
        if self.condition(&rec.id).is_none() {
            return Ok(rec);
        }
        self.manager.rescan()?;
        let back = self.manager.list()?.into_iter().find(|d| d.id == rec.id);
        match back {
            Some(d) => {
                let mut notes = Vec::new();
                let rec = record_of(self.manager(), &d, Some(rec), &mut notes);
                self.cache(&rec);
                self.table()
                    .insert(rec.id.clone(), Entry::new(rec.clone(), Instant::now()));
                Ok(rec)
            }
            None => Err(Error::Unavailable(
                self.condition(&rec.id).unwrap_or_default(),
            )),
        }
    }
}
