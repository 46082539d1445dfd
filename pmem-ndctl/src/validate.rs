//! The rules a namespace request must meet before anything is written, as a pure function.

use crate::error::{Error, Result};
use crate::size::Size;
use crate::types::{MapLocation, Mode};

pub use crate::rules::MAX_NAME_LEN;

/// What a region allows, read once from libndctl (or made up by a test).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionRules {
    /// The region's name, used in every error.
    pub region: String,
    /// Whether the region is enabled.
    pub enabled: bool,
    /// Whether the region is read-only.
    pub read_only: bool,
    /// Whether the region has labels (a label-less region cannot be subdivided).
    pub labelled: bool,
    /// Region size granularity (16 MiB by default).
    pub region_align: u64,
    /// Interleave ways: the mode alignment is multiplied by it.
    pub ways: u64,
    /// The largest contiguous free extent.
    pub max_extent: u64,
    /// Default mapping alignment of fsdax (pfn seed) and devdax (dax seed); 2 MiB on x86.
    pub default_align: u64,
    /// Alignments the pfn/dax seeds accept (empty: only the default).
    pub supported_aligns: Vec<u64>,
    /// Sector sizes a BTT accepts.
    pub btt_sector_sizes: Vec<u32>,
    /// Sector sizes a plain namespace accepts.
    pub ns_sector_sizes: Vec<u32>,
    /// The system page size (the alignment of raw and sector namespaces).
    pub page_size: u64,
}

/// A request, validated and completed with defaults: what the create sequence writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Raw capacity to take from the region.
    pub size: u64,
    /// Mapping alignment for fsdax/devdax (page size otherwise).
    pub align: u64,
    /// Where the page map goes, for fsdax/devdax.
    pub map: Option<MapLocation>,
    /// Sector size to set (`None`: the kernel's default).
    pub sector_size: Option<u32>,
}

/// The caller's request, as far as validation needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The personality.
    pub mode: Mode,
    /// Raw size; `None` takes the largest free extent.
    pub size: Option<u64>,
    /// The namespace name.
    pub name: Option<&'a str>,
    /// Mapping alignment (fsdax/devdax only).
    pub align: Option<u64>,
    /// Map location (fsdax/devdax only).
    pub map: Option<MapLocation>,
    /// Sector size.
    pub sector_size: Option<u32>,
}

/// Checks `req` against `rules` the way the kernel and ndctl will, and
/// returns the plan, or the first rule broken as a typed error naming the region.
pub fn validate(rules: &RegionRules, req: &Request<'_>) -> Result<Plan> {
    let r = rules.region.as_str();
    if !rules.enabled {
        return Err(Error::invalid(r, "region is disabled; enable it first"));
    }
    if rules.read_only {
        return Err(Error::invalid(r, "region is read-only"));
    }
    if !rules.labelled {
        return Err(Error::invalid(
            r,
            "region is label-less: its one namespace cannot be subdivided; initialise the DIMMs' labels first",
        ));
    }
    if let Mode::Unknown(_) = req.mode {
        return Err(Error::invalid(
            r,
            format!("cannot create a namespace of mode {}", req.mode),
        ));
    }
    if let Some(name) = req.name {
        crate::rules::check_name(name)?;
    }
    let dax = crate::rules::has_pfn(req.mode);
    if req.map.is_some() && !dax {
        return Err(Error::invalid(
            r,
            format!(
                "a map location only applies to fsdax and devdax, not {}",
                req.mode
            ),
        ));
    }
    let align = match (req.align, dax) {
        (Some(_), false) => {
            return Err(Error::invalid(
                r,
                format!("{} mode does not take an alignment", req.mode),
            ));
        }
        (Some(a), true) => {
            let ok = if rules.supported_aligns.is_empty() {
                a == rules.default_align
            } else {
                rules.supported_aligns.contains(&a)
            };
            if !ok {
                let list: Vec<String> = rules
                    .supported_aligns
                    .iter()
                    .map(|a| Size(*a).to_string())
                    .collect();
                return Err(Error::invalid(
                    r,
                    format!(
                        "alignment {} is not supported (supported: {})",
                        Size(a),
                        list.join(", ")
                    ),
                ));
            }
            a
        }
        (None, true) => rules.default_align,
        (None, false) => rules.page_size,
    };
    let size = req.size.unwrap_or(rules.max_extent);
    if size == 0 {
        return Err(Error::NoSpace {
            object: r.to_string(),
            requested: Size(size),
            largest: Size(rules.max_extent),
        });
    }
    if rules.region_align > 0 && size % rules.region_align != 0 {
        return Err(crate::rules::misaligned(r, size, rules.region_align));
    }
    let unit = crate::rules::size_unit(rules.region_align, align, rules.ways);
    if size % unit != 0 {
        return Err(Error::invalid(
            r,
            format!(
                "size {} is not a multiple of {} ({} {} alignment x {} interleave ways)",
                Size(size),
                Size(unit),
                Size(align),
                req.mode,
                rules.ways.max(1)
            ),
        ));
    }
    if size < req.mode.min_size() {
        return Err(crate::rules::too_small(r, req.mode, size));
    }
    if size > rules.max_extent {
        return Err(Error::NoSpace {
            object: r.to_string(),
            requested: Size(size),
            largest: Size(rules.max_extent),
        });
    }
    let sector_size = match (req.sector_size, req.mode) {
        (Some(s), Mode::Sector) if !rules.btt_sector_sizes.contains(&s) => {
            return Err(Error::invalid(
                r,
                format!("sector size {s} is not supported by a BTT"),
            ));
        }
        (Some(s), Mode::Sector) => Some(s),
        (None, Mode::Sector) => Some(4096),
        (Some(s), Mode::Devdax) => {
            return Err(Error::invalid(
                r,
                format!("devdax has no sector size (asked {s})"),
            ));
        }
        (Some(s), _) if !rules.ns_sector_sizes.contains(&s) => {
            return Err(Error::invalid(
                r,
                format!("sector size {s} is not supported by this namespace"),
            ));
        }
        (s, _) => s,
    };
    Ok(Plan {
        size,
        align,
        map: dax.then_some(req.map.unwrap_or(MapLocation::Dev)),
        sector_size,
    })
}

#[cfg(test)]
mod tests;
