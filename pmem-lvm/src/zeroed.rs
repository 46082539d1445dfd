//! Which free space of the crate's VGs is known to hold zeros, recorded on the devices themselves.
//!
//! - A PV tagged [`ZEROED_TAG`] had its whole data area (every extent)
//!   zeroed, or every free extent when its VG was scrubbed; the tag is set
//!   only after the zeros were written and flushed, so a PV without it
//!   (new from setup, or zeroing cut short) is unknown.
//! - A VG tagged [`DIRTY_TAG`] had a volume removed without erasing it (or
//!   one whose device could not be erased): its free extents may hold old
//!   bytes, and a new volume there must be zeroed before it is handed out:
//!   it is made with the LV tag [`UNZEROED_TAG`], which its owner removes
//!   once it zeroed it.
//!
//! Volumes removed with [`VolumeGroups::delete`] are erased first, so a
//! clean VG's free extents stay zero. A dirty VG is made clean again by
//! zeroing all its free extents at once ([`VolumeGroups::scrub`]: a
//! temporary LV named [`SCRUB_LV`] over them, zeroed, removed, then the tag
//! removed); growing a volume in a dirty VG does that first, so the grown
//! part reads zeros.

use crate::error::{Error, Result};
use crate::groups::lock;
use crate::names::VgName;
use crate::report::{Fields, Row};
use crate::runner::LvmCommand;
use crate::VolumeGroups;
use serde::Serialize;
use std::path::Path;

/// PV tag: every extent of this PV was zeroed (set after the zeros were flushed).
pub const ZEROED_TAG: &str = "pmem-rs.zeroed";
/// VG tag: a volume was removed from this VG without erasing its extents.
pub const DIRTY_TAG: &str = "pmem-rs.dirty";

/// LV tag: this volume was made in a dirty VG, over extents of unknown
/// content; its owner zeroes it before handing it out, then removes the tag.
pub const UNZEROED_TAG: &str = "pmem-rs.unzeroed";

/// The temporary LV that holds a dirty VG's free extents while they are zeroed.
pub const SCRUB_LV: &str = "pmem-rs-scrub";

/// A PV of one of the crate's VGs whose extents are not known to be zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UnzeroedPv {
    /// Its device, e.g. `/dev/pmem0.1`.
    pub device: String,
    /// Its VG.
    pub vg: VgName,
    /// Where its first extent starts on the device, bytes.
    pub offset: u64,
    /// Bytes of all its extents.
    pub len: u64,
    /// Whether volumes use some of its extents (then it cannot be zeroed whole).
    pub in_use: bool,
}

/// A row of `pvs` with what zeroing needs.
struct ExtentRow {
    name: String,
    vg: String,
    tags: Vec<String>,
    pe_start: u64,
    pe_count: u64,
    pe_alloc: u64,
    extent_size: u64,
}

impl Row for ExtentRow {
    const KEY: &'static str = "pv";
    const FIELDS: &'static [&'static str] = &[
        "pv_name",
        "vg_name",
        "pv_tags",
        "pe_start",
        "pv_pe_count",
        "pv_pe_alloc_count",
        "vg_extent_size",
    ];
    fn from_fields(f: &Fields<'_>) -> std::result::Result<Self, String> {
        Ok(ExtentRow {
            name: f.text("pv_name")?,
            vg: f.text("vg_name")?,
            tags: f.tags("pv_tags")?,
            pe_start: f.number("pe_start")?,
            pe_count: f.number("pv_pe_count")?,
            pe_alloc: f.number("pv_pe_alloc_count")?,
            extent_size: f.number("vg_extent_size")?,
        })
    }
}

impl VolumeGroups {
    /// The PVs of the crate's VGs not tagged [`ZEROED_TAG`] (one `pvs`).
    pub fn unzeroed_pvs(&self) -> Result<Vec<UnzeroedPv>> {
        let own: Vec<VgName> = self.vgs().into_iter().map(|g| g.name).collect();
        let rows: Vec<ExtentRow> = self
            .runner
            .report("PVs", &LvmCommand::report("pvs", ExtentRow::FIELDS))?;
        Ok(rows
            .into_iter()
            .filter(|r| !r.tags.iter().any(|t| t == ZEROED_TAG))
            .filter_map(|r| {
                let vg = own.iter().find(|v| v.as_str() == r.vg)?.clone();
                Some(UnzeroedPv {
                    device: r.name,
                    vg,
                    offset: r.pe_start,
                    len: r.pe_count.saturating_mul(r.extent_size),
                    in_use: r.pe_alloc > 0,
                })
            })
            .collect())
    }

    /// Zeroes every extent of `pv` and then tags it [`ZEROED_TAG`];
    /// `progress(done, total)` follows the writing. Operations on its VG
    /// wait meanwhile. A PV that volumes use by now is refused
    /// ([`crate::ErrorKind::InUse`]) and left as it is.
    pub fn zero_pv(&self, pv: &UnzeroedPv, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        let object = format!("PV {}", pv.device);
        let vg_lock = self.vg_lock(&pv.vg);
        let _vg_held = lock(&vg_lock);
        let now = self
            .unzeroed_pvs()?
            .into_iter()
            .find(|p| p.device == pv.device);
        let Some(now) = now else {
            return Ok(()); // Zeroed meanwhile, or no longer ours.
        };
        if now.in_use || now.offset != pv.offset || now.len != pv.len {
            return Err(Error::InUse {
                object,
                detail: "volumes use some of its extents now; it cannot be zeroed whole".into(),
            });
        }
        pmem_ndctl::erase::zero_range(Path::new(&pv.device), pv.offset, pv.len, progress)
            .map_err(Error::ndctl(&object))?;
        let tag = LvmCommand::new("pvchange")
            .opt_value("--addtag", ZEROED_TAG)
            .operand(pv.device.as_str());
        self.runner.run(&object, &tag).map(drop)
    }

    /// Zeroes every free extent of `vg` if it is dirty, then removes its
    /// [`DIRTY_TAG`]; `progress(done, total)` follows the writing.
    /// Operations on the VG wait meanwhile.
    pub fn scrub(&self, vg: &VgName, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        let vg_lock = self.vg_lock(vg);
        let _vg_held = lock(&vg_lock);
        self.scrub_locked(vg, progress)
    }

    /// [`VolumeGroups::scrub`] with the VG's lock held.
    pub(crate) fn scrub_locked(
        &self,
        vg: &VgName,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        let object = format!("VG {vg}");
        let row = crate::groups::all_vgs(&self.runner)?
            .0
            .into_iter()
            .find(|g| &g.name == vg)
            .ok_or_else(|| Error::NotFound {
                object: object.clone(),
            })?;
        if !row.dirty {
            return Ok(());
        }
        let scrub = format!("{vg}/{SCRUB_LV}");
        // One a crash left: its extents are still of unknown content, and the VG still dirty.
        let remove = LvmCommand::new("lvremove")
            .opt("--yes")
            .operand(scrub.as_str());
        match self.runner.run(&object, &remove) {
            Err(e) if e.kind() == crate::ErrorKind::NotFound => {}
            r => r.map(drop)?,
        }
        if row.free > 0 {
            let create = LvmCommand::new("lvcreate")
                .opt("--yes")
                .opt_value("--name", SCRUB_LV)
                .opt_value("--extents", "100%FREE")
                .operand(vg.as_str());
            self.runner.run(&object, &create)?;
            let device = crate::groups::device_path(vg, &crate::LvName::new(SCRUB_LV.to_string())?);
            let zeroed =
                pmem_ndctl::erase::zero_device(&device, progress).map_err(Error::ndctl(&object));
            self.runner.run(&object, &remove)?;
            zeroed?;
        }
        // Its free extents are zero now, and those in use are volumes' own (erased or marked when removed).
        let pvs = lock(&self.state)
            .vgs
            .get(vg)
            .map(|g| g.pvs.clone())
            .unwrap_or_default();
        if !pvs.is_empty() {
            let tag = LvmCommand::new("pvchange").opt_value("--addtag", ZEROED_TAG);
            self.runner
                .run(&object, &pvs.iter().fold(tag, |c, d| c.operand(d.as_str())))?;
        }
        let untag = LvmCommand::new("vgchange")
            .opt_value("--deltag", DIRTY_TAG)
            .operand(vg.as_str());
        self.runner.run(&object, &untag)?;
        if let Some(g) = lock(&self.state).vgs.get_mut(vg) {
            g.dirty = false;
        }
        Ok(())
    }

    /// Tags `vg` [`DIRTY_TAG`]: its free extents may hold old bytes from now on.
    pub fn mark_dirty(&self, vg: &VgName) -> Result<()> {
        if lock(&self.state).vgs.get(vg).is_some_and(|g| g.dirty) {
            return Ok(());
        }
        let cmd = LvmCommand::new("vgchange")
            .opt_value("--addtag", DIRTY_TAG)
            .operand(vg.as_str());
        self.runner.run(&format!("VG {vg}"), &cmd)?;
        if let Some(g) = lock(&self.state).vgs.get_mut(vg) {
            g.dirty = true;
        }
        Ok(())
    }
}
