//! The libndctl backend: the machine's real regions, through the safe [`Context`] API.
//!
//! Regions are read as the kernel reports them (resource, size, align,
//! interleave ways, available size, largest extent) and namespaces by their
//! physical offset in the region, raw size and the usable size of their
//! block or dax device. A create is checked with the same code as the
//! simulator's before anything is written, so refusals read the same; the
//! kernel then places the namespace itself.

use super::backend::{kernel_placement, AllocatedNamespace, Backend, CreateRequest, RegionState};
use super::geometry::{Labels, RegionGeometry};
use super::layout::Layout;
use crate::ctx::Context;
use crate::error::{Error, Result};
use crate::namespace::{Namespace, NamespaceSpec};
use crate::region::Region;
use crate::size::Size;
use crate::types::Mode;
use std::collections::HashSet;

/// The real machine as an allocator [`Backend`], over a libndctl [`Context`].
///
/// Reading physical addresses needs root. Label versions cannot be read
/// through libndctl's object API; labelled regions are taken to carry the
/// version [`NdctlBackend::with_labels`] names, v1.1 by default (what
/// `ndctl init-labels` and [`Context::init_labels`] write). It only matters
/// for sector namespaces, whose BTT starts 4 KiB in with v1.1 labels.
#[derive(Debug)]
pub struct NdctlBackend {
    ctx: Context,
    labels: Labels,
    /// `Some`: destroy only the namespaces created through this value.
    owned: Option<HashSet<String>>,
    /// Report only enabled, labelled regions.
    labelled_only: bool,
}

impl NdctlBackend {
    /// A backend over `ctx` that may destroy any namespace.
    pub fn new(ctx: Context) -> Self {
        NdctlBackend {
            ctx,
            labels: Labels::V1_1,
            owned: None,
            labelled_only: false,
        }
    }

    /// A backend over `ctx` that refuses to destroy namespaces it did not
    /// create itself: for runs that must leave the rest of the machine alone.
    pub fn owned_only(ctx: Context) -> Self {
        NdctlBackend {
            owned: Some(HashSet::new()),
            ..NdctlBackend::new(ctx)
        }
    }

    /// Reports only the regions namespaces can be carved from: enabled, with
    /// labels. Label-less regions (one fixed namespace) and disabled ones are left out.
    pub fn labelled_only(mut self) -> Self {
        self.labelled_only = true;
        self
    }

    /// Sets the label version assumed for labelled regions (v1.1 or v1.2).
    pub fn with_labels(mut self, labels: Labels) -> Result<Self> {
        if labels == Labels::None {
            return Err(Error::invalid(
                "label version",
                "labelled regions carry v1.1 or v1.2 labels",
            ));
        }
        self.labels = labels;
        Ok(self)
    }

    /// The libndctl context, to read what the backend does not report.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Gives the context back.
    pub fn into_context(self) -> Context {
        self.ctx
    }

    fn geometry(&self, r: &Region<'_>) -> Result<RegionGeometry> {
        let name = r.name();
        let base = r.resource().ok_or_else(|| Error::PermissionDenied {
            object: name.clone(),
            op: "read the region's physical address".into(),
        })?;
        let align = r.align().ok_or_else(|| {
            Error::invalid(&name, "the kernel does not report the region's alignment")
        })?;
        let labels = if r.is_labelled() {
            self.labels
        } else {
            Labels::None
        };
        let g = RegionGeometry {
            name,
            base,
            size: r.size(),
            align,
            ways: u64::from(r.interleave_ways()),
            labels,
        };
        g.validate()?;
        Ok(g)
    }

    fn state(&self, r: &Region<'_>) -> Result<RegionState> {
        let geometry = self.geometry(r)?;
        let mut namespaces = r
            .namespaces()
            .filter(|ns| ns.size() > 0)
            .map(|ns| namespace_info(&geometry, &ns))
            .collect::<Result<Vec<_>>>()?;
        namespaces.sort_by_key(|n| n.offset);
        Ok(RegionState {
            available_size: r.available_size(),
            max_available_extent: r
                .max_available_extent()
                .unwrap_or_else(|| r.available_size()),
            geometry,
            namespaces,
        })
    }

    fn region_state(&self, region: &str) -> Result<RegionState> {
        self.state(&self.ctx.region(region)?)
    }
}

/// A namespace as the allocator sees it: offset from the region's start and
/// the layout normalised to the fields its mode uses (the others at
/// [`Layout::new`]'s defaults), so that it compares equal to the request.
fn namespace_info(region: &RegionGeometry, ns: &Namespace<'_>) -> Result<AllocatedNamespace> {
    let info = ns.info()?;
    let resource = info.resource.ok_or_else(|| Error::PermissionDenied {
        object: info.dev.clone(),
        op: "read the namespace's physical address".into(),
    })?;
    let offset = resource
        .checked_sub(region.base)
        .filter(|o| o.saturating_add(info.raw_size) <= region.size)
        .ok_or_else(|| {
            Error::invalid(
                &info.dev,
                format!(
                    "starts at {resource:#x}, outside {} ({:#x} + {})",
                    region.name,
                    region.base,
                    Size(region.size)
                ),
            )
        })?;
    let mut layout = Layout::new(info.mode);
    match info.mode {
        Mode::Fsdax | Mode::Devdax => {
            layout.map = info.map.unwrap_or(layout.map);
            layout.align = info.align.unwrap_or(layout.align);
        }
        Mode::Sector => {
            layout.sector_size = info.sector_size.map_or(layout.sector_size, u64::from);
        }
        Mode::Raw | Mode::Unknown(_) => {}
    }
    Ok(AllocatedNamespace {
        dev: info.dev,
        name: info.name.unwrap_or_default(),
        offset,
        size: info.raw_size,
        usable: info.size,
        layout,
    })
}

impl Backend for NdctlBackend {
    /// The machine's regions in id order (`region0`, `region1`, …), only the
    /// enabled, labelled ones with [`NdctlBackend::labelled_only`].
    fn regions(&self) -> Result<Vec<RegionState>> {
        let mut regions: Vec<Region<'_>> = self
            .ctx
            .regions()
            .filter(|r| !self.labelled_only || (r.is_enabled() && r.is_labelled()))
            .collect();
        regions.sort_by_key(Region::id);
        regions.iter().map(|r| self.state(r)).collect()
    }

    fn create(&mut self, region: &str, request: &CreateRequest) -> Result<AllocatedNamespace> {
        let model = self.region_state(region)?.model()?;
        kernel_placement(&model, request)?;
        let layout = request.layout;
        let pfn = matches!(layout.mode, Mode::Fsdax | Mode::Devdax);
        let sector_size = u32::try_from(layout.sector_size).map_err(|_| {
            Error::invalid(
                region,
                format!("sector size {} is too large", layout.sector_size),
            )
        })?;
        let mut spec =
            NamespaceSpec::new(region, layout.mode, Size(request.size)).name(request.name.clone());
        spec.align = pfn.then_some(Size(layout.align));
        spec.map = pfn.then_some(layout.map);
        spec.sector_size = (layout.mode == Mode::Sector).then_some(sector_size);
        let made = self.ctx.create_namespace(&spec)?;
        if let Some(owned) = &mut self.owned {
            owned.insert(made.dev.clone());
        }
        let state = self.region_state(region)?;
        state
            .namespaces
            .into_iter()
            .find(|n| n.dev == made.dev)
            .ok_or(Error::NotFound { object: made.dev })
    }

    fn destroy(&mut self, region: &str, dev: &str) -> Result<()> {
        let r = self.ctx.region(region)?;
        if !r.namespaces().any(|n| n.name() == dev && n.size() > 0) {
            return Err(Error::NotFound {
                object: format!("{dev} in {region}"),
            });
        }
        if let Some(owned) = &self.owned {
            if !owned.contains(dev) {
                return Err(Error::invalid(
                    dev,
                    "not created by this run; refusing to destroy it",
                ));
            }
        }
        self.ctx.destroy_namespace(dev, true)?;
        if let Some(owned) = &mut self.owned {
            owned.remove(dev);
        }
        Ok(())
    }
}
