//! `pmem-ndctl`: a safe API over libndctl, the Linux library that manages
//! NVDIMMs (persistent memory): buses, DIMMs, regions and namespaces in
//! fsdax, devdax, sector and raw mode.
//!
//! A [`Context`] owns the library handle; every object borrows it
//! ([`Region<'ctx>`](Region)), so none can outlive it. Reading takes
//! `&Context`; changing the configuration (enable/disable a region,
//! initialise labels, create/destroy a namespace) takes `&mut Context`, so no
//! object can point at something libndctl freed. Every request is validated
//! before anything is written; a failed create leaves the region as it was.
//!
//! ```no_run
//! use pmem_ndctl::{Context, Mode, NamespaceSpec, Size};
//!
//! let mut ctx = Context::new()?;
//! for r in ctx.regions() {
//!     println!("{}: {} of {} bytes free, largest extent {:?}",
//!              r.name(), r.available_size(), r.size(), r.max_available_extent());
//! }
//! let ns = ctx.create_namespace(&NamespaceSpec::new("region0", Mode::Fsdax, Size(256 << 20)).name("db"))?;
//! println!("created {} ({} usable bytes) as /dev/{}", ns.dev, ns.size, ns.blockdev.unwrap_or_default());
//! ctx.destroy_namespace(&ns.dev, true)?;
//! # Ok::<(), pmem_ndctl::Error>(())
//! ```
//!
//! Modules:
//! - [`alloc`]: the fragmentation-aware namespace allocator;
//! - [`bus`], [`dimm`], [`region`], [`namespace`], [`personality`]: one per libndctl object kind;
//! - [`ctx`]: the library context and the operations that change the configuration;
//! - [`rules`]: the kernel's namespace rules (name length, alignments, minimum sizes), in one place;
//! - [`validate`]: checks a namespace request against a region's rules, as a pure function;
//! - [`erase`]: zeroing a device or a range of it (block devices exclusively, device-dax through a mapping);
//! - [`error`]: the crate's error type and its kinds;
//! - [`health`]: DIMM SMART health and bad blocks, as plain values;
//! - [`size`]: byte sizes, parsed and printed like ndctl;
//! - [`types`]: namespace modes, map locations, region types, states.

#![deny(missing_docs)]

/// The README's examples, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

#[cfg(not(target_os = "linux"))]
compile_error!(
    "pmem-ndctl supports Linux only: it drives libndctl and the kernel's libnvdimm subsystem"
);

pub mod alloc;
pub mod bus;
mod busy;
mod convert;
pub mod ctx;
pub mod dimm;
pub mod erase;
pub mod error;
pub mod health;
mod iter;
pub mod namespace;
pub mod personality;
pub mod region;
pub mod rules;
pub mod signature;
pub mod size;
pub mod types;
mod uuid;
pub mod validate;

pub use alloc::{Allocator, Backend, BestFit, CapacityReport, FirstFit, Layout, Simulator};
pub use bus::{Bus, Buses};
pub use ctx::Context;
pub use dimm::{Dimm, DimmFlags, Dimms, Security};
pub use error::{Error, ErrorKind, Result};
pub use health::{
    BadBlock, DimmHealth, HealthAlarms, HealthState, HealthThresholds, ShutdownState,
};
pub use namespace::{Namespace, NamespaceInfo, NamespaceSpec, Namespaces};
pub use personality::{Btt, Dax, DaxDeviceInfo, DaxRegionInfo, Pfn};
pub use region::{Mapping, PersistenceDomain, Region, Regions};
pub use signature::Signature;
pub use size::Size;
pub use types::{MapLocation, Mode, RegionType, State};
