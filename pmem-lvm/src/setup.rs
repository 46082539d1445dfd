//! Setup and teardown: fsdax namespaces that fill each region's holes, made into PVs of the crate's VGs.
//!
//! A region's free space is often split into holes (namespaces come and go,
//! and a pmem namespace is one contiguous extent). Setup creates one fsdax
//! namespace per hole, largest first (the kernel puts a namespace of the
//! largest hole's size into that hole), until the region's share is used
//! or no hole of at least the region alignment is left; every one becomes
//! a PV of the region's VG, so LVM turns all holes into one pool. Namespaces,
//! PV data areas and extents are laid out on 2 MiB boundaries (see [`crate::align`]).
//!
//! A new namespace's first MiB is zeroed here (LVM's label area); its
//! extents are left for [`VolumeGroups::zero_pv`] (see [`crate::zeroed`]),
//! which an owner runs in the background: until then the new PV has no
//! `pmem-rs.zeroed` tag and its space is unknown.
//!
//! A label-less region (DIMMs without label storage, as many virtual machines
//! have) holds one fixed raw namespace the size of the region. Setup converts
//! it to fsdax in place, once, and only when its device holds no signature
//! (filesystem, PV, partition table: someone's data), then uses the whole of
//! it as the region's PV; with a percentage below 100 such a region is left
//! alone (it cannot be shared). An fsdax label-less namespace is taken when
//! it is a PV of the crate's VG or holds no signature (a setup cut short
//! after the conversion); anything else is left alone and reported
//! ([`VolumeGroups::setup_report`]).
//!
//! Ownership: namespaces are named [`NAMESPACE_NAME`] (label-less ones
//! cannot carry a name: their PV's tag marks them), VGs and PVs tagged
//! [`OWNER_TAG`]. Nothing else is ever changed: foreign namespaces, PVs and
//! VGs are only read.

use crate::error::{Error, Result};
use crate::groups::{all_vgs, VolumeGroups};
use crate::names::{VgName, NAMESPACE_NAME, OWNER_TAG};
use crate::report::{PvRow, Row};
use crate::runner::{LvmCommand, Runner};
use pmem_ndctl::{Context, Mode, NamespaceSpec, RegionType, Size};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Holes smaller than this (or the region alignment) are not worth a PV.
const MIN_HOLE: u64 = 16 << 20;
/// Bytes zeroed at the start of a new namespace, where LVM keeps its label and metadata.
const LABEL_AREA: u64 = 1 << 20;
/// At most this many namespaces per region and setup run.
const MAX_NAMESPACES_PER_RUN: usize = 64;

/// How [`VolumeGroups::setup`] lays out the VGs.
#[derive(Debug, Clone)]
pub struct SetupOptions {
    /// Share of each region's size the crate's namespaces may take, 1 to 100 (default 100).
    pub percentage: u8,
    /// One VG per NUMA node over all its regions (`pmem-rs-node0`) instead
    /// of one per region (`pmem-rs-region0`).
    pub join: bool,
    /// How LVM is run.
    pub runner: Runner,
}

impl Default for SetupOptions {
    fn default() -> Self {
        SetupOptions {
            percentage: 100,
            join: false,
            runner: Runner::new(),
        }
    }
}

/// A namespace this crate made, as read from libndctl.
#[derive(Debug, Clone)]
struct OwnNamespace {
    dev: String,
    device: String,
    raw: u64,
}

/// What setup needs to know about one region.
#[derive(Debug)]
struct RegionPlan {
    name: String,
    vg: VgName,
    size: u64,
    align: u64,
    own: Vec<OwnNamespace>,
    /// A label-less region's one namespace: its name, mode and block device.
    fixed: Option<(String, Mode, Option<String>)>,
}

/// A region setup left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Skipped {
    /// The region, e.g. `region0`.
    pub region: String,
    /// Why, naming the namespace or device.
    pub reason: String,
}

/// What to do with a label-less region's namespace.
enum Claim {
    /// Already a PV of the region's VG.
    Member,
    /// Its fsdax device joins the VG.
    Add(String),
    /// Left alone.
    Skip(String),
}

/// What [`VolumeGroups::teardown`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Teardown {
    /// Volumes erased and removed.
    pub volumes: usize,
    /// VGs removed.
    pub vgs: Vec<String>,
    /// Namespaces destroyed.
    pub namespaces: Vec<String>,
}

fn own_namespaces(region: &pmem_ndctl::Region<'_>) -> Vec<OwnNamespace> {
    region
        .namespaces()
        .filter(|ns| ns.size() > 0 && ns.alt_name().as_deref() == Some(NAMESPACE_NAME))
        .filter_map(|ns| {
            let info = ns.info().ok()?;
            Some(OwnNamespace {
                dev: info.dev,
                device: format!("/dev/{}", info.blockdev?),
                raw: info.raw_size,
            })
        })
        .collect()
}

fn plans(ctx: &Context, join: bool) -> Result<Vec<RegionPlan>> {
    let mut out = Vec::new();
    for r in ctx.regions() {
        let usable =
            r.is_enabled() && !r.is_read_only() && matches!(r.region_type(), Ok(RegionType::Pmem));
        if !usable {
            continue;
        }
        let name = r.name();
        let vg = if join {
            VgName::for_node(r.numa_node().unwrap_or(0))?
        } else {
            VgName::for_region(&name)?
        };
        let fixed = if r.is_labelled() {
            None
        } else {
            let Some(ns) = r.namespaces().find(|n| n.is_label_less() && n.size() > 0) else {
                continue;
            };
            let info = ns.info().map_err(Error::ndctl(&name))?;
            Some((info.dev, info.mode, info.blockdev))
        };
        out.push(RegionPlan {
            vg,
            size: r.size(),
            align: r.align().unwrap_or(MIN_HOLE).max(1),
            own: if fixed.is_some() {
                Vec::new()
            } else {
                own_namespaces(&r)
            },
            fixed,
            name,
        });
    }
    Ok(out)
}

/// Zeroes the start of a namespace this crate just made: old bytes there
/// (an earlier PV label) must not make LVM see a stale VG.
fn wipe_label_area(device: &str) -> Result<()> {
    pmem_ndctl::erase::zero_range(Path::new(device), 0, LABEL_AREA, &mut |_, _| {})
        .map(drop)
        .map_err(Error::ndctl(device))
}

/// Decides what setup does with a label-less region's namespace (see the
/// module text); converts a raw one to fsdax.
fn claim_label_less(
    ctx: &mut Context,
    plan: &RegionPlan,
    pvs: &[PvRow],
    own_vgs: &BTreeSet<VgName>,
    percentage: u8,
) -> Result<Claim> {
    let Some((dev, mode, blockdev)) = &plan.fixed else {
        return Ok(Claim::Skip(format!(
            "{}: no label-less namespace",
            plan.name
        )));
    };
    let device = blockdev.as_ref().map(|b| format!("/dev/{b}"));
    let pv = device
        .as_ref()
        .and_then(|d| pvs.iter().find(|p| &p.name == d));
    if let (Some(pv), Some(device)) = (pv, &device) {
        if pv.vg == plan.vg.as_str() {
            return Ok(Claim::Member);
        }
        if own_vgs.iter().any(|v| v.as_str() == pv.vg) {
            return Err(Error::InUse {
                object: format!("{dev} ({})", plan.name),
                detail: format!(
                    "it is a PV of VG {}, not of {}: tear down before switching layouts",
                    pv.vg, plan.vg
                ),
            });
        }
        return Ok(Claim::Skip(format!(
            "{dev}: {device} is a PV that is not ours"
        )));
    }
    if percentage < 100 {
        return Ok(Claim::Skip(format!(
            "{dev}: a label-less region cannot be shared, and setup may use only {percentage}% of it"
        )));
    }
    let device = match mode {
        Mode::Fsdax => {
            let device = device.ok_or_else(|| Error::NotFound {
                object: format!("block device of {dev}"),
            })?;
            if let Some(sig) =
                pmem_ndctl::signature::probe(Path::new(&device)).map_err(Error::ndctl(&device))?
            {
                return Ok(Claim::Skip(format!(
                    "{dev}: {device} holds someone's data ({sig} signature)"
                )));
            }
            device
        }
        Mode::Raw => match ctx.convert_label_less(dev, Mode::Fsdax, false) {
            Ok(info) => format!(
                "/dev/{}",
                info.blockdev.ok_or_else(|| Error::NotFound {
                    object: format!("block device of {dev}"),
                })?
            ),
            Err(e) if e.kind() == pmem_ndctl::ErrorKind::Busy => {
                return Ok(Claim::Skip(e.to_string()));
            }
            Err(e) => return Err(Error::ndctl(dev)(e)),
        },
        other => {
            return Ok(Claim::Skip(format!(
                "{dev}: it is in {other} mode, not ours"
            )))
        }
    };
    wipe_label_area(&device)?;
    Ok(Claim::Add(device))
}

impl VolumeGroups {
    /// Sets up the crate's VGs on every enabled PMEM region (see the module
    /// text) and opens them. Idempotent; a run after new holes appeared adds
    /// them to the VGs.
    pub fn setup(opts: &SetupOptions) -> Result<VolumeGroups> {
        let mut ctx = Context::new().map_err(Error::ndctl("libndctl"))?;
        VolumeGroups::setup_with(&mut ctx, opts)
    }

    /// [`VolumeGroups::setup`] with the caller's libndctl context.
    pub fn setup_with(ctx: &mut Context, opts: &SetupOptions) -> Result<VolumeGroups> {
        VolumeGroups::setup_report(ctx, opts).map(|(groups, _)| groups)
    }

    /// [`VolumeGroups::setup_with`], also returning the regions it left
    /// alone and why (a label-less region holding someone's data, one in
    /// another mode), for the caller to report.
    pub fn setup_report(
        ctx: &mut Context,
        opts: &SetupOptions,
    ) -> Result<(VolumeGroups, Vec<Skipped>)> {
        let mut skipped = Vec::new();
        if !(1..=100).contains(&opts.percentage) {
            return Err(Error::invalid(
                "setup",
                format!("percentage {} is not in 1..=100", opts.percentage),
            ));
        }
        let runner = &opts.runner;
        let (own_vgs, all_names) = all_vgs(runner)?;
        let own_vgs: BTreeSet<VgName> = own_vgs.into_iter().map(|v| v.name).collect();
        let pvs: Vec<PvRow> = runner.report("PVs", &LvmCommand::report("pvs", PvRow::FIELDS))?;
        let mut add: BTreeMap<VgName, Vec<String>> = BTreeMap::new();
        for plan in plans(ctx, opts.join)? {
            let object = format!("VG {}", plan.vg);
            if all_names.iter().any(|n| n == plan.vg.as_str()) && !own_vgs.contains(&plan.vg) {
                return Err(Error::AlreadyExists {
                    object,
                    detail: format!("it exists without the {OWNER_TAG} tag; it is not ours to use"),
                });
            }
            if plan.fixed.is_some() {
                match claim_label_less(ctx, &plan, &pvs, &own_vgs, opts.percentage)? {
                    Claim::Member => {}
                    Claim::Add(device) => add.entry(plan.vg.clone()).or_default().push(device),
                    Claim::Skip(reason) => skipped.push(Skipped {
                        region: plan.name.clone(),
                        reason,
                    }),
                }
                continue;
            }
            let devices = add.entry(plan.vg.clone()).or_default();
            for ns in &plan.own {
                match pvs.iter().find(|p| p.name == ns.device) {
                    Some(pv) if pv.vg == plan.vg.as_str() => {}
                    Some(pv) if !pv.vg.is_empty() => {
                        return Err(Error::InUse {
                            object: format!("{} ({})", ns.dev, plan.name),
                            detail: format!(
                                "it is a PV of VG {}, not of {}: tear down before switching layouts",
                                pv.vg, plan.vg
                            ),
                        });
                    }
                    _ => devices.push(ns.device.clone()),
                }
            }
            let used: u64 = plan.own.iter().map(|n| n.raw).sum();
            let share = u64::try_from(u128::from(plan.size) * u128::from(opts.percentage) / 100)
                .unwrap_or(plan.size)
                / plan.align
                * plan.align;
            let mut want = share.saturating_sub(used);
            for _ in 0..MAX_NAMESPACES_PER_RUN {
                let region = ctx.region(&plan.name).map_err(Error::ndctl(&plan.name))?;
                let hole = region
                    .max_available_extent()
                    .unwrap_or_else(|| region.available_size());
                let chunk = hole.min(want) / plan.align * plan.align;
                if chunk < MIN_HOLE.max(plan.align) {
                    break;
                }
                let spec = NamespaceSpec::new(plan.name.as_str(), Mode::Fsdax, Size(chunk))
                    .name(NAMESPACE_NAME)
                    .align(Size(crate::align::HUGE_PAGE));
                let info = ctx
                    .create_namespace(&spec)
                    .map_err(Error::ndctl(&plan.name))?;
                let device = format!(
                    "/dev/{}",
                    info.blockdev.ok_or_else(|| Error::NotFound {
                        object: format!("block device of {}", info.dev),
                    })?
                );
                wipe_label_area(&device)?;
                devices.push(device);
                want -= chunk;
            }
        }
        for (vg, devices) in add.into_iter().filter(|(_, d)| !d.is_empty()) {
            let object = format!("VG {vg}");
            let cmd = crate::align::add_pvs(&vg, !own_vgs.contains(&vg), &devices);
            runner.run(&object, &cmd)?;
            let tag = LvmCommand::new("pvchange").opt_value("--addtag", OWNER_TAG);
            runner.run(&object, &devices.iter().fold(tag, |c, d| c.operand(d)))?;
        }
        Ok((VolumeGroups::open(runner.clone())?, skipped))
    }

    /// Removes everything the crate made: erases and removes every volume,
    /// removes its VGs and PVs, destroys its namespaces. Foreign objects
    /// are left alone; a namespace of ours that a foreign VG uses is refused.
    pub fn teardown(ctx: &mut Context, runner: &Runner) -> Result<Teardown> {
        let groups = VolumeGroups::open(runner.clone())?;
        let mut done = Teardown::default();
        // Label-less namespaces carry no name: the crate's VGs say which are its own.
        let members: BTreeSet<String> = groups.vgs().into_iter().flat_map(|v| v.pvs).collect();
        for v in groups.list()? {
            groups.delete(&v.name)?;
            done.volumes += 1;
        }
        for vg in groups.vgs() {
            let cmd = LvmCommand::new("vgremove")
                .opt("--yes")
                .operand(vg.name.as_str());
            runner.run(&format!("VG {}", vg.name), &cmd)?;
            done.vgs.push(vg.name.to_string());
        }
        let pvs: Vec<PvRow> = runner.report("PVs", &LvmCommand::report("pvs", PvRow::FIELDS))?;
        let own: Vec<OwnNamespace> = plans(ctx, false)?
            .into_iter()
            .flat_map(|p| match p.fixed {
                Some((dev, Mode::Fsdax, Some(b))) if members.contains(&format!("/dev/{b}")) => {
                    vec![OwnNamespace {
                        dev,
                        device: format!("/dev/{b}"),
                        raw: p.size,
                    }]
                }
                _ => p.own,
            })
            .collect();
        for ns in &own {
            let Some(pv) = pvs.iter().find(|p| p.name == ns.device) else {
                continue;
            };
            let object = format!("PV {}", ns.device);
            if !pv.vg.is_empty() {
                return Err(Error::InUse {
                    object,
                    detail: format!("VG {} (not ours) uses it", pv.vg),
                });
            }
            runner.run(
                &object,
                &LvmCommand::new("pvremove")
                    .opt("--yes")
                    .operand(ns.device.as_str()),
            )?;
        }
        for ns in own {
            ctx.destroy_namespace(&ns.dev, true)
                .map_err(Error::ndctl(&ns.dev))?;
            let label_less = ctx.namespace(&ns.dev).is_ok_and(|n| n.is_label_less());
            if label_less {
                // Destroying leaves it disabled: back to the enabled raw namespace it was.
                ctx.convert_label_less(&ns.dev, Mode::Raw, true)
                    .map_err(Error::ndctl(&ns.dev))?;
            }
            done.namespaces.push(ns.dev);
        }
        Ok(done)
    }
}
