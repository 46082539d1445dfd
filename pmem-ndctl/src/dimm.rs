//! NVDIMMs (`nmem0`): identity, health flags, state, and label-area initialisation.

use crate::ctx::Context;
use crate::error::{Error, Result};
use crate::health::{DimmHealth, SmartFields, ThresholdFields};
use crate::iter::{object, string};

object!(
    /// An NVDIMM, e.g. `nmem0`.
    Dimm, Dimms, ndctl_sys::ndctl_dimm
);

/// The flags `ndctl list -D` prints as `flag_*` when set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DimmFlags {
    /// The DIMM's memory could not be mapped (`flag_failed_map`).
    pub failed_map: bool,
    /// The last save to flash failed (`flag_failed_save`).
    pub failed_save: bool,
    /// The DIMM is not armed for the next save (`flag_failed_arm`).
    pub failed_arm: bool,
    /// The last restore failed (`flag_failed_restore`).
    pub failed_restore: bool,
    /// The platform could not flush the DIMM (`flag_failed_flush`).
    pub failed_flush: bool,
    /// A SMART event is pending (`flag_smart_event`).
    pub smart_event: bool,
}

/// A DIMM's security state, as `ndctl list -D` prints it (`security`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Security is supported but no passphrase is set.
    Disabled,
    /// A passphrase is set and the DIMM is unlocked.
    Unlocked,
    /// A passphrase is set and the DIMM is locked.
    Locked,
    /// Security state changes are frozen until the next reboot.
    Frozen,
    /// An overwrite is in progress.
    Overwrite,
}

impl Security {
    /// The name ndctl prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Security::Disabled => "disabled",
            Security::Unlocked => "unlocked",
            Security::Locked => "locked",
            Security::Frozen => "frozen",
            Security::Overwrite => "overwrite",
        }
    }
}

impl<'ctx> Dimm<'ctx> {
    /// The device name, e.g. `nmem0`.
    pub fn name(&self) -> String {
        // SAFETY: the DIMM is alive for 'ctx; the string is owned by libndctl.
        unsafe { string(ndctl_sys::ndctl_dimm_get_devname(self.ptr())) }.unwrap_or_default()
    }

    /// The kernel's id (the `N` of `nmemN`).
    pub fn id(&self) -> u32 {
        // SAFETY: the DIMM is alive for 'ctx.
        unsafe { ndctl_sys::ndctl_dimm_get_id(self.ptr()) }
    }

    /// The unique id (vendor-manufacturing date-serial), when the DIMM reports one.
    pub fn unique_id(&self) -> Option<String> {
        // SAFETY: as above.
        unsafe { string(ndctl_sys::ndctl_dimm_get_unique_id(self.ptr())) }
    }

    /// The NFIT device handle, when known.
    pub fn handle(&self) -> Option<u32> {
        // SAFETY: as above.
        let h = unsafe { ndctl_sys::ndctl_dimm_get_handle(self.ptr()) };
        (h != u32::MAX).then_some(h)
    }

    /// The SMBIOS physical id, when known.
    pub fn phys_id(&self) -> Option<u16> {
        // SAFETY: as above.
        let p = unsafe { ndctl_sys::ndctl_dimm_get_phys_id(self.ptr()) };
        (p != u16::MAX).then_some(p)
    }

    /// Whether the DIMM's driver is bound.
    pub fn is_enabled(&self) -> bool {
        // SAFETY: as above.
        unsafe { ndctl_sys::ndctl_dimm_is_enabled(self.ptr()) == 1 }
    }

    /// Whether a region using this DIMM is enabled (labels are then cached by the kernel).
    pub fn is_active(&self) -> bool {
        // SAFETY: as above.
        unsafe { ndctl_sys::ndctl_dimm_is_active(self.ptr()) == 1 }
    }

    /// The health flags.
    pub fn flags(&self) -> DimmFlags {
        let p = self.ptr();
        // SAFETY: each call only reads the DIMM's cached flags; it is alive for 'ctx.
        unsafe {
            DimmFlags {
                failed_map: ndctl_sys::ndctl_dimm_failed_map(p) != 0,
                failed_save: ndctl_sys::ndctl_dimm_failed_save(p) != 0,
                failed_arm: ndctl_sys::ndctl_dimm_failed_arm(p) != 0,
                failed_restore: ndctl_sys::ndctl_dimm_failed_restore(p) != 0,
                failed_flush: ndctl_sys::ndctl_dimm_failed_flush(p) != 0,
                smart_event: ndctl_sys::ndctl_dimm_smart_pending(p) != 0,
            }
        }
    }

    /// The security state, `None` when the DIMM does not support security.
    pub fn security(&self) -> Option<Security> {
        // SAFETY: the DIMM is alive for 'ctx.
        let s = unsafe { ndctl_sys::ndctl_dimm_get_security(self.ptr()) };
        match s {
            ndctl_sys::NDCTL_SECURITY_DISABLED => Some(Security::Disabled),
            ndctl_sys::NDCTL_SECURITY_UNLOCKED => Some(Security::Unlocked),
            ndctl_sys::NDCTL_SECURITY_LOCKED => Some(Security::Locked),
            ndctl_sys::NDCTL_SECURITY_FROZEN => Some(Security::Frozen),
            ndctl_sys::NDCTL_SECURITY_OVERWRITE => Some(Security::Overwrite),
            _ => None,
        }
    }

    /// Whether security state changes are frozen.
    pub fn security_frozen(&self) -> bool {
        // SAFETY: the DIMM is alive for 'ctx.
        unsafe { ndctl_sys::ndctl_dimm_security_is_frozen(self.ptr()) }
    }
}

/// A libndctl command, released when dropped.
struct Cmd(std::ptr::NonNull<ndctl_sys::ndctl_cmd>);

impl Cmd {
    /// Takes ownership of `raw`, a command a `ndctl_dimm_cmd_new_*` returned (or null).
    fn new(raw: *mut ndctl_sys::ndctl_cmd) -> Option<Self> {
        std::ptr::NonNull::new(raw).map(Cmd)
    }

    /// Submits the command; the negative errno on failure (firmware errors included).
    fn submit(&self) -> std::result::Result<(), i32> {
        // SAFETY: the command is alive (owned by self) and was built for a live DIMM.
        let rc = unsafe { ndctl_sys::ndctl_cmd_submit_xlat(self.0.as_ptr()) };
        if rc < 0 {
            Err(rc)
        } else {
            Ok(())
        }
    }
}

impl Drop for Cmd {
    fn drop(&mut self) {
        // SAFETY: the command is owned by self and released exactly once, here.
        unsafe { ndctl_sys::ndctl_cmd_unref(self.0.as_ptr()) };
    }
}

impl Dimm<'_> {
    /// The DIMM's SMART health, read from the DIMM now (root only: it is an ioctl).
    ///
    /// `Ok(None)` when the DIMM's family offers no SMART command (QEMU's emulated
    /// NVDIMMs, for example); an error when the DIMM refuses or fails the query. Each
    /// field of the answer is `None` when the family does not report it.
    pub fn health(&self) -> Result<Option<DimmHealth>> {
        // SAFETY: the DIMM is alive for 'ctx; the command, if any, is owned by `Cmd`.
        let Some(cmd) = Cmd::new(unsafe { ndctl_sys::ndctl_dimm_cmd_new_smart(self.ptr()) }) else {
            return Ok(None);
        };
        cmd.submit()
            .map_err(|rc| Error::from_errno(self.name(), "read SMART health", rc))?;
        let c = cmd.0.as_ptr();
        // SAFETY: `c` is a SMART command that completed; the getters only read its payload.
        let fields = unsafe {
            SmartFields {
                flags: ndctl_sys::ndctl_cmd_smart_get_flags(c),
                health: ndctl_sys::ndctl_cmd_smart_get_health(c),
                temperature: ndctl_sys::ndctl_cmd_smart_get_temperature(c),
                ctrl_temperature: ndctl_sys::ndctl_cmd_smart_get_ctrl_temperature(c),
                spares: ndctl_sys::ndctl_cmd_smart_get_spares(c),
                alarm_flags: ndctl_sys::ndctl_cmd_smart_get_alarm_flags(c),
                life_used: ndctl_sys::ndctl_cmd_smart_get_life_used(c),
                shutdown_state: ndctl_sys::ndctl_cmd_smart_get_shutdown_state(c),
                shutdown_count: ndctl_sys::ndctl_cmd_smart_get_shutdown_count(c),
            }
        };
        Ok(Some(DimmHealth::decode(fields, self.smart_thresholds())))
    }

    /// The SMART alarm thresholds, `None` when the DIMM does not answer that query.
    fn smart_thresholds(&self) -> Option<ThresholdFields> {
        // SAFETY: the DIMM is alive; the command, if any, is owned by `Cmd`.
        let cmd = Cmd::new(unsafe { ndctl_sys::ndctl_dimm_cmd_new_smart_threshold(self.ptr()) })?;
        cmd.submit().ok()?;
        let c = cmd.0.as_ptr();
        // SAFETY: `c` is a threshold command that completed; the getters only read it.
        Some(unsafe {
            ThresholdFields {
                alarm_control: ndctl_sys::ndctl_cmd_smart_threshold_get_alarm_control(c),
                temperature: ndctl_sys::ndctl_cmd_smart_threshold_get_temperature(c),
                ctrl_temperature: ndctl_sys::ndctl_cmd_smart_threshold_get_ctrl_temperature(c),
                spares: ndctl_sys::ndctl_cmd_smart_threshold_get_spares(c),
            }
        })
    }
}

/// Writes an empty v1.1 label index to DIMM `ident` (see [`Context::init_labels`]).
pub(crate) fn init_labels(ctx: &mut Context, ident: &str, force: bool) -> Result<()> {
    let dimm = ctx.dimm(ident)?;
    let name = dimm.name();
    let p = dimm.ptr();
    // SAFETY: the DIMM is alive; the returned command is released below.
    let cmd = unsafe { ndctl_sys::ndctl_dimm_read_label_index(p) };
    if cmd.is_null() {
        return Err(Error::from_errno(
            &name,
            "read the label index",
            libc::ENXIO,
        ));
    }
    let result = (|| {
        if dimm.is_active() {
            return Err(Error::Busy {
                object: name.clone(),
                reason: "a region using it is enabled; disable the region first".into(),
            });
        }
        // SAFETY: the DIMM is alive and its label index was just read into `cmd`.
        let valid = unsafe { ndctl_sys::ndctl_dimm_validate_labels(p) };
        if valid >= 0 && !force {
            return Err(Error::Busy {
                object: name.clone(),
                reason: "labels already initialized (use force to overwrite them)".into(),
            });
        }
        // SAFETY: as above; we hold &mut Context so nothing else touches the DIMM.
        let rc = unsafe { ndctl_sys::ndctl_dimm_init_labels(p, ndctl_sys::NDCTL_NS_VERSION_1_1) };
        if rc < 0 {
            return Err(Error::from_errno(&name, "initialize labels", rc));
        }
        if dimm.is_enabled() {
            // The kernel caches the label area: rebind the DIMM so it rereads it.
            // SAFETY: disabling/enabling a DIMM frees no libndctl object.
            let rc = unsafe { ndctl_sys::ndctl_dimm_disable(p) };
            if rc < 0 {
                return Err(Error::from_errno(&name, "disable", rc));
            }
            // SAFETY: as above.
            let rc = unsafe { ndctl_sys::ndctl_dimm_enable(p) };
            if rc < 0 {
                return Err(Error::from_errno(&name, "enable", rc));
            }
        }
        Ok(())
    })();
    // SAFETY: `cmd` came from ndctl_dimm_read_label_index and is released once.
    unsafe { ndctl_sys::ndctl_cmd_unref(cmd) };
    result
}
