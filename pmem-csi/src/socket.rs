//! The driver's unix sockets (CSI, kubelet registration): created private (0600, or 0660 for
//! one group) whatever the umask.
//!
//! Whoever can connect to the CSI socket can create and delete volumes, so it
//! is never, even for an instant, more open than asked: it is bound under
//! a umask that leaves it 0600, then given its group and mode before the
//! first connection is accepted.

use crate::error::{Error, Result};
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Binds a socket at `path` as [`bind`] does, after removing a socket left
/// there by an earlier run (any other kind of file is left, and binding
/// fails) and making its directory.
pub fn listen(path: &Path, group: Option<u32>) -> Result<tokio::net::UnixListener> {
    remove(path);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    bind(path, group)
}

/// Removes the socket at `path`, if there is one; any other kind of file is left.
pub fn remove(path: &Path) {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
}

/// Binds a socket at `path`: mode 0600, or 0660 owned by group `group`.
pub fn bind(path: &Path, group: Option<u32>) -> Result<tokio::net::UnixListener> {
    let err =
        |what: &str, e: std::io::Error| Error::Internal(format!("{what} {}: {e}", path.display()));
    // SAFETY: umask(2) only swaps the process's file creation mask and cannot fail.
    let old = unsafe { libc::umask(0o177) };
    let bound = std::os::unix::net::UnixListener::bind(path);
    // SAFETY: as above; this restores the mask found before.
    unsafe { libc::umask(old) };
    let listener = bound.map_err(|e| err("bind", e))?;
    let mode = match group {
        Some(gid) => {
            std::os::unix::fs::lchown(path, None, Some(gid)).map_err(|e| err("chown", e))?;
            0o660
        }
        None => 0o600,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| err("chmod", e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| err("set_nonblocking", e))?;
    tokio::net::UnixListener::from_std(listener).map_err(|e| err("listen", e))
}

/// The group `spec` names: a numeric GID, or a name in the system's group database.
pub fn group_id(spec: &str) -> Result<u32> {
    if let Ok(gid) = spec.parse::<u32>() {
        return Ok(gid);
    }
    let bad = |why: &str| Error::invalid(format!("--socket-group {spec:?}: {why}"));
    if spec.is_empty() {
        return Err(bad("expected a GID or a group name"));
    }
    let name = CString::new(spec).map_err(|_| bad("contains a NUL byte"))?;
    // SAFETY: `libc::group` is plain data (an integer and pointers); all zeroes is a valid value.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    let mut buf: Vec<libc::c_char> = vec![0; 4096];
    loop {
        // SAFETY: `name` is NUL-terminated; `grp`, `result` and `buf` (passed with its
        // true length) are valid for writes for the whole call and outlive it.
        let rc = unsafe {
            libc::getgrnam_r(
                name.as_ptr(),
                &mut grp,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        match rc {
            libc::ERANGE if buf.len() < 1 << 20 => buf.resize(buf.len() * 2, 0),
            0 if result.is_null() => return Err(bad("no such group")),
            0 => return Ok(grp.gr_gid),
            e => {
                return Err(bad(&format!(
                    "group lookup failed: {}",
                    std::io::Error::from_raw_os_error(e)
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_numbers_or_known_names() {
        assert_eq!(group_id("0").unwrap(), 0);
        assert_eq!(group_id("root").unwrap(), 0);
        assert!(group_id("no-such-group-pmem-csi").is_err());
        assert!(group_id("").is_err());
        assert!(group_id("a\0b").is_err());
    }
}
