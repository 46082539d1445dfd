//! Namespaces (`namespace0.1`): what ndctl lists about them, and the create and destroy sequences.

use crate::ctx::Context;
use crate::error::{Error, Result};
use crate::health::{clip_to_device, BadBlock};
use crate::iter::{object, string};
use crate::personality::{check, Btt, Dax, Pfn};
use crate::size::Size;
use crate::types::{MapLocation, Mode};
use crate::validate::{self, Plan, RegionRules, Request};
use std::ptr::NonNull;

object!(
    /// A namespace: a contiguous extent of a region with a personality.
    Namespace, Namespaces, ndctl_sys::ndctl_namespace
);

/// Everything `ndctl list -N -v` prints about a namespace, read at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NamespaceInfo {
    /// Device name, e.g. `namespace0.1`.
    pub dev: String,
    /// The region it belongs to, e.g. `region0`.
    pub region: String,
    /// The personality.
    pub mode: Mode,
    /// Where the page map lives (fsdax and devdax only).
    pub map: Option<MapLocation>,
    /// Usable size, bytes: the personality's size (fsdax, devdax, sector) or the raw size.
    pub size: u64,
    /// Raw capacity taken from the region, bytes.
    pub raw_size: u64,
    /// Physical start address, when readable (root only).
    pub resource: Option<u64>,
    /// The uuid ndctl prints (the personality's, or the namespace's for raw).
    pub uuid: Option<String>,
    /// The namespace's own uuid when a personality has another one.
    pub raw_uuid: Option<String>,
    /// Logical sector size (not for devdax).
    pub sector_size: Option<u32>,
    /// Mapping alignment (fsdax and devdax).
    pub align: Option<u64>,
    /// Block device, e.g. `pmem0.1` or `pmem0.1s`.
    pub blockdev: Option<String>,
    /// Character device for devdax, e.g. `dax0.1`.
    pub chardev: Option<String>,
    /// The name given at creation.
    pub name: Option<String>,
    /// NUMA node.
    pub numa_node: Option<u32>,
    /// Target NUMA node.
    pub target_node: Option<u32>,
    /// Whether the namespace (or its personality) is active.
    pub active: bool,
    /// Whether this is an idle seed or otherwise unconfigured (size 0) namespace.
    pub idle: bool,
}

/// A request for a new namespace; see [`Context::create_namespace`].
///
/// Made with [`NamespaceSpec::new`] or [`NamespaceSpec::filling`] and the
/// builder methods; the fields stay readable and writable, and new optional
/// fields may be added (`#[non_exhaustive]`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NamespaceSpec {
    /// The region to carve it from (`region0` or `0`).
    pub region: String,
    /// The personality.
    pub mode: Mode,
    /// Raw capacity to take from the region; `None` takes the largest free extent.
    pub size: Option<Size>,
    /// A name (up to [`MAX_NAME_LEN`](crate::rules::MAX_NAME_LEN) bytes).
    pub name: Option<String>,
    /// Mapping alignment (fsdax and devdax; default 2 MiB).
    pub align: Option<Size>,
    /// Page-map location (fsdax and devdax; default `dev`).
    pub map: Option<MapLocation>,
    /// Sector size (default: 4096 for sector, the kernel's otherwise).
    pub sector_size: Option<u32>,
    /// Fault injection (feature `fault-injection`, for tests of the rollback):
    /// fail the create sequence after this many of its steps.
    #[cfg(feature = "fault-injection")]
    pub fail_after_step: Option<u32>,
}

impl NamespaceSpec {
    /// A request for `size` bytes of raw capacity from `region` in `mode`.
    pub fn new(region: impl Into<String>, mode: Mode, size: Size) -> Self {
        NamespaceSpec {
            size: Some(size),
            ..NamespaceSpec::filling(region, mode)
        }
    }

    /// A request for the largest free extent of `region` in `mode`.
    pub fn filling(region: impl Into<String>, mode: Mode) -> Self {
        NamespaceSpec {
            region: region.into(),
            mode,
            size: None,
            name: None,
            align: None,
            map: None,
            sector_size: None,
            #[cfg(feature = "fault-injection")]
            fail_after_step: None,
        }
    }

    /// Sets the name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the mapping alignment (fsdax and devdax).
    pub fn align(mut self, align: Size) -> Self {
        self.align = Some(align);
        self
    }

    /// Sets where the page map lives (fsdax and devdax).
    pub fn map(mut self, map: MapLocation) -> Self {
        self.map = Some(map);
        self
    }

    /// Sets the sector size.
    pub fn sector_size(mut self, bytes: u32) -> Self {
        self.sector_size = Some(bytes);
        self
    }

    /// Fault injection: the create sequence fails after `steps` of its steps,
    /// so a test can prove every partial state is rolled back.
    #[cfg(feature = "fault-injection")]
    pub fn fail_after_step(mut self, steps: u32) -> Self {
        self.fail_after_step = Some(steps);
        self
    }

    /// Whether the create sequence is to fail at step `step` (1-based).
    fn fails_at(&self, step: u32) -> bool {
        #[cfg(feature = "fault-injection")]
        {
            self.fail_after_step.is_some_and(|f| step > f)
        }
        #[cfg(not(feature = "fault-injection"))]
        {
            let _ = step;
            false
        }
    }
}

/// The refusal to set up a namespace in a mode this crate does not know.
fn unknown_mode(object: &str, mode: Mode) -> Error {
    Error::invalid(object, format!("cannot create a namespace of mode {mode}"))
}

fn uuid_of(get: impl FnOnce(*mut u8)) -> Option<String> {
    let mut u = [0u8; 16];
    get(u.as_mut_ptr());
    (u != [0u8; 16]).then(|| crate::uuid::format(&u))
}

impl<'ctx> Namespace<'ctx> {
    /// The device name, e.g. `namespace0.1`.
    pub fn name(&self) -> String {
        // SAFETY: the namespace is alive for 'ctx; libndctl owns the string.
        unsafe { string(ndctl_sys::ndctl_namespace_get_devname(self.ptr())) }.unwrap_or_default()
    }

    /// The kernel's id within its region (the `M` of `namespaceN.M`).
    pub fn id(&self) -> u32 {
        // SAFETY: the namespace is alive for 'ctx.
        unsafe { ndctl_sys::ndctl_namespace_get_id(self.ptr()) }
    }

    /// Raw capacity, bytes (0 for an idle seed).
    pub fn size(&self) -> u64 {
        // SAFETY: as above.
        unsafe { ndctl_sys::ndctl_namespace_get_size(self.ptr()) }
    }

    /// The personality. A mode this crate does not know (libndctl's
    /// `NDCTL_NS_MODE_UNKNOWN`, or a newer one) is [`Mode::Unknown`]; a negative
    /// value (an errno from libndctl) is an error.
    pub fn mode(&self) -> Result<Mode> {
        // SAFETY: as above.
        let m = unsafe { ndctl_sys::ndctl_namespace_get_mode(self.ptr()) };
        match m {
            ndctl_sys::NDCTL_NS_MODE_FSDAX => Ok(Mode::Fsdax),
            ndctl_sys::NDCTL_NS_MODE_DEVDAX => Ok(Mode::Devdax),
            ndctl_sys::NDCTL_NS_MODE_SECTOR => Ok(Mode::Sector),
            ndctl_sys::NDCTL_NS_MODE_RAW => Ok(Mode::Raw),
            other if (other as i32) < 0 => Err(Error::Io {
                object: self.name(),
                op: "ndctl_namespace_get_mode".into(),
                errno: -(other as i32),
            }),
            other => Ok(Mode::Unknown(other)),
        }
    }

    /// Whether the namespace or its personality is enabled.
    pub fn is_active(&self) -> bool {
        // SAFETY: as above.
        unsafe { ndctl_sys::ndctl_namespace_is_active(self.ptr()) }
    }

    /// Whether it is an unconfigured seed (free to be set up).
    pub fn is_idle(&self) -> bool {
        // SAFETY: as above.
        unsafe { ndctl_sys::ndctl_namespace_is_configuration_idle(self.ptr()) == 1 }
    }

    /// Whether this is a label-less ("io") namespace.
    pub fn is_label_less(&self) -> bool {
        // SAFETY: as above.
        unsafe {
            ndctl_sys::ndctl_namespace_get_type(self.ptr()) == ndctl_sys::ND_DEVICE_NAMESPACE_IO
        }
    }

    /// Physical start address, when readable (root only).
    pub fn resource(&self) -> Option<u64> {
        // SAFETY: as above.
        let r = unsafe { ndctl_sys::ndctl_namespace_get_resource(self.ptr()) };
        (r != u64::MAX).then_some(r)
    }

    /// The alternative name given at creation.
    pub fn alt_name(&self) -> Option<String> {
        // SAFETY: as above.
        unsafe { string(ndctl_sys::ndctl_namespace_get_alt_name(self.ptr())) }
            .filter(|s| !s.is_empty())
    }

    /// The fsdax personality, when the namespace has one.
    pub fn pfn(&self) -> Option<Pfn<'ctx>> {
        // SAFETY: the namespace is alive; its personality, if any, too.
        NonNull::new(unsafe { ndctl_sys::ndctl_namespace_get_pfn(self.ptr()) }).map(Pfn::from_raw)
    }

    /// The devdax personality, when the namespace has one.
    pub fn dax(&self) -> Option<Dax<'ctx>> {
        // SAFETY: as above.
        NonNull::new(unsafe { ndctl_sys::ndctl_namespace_get_dax(self.ptr()) }).map(Dax::from_raw)
    }

    /// The sector personality, when the namespace has one.
    pub fn btt(&self) -> Option<Btt<'ctx>> {
        // SAFETY: as above.
        NonNull::new(unsafe { ndctl_sys::ndctl_namespace_get_btt(self.ptr()) }).map(Btt::from_raw)
    }

    fn own_block_device(&self) -> Option<String> {
        // SAFETY: the namespace is alive; libndctl owns the string.
        unsafe { string(ndctl_sys::ndctl_namespace_get_block_device(self.ptr())) }
            .filter(|s| !s.is_empty())
    }

    fn sector_sizes(&self) -> Vec<u32> {
        // SAFETY: the namespace is alive; indices are below the reported count.
        unsafe {
            let n = ndctl_sys::ndctl_namespace_get_num_sector_sizes(self.ptr());
            (0..n)
                .map(|i| ndctl_sys::ndctl_namespace_get_supported_sector_size(self.ptr(), i))
                .collect()
        }
    }

    /// Reads everything `ndctl list` reports, with the same meaning.
    pub fn info(&self) -> Result<NamespaceInfo> {
        let p = self.ptr();
        let mode = self.mode()?;
        let (btt, pfn, dax) = (self.btt(), self.pfn(), self.dax());
        let raw_uuid = uuid_of(|u| {
            // SAFETY: the namespace is alive; `u` points to the 16 bytes libndctl writes.
            unsafe { ndctl_sys::ndctl_namespace_get_uuid(p, u) }
        });
        let mut info = NamespaceInfo {
            dev: self.name(),
            // SAFETY: the namespace's region is alive with it.
            region: unsafe {
                string(ndctl_sys::ndctl_region_get_devname(
                    ndctl_sys::ndctl_namespace_get_region(p),
                ))
            }
            .unwrap_or_default(),
            mode,
            map: None,
            size: self.size(),
            raw_size: self.size(),
            resource: self.resource(),
            uuid: None,
            raw_uuid: None,
            sector_size: None,
            align: None,
            blockdev: None,
            chardev: None,
            name: self.alt_name(),
            // SAFETY: as above.
            numa_node: u32::try_from(unsafe { ndctl_sys::ndctl_namespace_get_numa_node(p) }).ok(),
            // SAFETY: as above.
            target_node: u32::try_from(unsafe { ndctl_sys::ndctl_namespace_get_target_node(p) })
                .ok(),
            active: self.is_active(),
            idle: self.is_idle(),
        };
        match (mode, &pfn, &dax, &btt) {
            (Mode::Fsdax, Some(pfn), _, _) => {
                info.size = pfn.size();
                info.map = pfn.location();
            }
            (Mode::Fsdax, None, _, _) => info.map = Some(MapLocation::Mem),
            (Mode::Devdax, _, Some(dax), _) => {
                info.size = dax.size();
                info.map = dax.location();
            }
            (Mode::Sector, _, _, Some(btt)) => info.size = btt.size(),
            (Mode::Devdax, _, None, _) | (Mode::Sector, _, _, None) => {
                return Err(Error::invalid(
                    &info.dev,
                    format!("{mode} namespace without its personality device"),
                ));
            }
            _ => {}
        }
        if let Some(btt) = &btt {
            info.uuid = Some(crate::uuid::format(&btt.uuid()));
            info.raw_uuid = raw_uuid;
            info.blockdev = btt.block_device();
            info.sector_size = Some(btt.sector_size());
        } else if let Some(pfn) = &pfn {
            info.uuid = Some(crate::uuid::format(&pfn.uuid()));
            info.raw_uuid = raw_uuid;
            info.align = Some(pfn.align()).filter(|a| *a != 0);
            info.blockdev = pfn.block_device();
        } else if let Some(dax) = &dax {
            info.uuid = Some(crate::uuid::format(&dax.uuid()));
            info.raw_uuid = raw_uuid;
            info.align = Some(dax.align()).filter(|a| *a != 0);
            info.chardev = dax.char_device();
        } else {
            if !self.is_label_less() {
                let mut u = [0u8; 16];
                // SAFETY: `u` is the 16-byte uuid_t libndctl writes.
                unsafe { ndctl_sys::ndctl_namespace_get_uuid(p, u.as_mut_ptr()) };
                info.uuid = Some(crate::uuid::format(&u));
            }
            info.blockdev = self.own_block_device();
        }
        if btt.is_none() && dax.is_none() {
            // SAFETY: the namespace is alive.
            let s = unsafe { ndctl_sys::ndctl_namespace_get_sector_size(p) };
            info.sector_size = Some(if s == 0 || s == u32::MAX { 512 } else { s });
        }
        Ok(info)
    }

    /// Why the namespace cannot be disabled right now, or `None` if it can:
    /// its block device is mounted or held (by device-mapper, for example), or
    /// its device-dax character device is open or mapped by a process.
    pub fn busy_reason(&self) -> Option<String> {
        let blockdev = self
            .btt()
            .and_then(|b| b.block_device())
            .or_else(|| self.pfn().and_then(|p| p.block_device()))
            .or_else(|| self.own_block_device());
        if let Some(bdev) = blockdev.filter(|_| self.is_active()) {
            return crate::busy::block_device(&bdev);
        }
        if let Some(cdev) = self.dax().and_then(|d| d.char_device()) {
            return crate::busy::char_device(&cdev);
        }
        None
    }

    /// The region the namespace belongs to.
    pub fn region(&self) -> crate::Region<'ctx> {
        // SAFETY: the namespace is alive for 'ctx and so is its region, never null.
        let r = unsafe { ndctl_sys::ndctl_namespace_get_region(self.ptr()) };
        crate::Region::from_raw(NonNull::new(r).expect("a namespace always has a region"))
    }

    /// The bad blocks (known media errors) of what the namespace exposes, in 512-byte
    /// sectors, as ndctl places them: for fsdax and devdax, relative to the data of the
    /// block or character device (the region's bad blocks that fall into it); for sector
    /// mode, relative to the namespace's raw extent; for raw mode, the block device's
    /// own `badblocks` list. Empty when none are known, and for fsdax/devdax/sector when
    /// the physical addresses are unreadable (not root).
    pub fn badblocks(&self) -> Vec<BadBlock> {
        let region = self.region();
        let in_region = |start: Option<u64>, size: u64| match (region.resource(), start) {
            (Some(r), Some(s)) => clip_to_device(&region.badblocks(), r, s, size),
            _ => Vec::new(),
        };
        if let Some(pfn) = self.pfn() {
            match pfn.resource() {
                Some(start) => in_region(Some(start), pfn.size()),
                None => self.block_device_badblocks(),
            }
        } else if let Some(dax) = self.dax() {
            in_region(dax.resource(), dax.size())
        } else if self.btt().is_some() {
            in_region(self.resource(), self.size())
        } else {
            self.block_device_badblocks()
        }
    }

    /// The kernel's bad-block list of the namespace's block device (raw and fsdax;
    /// empty for devdax and sector mode), in 512-byte sectors from the device's start:
    /// what I/O on it fails on now. The kernel fills it from the region's bad blocks when
    /// the device is enabled, adds what fails later, and drops what is rewritten.
    pub fn block_device_badblocks(&self) -> Vec<BadBlock> {
        let mut out = Vec::new();
        // SAFETY: the namespace is alive for 'ctx. libndctl keeps one read position per
        // namespace; this loop runs it from first to last and calls nothing else meanwhile
        // (the context is !Sync).
        let mut bb = unsafe { ndctl_sys::ndctl_namespace_get_first_badblock(self.ptr()) };
        while !bb.is_null() {
            // SAFETY: a non-null badblock points into the namespace's iterator state,
            // valid until the next call.
            let b = unsafe { *bb };
            out.push(BadBlock::new(b.offset, b.len));
            // SAFETY: as above.
            bb = unsafe { ndctl_sys::ndctl_namespace_get_next_badblock(self.ptr()) };
        }
        out
    }

    /// Sets up this idle seed as `plan` says (uuid, name, size, sector size,
    /// mode, personality, enable), counting steps for the test hook.
    fn setup(&self, region: &crate::Region<'ctx>, spec: &NamespaceSpec, plan: &Plan) -> Result<()> {
        let n = self.name();
        let p = self.ptr();
        let mut step = 0u32;
        let mut next = |what: &str| -> Result<()> {
            step += 1;
            if spec.fails_at(step) {
                return Err(Error::Io {
                    object: n.clone(),
                    op: format!("{what} (injected failure)"),
                    errno: libc::EIO,
                });
            }
            Ok(())
        };
        let mut uuid = crate::uuid::new_v4()?;
        next("set uuid")?;
        // SAFETY: the seed is alive and idle; the setter copies the 16 bytes.
        check(&n, "set uuid", unsafe {
            ndctl_sys::ndctl_namespace_set_uuid(p, uuid.as_mut_ptr())
        })?;
        if let Some(name) = &spec.name {
            next("set name")?;
            let c = std::ffi::CString::new(name.as_str())
                .map_err(|_| Error::invalid(&spec.region, "namespace name contains a NUL byte"))?;
            // SAFETY: `c` is a NUL-terminated string alive across the call.
            check(&n, "set name", unsafe {
                ndctl_sys::ndctl_namespace_set_alt_name(p, c.as_ptr())
            })?;
        }
        next("set size")?;
        // SAFETY: the seed is alive; the kernel allocates the extent.
        let rc = unsafe { ndctl_sys::ndctl_namespace_set_size(p, plan.size) };
        if rc == -libc::ENOSPC {
            return Err(Error::NoSpace {
                object: region.name(),
                requested: Size(plan.size),
                largest: Size(region.max_available_extent().unwrap_or(0)),
            });
        }
        check(&n, "set size", rc)?;
        if let Some(s) = plan.sector_size {
            if self.sector_sizes().contains(&s) {
                next("set sector size")?;
                // SAFETY: the namespace is alive; the size is one it lists.
                check(&n, "set sector size", unsafe {
                    ndctl_sys::ndctl_namespace_set_sector_size(p, s)
                })?;
            } else if spec.mode != Mode::Sector && s != 512 {
                return Err(Error::invalid(
                    &n,
                    format!("sector size {s} is not supported"),
                ));
            }
        }
        next("set mode")?;
        let raw_mode = match spec.mode {
            Mode::Fsdax => ndctl_sys::NDCTL_NS_MODE_FSDAX,
            Mode::Devdax => ndctl_sys::NDCTL_NS_MODE_DEVDAX,
            Mode::Sector => ndctl_sys::NDCTL_NS_MODE_SECTOR,
            Mode::Raw => ndctl_sys::NDCTL_NS_MODE_RAW,
            Mode::Unknown(_) => return Err(unknown_mode(&n, spec.mode)),
        };
        // SAFETY: the namespace is alive. Older kernels lack the attribute,
        // as ndctl notes, so the result is advisory.
        unsafe { ndctl_sys::ndctl_namespace_set_enforce_mode(p, raw_mode) };
        next("enable")?;
        self.attach(
            region,
            spec.mode,
            plan.map.unwrap_or(MapLocation::Dev),
            plan.align,
            plan.sector_size,
        )
    }

    /// Gives this configured, disabled namespace its personality (a pfn,
    /// dax or btt seed of `region`) and enables it; raw mode enables the
    /// namespace itself.
    pub(crate) fn attach(
        &self,
        region: &crate::Region<'ctx>,
        mode: Mode,
        map: MapLocation,
        align: u64,
        sector_size: Option<u32>,
    ) -> Result<()> {
        let n = self.name();
        let p = self.ptr();
        let personality_uuid = crate::uuid::new_v4()?;
        match mode {
            Mode::Fsdax => seed(region.name(), "pfn", || {
                // SAFETY: the region is alive; its pfn seed is on its pfn list.
                NonNull::new(unsafe { ndctl_sys::ndctl_region_get_pfn_seed(region.ptr()) })
                    .map(Pfn::from_raw)
            })?
            .setup(self, &personality_uuid, map, align),
            Mode::Devdax => seed(region.name(), "dax", || {
                // SAFETY: as above, for the dax seed.
                NonNull::new(unsafe { ndctl_sys::ndctl_region_get_dax_seed(region.ptr()) })
                    .map(Dax::from_raw)
            })?
            .setup(self, &personality_uuid, map, align),
            Mode::Sector => seed(region.name(), "btt", || {
                // SAFETY: as above, for the btt seed.
                NonNull::new(unsafe { ndctl_sys::ndctl_region_get_btt_seed(region.ptr()) })
                    .map(Btt::from_raw)
            })?
            .setup(self, &personality_uuid, sector_size.unwrap_or(4096)),
            // SAFETY: the namespace is alive and configured.
            Mode::Raw => check(&n, "enable", unsafe {
                ndctl_sys::ndctl_namespace_enable(p)
            }),
            Mode::Unknown(_) => Err(unknown_mode(&n, mode)),
        }
    }
}

fn seed<T>(region: String, kind: &str, get: impl FnOnce() -> Option<T>) -> Result<T> {
    get().ok_or_else(|| Error::Io {
        object: region,
        op: format!("find the {kind} seed (is the kernel module loaded?)"),
        errno: libc::ENXIO,
    })
}

/// Reads what validation needs from a live region.
pub(crate) fn rules(region: &crate::Region<'_>) -> RegionRules {
    // SAFETY: the region is alive; seeds are on its lists.
    let pfn = NonNull::new(unsafe { ndctl_sys::ndctl_region_get_pfn_seed(region.ptr()) })
        .map(Pfn::from_raw);
    // SAFETY: as above.
    let dax = NonNull::new(unsafe { ndctl_sys::ndctl_region_get_dax_seed(region.ptr()) })
        .map(Dax::from_raw);
    // SAFETY: as above.
    let btt = NonNull::new(unsafe { ndctl_sys::ndctl_region_get_btt_seed(region.ptr()) })
        .map(Btt::from_raw);
    let mut aligns = pfn.map(|p| p.supported_alignments()).unwrap_or_default();
    aligns.extend(dax.map(|d| d.supported_alignments()).unwrap_or_default());
    aligns.sort_unstable();
    aligns.dedup();
    let default_align = pfn
        .map(|p| p.align())
        .filter(|a| *a != 0)
        .unwrap_or(2 << 20);
    // SAFETY: sysconf has no preconditions.
    let page_size = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    RegionRules {
        region: region.name(),
        enabled: region.is_enabled(),
        read_only: region.is_read_only(),
        labelled: region.is_labelled(),
        region_align: region.align().unwrap_or(0),
        ways: u64::from(region.interleave_ways()),
        max_extent: region
            .max_available_extent()
            .unwrap_or_else(|| region.available_size()),
        default_align,
        supported_aligns: aligns,
        btt_sector_sizes: btt.map(|b| b.supported_sector_sizes()).unwrap_or_default(),
        ns_sector_sizes: region
            .namespace_seed()
            .map(|s| s.sector_sizes())
            .unwrap_or_default(),
        page_size,
    }
}

/// The create sequence (see [`Context::create_namespace`]).
pub(crate) fn create(ctx: &mut Context, spec: &NamespaceSpec) -> Result<NamespaceInfo> {
    let region = ctx.region(&spec.region)?;
    let plan = validate::validate(
        &rules(&region),
        &Request {
            mode: spec.mode,
            size: spec.size.map(|s| s.0),
            name: spec.name.as_deref(),
            align: spec.align.map(|s| s.0),
            map: spec.map,
            sector_size: spec.sector_size,
        },
    )?;
    // Like ndctl: prefer namespaceN.0 when idle, else the region's seed.
    let ns = region
        .namespaces()
        .find(|n| n.id() == 0 && n.is_idle())
        .or_else(|| region.namespace_seed())
        .filter(|n| n.is_idle())
        .ok_or_else(|| Error::Busy {
            object: region.name(),
            reason: "no idle namespace seed to configure".into(),
        })?;
    let dev = ns.name();
    if let Err(e) = ns.setup(&region, spec, &plan) {
        rollback(&ns);
        return Err(e);
    }
    ctx.namespace(&dev)?.info()
}

/// Detaches any personality a failed setup left on `ns` and enforces raw mode.
pub(crate) fn detach_personalities(ns: &Namespace<'_>) {
    // SAFETY: the namespace is alive and the caller holds &mut Context;
    // detaching a personality that is not attached is a no-op.
    unsafe {
        if let Some(pfn) = ns.pfn() {
            ndctl_sys::ndctl_pfn_set_namespace(pfn.ptr(), std::ptr::null_mut());
        }
        if let Some(dax) = ns.dax() {
            ndctl_sys::ndctl_dax_set_namespace(dax.ptr(), std::ptr::null_mut());
        }
        if let Some(btt) = ns.btt() {
            ndctl_sys::ndctl_btt_set_namespace(btt.ptr(), std::ptr::null_mut());
        }
        ndctl_sys::ndctl_namespace_disable(ns.ptr());
        ndctl_sys::ndctl_namespace_set_enforce_mode(ns.ptr(), ndctl_sys::NDCTL_NS_MODE_RAW);
    }
}

/// Undoes a partial create: detach any personality, back to raw, release the extent.
fn rollback(ns: &Namespace<'_>) {
    detach_personalities(ns);
    // SAFETY: the namespace is alive and disabled; create holds &mut Context,
    // and after the delete (which frees it) nothing touches `ns` again.
    unsafe { ndctl_sys::ndctl_namespace_delete(ns.ptr()) };
}

/// The destroy sequence (see [`Context::destroy_namespace`]).
pub(crate) fn destroy(ctx: &mut Context, ident: &str, force: bool) -> Result<()> {
    let ns = ctx.namespace(ident)?;
    let name = ns.name();
    if let Some(reason) = ns.busy_reason() {
        return Err(Error::Busy {
            object: name,
            reason,
        });
    }
    if ns.is_active() && !force {
        return Err(Error::Busy {
            object: name,
            reason: "namespace is active (destroy it with force)".into(),
        });
    }
    let p = ns.ptr();
    // SAFETY: we hold &mut Context: the personality objects this frees have
    // no other wrapper. disable_safe opens the block device O_EXCL first and
    // refuses with -EBUSY when it is in use.
    let rc = unsafe { ndctl_sys::ndctl_namespace_disable_safe(p) };
    if rc == -libc::EBUSY {
        return Err(Error::Busy {
            object: name,
            reason: "the device is in use".into(),
        });
    }
    check(&name, "disable", rc)?;
    // SAFETY: the namespace is alive and disabled.
    unsafe { ndctl_sys::ndctl_namespace_set_enforce_mode(p, ndctl_sys::NDCTL_NS_MODE_RAW) };
    zero_info_block(&ns)?;
    if !ns.is_label_less() {
        // SAFETY: the namespace is disabled; delete frees it and `ns` is not used after.
        check(&name, "delete", unsafe {
            ndctl_sys::ndctl_namespace_delete(p)
        })?;
    }
    Ok(())
}

/// Clears the first 8 KiB (where a personality's info block lives) so that a
/// later namespace over the same capacity starts clean, as ndctl does.
fn zero_info_block(ns: &Namespace<'_>) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let p = ns.ptr();
    let name = ns.name();
    if ns.size() == 0 {
        return Ok(());
    }
    // SAFETY: the namespace is alive and disabled; raw mode only changes how it binds.
    unsafe { ndctl_sys::ndctl_namespace_set_raw_mode(p, 1) };
    // SAFETY: as above.
    let rc = unsafe { ndctl_sys::ndctl_namespace_enable(p) };
    let result = (|| {
        check(&name, "enable in raw mode to clear the info block", rc)?;
        let bdev = ns.own_block_device().ok_or_else(|| Error::NotFound {
            object: format!("{name} block device"),
        })?;
        let path = format!("/dev/{bdev}");
        let io = |e: std::io::Error| {
            Error::from_errno(
                &path,
                "clear the info block",
                e.raw_os_error().unwrap_or(libc::EIO),
            )
        };
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_EXCL)
            .open(&path)
            .map_err(io)?;
        let mut cur = vec![0u8; 8192];
        f.read_exact(&mut cur).map_err(io)?;
        if cur.iter().any(|b| *b != 0) {
            f.seek(SeekFrom::Start(0)).map_err(io)?;
            f.write_all(&[0u8; 8192]).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        Ok(())
    })();
    // SAFETY: the namespace is alive; back to normal mode, then disabled
    // (invalidate frees no wrapper we still use: we hold &mut Context).
    unsafe {
        ndctl_sys::ndctl_namespace_set_raw_mode(p, 0);
        ndctl_sys::ndctl_namespace_disable_invalidate(p);
    }
    result
}
