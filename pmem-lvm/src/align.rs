//! Huge-page alignment of volumes: PV data areas and extents on 2 MiB boundaries, so DAX maps with 2 MiB pages.
//!
//! A DAX file mapping is served with 2 MiB (PMD) page-table entries only
//! where the file's 2 MiB-aligned ranges sit on 2 MiB-aligned physical
//! memory. An fsdax namespace's data starts on its pfn alignment (2 MiB);
//! an LV starts at the PV's data area (`pe_start`) plus a whole number of
//! extents. LVM's default `pe_start` is 1 MiB, which puts every LV 1 MiB
//! off and makes every huge-page fault fall back to 4 KiB pages. So the
//! crate makes PVs with `--dataalignment 2m` (`pe_start` becomes 2 MiB)
//! and VGs with 4 MiB extents (LVM's usual size, said explicitly so that
//! a site's `lvm.conf` cannot change it).
//!
//! VGs made before the crate aligned its PVs keep their PVs as they are:
//! re-laying a PV out means moving the volumes on it, which the crate never
//! does on its own. Their volumes keep working, with 4 KiB pages;
//! [`VolumeGroups::unaligned_pvs`] names such PVs so that their owner can
//! say so. PVs that setup adds to such a VG later are aligned. To align an
//! old VG, remove its volumes, then tear down and set up again.

use crate::error::Result;
use crate::names::{VgName, OWNER_TAG};
use crate::report::{Fields, Row};
use crate::runner::LvmCommand;
use crate::VolumeGroups;
use serde::Serialize;

/// The x86 huge page (PMD) size: PV data areas and extents are multiples of it.
pub const HUGE_PAGE: u64 = 2 << 20;
/// The extent size of the VGs the crate makes, bytes (a multiple of [`HUGE_PAGE`]).
pub const EXTENT_SIZE: u64 = 4 << 20;

// LVM's size arguments: lower-case units are powers of 1024.
const DATA_ALIGNMENT_ARG: &str = "2m";
const EXTENT_SIZE_ARG: &str = "4m";
const _: () = assert!(EXTENT_SIZE % HUGE_PAGE == 0 && HUGE_PAGE == 2 << 20);

/// The command that makes `devices` PVs of `vg`: `vgcreate` (tagged
/// [`OWNER_TAG`], [`EXTENT_SIZE`] extents) when `new_vg`, else `vgextend`;
/// either way their data areas start on a [`HUGE_PAGE`] boundary.
pub(crate) fn add_pvs(vg: &VgName, new_vg: bool, devices: &[String]) -> LvmCommand {
    let cmd = if new_vg {
        LvmCommand::new("vgcreate")
            .opt_value("--addtag", OWNER_TAG)
            .opt_value("--physicalextentsize", EXTENT_SIZE_ARG)
    } else {
        LvmCommand::new("vgextend")
    };
    let cmd = cmd
        .opt_value("--dataalignment", DATA_ALIGNMENT_ARG)
        .operand(vg.as_str());
    devices.iter().fold(cmd, |c, d| c.operand(d.as_str()))
}

/// Whether LVs on a PV whose data area starts at `pe_start`, in a VG of
/// `extent_size` extents, all start on a [`HUGE_PAGE`] boundary.
pub fn is_aligned(pe_start: u64, extent_size: u64) -> bool {
    pe_start % HUGE_PAGE == 0 && extent_size % HUGE_PAGE == 0
}

/// A PV of one of the crate's VGs on which LVs do not start on a
/// [`HUGE_PAGE`] boundary (made before the crate aligned its PVs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UnalignedPv {
    /// Its device, e.g. `/dev/pmem0`.
    pub device: String,
    /// Its VG.
    pub vg: VgName,
    /// Where its data area starts on the device, bytes.
    pub pe_start: u64,
    /// Its VG's extent size, bytes.
    pub extent_size: u64,
}

/// A row of `pvs` with where the extents start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlacementRow {
    pub(crate) name: String,
    pub(crate) vg: String,
    pub(crate) pe_start: u64,
    pub(crate) extent_size: u64,
}

impl Row for PlacementRow {
    const KEY: &'static str = "pv";
    const FIELDS: &'static [&'static str] = &["pv_name", "vg_name", "pe_start", "vg_extent_size"];
    fn from_fields(f: &Fields<'_>) -> std::result::Result<Self, String> {
        Ok(PlacementRow {
            name: f.text("pv_name")?,
            vg: f.text("vg_name")?,
            pe_start: f.number("pe_start")?,
            extent_size: f.number("vg_extent_size")?,
        })
    }
}

/// The rows of `own` VGs' PVs that are not aligned, in report order.
pub(crate) fn unaligned(rows: Vec<PlacementRow>, own: &[VgName]) -> Vec<UnalignedPv> {
    rows.into_iter()
        .filter(|r| !is_aligned(r.pe_start, r.extent_size))
        .filter_map(|r| {
            let vg = own.iter().find(|v| v.as_str() == r.vg)?.clone();
            Some(UnalignedPv {
                device: r.name,
                vg,
                pe_start: r.pe_start,
                extent_size: r.extent_size,
            })
        })
        .collect()
}

impl VolumeGroups {
    /// The PVs of the crate's VGs on which volumes do not start on a
    /// [`HUGE_PAGE`] boundary (one `pvs`); empty for VGs the crate made
    /// since it aligns them.
    pub fn unaligned_pvs(&self) -> Result<Vec<UnalignedPv>> {
        let own: Vec<VgName> = self.vgs().into_iter().map(|g| g.name).collect();
        let rows: Vec<PlacementRow> = self
            .runner
            .report("PVs", &LvmCommand::report("pvs", PlacementRow::FIELDS))?;
        Ok(unaligned(rows, &own))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::decode;

    fn vg(s: &str) -> VgName {
        VgName::new(s.to_string()).unwrap()
    }

    fn argv(c: &LvmCommand) -> Vec<String> {
        // Drop `SUB --config CONFIG`: the options and operands are what is checked.
        c.argv()[3..].to_vec()
    }

    #[test]
    fn a_new_vg_gets_2m_aligned_pvs_and_4m_extents() {
        let devs = vec!["/dev/pmem0".to_string(), "/dev/pmem0.1".to_string()];
        let c = add_pvs(&vg("pmem-rs-region0"), true, &devs);
        assert_eq!(c.sub(), "vgcreate");
        assert_eq!(
            argv(&c),
            [
                "--addtag",
                "pmem-rs",
                "--physicalextentsize",
                "4m",
                "--dataalignment",
                "2m",
                "--",
                "pmem-rs-region0",
                "/dev/pmem0",
                "/dev/pmem0.1"
            ]
        );
    }

    #[test]
    fn pvs_added_to_a_vg_are_2m_aligned_and_keep_its_extent_size() {
        let c = add_pvs(&vg("pmem-rs-node0"), false, &["/dev/pmem1".to_string()]);
        assert_eq!(c.sub(), "vgextend");
        assert_eq!(
            argv(&c),
            ["--dataalignment", "2m", "--", "pmem-rs-node0", "/dev/pmem1"]
        );
    }

    #[test]
    fn the_argument_strings_say_the_constants() {
        // LVM reads `2m` and `4m` as MiB.
        assert_eq!(DATA_ALIGNMENT_ARG, format!("{}m", HUGE_PAGE >> 20));
        assert_eq!(EXTENT_SIZE_ARG, format!("{}m", EXTENT_SIZE >> 20));
    }

    #[test]
    fn alignment_needs_both_the_data_area_and_the_extents_on_2m() {
        assert!(is_aligned(2 << 20, 4 << 20));
        assert!(is_aligned(4 << 20, 2 << 20));
        assert!(!is_aligned(1 << 20, 4 << 20), "LVM's default pe_start");
        assert!(!is_aligned(2 << 20, 1 << 20), "1 MiB extents");
        assert!(!is_aligned(192 << 10, 4 << 20));
    }

    #[test]
    fn only_our_vgs_unaligned_pvs_are_named() {
        // As lvm2 2.03 prints it: an old PV of ours, a new one, a foreign
        // VG's PV and an orphan, all with LVM's default 1 MiB data start
        // except the new one.
        let json = r#"{"report":[{"pv":[
            {"pv_name":"/dev/pmem0", "vg_name":"pmem-rs-region0", "pe_start":"1048576", "vg_extent_size":"4194304"},
            {"pv_name":"/dev/pmem0.1", "vg_name":"pmem-rs-region0", "pe_start":"2097152", "vg_extent_size":"4194304"},
            {"pv_name":"/dev/sda2", "vg_name":"system", "pe_start":"1048576", "vg_extent_size":"4194304"},
            {"pv_name":"/dev/pmem1", "vg_name":"", "pe_start":"1048576", "vg_extent_size":"0"}
        ]}]}"#;
        let rows: Vec<PlacementRow> = decode(json).unwrap();
        let own = [vg("pmem-rs-region0"), vg("pmem-rs-region1")];
        let found = unaligned(rows, &own);
        assert_eq!(
            found,
            [UnalignedPv {
                device: "/dev/pmem0".into(),
                vg: vg("pmem-rs-region0"),
                pe_start: 1 << 20,
                extent_size: 4 << 20,
            }]
        );
    }
}
