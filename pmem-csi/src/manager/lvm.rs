//! The `lvm` manager: volumes are logical volumes in pmem-lvm's volume groups (one per region).
//!
//! A new volume reads zeros where its user did not write (see
//! [`pmem_lvm::zeroed`]): new PVs are zeroed whole in the background at
//! start (creates wait for it, then answer UNAVAILABLE saying how far it
//! is); a VG where a volume was removed unerased is dirty, and a new LV
//! there (pmem-lvm tags it [`UNZEROED_TAG`]) is zeroed before it is
//! acknowledged; the acknowledgement removes the tag in the same
//! `lvchange`: a crash in between leaves a pending LV that the retry
//! zeroes again. Growing a volume in a
//! dirty VG zeroes the VG's free extents first and makes it clean again
//! ([`VolumeGroups::scrub`]).

use super::{Capacity, Device, DeviceManager, Fill};
use crate::error::{Error, Result};
use crate::record::DeviceRecord;
use crate::volume::{Params, VolumeId, VolumeMode};
use crate::zeroing::{Gate, Tracker};
use pmem_lvm::{ErrorKind, SetupOptions, Volume, VolumeGroups, VolumeName};
use std::sync::Arc;
use std::time::Duration;

pub use pmem_lvm::zeroed::UNZEROED_TAG;

/// How long a create waits for background zeroing before it answers UNAVAILABLE.
const GATE_PATIENCE: Duration = Duration::from_secs(10);

/// Volumes as LVs named after their volume id.
pub struct LvmManager {
    groups: Arc<VolumeGroups>,
    gate: Arc<Gate>,
    /// Regions setup left alone, with the reason (see [`DeviceManager::left_out`]).
    skipped: Vec<pmem_lvm::setup::Skipped>,
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
    /// Runs pmem-lvm's setup (a VG per region, or per NUMA node with
    /// `join_numa`, every hole absorbed, label-less regions converted) with
    /// `percentage` of each region, and manages volumes in those VGs. PVs
    /// not known to be zero are zeroed on a thread of their own; PVs whose
    /// extents are not 2 MiB-aligned (older VGs) are named in a warning.
    pub fn setup(percentage: u8, join_numa: bool) -> Result<Self> {
        let mut ctx = pmem_ndctl::Context::new()?;
        let opts = SetupOptions {
            percentage,
            join: join_numa,
            ..SetupOptions::default()
        };
        let (groups, skipped) = VolumeGroups::setup_report(&mut ctx, &opts)?;
        for s in &skipped {
            tracing::warn!(region = %s.region, reason = %s.reason, "region left alone");
        }
        let groups = Arc::new(groups);
        for pv in groups.unaligned_pvs()? {
            // A VG made before PVs were aligned: never re-laid out under its volumes.
            tracing::warn!(pv = %pv.device, vg = %pv.vg, pe_start = pv.pe_start, extent_size = pv.extent_size,
                "PV's extents are not on 2 MiB boundaries: volumes there map with 4 KiB pages, not 2 MiB; to align it, delete its volumes and tear the VG down");
        }
        let gate = Arc::new(Gate::default());
        let mut queue = Vec::new();
        for pv in groups.unzeroed_pvs()? {
            if pv.in_use {
                // Volumes from before PVs were zeroed: its free space is unknown.
                tracing::info!(pv = %pv.device, vg = %pv.vg, "PV of unknown content holds volumes: new volumes in its VG are zeroed at creation");
                groups.mark_dirty(&pv.vg)?;
            } else {
                gate.add(pv.len);
                queue.push(pv);
            }
        }
        if !queue.is_empty() {
            let (g, z) = (groups.clone(), gate.clone());
            std::thread::Builder::new()
                .name("pmem-zero-pvs".into())
                .spawn(move || zero_pvs(&g, &z, queue))
                .map_err(|e| Error::Internal(format!("zeroing thread not started: {e}")))?;
        }
        Ok(LvmManager {
            groups,
            gate,
            skipped,
        })
    }
}

/// Zeroes the `queue` of new PVs one after the other; a PV that cannot be
/// zeroed makes its VG dirty instead, so its volumes are zeroed one by one.
fn zero_pvs(groups: &VolumeGroups, gate: &Gate, queue: Vec<pmem_lvm::UnzeroedPv>) {
    for pv in queue {
        let mut t = Tracker::new(format!("PV {} of {}", pv.device, pv.vg), pv.len);
        let mut last = 0;
        let r = groups.zero_pv(&pv, &mut |done, total| {
            t.step(done, total);
            gate.advance(done - last);
            last = done;
        });
        drop(t);
        if let Err(e) = r {
            tracing::warn!(pv = %pv.device, error = %e, "PV not zeroed: its VG is marked dirty, new volumes there are zeroed at creation");
            if let Err(e) = groups.mark_dirty(&pv.vg) {
                tracing::error!(vg = %pv.vg, error = %e, "VG not marked dirty; it stays closed to new volumes");
                continue;
            }
        }
        gate.advance(pv.len - last);
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
        self.gate.wait(GATE_PATIENCE).map_err(Error::Unavailable)?;
        let v = self
            .groups
            .create_tagged(&name(id)?, size, &record.tags())?;
        Ok(device(id.clone(), v))
    }

    /// A clone's LV made in a dirty VG is filled, zeroed beyond the copy
    /// and only then loses its [`UNZEROED_TAG`] (while still pending), so
    /// the acknowledgement zeroes nothing over the copy; a crash before
    /// that leaves the tag, and the retry copies and zeroes again.
    fn fill(&self, id: &VolumeId, fill: &Fill<'_>) -> Result<()> {
        let name = name(id)?;
        let v = self
            .groups
            .lookup(&name)
            .ok_or_else(|| Error::NotFound(format!("volume {id} has no device")))?;
        let unzeroed = v.tags.iter().any(|t| t == UNZEROED_TAG);
        fill(&v.device, !unzeroed)?;
        if unzeroed {
            self.groups.retag(&name, &[UNZEROED_TAG.to_string()], &[])?;
        }
        Ok(())
    }

    fn can_update_record(&self) -> bool {
        true
    }

    fn update_record(&self, id: &VolumeId, record: &DeviceRecord) -> Result<()> {
        let name = name(id)?;
        let volume = self.groups.lookup(&name);
        let unzeroed = volume
            .as_ref()
            .is_some_and(|v| v.tags.iter().any(|t| t == UNZEROED_TAG));
        if let Some(v) = volume.as_ref().filter(|_| unzeroed) {
            let what = format!("volume {id} over the unknown space of dirty VG {}", v.vg);
            crate::zeroing::zero(&what, &v.device, None)
                .map_err(|e| Error::Internal(format!("volume {id}: not zeroed: {e}")))?;
        }
        let old: Vec<String> = volume
            .map(|v| v.tags)
            .unwrap_or_default()
            .into_iter()
            .filter(|t| DeviceRecord::is_record_tag(t) || t == UNZEROED_TAG)
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
        let mut tracker = None;
        let grown = self
            .groups
            .grow_zeroing(&name(id)?, size, &mut |done, total| {
                tracker
                    .get_or_insert_with(|| {
                        Tracker::new(format!("free space of a dirty VG, to grow {id}"), total)
                    })
                    .step(done, total);
            })?;
        Ok(grown.size)
    }

    fn list(&self) -> Result<Vec<Device>> {
        Ok(self
            .groups
            .list()?
            .into_iter()
            .filter_map(|v| Some(device(VolumeId::try_from(v.name.to_string()).ok()?, v)))
            .collect())
    }

    fn left_out(&self) -> Option<String> {
        (!self.skipped.is_empty()).then(|| {
            let each: Vec<String> = self
                .skipped
                .iter()
                .map(|s| format!("{} ({})", s.region, s.reason))
                .collect();
            format!(
                "regions left alone (someone else's data is not taken): {}",
                each.join("; ")
            )
        })
    }

    fn media(&self, devices: &[Device]) -> Result<crate::media::MediaReport> {
        let paths: Vec<String> = devices.iter().map(|d| d.path.clone()).collect();
        Ok(crate::media::read(&paths)?)
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
