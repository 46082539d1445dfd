//! The library context: owns libndctl's `ndctl_ctx`, finds objects by name, and runs the
//! operations that change the configuration (they take `&mut self`).

use crate::bus::Buses;
use crate::dimm::Dimm;
use crate::error::{Error, Result};
use crate::iter::RawIter;
use crate::namespace::{Namespace, NamespaceInfo, NamespaceSpec};
use crate::region::Region;
use crate::types::Mode;
use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr::NonNull;

/// A libndctl context. Every object ([`Bus`](crate::Bus), [`Dimm`], [`Region`],
/// [`Namespace`]...) borrows it, so none can outlive it.
///
/// Reading takes `&self`. Operations that change the configuration
/// (enable/disable a region, initialise labels, create or destroy a
/// namespace) take `&mut self`: libndctl frees objects when they go away,
/// and the borrow checker then guarantees no wrapper still points at them.
///
/// The context is `Send` but not `Sync`: libndctl is multithread-aware, not
/// multithread-safe. Use one context per thread, or move it between threads.
pub struct Context {
    raw: NonNull<ndctl_sys::ndctl_ctx>,
    _not_sync: PhantomData<Cell<()>>,
}

// SAFETY: a Context is the only owner of its ndctl_ctx and of every object
// libndctl hangs off it; libndctl keeps no thread-local state, so moving the
// whole context (with no borrows outstanding, which the borrow checker
// enforces) to another thread is sound. It stays !Sync through the Cell.
unsafe impl Send for Context {}

impl Context {
    /// Opens a libndctl context (reads `/sys/bus/nd`; needs no privileges).
    ///
    /// ```no_run
    /// let ctx = pmem_ndctl::Context::new()?;
    /// for region in ctx.regions() {
    ///     println!("{}: {} bytes free", region.name(), region.available_size());
    /// }
    /// # Ok::<(), pmem_ndctl::Error>(())
    /// ```
    pub fn new() -> Result<Context> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; on success libndctl stores a
        // context we own and release in Drop.
        let rc = unsafe { ndctl_sys::ndctl_new(&mut raw) };
        match NonNull::new(raw) {
            Some(raw) if rc == 0 => Ok(Context {
                raw,
                _not_sync: PhantomData,
            }),
            _ => Err(Error::from_errno("libndctl", "ndctl_new", rc)),
        }
    }

    pub(crate) fn ptr(&self) -> *mut ndctl_sys::ndctl_ctx {
        self.raw.as_ptr()
    }

    /// The NVDIMM buses (usually one, `ndbus0`, for ACPI NFIT).
    pub fn buses(&self) -> Buses<'_> {
        // SAFETY: the context is valid; the list lives as long as it.
        let first = unsafe { ndctl_sys::ndctl_bus_get_first(self.ptr()) };
        Buses(RawIter::new(first, ndctl_sys::ndctl_bus_get_next))
    }

    /// Every DIMM on every bus, in libndctl's order.
    pub fn dimms(&self) -> impl Iterator<Item = Dimm<'_>> + '_ {
        self.buses().flat_map(|b| b.dimms())
    }

    /// Every region on every bus, in libndctl's order.
    pub fn regions(&self) -> impl Iterator<Item = Region<'_>> + '_ {
        self.buses().flat_map(|b| b.regions())
    }

    /// Every namespace of every region, the idle seeds included.
    pub fn namespaces(&self) -> impl Iterator<Item = Namespace<'_>> + '_ {
        self.regions().flat_map(|r| r.namespaces())
    }

    /// The region named `ident` (`region1`, or its id `1`).
    pub fn region(&self, ident: &str) -> Result<Region<'_>> {
        self.regions()
            .find(|r| r.name() == ident || r.id().to_string() == ident)
            .ok_or_else(|| Error::NotFound {
                object: ident.to_string(),
            })
    }

    /// The DIMM named `ident` (`nmem0`, or its id `0`).
    pub fn dimm(&self, ident: &str) -> Result<Dimm<'_>> {
        self.dimms()
            .find(|d| d.name() == ident || d.id().to_string() == ident)
            .ok_or_else(|| Error::NotFound {
                object: ident.to_string(),
            })
    }

    /// The namespace named `ident` (`namespace0.1`).
    pub fn namespace(&self, ident: &str) -> Result<Namespace<'_>> {
        self.namespaces()
            .find(|n| n.name() == ident)
            .ok_or_else(|| Error::NotFound {
                object: ident.to_string(),
            })
    }

    /// Enables region `ident` (a no-op when it is enabled).
    pub fn enable_region(&mut self, ident: &str) -> Result<()> {
        crate::region::enable(self, ident)
    }

    /// Disables region `ident`: its namespaces first, refusing with
    /// [`Error::Busy`] if one of them is in use (mounted, held by
    /// device-mapper, a device-dax instance mapped or onlined as memory).
    pub fn disable_region(&mut self, ident: &str) -> Result<()> {
        crate::region::disable(self, ident)
    }

    /// Writes a fresh, empty label index to DIMM `ident` (label format
    /// v1.1, what `ndctl init-labels` writes). The DIMM's regions must be
    /// disabled; existing labels are only overwritten with `force`.
    pub fn init_labels(&mut self, ident: &str, force: bool) -> Result<()> {
        crate::dimm::init_labels(self, ident, force)
    }

    /// Creates a namespace as `spec` describes, after validating it against
    /// the region's rules; on any failure the region is left as it was.
    ///
    /// ```no_run
    /// use pmem_ndctl::{Context, Mode, NamespaceSpec, Size};
    /// let mut ctx = Context::new()?;
    /// let ns = ctx.create_namespace(&NamespaceSpec::new("region0", Mode::Fsdax, Size(256 << 20)).name("db"))?;
    /// println!("{} is /dev/{}", ns.dev, ns.blockdev.unwrap_or_default());
    /// # Ok::<(), pmem_ndctl::Error>(())
    /// ```
    pub fn create_namespace(&mut self, spec: &NamespaceSpec) -> Result<NamespaceInfo> {
        crate::namespace::create(self, spec)
    }

    /// Converts the label-less namespace `ident` (the one fixed namespace of
    /// a region without labels) to `mode` in place, as `ndctl create-namespace
    /// -f -e NAMESPACE -m MODE` does. Idempotent: a namespace in `mode`
    /// already is returned as it is. Refused with [`Error::Busy`] while it is
    /// in use and, unless `force`, when it is in another mode than raw or its
    /// device holds a recognised signature ([`crate::signature`]): a
    /// conversion overwrites the namespace's start. A labelled namespace is
    /// refused with [`Error::InvalidArgument`].
    ///
    /// ```no_run
    /// use pmem_ndctl::{Context, Mode};
    /// let mut ctx = Context::new()?;
    /// let ns = ctx.convert_label_less("namespace0.0", Mode::Fsdax, false)?;
    /// println!("/dev/{} is fsdax", ns.blockdev.unwrap_or_default());
    /// # Ok::<(), pmem_ndctl::Error>(())
    /// ```
    pub fn convert_label_less(
        &mut self,
        ident: &str,
        mode: Mode,
        force: bool,
    ) -> Result<NamespaceInfo> {
        crate::convert::convert(self, ident, mode, force)
    }

    /// Destroys namespace `ident`. An enabled namespace is only destroyed
    /// with `force`; a busy one (mounted, held, mapped) never is.
    pub fn destroy_namespace(&mut self, ident: &str, force: bool) -> Result<()> {
        crate::namespace::destroy(self, ident, force)
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: we own the context and no object borrows it any more.
        unsafe { ndctl_sys::ndctl_unref(self.ptr()) };
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}
