//! `ndctl-sys`: raw FFI bindings to libndctl and libdaxctl.
//!
//! The bindings cover only the `ndctl_*`, `daxctl_*` and `ND_*` items of
//! `<ndctl/libndctl.h>`, `<ndctl/ndctl.h>` and `<daxctl/libdaxctl.h>` and what
//! they need. There is no logic here: the safe API is the `pmem-ndctl` crate.
//!
//! # Which library version
//!
//! The bindings are pre-generated (`src/bindings.rs`) from the headers of
//! **libndctl 76.1 and libdaxctl 76.1, as shipped by Debian 12**, so a build
//! needs neither bindgen nor libclang, only the libraries to link, found with
//! pkg-config (`libndctl-dev`, `libdaxctl-dev`). libndctl keeps its ABI
//! with versioned symbols: newer libraries work; an older one may lack a
//! function, which the link then reports. The `bindgen` feature regenerates
//! the bindings from the installed headers at build time instead (needs
//! libclang). With `DOCS_RS` set nothing is probed or linked, so the
//! documentation builds without the C libraries.
//!
//! libndctl's `ndctl_*_foreach` helpers are C macros and are not bound;
//! iterate with the matching `*_get_first` / `*_get_next` pair.
//!
//! Modules: none; every item is at the crate root.
//!
//! ```no_run
//! let mut ctx = std::ptr::null_mut();
//! // SAFETY: `ctx` is a valid out-pointer; the context is released below.
//! let rc = unsafe { ndctl_sys::ndctl_new(&mut ctx) };
//! assert_eq!(rc, 0);
//! // SAFETY: `ctx` came from a successful ndctl_new and is not used after this.
//! unsafe { ndctl_sys::ndctl_unref(ctx) };
//! ```

#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case)]
// The items are generated from the C headers, which document them; the other
// published crates deny missing_docs.
#![allow(missing_docs, clippy::all, clippy::undocumented_unsafe_blocks)]

#[cfg(not(target_os = "linux"))]
compile_error!("ndctl-sys binds libndctl and libdaxctl, which exist only on Linux");

#[cfg(not(feature = "bindgen"))]
include!("bindings.rs");

#[cfg(feature = "bindgen")]
include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
