//! `pmem-dax`: store data in persistent memory directly from Rust.
//!
//! Map a file on a DAX filesystem ([`map_file`], [`MapOptions`], with
//! `MAP_SYNC`) or a device-dax character device ([`DevDax`]), write with CPU
//! stores, and make the writes durable with cache-line flushes and fences
//! ([`persist`], [`memcpy_persist`]...) instead of `msync`. It is the
//! safe Rust counterpart of PMDK's libpmem: same primitives, same
//! environment switches (`PMEM_NO_CLWB`, `PMEM_NO_FLUSH`, ...), instruction
//! choices reported by [`features`].
//!
//! Modules:
//! - `cpu`: CPUID: flush instructions and vector widths of this processor;
//! - `config`: the one-time choice of flush and non-temporal store kernels,
//!   with libpmem's environment switches ([`Features`], [`features`]);
//! - `flush`: `clwb` / `clflushopt` / `clflush` / `sfence` in `asm!`;
//! - `nt`: non-temporal copy and fill kernels (AVX-512F, AVX2, SSE2);
//! - `persist`: flush, drain, persist, memcpy / memmove / memset with
//!   persistence ([`MemFlags`]);
//! - `domain`: persistence domain of the NVDIMM regions (eADR), deep flush;
//! - `map`: [`Mapping`], the owned mapping with bounds-checked slices and
//!   typed views ([`Plain`]);
//! - `file`: create-or-open a file and map it ([`map_file`]);
//! - `devdax`: device-dax character devices ([`DevDax`]);
//! - `source`: a mapping's [`Source`] and its media health: bad ranges
//!   ([`BadRange`]) and the unsafe-shutdown count;
//! - `sys`: `posix_fallocate`, `flock`, `FIEMAP` and the page size;
//! - `error`: [`Error`] and [`ErrorKind`].
//!
//! Only x86_64 Linux is supported.

#![deny(missing_docs)]

/// The README's examples, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
compile_error!("pmem-dax supports x86_64 Linux only");

mod config;
mod cpu;
mod devdax;
mod domain;
mod error;
mod file;
mod flush;
mod map;
mod nt;
mod persist;
mod source;
mod sys;

pub use config::{features, Features, Flush, Movnt, DEFAULT_MOVNT_THRESHOLD};
pub use cpu::CpuFeatures;
pub use devdax::DevDax;
pub use domain::{is_eadr, parse_domain, regions, regions_in, Durability, Region};
pub use error::{Error, ErrorKind, Result};
pub use file::{map_file, MapOptions};
pub use map::{MapKind, Mapping, Plain};
pub use persist::{
    drain, flush, memcpy, memcpy_nodrain, memcpy_persist, memmove, memmove_nodrain,
    memmove_persist, memset, memset_nodrain, memset_persist, persist, MemFlags,
};
pub use source::{BadRange, Source};
