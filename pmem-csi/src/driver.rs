//! The driver's logic as plain functions: validate, lock, call the device manager, keep state.

use crate::error::{Error, Result};
use crate::locks::InFlight;
use crate::manager::{Capacity, Device, DeviceManager};
use crate::state::{StateStore, VolumeRecord, FORMAT};
use crate::volume::{Params, VolumeId, VolumeName};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// What a request asks for in size: CSI's capacity range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SizeRange {
    /// At least this many bytes (0: the driver's default).
    pub required: u64,
    /// At most this many bytes (0: no limit).
    pub limit: u64,
}

/// The size given to volumes that ask for none.
pub const DEFAULT_SIZE: u64 = 1 << 30;

impl SizeRange {
    /// Validates a request's range.
    pub fn parse(required: i64, limit: i64) -> Result<Self> {
        if required < 0 || limit < 0 {
            return Err(Error::invalid("capacity range with a negative size"));
        }
        let r = SizeRange {
            required: required as u64,
            limit: limit as u64,
        };
        if r.limit != 0 && r.limit < r.required {
            return Err(Error::invalid(format!(
                "capacity limit {} is below the required {}",
                r.limit, r.required
            )));
        }
        Ok(r)
    }

    /// The size to create: the required size, or the default within the limit.
    pub fn target(&self) -> u64 {
        match (self.required, self.limit) {
            (0, 0) => DEFAULT_SIZE,
            (0, l) => DEFAULT_SIZE.min(l),
            (r, _) => r,
        }
    }

    /// Whether an existing volume of `size` bytes satisfies the range.
    pub fn admits(&self, size: u64) -> bool {
        size >= self.required && (self.limit == 0 || size <= self.limit)
    }

    /// The capacity acknowledged for a device of `actual` bytes: the device
    /// may exceed the request by alignment and metadata rounding; the volume
    /// is reported within the range.
    pub fn acknowledged(&self, actual: u64) -> u64 {
        let want = self.target();
        if self.limit != 0 && actual > self.limit {
            self.limit.max(want)
        } else {
            actual.max(want)
        }
    }
}

/// A crash point for the recovery tests: with `PMEM_CSI_CRASH_AT=<point>`
/// the process dies there, as a power cut or SIGKILL would.
pub fn crash_point(point: &str) {
    if std::env::var("PMEM_CSI_CRASH_AT").is_ok_and(|p| p == point) {
        // SAFETY: kill(2) on our own pid with SIGKILL has no memory effects.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
}

/// The driver: a device manager, the state of its volumes, and the per-volume locks.
pub struct Driver {
    /// The node this driver serves.
    pub node_id: String,
    /// The CSI driver name (also the topology key prefix).
    pub name: String,
    manager: Arc<dyn DeviceManager>,
    state: StateStore,
    volumes: Mutex<BTreeMap<VolumeId, VolumeRecord>>,
    locks: InFlight,
    /// The largest volume the node could ever hold, per parameter set: the
    /// regions' and VGs' sizes do not change while the driver runs.
    max_possible: Mutex<Vec<(Params, u64)>>,
}

impl Driver {
    /// Starts a driver: loads its state and reconciles it with the manager
    /// (volume in both: served; in state only: reported and forgotten;
    /// device without a record: removed). Returns the driver and what
    /// reconciliation did, for the log.
    pub fn start(
        name: String,
        node_id: String,
        manager: Arc<dyn DeviceManager>,
        state: StateStore,
    ) -> Result<(Self, Vec<String>)> {
        let records = state.load()?;
        let devices = manager.list()?;
        let mut notes = Vec::new();
        let mut volumes = BTreeMap::new();
        for rec in records {
            if devices.iter().any(|d| d.id == rec.id) {
                volumes.insert(rec.id.clone(), rec);
            } else {
                notes.push(format!(
                    "volume {} ({}) has no device any more: forgotten",
                    rec.id, rec.name
                ));
                state.remove(&rec.id)?;
            }
        }
        for d in devices.iter().filter(|d| !volumes.contains_key(&d.id)) {
            notes.push(format!(
                "device {} of unrecorded volume {} removed",
                d.path, d.id
            ));
            manager.delete(&d.id, true)?;
        }
        // The largest volume ever possible, read now rather than under the first burst of creates.
        let max_possible = manager
            .capacity(&Params::default())
            .map(|c| vec![(Params::default(), c.max_possible)])
            .unwrap_or_default();
        Ok((
            Driver {
                node_id,
                name,
                manager,
                state,
                volumes: Mutex::new(volumes),
                locks: InFlight::default(),
                max_possible: Mutex::new(max_possible),
            },
            notes,
        ))
    }

    /// The device manager.
    pub fn manager(&self) -> &dyn DeviceManager {
        self.manager.as_ref()
    }

    fn volumes(&self) -> std::sync::MutexGuard<'_, BTreeMap<VolumeId, VolumeRecord>> {
        self.volumes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The topology key of this driver's nodes.
    pub fn topology_key(&self) -> String {
        format!("{}/node", self.name)
    }

    /// Creates volume `name` (idempotent by name).
    pub fn create_volume(
        &self,
        name: &str,
        range: SizeRange,
        params: Params,
    ) -> Result<VolumeRecord> {
        self.create(name, range, params, false)
    }

    /// Creates the CSI ephemeral inline volume `name` (deleted when unpublished).
    pub fn create_ephemeral(
        &self,
        name: &str,
        range: SizeRange,
        params: Params,
    ) -> Result<VolumeRecord> {
        self.create(name, range, params, true)
    }

    fn create(
        &self,
        name: &str,
        range: SizeRange,
        params: Params,
        ephemeral: bool,
    ) -> Result<VolumeRecord> {
        let name = VolumeName::parse(name)?;
        let id = VolumeId::for_name(&name);
        let _guard = self.locks.lock(&[&name.0, id.as_str()])?;
        if let Some(existing) = self.volumes().get(&id).cloned() {
            if !range.admits(existing.size) {
                return Err(Error::AlreadyExists(format!(
                    "volume {:?} exists with {} bytes, outside the requested range",
                    name.0, existing.size
                )));
            }
            if existing.params != params {
                return Err(Error::AlreadyExists(format!(
                    "volume {:?} exists with other parameters",
                    name.0
                )));
            }
            return Ok(existing);
        }
        let size = range.target();
        let max_possible = self.max_possible(&params)?;
        if size > max_possible {
            return Err(Error::OutOfRange(format!(
                "volume {:?}: {size} bytes is more than this node can ever provide ({max_possible} bytes)",
                name.0
            )));
        }
        crash_point("create-before-device");
        let device: Device = self.manager.create(&id, size, &params)?;
        crash_point("create-after-device");
        let rec = VolumeRecord {
            format: FORMAT,
            id: id.clone(),
            name: name.0.clone(),
            size: range.acknowledged(device.size),
            params,
            device: device.path,
            ephemeral,
        };
        self.state.put(&rec)?;
        crash_point("create-after-record");
        self.volumes().insert(id, rec.clone());
        Ok(rec)
    }

    /// Deletes volume `id` (idempotent: an unknown id succeeds).
    pub fn delete_volume(&self, id: &str) -> Result<()> {
        let id = match VolumeId::parse(id) {
            Ok(id) => id,
            Err(Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let _guard = self.locks.lock(&[id.as_str()])?;
        let rec = self.volumes().get(&id).cloned();
        let erase = rec.as_ref().is_none_or(|r| r.params.erase_after);
        crash_point("delete-before-device");
        self.manager.delete(&id, erase)?;
        crash_point("delete-after-device");
        self.state.remove(&id)?;
        crash_point("delete-after-record");
        self.volumes().remove(&id);
        Ok(())
    }

    /// The record of volume `id`, or [`Error::NotFound`].
    pub fn volume(&self, id: &str) -> Result<VolumeRecord> {
        let id = VolumeId::parse(id)?;
        self.volumes()
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("volume {id} does not exist")))
    }

    /// Volumes in id order, from `start` (an index token), at most `max` (0: all).
    pub fn list_volumes(
        &self,
        start: &str,
        max: i32,
    ) -> Result<(Vec<VolumeRecord>, Option<String>)> {
        if max < 0 {
            return Err(Error::invalid("max_entries is negative"));
        }
        let from = if start.is_empty() {
            0
        } else {
            start.parse::<usize>().map_err(|_| {
                Error::Aborted(format!(
                    "starting token {start:?} is not one this driver gave"
                ))
            })?
        };
        let all: Vec<VolumeRecord> = self.volumes().values().cloned().collect();
        if from > all.len() {
            return Err(Error::Aborted(format!(
                "starting token {start:?} is past the end of the list"
            )));
        }
        let end = if max == 0 {
            all.len()
        } else {
            (from + max as usize).min(all.len())
        };
        let next = (end < all.len()).then(|| end.to_string());
        Ok((all[from..end].to_vec(), next))
    }

    /// Grows volume `id` to at least `range.required` bytes.
    pub fn expand_volume(&self, id: &str, range: SizeRange) -> Result<u64> {
        let rec = self.volume(id)?;
        let _guard = self.locks.lock(&[rec.id.as_str()])?;
        let want = range.target();
        if rec.size >= want {
            return Ok(rec.size);
        }
        let size = self.manager.expand(&rec.id, want)?;
        let new = VolumeRecord {
            size: range.acknowledged(size),
            ..rec
        };
        self.state.put(&new)?;
        self.volumes().insert(new.id.clone(), new.clone());
        Ok(new.size)
    }

    fn max_possible(&self, params: &Params) -> Result<u64> {
        let cached = self
            .max_possible
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(p, _)| p == params)
            .map(|(_, m)| *m);
        if let Some(m) = cached {
            return Ok(m);
        }
        let m = self.manager.capacity(params)?.max_possible;
        self.max_possible
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((params.clone(), m));
        Ok(m)
    }

    /// Capacity for volumes with `params`.
    pub fn capacity(&self, params: &Params) -> Result<Capacity> {
        self.manager.capacity(params)
    }
}
