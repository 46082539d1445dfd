//! Validated names: VG and LV names as LVM accepts them, user volume names, and the mapping between them.
//!
//! A user volume name (what a CSI `CreateVolume` carries: up to 128 bytes
//! of any characters) becomes an LV name deterministically:
//! `vol-<readable part>-<16 hex digits of a hash of the whole name>`, and
//! is kept whole in an LV tag (`pmem-rs-volume=<escaped name>`), so that
//! listings show the user's names.

use crate::error::{Error, Result};
use std::fmt;

/// Tag on every VG and PV this crate created.
pub const OWNER_TAG: &str = "pmem-rs";
/// Name of every namespace this crate created to hold a PV.
pub const NAMESPACE_NAME: &str = "pmem-rs-lvm";
/// Prefix of the LV tag that keeps a volume's user name.
pub const VOLUME_TAG_PREFIX: &str = "pmem-rs-volume=";
/// The longest user volume name, in bytes (the CSI limit).
pub const MAX_VOLUME_NAME: usize = 128;
/// The longest VG or LV name LVM accepts, in bytes.
pub const MAX_LVM_NAME: usize = 127;

const READABLE_LEN: usize = 40;
/// Substrings LVM reserves for its internal sub-LVs.
const RESERVED_PARTS: &[&str] = &[
    "_cdata", "_cmeta", "_corig", "_iorig", "_mimage", "_mlog", "_pmspare", "_rimage", "_rmeta",
    "_tdata", "_tmeta", "_vdata", "_vorigin", "_wcorig",
];

/// Checks the rules LVM applies to every VG and LV name.
fn check_lvm_name(what: &str, s: &str) -> Result<()> {
    let bad = |reason: &str| Err(Error::invalid(format!("{what} name {s:?}"), reason));
    if s.is_empty() {
        return bad("is empty");
    }
    if s.len() > MAX_LVM_NAME {
        return bad(&format!("is {} bytes, LVM allows {MAX_LVM_NAME}", s.len()));
    }
    if s.starts_with('-') {
        return bad("starts with '-'");
    }
    if s == "." || s == ".." {
        return bad("is '.' or '..'");
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+_.-".contains(*c)))
    {
        return bad(&format!(
            "contains {c:?}: LVM allows only A-Z a-z 0-9 + _ . -"
        ));
    }
    Ok(())
}

macro_rules! lvm_name {
    ($(#[$m:meta])* $name:ident, $what:literal, $extra:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Validates `s` as LVM would.
            pub fn new(s: impl Into<String>) -> Result<Self> {
                let s = s.into();
                check_lvm_name($what, &s)?;
                let extra: fn(&str) -> Result<()> = $extra;
                extra(&s)?;
                Ok($name(s))
            }

            /// The name.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                $name::new(s)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

lvm_name!(
    /// A volume group name LVM accepts (`pmem-rs-region0`).
    VgName, "VG", |_| Ok(())
);

lvm_name!(
    /// A logical volume name LVM accepts: the VG rules, no `snapshot` or
    /// `pvmove` prefix and none of the suffixes LVM reserves (`_tmeta`...).
    LvName, "LV", |s| {
        if s.starts_with("snapshot") || s.starts_with("pvmove") {
            return Err(Error::invalid(format!("LV name {s:?}"), "starts with a prefix LVM reserves"));
        }
        match RESERVED_PARTS.iter().find(|p| s.contains(*p)) {
            Some(p) => Err(Error::invalid(format!("LV name {s:?}"), format!("contains {p:?}, which LVM reserves"))),
            None => Ok(()),
        }
    }
);

impl VgName {
    /// The VG for one region: `pmem-rs-<region>`.
    pub fn for_region(region: &str) -> Result<Self> {
        VgName::new(format!("{OWNER_TAG}-{region}"))
    }

    /// The VG for every region of one NUMA node (join mode): `pmem-rs-node<N>`.
    pub fn for_node(node: u32) -> Result<Self> {
        VgName::new(format!("{OWNER_TAG}-node{node}"))
    }
}

/// A user's volume name: 1 to 128 bytes of any characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VolumeName(String);

impl VolumeName {
    /// Accepts any non-empty name of at most [`MAX_VOLUME_NAME`] bytes.
    pub fn new(s: impl Into<String>) -> Result<Self> {
        let s = s.into();
        if s.is_empty() {
            return Err(Error::invalid("volume name", "is empty"));
        }
        if s.len() > MAX_VOLUME_NAME {
            return Err(Error::invalid(
                format!("volume {s:?}"),
                format!("name is {} bytes, the limit is {MAX_VOLUME_NAME}", s.len()),
            ));
        }
        Ok(VolumeName(s))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The LV name this volume is stored under; the same for the same name.
    pub fn lv_name(&self) -> LvName {
        let readable: String = self
            .0
            .bytes()
            .take(READABLE_LEN)
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'+' | b'-' => char::from(b),
                _ => '.',
            })
            .collect();
        let lv = format!("vol-{readable}-{:016x}", fnv1a(self.0.as_bytes()));
        LvName::new(lv).expect("the mapping only emits characters LVM allows, no reserved part")
    }

    /// The LV tag that keeps this name (`pmem-rs-volume=` and the escaped bytes).
    pub fn tag(&self) -> String {
        format!("{VOLUME_TAG_PREFIX}{}", escape_tag_value(&self.0))
    }

    /// The name kept in `tag`, if it is a volume tag this crate wrote.
    pub fn from_tag(tag: &str) -> Option<VolumeName> {
        let enc = tag.strip_prefix(VOLUME_TAG_PREFIX)?;
        VolumeName::new(unescape_tag_value(enc)?).ok()
    }
}

/// `s` in the characters LVM allows in a tag: `A-Z a-z 0-9 . - _` stand for
/// themselves, every other byte is `+` and two upper-case hex digits.
pub fn escape_tag_value(s: &str) -> String {
    let mut t = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => t.push(char::from(b)),
            _ => t.push_str(&format!("+{b:02X}")),
        }
    }
    t
}

/// The text [`escape_tag_value`] escaped, if `enc` is such an escape of UTF-8 text.
pub fn unescape_tag_value(enc: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(enc.len());
    let mut it = enc.bytes();
    while let Some(b) = it.next() {
        if b == b'+' {
            let hex = [it.next()?, it.next()?];
            let hex = std::str::from_utf8(&hex).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
        } else {
            bytes.push(b);
        }
    }
    String::from_utf8(bytes).ok()
}

impl fmt::Display for VolumeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for VolumeName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        VolumeName::new(s)
    }
}

impl serde::Serialize for VolumeName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Checks a tag an owner puts on a volume: 1 to 1024 bytes of the
/// characters LVM allows in tags (`A-Z a-z 0-9 _ + . - / = ! : & #`), not
/// starting with `-`, and not the crate's own name tag.
pub fn check_tag(tag: &str) -> Result<()> {
    let bad = |reason: &str| Err(Error::invalid(format!("LV tag {tag:?}"), reason));
    if tag.is_empty() || tag.len() > 1024 {
        return bad("must be 1 to 1024 bytes");
    }
    if tag.starts_with('-') {
        return bad("starts with '-'");
    }
    if !tag
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+.-/=!:&#".contains(&b))
    {
        return bad("LVM allows only A-Z a-z 0-9 _ + . - / = ! : & # in tags");
    }
    if tag.starts_with(VOLUME_TAG_PREFIX) {
        return bad("is the crate's own name tag");
    }
    Ok(())
}

/// 64-bit FNV-1a: small, stable across versions and platforms.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lvm_rules() {
        for ok in ["pmem-rs-region0", "a", "A+b_c.d-e", &"x".repeat(127)] {
            VgName::new(ok).unwrap();
            LvName::new(ok).unwrap();
        }
        for bad in ["", "-a", ".", "..", "a b", "a/b", "ä", &"x".repeat(128)] {
            assert!(VgName::new(bad).is_err(), "VG {bad:?} accepted");
            assert!(LvName::new(bad).is_err(), "LV {bad:?} accepted");
        }
        for bad in ["snapshot1", "pvmove0", "x_tmeta", "a_rimage_0"] {
            assert!(LvName::new(bad).is_err(), "LV {bad:?} accepted");
            VgName::new(bad).unwrap();
        }
        let e = LvName::new("a/b").unwrap_err();
        assert_eq!(
            e.to_string(),
            "LV name \"a/b\": contains '/': LVM allows only A-Z a-z 0-9 + _ . -"
        );
    }

    #[test]
    fn volume_names() {
        assert!(VolumeName::new("").is_err());
        assert!(VolumeName::new("x".repeat(129)).is_err());
        let v = VolumeName::new("pvc-6f1c2a/db data_tmeta").unwrap();
        let lv = v.lv_name();
        assert!(lv.as_str().starts_with("vol-pvc-6f1c2a.db.data.tmeta-"));
        assert_eq!(
            lv,
            VolumeName::new("pvc-6f1c2a/db data_tmeta")
                .unwrap()
                .lv_name()
        );
        assert_eq!(v.tag(), "pmem-rs-volume=pvc-6f1c2a+2Fdb+20data_tmeta");
        assert_eq!(VolumeName::from_tag(&v.tag()), Some(v));
        assert_eq!(VolumeName::from_tag("other"), None);
        assert_eq!(VolumeName::from_tag("pmem-rs-volume=+4"), None);
        assert_eq!(VolumeName::from_tag("pmem-rs-volume=+FF"), None);
    }

    proptest! {
        #[test]
        fn mapping_is_valid_and_round_trips(s in "\\PC{1,40}|[\\x00-\\x7f]{1,128}") {
            prop_assume!(!s.is_empty() && s.len() <= MAX_VOLUME_NAME);
            let v = VolumeName::new(s.clone()).unwrap();
            let lv = v.lv_name();
            prop_assert!(lv.as_str().len() <= 4 + READABLE_LEN + 1 + 16);
            prop_assert!(LvName::new(lv.as_str()).is_ok());
            let tag = v.tag();
            prop_assert!(tag.len() <= 1024);
            prop_assert!(tag.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+.-/=!:&#".contains(&b)));
            prop_assert_eq!(VolumeName::from_tag(&tag), Some(v));
        }

        #[test]
        fn distinct_names_get_distinct_lvs(a in "[a-z/ ]{1,60}", b in "[a-z/ ]{1,60}") {
            prop_assume!(a != b);
            let (a, b) = (VolumeName::new(a).unwrap(), VolumeName::new(b).unwrap());
            prop_assert_ne!(a.lv_name(), b.lv_name());
        }

        #[test]
        fn tag_decoder_never_panics(s in "\\PC{0,200}") {
            let _ = VolumeName::from_tag(&format!("{VOLUME_TAG_PREFIX}{s}"));
        }
    }
}
