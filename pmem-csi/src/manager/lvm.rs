//! The `lvm` manager: volumes are logical volumes in pmem-lvm's volume groups (one per region).

use super::{Capacity, Device, DeviceManager};
use crate::error::{Error, Result};
use crate::volume::{Params, VolumeId, VolumeMode};
use pmem_lvm::{ErrorKind, SetupOptions, VolumeGroups, VolumeName};

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

    fn create(&self, id: &VolumeId, size: u64, params: &Params) -> Result<Device> {
        check(params)?;
        let v = self.groups.create(&name(id)?, size)?;
        Ok(Device {
            id: id.clone(),
            size: v.size,
            path: v.device.display().to_string(),
        })
    }

    fn delete(&self, id: &VolumeId, _erase: bool) -> Result<()> {
        // pmem-lvm always erases a volume before its space can be reused.
        match self.groups.delete(&name(id)?) {
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
            .filter_map(|v| {
                let id = VolumeId::try_from(v.name.to_string()).ok()?;
                Some(Device {
                    id,
                    size: v.size,
                    path: v.device.display().to_string(),
                })
            })
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
