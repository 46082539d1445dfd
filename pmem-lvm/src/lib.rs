//! `pmem-lvm`: LVM volume groups on PMEM fsdax namespaces.
//!
//! This crate will run the `lvm` binary to build one volume group per
//! region out of fsdax namespaces and carve logical volumes from it.
//!
//! Modules: none yet. The crate has no public API so far; nothing in it
//! claims to manage LVM today.
