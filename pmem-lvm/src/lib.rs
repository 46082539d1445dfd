//! `pmem-lvm`: LVM volume groups on PMEM that turn a fragmented region's holes into capacity.
//!
//! A pmem namespace is one contiguous extent, so after namespaces come and
//! go a region's free space is split into holes, and no single namespace
//! can use them all. [`VolumeGroups::setup`] fills every hole of every
//! labelled region with an fsdax namespace and makes them the PVs of one
//! volume group per region (or per NUMA node in join mode); volumes are
//! then LVs that may span holes. It runs the `lvm` command the way the
//! workspace's LVM contract says (argument vectors, `LC_ALL=C`, JSON
//! reports in bytes, no udev), and touches only what it created.
//!
//! ```no_run
//! use pmem_lvm::{SetupOptions, VolumeGroups, VolumeName};
//!
//! let groups = VolumeGroups::setup(&SetupOptions::default())?;
//! let name = VolumeName::new("pvc-0a1b/data")?;
//! let vol = groups.create(&name, 256 << 20)?;
//! println!("{} is {} ({} bytes in VG {})", vol.name, vol.device.display(), vol.size, vol.vg);
//! groups.delete(&name)?; // erased, then removed
//! # Ok::<(), pmem_lvm::Error>(())
//! ```
//!
//! Modules:
//! - [`setup`]: namespaces per hole, PVs, VGs; teardown;
//! - [`align`]: PV data areas and extents on 2 MiB boundaries (huge-page DAX faults); PVs made before;
//! - [`groups`]: [`VolumeGroups`], the state read from LVM, the locks;
//! - [`volume`]: create, delete, grow, capacity;
//! - [`zeroed`]: which free space is known to hold zeros (PV and VG tags), zeroing new PVs;
//! - [`names`]: validated VG, LV and volume names and the mapping between them;
//! - [`runner`]: the `lvm` commands and the classification of their errors;
//! - [`process`]: the workspace's one way to run a program (time limit, process group killed when late);
//! - [`report`]: typed rows of LVM's JSON reports;
//! - [`error`]: the crate's error type and its kinds.

#![deny(missing_docs)]

/// The README's examples, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

#[cfg(not(target_os = "linux"))]
compile_error!("pmem-lvm supports Linux only: it drives LVM on PMEM namespaces through libndctl");

pub mod align;
pub mod error;
pub mod groups;
pub mod names;
pub mod process;
pub mod report;
pub mod runner;
pub mod setup;
pub mod volume;
pub mod zeroed;

pub use align::UnalignedPv;
pub use error::{Error, ErrorKind, Result};
pub use groups::{VgInfo, Volume, VolumeGroups};
pub use names::{LvName, VgName, VolumeName};
pub use runner::{LvmCommand, Runner};
pub use setup::{SetupOptions, Teardown};
pub use volume::{Capacity, VgCapacity};
pub use zeroed::UnzeroedPv;
