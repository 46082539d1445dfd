//! The driver's logic as plain functions: validate, lock, call the device manager, keep state.

use crate::error::{Error, Result};
use crate::locks::{Guard, InFlight};
use crate::manager::{Capacity, Device, DeviceManager, Fill};
use crate::media::MediaReport;
use crate::record::DeviceRecord;
use crate::state::{Phase, StateStore, VolumeRecord, FORMAT};
use crate::volume::{Params, VolumeId, VolumeName};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

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

    /// The range raised to at least `min` bytes, the smallest `what` can be made on;
    /// OUT_OF_RANGE when the limit is below that.
    pub fn at_least(self, min: u64, what: &str) -> Result<Self> {
        if self.limit != 0 && self.limit < min {
            return Err(Error::OutOfRange(format!(
                "{what} needs at least {min} bytes; the capacity limit is {}",
                self.limit
            )));
        }
        Ok(SizeRange {
            required: if self.required == 0 && self.target() >= min {
                0
            } else {
                self.required.max(min)
            },
            limit: self.limit,
        })
    }

    /// Whether an existing volume of `size` bytes satisfies the range.
    pub fn admits(&self, size: u64) -> bool {
        size >= self.required && (self.limit == 0 || size <= self.limit)
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

/// One volume the driver knows: its record, and how its device is.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) rec: VolumeRecord,
    /// The device was not listed when last looked for: the volume is kept
    /// and reported abnormal until it is back.
    pub(crate) missing: bool,
    /// When this process first saw the volume pending (for the orphan grace).
    pub(crate) pending_since: Option<Instant>,
}

impl Entry {
    pub(crate) fn new(rec: VolumeRecord, now: Instant) -> Self {
        let pending_since = (rec.phase == Phase::Pending).then_some(now);
        Entry {
            rec,
            missing: false,
            pending_since,
        }
    }
}

/// A listed volume and why it is abnormal, if it is.
pub type Listed = (VolumeRecord, Option<String>);

/// How long a pending device is kept for a retry by name before it is removed.
pub const DEFAULT_ORPHAN_GRACE: Duration = Duration::from_secs(600);

/// The driver: a device manager, the volumes it holds, and the per-volume locks.
pub struct Driver {
    /// The node this driver serves.
    pub node_id: String,
    /// The CSI driver name (also the topology key prefix).
    pub name: String,
    pub(crate) manager: Arc<dyn DeviceManager>,
    pub(crate) state: StateStore,
    pub(crate) volumes: Mutex<BTreeMap<VolumeId, Entry>>,
    locks: InFlight,
    /// The largest volume the node could ever hold, per parameter set: the
    /// regions' and VGs' sizes do not change while the driver runs.
    max_possible: Mutex<Vec<(Params, u64)>>,
    pub(crate) orphan_grace: Duration,
    /// Whether the CSI endpoint takes requests (see [`Driver::is_ready`]).
    serving: tokio::sync::watch::Sender<bool>,
    /// The media health last read (see [`Driver::refresh_media`]).
    media: Mutex<MediaReport>,
}

/// The device record of `rec`.
pub(crate) fn device_record(rec: &VolumeRecord, limit: u64) -> DeviceRecord {
    DeviceRecord {
        phase: rec.phase,
        limit,
        params: rec.params.clone(),
        ephemeral: rec.ephemeral,
        name: Some(rec.name.clone()).filter(|n| !n.is_empty()),
        source: rec.source.clone(),
    }
}

/// Checks that existing volume `e` answers a create of `name` with `range`,
/// `params` and `ephemeral`: its device is present (else UNAVAILABLE), its
/// size in the range and its parameters the same (else ALREADY_EXISTS).
pub(crate) fn check_existing(
    name: &VolumeName,
    e: &Entry,
    range: SizeRange,
    params: &Params,
    ephemeral: bool,
) -> Result<()> {
    let what = |why: &str| format!("volume {:?} exists {why}", name.0);
    if e.missing {
        return Err(Error::Unavailable(format!(
            "volume {:?}: its device {} is missing; retry when it is back",
            name.0, e.rec.device
        )));
    }
    if !range.admits(e.rec.size) {
        return Err(Error::AlreadyExists(what(&format!(
            "with {} bytes, outside the requested range",
            e.rec.size
        ))));
    }
    if e.rec.params != *params || e.rec.ephemeral != ephemeral {
        return Err(Error::AlreadyExists(what("with other parameters")));
    }
    Ok(())
}

impl Driver {
    /// Starts a driver: rebuilds the volume table from the devices (the
    /// truth) and the cached records (see [`crate::reconcile`]). Nothing is
    /// removed at start. Returns the driver and what reconciliation found,
    /// for the log.
    pub fn start(
        name: String,
        node_id: String,
        manager: Arc<dyn DeviceManager>,
        state: StateStore,
    ) -> Result<(Self, Vec<String>)> {
        let cached = state.load()?;
        let devices = manager.list()?;
        let media = manager.media(&devices);
        let (volumes, mut notes) =
            crate::reconcile::rebuild(manager.as_ref(), &state, cached, devices, Instant::now());
        let media = media.unwrap_or_else(|e| {
            notes.push(format!("media health not read: {e}"));
            MediaReport::default()
        });
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
                orphan_grace: DEFAULT_ORPHAN_GRACE,
                serving: tokio::sync::watch::Sender::new(false),
                media: Mutex::new(media),
            },
            notes,
        ))
    }

    /// Sets how long a pending device waits for a retry before [`Driver::maintain`] removes it.
    pub fn with_orphan_grace(mut self, grace: Duration) -> Self {
        self.orphan_grace = grace;
        self
    }

    /// Whether the driver is ready: its volumes were loaded and reconciled
    /// with the devices (it exists) and its CSI endpoint takes requests. CSI
    /// Probe and the metrics server's `/healthz` both answer this.
    pub fn is_ready(&self) -> bool {
        *self.serving.borrow()
    }

    /// Records whether the CSI endpoint takes requests ([`crate::server::serve`] does).
    pub fn set_serving(&self, serving: bool) {
        self.serving.send_replace(serving);
    }

    /// Waits until the driver [is ready](Driver::is_ready).
    pub async fn ready(&self) {
        // The sender lives in `self`: the wait cannot see it closed.
        let _ = self.serving.subscribe().wait_for(|s| *s).await;
    }

    /// The device manager.
    pub fn manager(&self) -> &dyn DeviceManager {
        self.manager.as_ref()
    }

    pub(crate) fn table(&self) -> MutexGuard<'_, BTreeMap<VolumeId, Entry>> {
        self.volumes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds volume `keys` (names, ids) for one operation: a second
    /// operation on any of them is ABORTED until the guard drops.
    pub fn lock_volume(&self, keys: &[&str]) -> Result<Guard> {
        self.locks.lock(keys)
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
        let name = VolumeName::parse(name)?;
        let id = VolumeId::for_name(&name);
        let _guard = self.lock_volume(&[&name.0, id.as_str()])?;
        self.create_locked(&name, range, params, false)
            .map(|(rec, _)| rec)
    }

    /// Creates volume `name` while its lock is held; also says whether this
    /// call made the device (false: it existed).
    pub(crate) fn create_locked(
        &self,
        name: &VolumeName,
        range: SizeRange,
        params: Params,
        ephemeral: bool,
    ) -> Result<(VolumeRecord, bool)> {
        let id = VolumeId::for_name(name);
        let existing = self.table().get(&id).cloned();
        if let Some(e) = existing {
            check_existing(name, &e, range, &params, ephemeral)?;
            if let Some(s) = &e.rec.source {
                return Err(Error::AlreadyExists(format!(
                    "volume {:?} exists as a clone of volume {s}",
                    name.0
                )));
            }
            return match e.rec.phase {
                Phase::Acknowledged | Phase::Deleting => Ok((e.rec, false)),
                // Made by an earlier attempt that never answered: this retry claims it.
                Phase::Pending => self.acknowledge(e.rec, range.limit).map(|r| (r, false)),
            };
        }
        self.make(name, range, params, ephemeral, None)
            .map(|rec| (rec, true))
    }

    /// Makes the device of new volume `name` and acknowledges it; a clone's
    /// content (`clone`: its source and what copies it) is written before
    /// the volume is acknowledged.
    pub(crate) fn make(
        &self,
        name: &VolumeName,
        range: SizeRange,
        params: Params,
        ephemeral: bool,
        clone: Option<(&VolumeId, &Fill<'_>)>,
    ) -> Result<VolumeRecord> {
        let id = VolumeId::for_name(name);
        let size = range.target();
        let max_possible = self.max_possible(&params)?;
        if size > max_possible {
            return Err(self.with_left_out(Error::OutOfRange(format!(
                "volume {:?}: {size} bytes is more than this node can ever provide ({max_possible} bytes)",
                name.0
            ))));
        }
        let min = self.manager.min_size(&params)?;
        if range.limit != 0 && range.limit < min {
            return Err(Error::OutOfRange(format!(
                "volume {:?}: the limit of {} bytes is below the smallest volume this node makes ({min} bytes)",
                name.0, range.limit
            )));
        }
        let two_phase = self.manager.can_update_record();
        let mut rec = VolumeRecord {
            format: FORMAT,
            id: id.clone(),
            name: name.0.clone(),
            size,
            params: params.clone(),
            device: String::new(),
            ephemeral,
            phase: if two_phase {
                Phase::Pending
            } else {
                Phase::Acknowledged
            },
            source: clone.map(|(s, _)| s.clone()),
            extra: Default::default(),
        };
        crash_point("create-before-device");
        let record = device_record(&rec, range.limit);
        let device = match clone {
            // The content is written before the device carries the volume's name.
            Some((_, fill)) if !two_phase => self
                .manager
                .create_filled(&id, size, &params, &record, fill),
            _ => self.manager.create(&id, size, &params, &record),
        }
        .map_err(|e| self.with_left_out(e))?;
        crash_point("create-after-device");
        rec.size = DeviceRecord::acknowledged_size(&record, device.size);
        rec.device = device.path;
        self.cache(&rec);
        self.table()
            .insert(id.clone(), Entry::new(rec.clone(), Instant::now()));
        crash_point("create-after-record");
        if two_phase {
            if let Some((_, fill)) = clone {
                self.fill_pending(&id, fill)?;
            }
            rec = self.acknowledge(rec, range.limit)?;
        }
        Ok(rec)
    }

    /// Writes a pending clone's content; a crash here leaves it pending, and the retry writes it again.
    pub(crate) fn fill_pending(&self, id: &VolumeId, fill: &Fill<'_>) -> Result<()> {
        crash_point("clone-before-copy");
        self.manager.fill(id, fill)?;
        crash_point("clone-after-copy");
        Ok(())
    }

    /// Marks a pending volume acknowledged, on its device first.
    pub(crate) fn acknowledge(&self, rec: VolumeRecord, limit: u64) -> Result<VolumeRecord> {
        let acked = VolumeRecord {
            phase: Phase::Acknowledged,
            ..rec
        };
        self.manager
            .update_record(&acked.id, &device_record(&acked, limit))?;
        crash_point("create-after-ack");
        self.cache(&acked);
        self.table()
            .insert(acked.id.clone(), Entry::new(acked.clone(), Instant::now()));
        Ok(acked)
    }

    /// Writes `rec` to the state cache; a failure is logged, not fatal: the
    /// device carries the record.
    pub(crate) fn cache(&self, rec: &VolumeRecord) {
        if let Err(e) = self.state.put(rec) {
            tracing::warn!(volume = %rec.id, error = %e, "state cache not written; the device keeps the record");
        }
    }

    /// Deletes volume `id` (idempotent: an unknown id succeeds).
    pub fn delete_volume(&self, id: &str) -> Result<()> {
        let id = match VolumeId::parse(id) {
            Ok(id) => id,
            Err(Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let _guard = self.lock_volume(&[id.as_str()])?;
        self.delete_locked(&id)
    }

    /// Deletes volume `id` while its lock is held.
    pub(crate) fn delete_locked(&self, id: &VolumeId) -> Result<()> {
        let entry = self.table().get(id).cloned();
        if let Some(e) = entry.as_ref().filter(|e| e.missing) {
            return Err(Error::Unavailable(format!(
                "volume {id}: its device {} is missing; it can be deleted when it is back",
                e.rec.device
            )));
        }
        let erase = entry.as_ref().is_none_or(|e| e.rec.params.erase_after);
        if let Some(e) = &entry {
            // Should the driver stop after the device is gone, the next start
            // knows the missing device was deleted, not lost.
            self.cache(&VolumeRecord {
                phase: Phase::Deleting,
                ..e.rec.clone()
            });
        }
        crash_point("delete-before-device");
        self.manager.delete(id, erase)?;
        crash_point("delete-after-device");
        if let Err(e) = self.state.remove(id) {
            tracing::warn!(volume = %id, error = %e, "state cache entry not removed");
        }
        crash_point("delete-after-record");
        self.table().remove(id);
        Ok(())
    }

    /// The acknowledged volume `id` (also while its device is missing), or [`Error::NotFound`].
    pub fn volume(&self, id: &str) -> Result<VolumeRecord> {
        let id = VolumeId::parse(id)?;
        self.table()
            .get(&id)
            .filter(|e| e.rec.phase == Phase::Acknowledged)
            .map(|e| e.rec.clone())
            .ok_or_else(|| Error::NotFound(format!("volume {id} does not exist")))
    }

    /// Why volume `id` is not healthy (its device is missing, holds bad blocks or sits
    /// on an unhealthy DIMM), or `None`.
    pub fn condition(&self, id: &VolumeId) -> Option<String> {
        self.missing(id).or_else(|| self.media_condition(id))
    }

    /// Why volume `id` is unusable now: its device is missing.
    pub fn missing(&self, id: &VolumeId) -> Option<String> {
        self.table().get(id).filter(|e| e.missing).map(|e| {
            format!(
                "the device {} of volume {id} is missing; the volume is kept and served again when it is back",
                e.rec.device
            )
        })
    }

    /// Why volume `id`'s media is unsound (bad blocks, an unhealthy DIMM), from the
    /// last [`Driver::refresh_media`], or `None`.
    pub fn media_condition(&self, id: &VolumeId) -> Option<String> {
        let device = self.table().get(id)?.rec.device.clone();
        let media = self.media.lock().unwrap_or_else(PoisonError::into_inner);
        media
            .problem(&device)
            .map(|why| format!("volume {id}: {why}"))
    }

    /// Rereads the media health of the manager's PMEM and of `devices` (blocks); a
    /// failed read keeps the last report and is returned for the log.
    pub fn refresh_media(&self, devices: &[Device]) -> Result<()> {
        let report = self.manager.media(devices)?;
        *self.media.lock().unwrap_or_else(PoisonError::into_inner) = report;
        Ok(())
    }

    /// The media health last read.
    pub fn media(&self) -> MediaReport {
        self.media
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Acknowledged volumes in id order, from `start` (an index token), at
    /// most `max` (0: all), each with its abnormal condition, if any.
    pub fn list_volumes(&self, start: &str, max: i32) -> Result<(Vec<Listed>, Option<String>)> {
        if max < 0 {
            return Err(Error::invalid("max_entries is negative"));
        }
        let from = if start.is_empty() {
            0
        } else {
            start.parse::<usize>().map_err(|_| {
                Error::Aborted(format!(
                    "starting token {:?} is not one this driver gave",
                    crate::volume::shown(start)
                ))
            })?
        };
        let all: Vec<VolumeRecord> = self
            .table()
            .values()
            .filter(|e| e.rec.phase == Phase::Acknowledged)
            .map(|e| e.rec.clone())
            .collect();
        if from > all.len() {
            return Err(Error::Aborted(format!(
                "starting token {from} is past the end of the list"
            )));
        }
        let end = if max == 0 {
            all.len()
        } else {
            (from + max as usize).min(all.len())
        };
        let next = (end < all.len()).then(|| end.to_string());
        let page = all[from..end]
            .iter()
            .map(|r| (r.clone(), self.condition(&r.id)))
            .collect();
        Ok((page, next))
    }

    /// Grows the device of volume `id` to at least `range.required` bytes
    /// (nothing to do when it is that large already, or when nothing is
    /// required); returns its size. The caller holds the volume's lock
    /// ([`Driver::lock_volume`]): growth is one step of the node's expansion.
    pub(crate) fn grow_locked(&self, id: &VolumeId, range: SizeRange) -> Result<u64> {
        let rec = self.volume(id.as_str())?;
        if let Some(why) = self.condition(&rec.id) {
            return Err(Error::Unavailable(why));
        }
        let want = range.required;
        if rec.size >= want {
            return Ok(rec.size);
        }
        let max_possible = self.max_possible(&rec.params)?;
        if want > max_possible {
            return Err(self.with_left_out(Error::OutOfRange(format!(
                "volume {}: {want} bytes is more than this node can ever provide ({max_possible} bytes)",
                rec.id
            ))));
        }
        let size = self.manager.expand(&rec.id, want)?;
        let mut new = VolumeRecord { size, ..rec };
        new.size = device_record(&new, range.limit).acknowledged_size(size);
        if self.manager.can_update_record() {
            self.manager
                .update_record(&new.id, &device_record(&new, range.limit))?;
        }
        self.cache(&new);
        self.table()
            .insert(new.id.clone(), Entry::new(new.clone(), Instant::now()));
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

    /// `e`, when it says there is not enough room, with what the manager left out and how to use it.
    fn with_left_out(&self, e: Error) -> Error {
        match (e, self.manager.left_out()) {
            (Error::OutOfRange(m), Some(note)) => Error::OutOfRange(format!("{m}; {note}")),
            (Error::ResourceExhausted(m), Some(note)) => {
                Error::ResourceExhausted(format!("{m}; {note}"))
            }
            (e, _) => e,
        }
    }

    /// Capacity for volumes with `params`.
    pub fn capacity(&self, params: &Params) -> Result<Capacity> {
        self.manager.capacity(params)
    }
}
