//! `pmem-dax`: DAX mappings and persistence primitives.
//!
//! Modules: none yet. The crate has no public API so far.
