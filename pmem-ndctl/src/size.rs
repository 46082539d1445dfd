//! Byte sizes: parsing `256M` / `2G` the way ndctl does, and printing them for people.

use std::fmt;
use std::str::FromStr;

/// A size in bytes. `Display` prints the largest binary unit that divides it
/// exactly (`16 MiB`, `1.5 GiB` is printed as `1536 MiB`), or bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Size(pub u64);

impl Size {
    /// One kibibyte.
    pub const KIB: u64 = 1 << 10;
    /// One mebibyte.
    pub const MIB: u64 = 1 << 20;
    /// One gibibyte.
    pub const GIB: u64 = 1 << 30;

    /// The number of bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 5] = [
            (1 << 40, "TiB"),
            (1 << 30, "GiB"),
            (1 << 20, "MiB"),
            (1 << 10, "KiB"),
            (1, "B"),
        ];
        let (div, unit) = UNITS
            .iter()
            .copied()
            .find(|(d, _)| self.0 != 0 && self.0 % d == 0)
            .unwrap_or((1, "B"));
        write!(f, "{} {unit}", self.0 / div)
    }
}

/// Why a size string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid size '{0}': expected a number with an optional K, M, G or T suffix (binary units)"
)]
pub struct ParseSizeError(pub String);

impl FromStr for Size {
    type Err = ParseSizeError;

    /// Parses `4096`, `64K`, `256M`, `2G`, `1T` (also `256MiB`, `2GB`, lower
    /// case), in binary units as ndctl does.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseSizeError(s.to_string());
        let t = s.trim();
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(digits);
        if num.is_empty() {
            return Err(err());
        }
        let n: u64 = num.parse().map_err(|_| err())?;
        let shift = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            "t" | "tb" | "tib" => 40,
            _ => return Err(err()),
        };
        n.checked_mul(1u64 << shift).map(Size).ok_or_else(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ndctl_sizes() {
        assert_eq!("256M".parse(), Ok(Size(256 << 20)));
        assert_eq!("2G".parse(), Ok(Size(2 << 30)));
        assert_eq!("2g".parse(), Ok(Size(2 << 30)));
        assert_eq!("64KiB".parse(), Ok(Size(64 << 10)));
        assert_eq!("4096".parse(), Ok(Size(4096)));
        assert_eq!("1T".parse(), Ok(Size(1 << 40)));
        for bad in [
            "",
            "M",
            "-1G",
            "1.5G",
            "3X",
            "99999999999999999999",
            "20000000T",
        ] {
            assert!(bad.parse::<Size>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn prints_largest_exact_unit() {
        assert_eq!(Size(16 << 20).to_string(), "16 MiB");
        assert_eq!(Size(1536 << 20).to_string(), "1536 MiB");
        assert_eq!(Size(2 << 30).to_string(), "2 GiB");
        assert_eq!(Size(4097).to_string(), "4097 B");
        assert_eq!(Size(0).to_string(), "0 B");
    }
}
