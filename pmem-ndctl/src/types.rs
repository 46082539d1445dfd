//! Typed enums for what libndctl reports as strings or C enums: modes, map locations, region types.

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident, $what:literal { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name { $($(#[$vm])* $v),+ }
        named_enum!(@common $name, $what { $($v = $s),+ });
        impl $name {
            /// The name ndctl uses for it.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
        }
    };
    ($(#[$m:meta])* $name:ident, $what:literal { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? } or $other:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vm])* $v,)+
            /// A value the kernel reported that this crate does not know (a newer
            /// kernel's), kept as its number; shown as `unknown(N)`, never parsed.
            $other(u32),
        }
        named_enum!(@common $name, $what { $($v = $s),+ });
        impl $name {
            /// The name ndctl uses for it (`unknown` for a value this crate does not know).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s,)+ $name::$other(_) => "unknown" }
            }
        }
    };
    (@common $name:ident, $what:literal { $($v:ident = $s:literal),+ }) => {
        impl $name {
            /// Every known value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v),+];
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$v => f.write_str($s),)+
                    #[allow(unreachable_patterns)]
                    other => write!(f, "unknown({})", other.raw()),
                }
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($s => Ok($name::$v),)+
                    _ => Err(Error::invalid(
                        s,
                        format!("not a {} (expected one of: {})", $what, [$($s),+].join(", ")),
                    )),
                }
            }
        }
    };
}

named_enum!(
    /// A namespace's personality, as `ndctl create-namespace -m` names it.
    Mode, "namespace mode" {
        /// Filesystem-DAX: a block device with struct pages (`pmemX.Y`), mountable with `-o dax`.
        Fsdax = "fsdax",
        /// Device-DAX: a character device (`daxX.Y`) mapped directly.
        Devdax = "devdax",
        /// Sector: a block device with atomic sector updates through a BTT.
        Sector = "sector",
        /// Raw: the bare block device, no metadata.
        Raw = "raw",
    } or Unknown
);

named_enum!(
    /// Where an fsdax/devdax namespace keeps its `struct page` array.
    MapLocation, "map location" {
        /// In system memory.
        Mem = "mem",
        /// On the namespace itself (reserves part of its capacity).
        Dev = "dev",
    }
);

named_enum!(
    /// The kind of region.
    RegionType, "region type" {
        /// A persistent-memory (byte-addressable) region.
        Pmem = "pmem",
        /// A block-window region.
        Blk = "blk",
    } or Unknown
);

named_enum!(
    /// Whether a device is active.
    State, "state" {
        /// Bound to its driver.
        Enabled = "enabled",
        /// Not bound.
        Disabled = "disabled",
    }
);

impl Mode {
    /// The kernel's number for an unknown value, for `Display`.
    fn raw(self) -> u32 {
        match self {
            Mode::Unknown(n) => n,
            _ => 0,
        }
    }

    /// The smallest namespace the kernel accepts in this mode (raw size);
    /// see [`rules::min_size`](crate::rules::min_size).
    pub fn min_size(self) -> u64 {
        crate::rules::min_size(self)
    }
}

impl RegionType {
    fn raw(self) -> u32 {
        match self {
            RegionType::Unknown(n) => n,
            _ => 0,
        }
    }
}

impl MapLocation {
    fn raw(self) -> u32 {
        0
    }
}

impl State {
    fn raw(self) -> u32 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_unknown() {
        for m in Mode::ALL {
            assert_eq!(m.as_str().parse::<Mode>().unwrap(), *m);
        }
        let e = "memory".parse::<Mode>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "memory: not a namespace mode (expected one of: fsdax, devdax, sector, raw)"
        );
        assert!("DEV".parse::<MapLocation>().is_err());
        assert_eq!(Mode::Unknown(7).to_string(), "unknown(7)");
        assert_eq!(Mode::Unknown(7).as_str(), "unknown");
        assert!(!Mode::ALL.contains(&Mode::Unknown(4)));
        assert!("unknown".parse::<Mode>().is_err());
    }
}
