//! Device managers: where volumes come from (LVM logical volumes, one namespace per volume, or the simulator).

mod cached;
mod lvm;

mod namespaces;

pub use cached::CachedManager;
pub use lvm::LvmManager;
pub use namespaces::NamespaceManager;

use crate::error::{Error, Result};
use crate::record::DeviceRecord;
use crate::volume::{Params, VolumeId};
use std::path::Path;

/// What writes a new volume's content (a clone's copy): given the device
/// node and whether the device is known to read zeros, it writes every byte
/// a user may read, durably.
pub type Fill<'a> = dyn Fn(&Path, bool) -> Result<()> + 'a;

/// [`DeviceManager::fill`] for a device found in the manager's list, not
/// known to read zeros.
pub fn fill_listed(
    m: &(impl DeviceManager + ?Sized),
    id: &VolumeId,
    fill: &Fill<'_>,
) -> Result<()> {
    let d = m
        .list()?
        .into_iter()
        .find(|d| d.id == *id)
        .ok_or_else(|| Error::NotFound(format!("volume {id} has no device")))?;
    fill(Path::new(&d.path), false)
}

/// A volume's device as its manager reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The volume the device belongs to.
    pub id: VolumeId,
    /// Usable size, bytes.
    pub size: u64,
    /// The device node (`/dev/pmem0.1`, `/dev/dax0.1`, `/dev/<vg>/<lv>`).
    pub path: String,
    /// The volume's record as the device carries it (`None` on a device
    /// made before devices carried records).
    pub record: Option<DeviceRecord>,
}

/// Capacity for one kind of volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capacity {
    /// All PMEM the manager uses, bytes.
    pub total: u64,
    /// Free, bytes (not all of it in one piece).
    pub free: u64,
    /// The largest volume that can be created now, bytes.
    pub max_volume: u64,
    /// The largest volume that could ever be created (everything free), bytes.
    pub max_possible: u64,
}

/// What the driver needs from a device manager. Calls block; the gRPC
/// handlers run them on the blocking pool.
pub trait DeviceManager: Send + Sync {
    /// `lvm`, `direct` or `sim`.
    fn kind(&self) -> &'static str;
    /// Creates the device of volume `id` with at least `size` usable bytes,
    /// carrying `record` from the moment it exists; an existing device of
    /// `id` is returned as it is.
    fn create(
        &self,
        id: &VolumeId,
        size: u64,
        params: &Params,
        record: &DeviceRecord,
    ) -> Result<Device>;
    /// Creates the device of volume `id` as [`DeviceManager::create`]
    /// does, its content written by `fill` before the device carries
    /// `record`; an existing device of `id` is returned as it is (its
    /// content was written when it was made). Managers that cannot update
    /// records make the content before the device gets its name; the
    /// default creates the device, then fills it.
    fn create_filled(
        &self,
        id: &VolumeId,
        size: u64,
        params: &Params,
        record: &DeviceRecord,
        fill: &Fill<'_>,
    ) -> Result<Device> {
        let d = self.create(id, size, params, record)?;
        self.fill(id, fill)?;
        Ok(d)
    }
    /// Writes the content of the existing (pending) device of `id` with
    /// `fill`; afterwards the device reads what `fill` wrote, with nothing
    /// zeroed over it when it is acknowledged.
    fn fill(&self, id: &VolumeId, fill: &Fill<'_>) -> Result<()> {
        fill_listed(self, id, fill)
    }
    /// Whether a device's record can change after creation. Where it cannot
    /// (a live namespace's name), devices are made acknowledged at once.
    fn can_update_record(&self) -> bool;
    /// Replaces the record the device of `id` carries.
    fn update_record(&self, id: &VolumeId, record: &DeviceRecord) -> Result<()>;
    /// The smallest device this manager can make for `params`, usable bytes.
    fn min_size(&self, params: &Params) -> Result<u64>;
    /// Deletes the device of `id`, erasing its data first when asked; no
    /// error if it does not exist. A device in use (open, mounted) is
    /// refused with FAILED_PRECONDITION and left as it is.
    fn delete(&self, id: &VolumeId, erase: bool) -> Result<()>;
    /// Whether volumes can grow.
    fn can_expand(&self) -> bool;
    /// Grows the device of `id` to at least `size` bytes; returns the new size.
    fn expand(&self, id: &VolumeId, size: u64) -> Result<u64>;
    /// Every device this manager created (found by its marks), with its size and record.
    fn list(&self) -> Result<Vec<Device>>;
    /// Forgets what it cached of the machine's devices, so that the next
    /// [`DeviceManager::list`] sees devices that came back (a namespace
    /// enabled again by another program).
    fn rescan(&self) -> Result<()> {
        Ok(())
    }
    /// Capacity for volumes with `params`.
    fn capacity(&self, params: &Params) -> Result<Capacity>;
    /// PMEM of the node this manager cannot use, why, and what would make it
    /// usable: told with every answer that there is not enough room.
    fn left_out(&self) -> Option<String>;

    /// The media health of the PMEM under the manager (DIMMs, regions' bad blocks) and
    /// of `devices`; empty where the manager has no hardware (the simulator).
    fn media(&self, devices: &[Device]) -> Result<crate::media::MediaReport> {
        let _ = devices;
        Ok(crate::media::MediaReport::default())
    }
}
