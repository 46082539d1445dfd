//! NVDIMM buses (`ndbus0`): the root of DIMMs and regions.

use crate::dimm::Dimms;
use crate::iter::{object, string, RawIter};
use crate::region::Regions;

object!(
    /// An NVDIMM bus, e.g. `ndbus0` provided by ACPI NFIT.
    Bus, Buses, ndctl_sys::ndctl_bus
);

impl<'ctx> Bus<'ctx> {
    /// The device name, e.g. `ndbus0`.
    pub fn name(&self) -> String {
        // SAFETY: the bus is alive for 'ctx; the string is owned by libndctl.
        unsafe { string(ndctl_sys::ndctl_bus_get_devname(self.ptr())) }.unwrap_or_default()
    }

    /// The provider, e.g. `ACPI.NFIT`.
    pub fn provider(&self) -> String {
        // SAFETY: as above.
        unsafe { string(ndctl_sys::ndctl_bus_get_provider(self.ptr())) }.unwrap_or_default()
    }

    /// The DIMMs on this bus.
    pub fn dimms(&self) -> Dimms<'ctx> {
        // SAFETY: the bus is alive for 'ctx and so is its DIMM list.
        let first = unsafe { ndctl_sys::ndctl_dimm_get_first(self.ptr()) };
        Dimms(RawIter::new(first, ndctl_sys::ndctl_dimm_get_next))
    }

    /// The regions on this bus.
    pub fn regions(&self) -> Regions<'ctx> {
        // SAFETY: the bus is alive for 'ctx and so is its region list.
        let first = unsafe { ndctl_sys::ndctl_region_get_first(self.ptr()) };
        Regions(RawIter::new(first, ndctl_sys::ndctl_region_get_next))
    }
}
