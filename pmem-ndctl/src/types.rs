//! Typed enums for what libndctl reports as strings or C enums: modes, map locations, region types.

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident, $what:literal { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            /// The name ndctl uses for it.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
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
    }
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
    }
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
    /// The smallest namespace the kernel accepts in this mode (raw size);
    /// see [`rules::min_size`](crate::rules::min_size).
    pub fn min_size(self) -> u64 {
        crate::rules::min_size(self)
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
    }
}
