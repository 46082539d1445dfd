//! `pmem`: the facade of the pmem-rs workspace.
//!
//! It re-exports each layer under a short name so that the workspace's
//! top-level `examples/` and `benches/` (and applications that want the
//! whole stack) depend on one crate:
//!
//! - [`sys`]: raw FFI over libndctl and libdaxctl (`ndctl-sys`);
//! - [`ndctl`]: the safe libndctl API (`pmem-ndctl`);
//! - [`lvm`]: LVM volume groups on fsdax namespaces (`pmem-lvm`);
//! - [`dax`]: DAX mappings and persistence primitives (`pmem-dax`);
//! - [`csi`]: the Kubernetes CSI driver (`pmem-csi`).

pub use ndctl_sys as sys;
pub use pmem_csi as csi;
pub use pmem_dax as dax;
pub use pmem_lvm as lvm;
pub use pmem_ndctl as ndctl;
