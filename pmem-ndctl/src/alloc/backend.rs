//! The backend trait the allocator and the CSI driver talk to, and the records it exchanges.
//!
//! Two implementations: the in-memory [`Simulator`](super::Simulator) and
//! the real one over libndctl. What a libndctl implementation fills in:
//! - [`RegionGeometry`]: `ndctl_region_get_devname`, `_get_resource` (base),
//!   `_get_size`, `_get_align`, `_get_interleave_ways`, and the label state
//!   of its DIMMs;
//! - [`RegionState::available_size`] / [`RegionState::max_available_extent`]:
//!   `ndctl_region_get_available_size` / `_get_max_available_extent`;
//! - [`AllocatedNamespace`]: `ndctl_namespace_get_devname`, `_get_alt_name`,
//!   `_get_resource` minus the region's resource (offset), `_get_size`, the
//!   mode, and the usable size of its block or dax device. Idle seed
//!   namespaces (size 0) are left out.

use super::geometry::{validate_name, RegionGeometry};
use super::layout::Layout;
use super::region::{Extent, RegionModel};
use crate::error::{Error, Result};
use crate::size::Size;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// A namespace as a backend reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub struct AllocatedNamespace {
    /// The kernel's device name, e.g. `namespace0.3` (read, never guessed).
    pub dev: String,
    /// The alternate name given at creation (empty if none).
    pub name: String,
    /// Offset of its first byte from the start of the region.
    pub offset: u64,
    /// Raw size in bytes.
    pub size: u64,
    /// Bytes its block or dax device exposes.
    pub usable: u64,
    /// How it is set up.
    pub layout: Layout,
}

impl AllocatedNamespace {
    /// The extent it occupies.
    pub fn extent(&self) -> Extent {
        Extent {
            offset: self.offset,
            size: self.size,
        }
    }
}

/// A region and its namespaces, as a backend reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct RegionState {
    /// The region's geometry.
    pub geometry: RegionGeometry,
    /// Total free bytes, as the kernel reports it.
    pub available_size: u64,
    /// Largest contiguous free bytes, as the kernel reports it.
    pub max_available_extent: u64,
    /// Its namespaces (non-empty ones), sorted by offset.
    pub namespaces: Vec<AllocatedNamespace>,
}

impl RegionState {
    /// The extent map of this region, for placement decisions.
    pub fn model(&self) -> Result<RegionModel> {
        RegionModel::with_extents(
            self.geometry.clone(),
            self.namespaces.iter().map(AllocatedNamespace::extent),
        )
    }
}

/// What to create: a name, a raw size and a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct CreateRequest {
    /// The alternate name to store in the label (1 to 63 bytes).
    pub name: String,
    /// Raw namespace size in bytes (as `ndctl create-namespace --size`).
    pub size: u64,
    /// Mode and mode parameters.
    pub layout: Layout,
}

/// What the allocator needs from the machine (or from a simulation of it).
///
/// Implementations follow the kernel: `create` puts the namespace where
/// `scan_allocate` does (the lowest aligned hole that holds it), checks
/// sizes with [`Layout::check`] so that refusals read the same everywhere,
/// and on failure leaves the region as it was.
pub trait Backend {
    /// Every region, with its namespaces.
    fn regions(&self) -> Result<Vec<RegionState>>;

    /// Creates a namespace in `region` and returns it as now reported.
    fn create(&mut self, region: &str, request: &CreateRequest) -> Result<AllocatedNamespace>;

    /// Destroys namespace `dev` (its device name) of `region`.
    fn destroy(&mut self, region: &str, dev: &str) -> Result<()>;

    /// Gives namespace `dev` of `region` the name `name`. The kernel takes a
    /// new name only while the namespace is disabled, so a backend over
    /// live namespaces may refuse ([`Error::InvalidArgument`]); the default does.
    fn rename(&mut self, region: &str, dev: &str, name: &str) -> Result<()> {
        let _ = (region, name);
        Err(Error::invalid(
            dev,
            "this backend cannot rename an enabled namespace",
        ))
    }
}

/// Where the kernel will put `request` in `model`'s region and the usable
/// size it will report: `(offset, usable)`. Every backend checks a request
/// with this before it writes anything, so that refusals read the same from
/// the simulator and from libndctl: a bad name or size (as [`Layout::check`]
/// words it), [`Error::NoSpace`] naming the largest size the layout can
/// have, or the failure the kernel reports when it enables a pfn/dax device
/// whose metadata does not fit at that offset.
pub(crate) fn kernel_placement(model: &RegionModel, request: &CreateRequest) -> Result<(u64, u64)> {
    let region = model.name();
    validate_name(&request.name)?;
    let layout = request.layout;
    layout.check(model.geometry(), request.size)?;
    let Some(hole) = model.first_fit(request.size) else {
        return Err(Error::NoSpace {
            object: region.to_string(),
            requested: Size(request.size),
            largest: Size(model.largest_for(&layout)),
        });
    };
    // The kernel checks pfn/dax metadata at enable time, where the physical
    // start is known; the create sequence then rolls the namespace back.
    let usable = layout
        .usable(model.geometry(), hole.offset, request.size)
        .ok_or_else(|| Error::Io {
            object: region.to_string(),
            op: format!(
                "enable {} namespace of {} at offset {:#x}",
                layout.mode,
                Size(request.size),
                hole.offset
            ),
            errno: libc::ENXIO,
        })?;
    Ok((hole.offset, usable))
}

impl<B: Backend + ?Sized> Backend for &mut B {
    fn regions(&self) -> Result<Vec<RegionState>> {
        (**self).regions()
    }
    fn create(&mut self, region: &str, request: &CreateRequest) -> Result<AllocatedNamespace> {
        (**self).create(region, request)
    }
    fn destroy(&mut self, region: &str, dev: &str) -> Result<()> {
        (**self).destroy(region, dev)
    }
    fn rename(&mut self, region: &str, dev: &str, name: &str) -> Result<()> {
        (**self).rename(region, dev, name)
    }
}
