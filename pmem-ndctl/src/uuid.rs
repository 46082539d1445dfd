//! Random (version 4) UUIDs for namespaces and their personalities, and their text form.

use crate::error::{Error, Result};
use std::io::Read;

/// Sixteen random bytes with the RFC 4122 version-4 and variant bits set.
pub(crate) fn new_v4() -> Result<[u8; 16]> {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| {
            Error::from_errno(
                "/dev/urandom",
                "read",
                e.raw_os_error().unwrap_or(libc::EIO),
            )
        })?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(b)
}

/// The canonical lower-case text form, as `uuid_unparse` prints it.
pub(crate) fn format(b: &[u8; 16]) -> String {
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn v4_layout_and_text() {
        let u = super::new_v4().unwrap();
        assert_eq!(u[6] >> 4, 4);
        assert_eq!(u[8] >> 6, 2);
        let s = super::format(&[0xab; 16]);
        assert_eq!(s, "abababab-abab-abab-abab-abababababab");
    }
}
