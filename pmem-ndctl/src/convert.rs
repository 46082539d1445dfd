//! Label-less namespaces: the one fixed namespace of a region without labels, given a
//! personality in place (what `ndctl create-namespace -f -e namespace0.0 -m fsdax` does).
//!
//! Such a region cannot be subdivided, so conversion is the only way to get an fsdax
//! (or devdax, or sector) device out of it. It overwrites the namespace's start, so
//! it is refused while the namespace is in use, and — unless forced — when it is in
//! another mode already or holds a recognised signature ([`crate::signature`]).

use crate::error::{Error, Result};
use crate::namespace::{destroy, rules, NamespaceInfo};
use crate::{Context, MapLocation, Mode};
use std::path::Path;

/// See [`Context::convert_label_less`].
pub(crate) fn convert(
    ctx: &mut Context,
    ident: &str,
    mode: Mode,
    force: bool,
) -> Result<NamespaceInfo> {
    if let Mode::Unknown(_) = mode {
        return Err(Error::invalid(
            ident,
            format!("cannot convert to mode {mode}"),
        ));
    }
    let (name, current, blockdev) = {
        let ns = ctx.namespace(ident)?;
        if !ns.is_label_less() {
            return Err(Error::invalid(
                ns.name(),
                "the namespace has labels: create and destroy namespaces in its region instead",
            ));
        }
        if !ns.is_active() {
            // A disabled namespace (as destroy leaves a label-less one):
            // enabled first, which changes nothing it holds, so that its
            // mode and device can be read and it is usable as it was.
            // SAFETY: the namespace is alive and idle.
            let rc = unsafe { ndctl_sys::ndctl_namespace_enable(ns.ptr()) };
            crate::personality::check(&ns.name(), "enable", rc)?;
            if !ctx.namespace(ident)?.is_active() {
                return Err(Error::Busy {
                    object: ns.name(),
                    reason: "it stays disabled after enabling it".into(),
                });
            }
            return convert(ctx, ident, mode, force);
        }
        let current = ns.mode()?;
        if current == mode {
            return ns.info();
        }
        if let Some(reason) = ns.busy_reason() {
            return Err(Error::Busy {
                object: ns.name(),
                reason,
            });
        }
        (ns.name(), current, ns.info()?.blockdev)
    };
    if !force {
        if current != Mode::Raw {
            return Err(Error::Busy {
                object: name,
                reason: format!(
                    "it is in {current} mode already: converting it to {mode} would lose what it holds (convert with force)"
                ),
            });
        }
        let dev = blockdev.ok_or_else(|| Error::NotFound {
            object: format!("{name} block device"),
        })?;
        if let Some(sig) = crate::signature::probe(Path::new(&format!("/dev/{dev}")))? {
            return Err(Error::Busy {
                object: name,
                reason: format!(
                    "/dev/{dev} holds someone's data ({sig} signature): not overwriting it (wipe it first, or convert with force)"
                ),
            });
        }
    }
    // Back to a disabled raw namespace with its info block cleared (a
    // label-less namespace is never deleted: this is all destroy does to it).
    destroy(ctx, &name, true)?;
    let ns = ctx.namespace(&name)?;
    let region = ctx.region(&ns.info()?.region)?;
    let align = rules(&region).default_align;
    let p = ns.ptr();
    let raw_mode = match mode {
        Mode::Fsdax => ndctl_sys::NDCTL_NS_MODE_FSDAX,
        Mode::Devdax => ndctl_sys::NDCTL_NS_MODE_DEVDAX,
        Mode::Sector => ndctl_sys::NDCTL_NS_MODE_SECTOR,
        _ => ndctl_sys::NDCTL_NS_MODE_RAW,
    };
    // SAFETY: the namespace is alive and disabled; as in create, the result is advisory.
    unsafe { ndctl_sys::ndctl_namespace_set_enforce_mode(p, raw_mode) };
    if let Err(e) = ns.attach(&region, mode, MapLocation::Dev, align, None) {
        // Leave it as it was found usable: raw and enabled.
        crate::namespace::detach_personalities(&ns);
        // SAFETY: the namespace is alive, disabled and raw.
        unsafe { ndctl_sys::ndctl_namespace_enable(p) };
        return Err(e);
    }
    ctx.namespace(&name)?.info()
}
