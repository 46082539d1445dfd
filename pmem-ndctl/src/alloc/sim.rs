//! The in-memory simulator backend: regions that follow the kernel's placement, sizes and refusals.

use super::backend::{kernel_placement, AllocatedNamespace, Backend, CreateRequest, RegionState};
use super::geometry::{align_up, validate_name, Labels, RegionGeometry};
use super::layout::Layout;
use super::region::{Extent, RegionModel};
use crate::error::{Error, Result};
use crate::size::Size;
use crate::types::Mode;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
struct SimRegion {
    geometry: RegionGeometry,
    /// The next namespace id: like the kernel's seeds, ids are not reused at once.
    next_id: u64,
    namespaces: Vec<AllocatedNamespace>,
}

#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
struct SimState {
    regions: Vec<SimRegion>,
}

/// An in-memory machine: regions of given sizes whose namespaces are placed,
/// sized and refused as the kernel would. Its state saves to and loads from JSON.
#[derive(Debug, Clone)]
pub struct Simulator {
    state: SimState,
    models: Vec<RegionModel>,
}

/// The most regions a simulated machine may have.
pub const MAX_SIM_REGIONS: usize = 256;
/// The smallest simulated region, bytes.
pub const MIN_SIM_REGION: u64 = 64 << 20;
/// The largest simulated region, bytes (1 PiB).
pub const MAX_SIM_REGION: u64 = 1 << 50;

/// Parses a region list: `COUNTxSIZE` (`4x64G`) or sizes separated by commas
/// (`1920M,1920M`): 1 to [`MAX_SIM_REGIONS`] regions of [`MIN_SIM_REGION`]
/// to [`MAX_SIM_REGION`] bytes each.
pub fn parse_region_sizes(spec: &str) -> Result<Vec<u64>> {
    let bad = |why: String| Error::invalid(format!("regions '{spec}'"), why);
    let size = |s: &str| {
        s.parse::<Size>()
            .map(Size::bytes)
            .map_err(|e| bad(e.to_string()))
    };
    let sizes = match spec.split_once(['x', 'X']) {
        Some((count, each)) => {
            let n: usize = count
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=MAX_SIM_REGIONS).contains(n))
                .ok_or_else(|| {
                    bad(format!(
                        "'{count}' is not a region count from 1 to {MAX_SIM_REGIONS}"
                    ))
                })?;
            vec![size(each)?; n]
        }
        None => {
            let parts: Vec<&str> = spec.split(',').collect();
            if parts.len() > MAX_SIM_REGIONS {
                return Err(bad(format!("more than {MAX_SIM_REGIONS} regions")));
            }
            parts.into_iter().map(size).collect::<Result<_>>()?
        }
    };
    if let Some(s) = sizes
        .iter()
        .find(|s| !(MIN_SIM_REGION..=MAX_SIM_REGION).contains(*s))
    {
        return Err(bad(format!(
            "a region of {} is outside {} to {}",
            Size(*s),
            Size(MIN_SIM_REGION),
            Size(MAX_SIM_REGION)
        )));
    }
    Ok(sizes)
}

impl Simulator {
    /// Labelled regions `region0`, `region1`, … of the given sizes, placed at
    /// 1 GiB-aligned physical addresses from 4 GiB up as QEMU places DIMMs.
    pub fn from_sizes(sizes: &[u64]) -> Result<Self> {
        let mut base = 4u64 << 30;
        let mut geometries = Vec::with_capacity(sizes.len());
        for (i, &size) in sizes.iter().enumerate() {
            geometries.push(RegionGeometry::labelled(format!("region{i}"), base, size));
            base = align_up(base.saturating_add(size), 1 << 30).unwrap_or(u64::MAX);
        }
        Simulator::new(geometries)
    }

    /// Regions of the given geometries. A label-less region starts with its
    /// one raw namespace covering it whole, as the kernel shows it.
    pub fn new(geometries: Vec<RegionGeometry>) -> Result<Self> {
        let regions = geometries
            .into_iter()
            .enumerate()
            .map(|(i, geometry)| {
                let mut r = SimRegion {
                    next_id: 0,
                    namespaces: Vec::new(),
                    geometry,
                };
                if r.geometry.labels == Labels::None {
                    let dev = format!("namespace{}.0", region_number(&r.geometry.name, i));
                    r.next_id = 1;
                    r.namespaces.push(AllocatedNamespace {
                        dev,
                        name: String::new(),
                        offset: 0,
                        size: r.geometry.size,
                        usable: r.geometry.size,
                        layout: Layout::new(Mode::Raw),
                    });
                }
                r
            })
            .collect();
        Simulator::from_state(SimState { regions })
    }

    fn from_state(state: SimState) -> Result<Self> {
        let mut names = HashSet::new();
        let mut devs = HashSet::new();
        let mut models = Vec::with_capacity(state.regions.len());
        for r in &state.regions {
            if !names.insert(r.geometry.name.clone()) {
                return Err(Error::invalid(&r.geometry.name, "region listed twice"));
            }
            for ns in &r.namespaces {
                if !devs.insert(ns.dev.clone()) {
                    return Err(Error::invalid(&ns.dev, "namespace listed twice"));
                }
            }
            models.push(RegionModel::with_extents(
                r.geometry.clone(),
                r.namespaces.iter().map(AllocatedNamespace::extent),
            )?);
        }
        let mut sim = Simulator { state, models };
        for r in &mut sim.state.regions {
            r.namespaces.sort_by_key(|n| n.offset);
        }
        Ok(sim)
    }

    /// Loads a state saved by [`Simulator::to_json`], checking it is coherent
    /// (feature `json`).
    #[cfg(feature = "json")]
    pub fn from_json(text: &str) -> Result<Self> {
        let state: SimState = serde_json::from_str(text)
            .map_err(|e| Error::invalid("simulator state", e.to_string()))?;
        Simulator::from_state(state)
    }

    /// The whole state as JSON (feature `json`).
    #[cfg(feature = "json")]
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.state)
            .expect("the state holds only strings and integers, which always serialise")
    }

    /// The extent models of the regions, in order.
    pub fn models(&self) -> &[RegionModel] {
        &self.models
    }

    fn index(&self, region: &str) -> Result<usize> {
        self.state
            .regions
            .iter()
            .position(|r| r.geometry.name == region)
            .ok_or_else(|| Error::NotFound {
                object: region.to_string(),
            })
    }
}

fn region_number(name: &str, index: usize) -> String {
    match name.strip_prefix("region") {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n.to_string(),
        _ => index.to_string(),
    }
}

impl Backend for Simulator {
    fn regions(&self) -> Result<Vec<RegionState>> {
        Ok(self
            .state
            .regions
            .iter()
            .zip(&self.models)
            .map(|(r, m)| RegionState {
                geometry: r.geometry.clone(),
                available_size: m.available_size(),
                max_available_extent: m.max_available_extent(),
                namespaces: r.namespaces.clone(),
            })
            .collect())
    }

    fn create(&mut self, region: &str, request: &CreateRequest) -> Result<AllocatedNamespace> {
        let i = self.index(region)?;
        let model = &mut self.models[i];
        let (offset, usable) = kernel_placement(model, request)?;
        model.insert(Extent {
            offset,
            size: request.size,
        })?;
        let r = &mut self.state.regions[i];
        let ns = AllocatedNamespace {
            dev: format!("namespace{}.{}", region_number(region, i), r.next_id),
            name: request.name.clone(),
            offset,
            size: request.size,
            usable,
            layout: request.layout,
        };
        r.next_id += 1;
        let at = r.namespaces.partition_point(|n| n.offset < ns.offset);
        r.namespaces.insert(at, ns.clone());
        Ok(ns)
    }

    fn destroy(&mut self, region: &str, dev: &str) -> Result<()> {
        let i = self.index(region)?;
        let r = &mut self.state.regions[i];
        let at = r
            .namespaces
            .iter()
            .position(|n| n.dev == dev)
            .ok_or_else(|| Error::NotFound {
                object: dev.to_string(),
            })?;
        if r.geometry.labels == Labels::None {
            return Err(Error::invalid(
                dev,
                "the namespace of a label-less region cannot be destroyed",
            ));
        }
        let ns = r.namespaces.remove(at);
        self.models[i].remove(ns.offset);
        Ok(())
    }

    fn rename(&mut self, region: &str, dev: &str, name: &str) -> Result<()> {
        validate_name(name)?;
        let i = self.index(region)?;
        let ns = self.state.regions[i]
            .namespaces
            .iter_mut()
            .find(|n| n.dev == dev)
            .ok_or_else(|| Error::NotFound {
                object: dev.to_string(),
            })?;
        ns.name = name.to_string();
        Ok(())
    }
}
