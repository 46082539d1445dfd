//! `pmem-ndctl`: a safe API over libndctl.
//!
//! Modules:
//! - [`alloc`]: the fragmentation-aware namespace allocator;
//! - [`error`]: the crate's error type and its kinds;
//! - [`size`]: byte sizes, parsed and printed like ndctl;
//! - [`types`]: namespace modes, map locations, region types, states.

pub mod alloc;
pub mod error;
pub mod size;
pub mod types;

pub use error::{Error, ErrorKind, Result};
pub use size::Size;
pub use types::{MapLocation, Mode, RegionType, State};
pub use alloc::{Allocator, Backend, BestFit, CapacityReport, FirstFit, Layout, Simulator};
