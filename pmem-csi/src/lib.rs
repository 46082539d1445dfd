//! `pmem-csi`: a Kubernetes CSI driver for persistent memory.
//!
//! The driver will serve the CSI identity, controller and node services on
//! a unix socket, on top of `pmem-ndctl` and `pmem-lvm`.
//!
//! Modules: none yet. The crate has no public API so far; it does not
//! serve CSI today.
