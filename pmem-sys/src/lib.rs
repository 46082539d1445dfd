//! `ndctl-sys`: raw FFI bindings to libndctl and libdaxctl.
//!
//! The bindings are generated at build time by bindgen from the installed
//! headers (`<ndctl/libndctl.h>`, `<ndctl/ndctl.h>`, `<daxctl/libdaxctl.h>`),
//! found with pkg-config, and cover only the `ndctl_*`, `daxctl_*` and
//! `ND_*` items and what they need. There is no logic here: the safe API is
//! the `pmem-ndctl` crate.
//!
//! libndctl's `ndctl_*_foreach` helpers are C macros and are not bound;
//! iterate with the matching `*_get_first` / `*_get_next` pair.
//!
//! Modules: none; every item is at the crate root.
//!
//! ```no_run
//! let mut ctx = std::ptr::null_mut();
//! // SAFETY: `ctx` is a valid out-pointer; the context is released below.
//! let rc = unsafe { pmem_sys::ndctl_new(&mut ctx) };
//! assert_eq!(rc, 0);
//! // SAFETY: `ctx` came from a successful ndctl_new and is not used after this.
//! unsafe { pmem_sys::ndctl_unref(ctx) };
//! ```

#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case)]
#![allow(missing_docs, clippy::all, clippy::undocumented_unsafe_blocks)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
