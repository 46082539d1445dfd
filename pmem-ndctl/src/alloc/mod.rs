//! The namespace allocator: region model, simulator backend and placement policies.
//!
//! A pmem namespace is one contiguous extent, and the kernel puts a new one
//! in the lowest aligned hole of its region that holds it whole. After
//! creates and deletes, free space splits into holes; this module knows
//! exactly where the kernel will put each namespace and what it will cost,
//! picks regions so that fewer requests fail, and reports capacity truthfully.
//!
//! - [`geometry`]: region geometry, label state, name and alignment rules;
//! - [`layout`]: a namespace's mode and parameters, and its metadata overhead;
//! - [`region`]: the extent map of a region and the kernel's placement rule;
//! - [`backend`]: the [`Backend`] trait (simulator or libndctl) and its records;
//! - [`sim`]: the in-memory [`Simulator`], saved and loaded as JSON;
//! - [`ndctl`]: [`NdctlBackend`], the machine's real regions through libndctl;
//! - [`policy`]: [`BestFit`] (default) and [`FirstFit`] behind [`Policy`];
//! - [`allocator`]: [`decide`] and the [`Allocator`] that drives a backend;
//! - [`capacity`]: the [`CapacityReport`];
//! - [`trace`]: allocation traces: format, seeded generator, runner.

pub mod allocator;
pub mod backend;
pub mod capacity;
pub mod geometry;
pub mod layout;
pub mod ndctl;
pub mod policy;
pub mod region;
pub mod sim;
pub mod trace;

#[cfg(test)]
mod tests;

pub use allocator::{decide, Allocator, DecisionStats, Placement};
pub use backend::{AllocatedNamespace, Backend, CreateRequest, RegionState};

/// The former name of [`AllocatedNamespace`], which clashed with [`crate::NamespaceInfo`].
#[deprecated(since = "0.1.0", note = "renamed AllocatedNamespace")]
pub type NamespaceInfo = AllocatedNamespace;
pub use capacity::{CapacityReport, ModeSizes, RegionCapacity, TotalCapacity};
pub use geometry::{validate_name, Labels, RegionGeometry, DEFAULT_REGION_ALIGN, MAX_NAME_LEN};
pub use layout::Layout;
pub use ndctl::NdctlBackend;
pub use policy::{policy_by_name, BestFit, Candidate, FirstFit, Policy};
pub use region::{Extent, RegionModel};
pub use sim::{parse_region_sizes, Simulator};
pub use trace::{generate, parse_trace, run_trace, run_trace_inspect, Op, TraceSummary};

/// Serde through `Display` / `FromStr`, for the crate's named enums.
#[cfg(feature = "serde")]
mod serde_str {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};
    use std::fmt::Display;
    use std::str::FromStr;

    pub fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let s = String::deserialize(d)?;
        s.parse().map_err(D::Error::custom)
    }
}
