//! The `lvm` manager: volumes are logical volumes in pmem-lvm's volume groups (one per region).

use super::{Capacity, Device, DeviceManager};
use crate::error::{Error, Result};
use crate::record::DeviceRecord;
use crate::volume::{Params, VolumeId, VolumeMode};
use pmem_lvm::{ErrorKind, SetupOptions, Volume, VolumeGroups, VolumeName};

/// Volumes as LVs named after their volume id.
pub struct LvmManager {
    groups: VolumeGroups,
}

impl From<pmem_lvm::Error> for Error {
    fn from(e: pmem_lvm::Error) -> Self {
        let msg = e.to_string();
        match e.kind() {
            ErrorKind::NotFound => Error::NotFound(msg),
            ErrorKind::AlreadyExists => Error::AlreadyExists(msg),
            ErrorKind::NoSpace => Error::ResourceExhausted(msg),
            ErrorKind::InUse => Error::FailedPrecondition(msg),
            ErrorKind::InvalidArgument => Error::InvalidArgument(msg),
            _ => Error::Internal(msg), // Timeout, Other and kinds added later
        }
    }
}

fn name(id: &VolumeId) -> Result<VolumeName> {
    Ok(VolumeName::new(id.as_str())?)
}

fn device(id: VolumeId, v: Volume) -> Device {
    Device {
        id,
        size: v.size,
        path: v.device.display().to_string(),
        record: DeviceRecord::from_tags(&v.tags),
    }
}

fn check(params: &Params) -> Result<()> {
    if params.mode == VolumeMode::Devdax {
        return Err(Error::invalid(
            "mode=devdax needs the direct device manager: LVM volumes are block devices",
        ));
    }
    Ok(())
}

impl LvmManager {
    /// Runs pmem-lvm's setup (a VG per region, every hole absorbed) with
    /// `percentage` of each region, and manages volumes in those VGs.
    pub fn setup(percentage: u8) -> Result<Self> {
        let groups = VolumeGroups::setup(&SetupOptions {
            percentage,
            ..SetupOptions::default()
        })?;
        Ok(LvmManager { groups })
    }
}

impl DeviceManager for LvmManager {
    fn kind(&self) -> &'static str {
        "lvm"
    }

    fn create(
        &self,
        id: &VolumeId,
        size: u64,
        params: &Params,
        record: &DeviceRecord,
    ) -> Result<Device> {
        check(params)?;
        let v = self
            .groups
            .create_tagged(&name(id)?, size, &record.tags())?;
        Ok(device(id.clone(), v))
    }

    fn can_update_record(&self) -> bool {
        true
    }

    fn update_record(&self, id: &VolumeId, record: &DeviceRecord) -> Result<()> {
        let name = name(id)?;
        let old: Vec<String> = self
            .groups
            .lookup(&name)
            .map(|v| v.tags)
            .unwrap_or_default()
            .into_iter()
            .filter(|t| DeviceRecord::is_record_tag(t))
            .collect();
        let new = record.tags();
        let remove: Vec<String> = old.iter().filter(|t| !new.contains(t)).cloned().collect();
        let add: Vec<String> = new.iter().filter(|t| !old.contains(t)).cloned().collect();
        if !remove.is_empty() || !add.is_empty() {
            self.groups.retag(&name, &remove, &add)?;
        }
        Ok(())
    }

    fn min_size(&self, params: &Params) -> Result<u64> {
        check(params)?;
        Ok(self
            .groups
            .vgs()
            .iter()
            .map(|g| g.extent_size)
            .min()
            .unwrap_or(1))
    }

    fn delete(&self, id: &VolumeId, erase: bool) -> Result<()> {
        let name = name(id)?;
        let r = if erase {
            self.groups.delete(&name)
        } else {
            self.groups.delete_unerased(&name)
        };
        match r {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            other => Ok(other?),
        }
    }

    fn can_expand(&self) -> bool {
        true
    }

    fn expand(&self, id: &VolumeId, size: u64) -> Result<u64> {
        Ok(self.groups.grow(&name(id)?, size)?.size)
    }

    fn list(&self) -> Result<Vec<Device>> {
        Ok(self
            .groups
            .list()?
            .into_iter()
            .filter_map(|v| Some(device(VolumeId::try_from(v.name.to_string()).ok()?, v)))
            .collect())
    }

    fn capacity(&self, params: &Params) -> Result<Capacity> {
        check(params)?;
        let c = self.groups.capacity()?;
        Ok(Capacity {
            total: c.size,
            free: c.free,
            max_volume: c.largest,
            max_possible: c.vgs.iter().map(|v| v.size).max().unwrap_or(0),
        })
    }
}
