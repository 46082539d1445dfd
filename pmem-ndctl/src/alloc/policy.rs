//! Placement policies: which region gets a namespace (the kernel then decides where in it).

use crate::error::{Error, Result};

/// One region that can hold a request, as a policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Index of the region in the list the allocator was given.
    pub region: usize,
    /// Size of the hole the kernel will carve the namespace from.
    pub hole: u64,
    /// Size of the region's largest hole.
    pub largest_hole: u64,
    /// The region's free bytes.
    pub available: u64,
}

/// Chooses among regions that can hold a request of `size` raw bytes.
pub trait Policy: Send + Sync + std::fmt::Debug {
    /// The name used on command lines and in reports.
    fn name(&self) -> &'static str;

    /// Picks one of `candidates` (never empty, in region order) by its position in the slice.
    fn choose(&self, size: u64, candidates: &[Candidate]) -> usize;
}

/// The first region, in order, that can hold the request (PMEM-CSI's rule,
/// judged by the largest hole so that it never picks a region the kernel
/// must refuse).
#[derive(Debug, Clone, Copy, Default)]
pub struct FirstFit;

impl Policy for FirstFit {
    fn name(&self) -> &'static str {
        "first-fit"
    }

    fn choose(&self, _size: u64, _candidates: &[Candidate]) -> usize {
        0
    }
}

/// The region where the hole the kernel will use is the tightest fit (least
/// waste). Ties keep large holes intact: a region where that hole is not its
/// largest goes first, then the fuller region, then the first.
#[derive(Debug, Clone, Copy, Default)]
pub struct BestFit;

impl Policy for BestFit {
    fn name(&self) -> &'static str {
        "best-fit"
    }

    fn choose(&self, size: u64, candidates: &[Candidate]) -> usize {
        candidates
            .iter()
            .enumerate()
            // min_by_key keeps the first of equal keys: the lowest region wins a full tie.
            .min_by_key(|(_, c)| {
                (
                    c.hole - size.min(c.hole),
                    c.hole == c.largest_hole,
                    c.available,
                )
            })
            .map_or(0, |(i, _)| i)
    }
}

/// The policies by name: `best-fit` (the default) and `first-fit`.
pub fn policy_by_name(name: &str) -> Result<Box<dyn Policy>> {
    match name {
        "best-fit" => Ok(Box::new(BestFit)),
        "first-fit" => Ok(Box::new(FirstFit)),
        _ => Err(Error::invalid(
            name,
            "not a placement policy (expected best-fit or first-fit)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(region: usize, hole: u64, largest_hole: u64, available: u64) -> Candidate {
        Candidate {
            region,
            hole,
            largest_hole,
            available,
        }
    }

    #[test]
    fn best_fit_takes_the_tightest_hole() {
        let cands = [c(0, 100, 100, 300), c(1, 40, 90, 200), c(2, 60, 60, 60)];
        assert_eq!(BestFit.choose(40, &cands), 1);
        assert_eq!(FirstFit.choose(40, &cands), 0);
    }

    #[test]
    fn best_fit_ties_keep_large_holes() {
        // Same waste: region 0 would cut its largest hole, region 1 would not.
        let cands = [c(0, 64, 64, 64), c(1, 64, 512, 900)];
        assert_eq!(BestFit.choose(32, &cands), 1);
        // Same waste, neither is the largest hole: the fuller region.
        let cands = [c(0, 64, 512, 900), c(1, 64, 512, 700)];
        assert_eq!(BestFit.choose(32, &cands), 1);
        // Full tie: the first.
        let cands = [c(0, 64, 512, 700), c(1, 64, 512, 700)];
        assert_eq!(BestFit.choose(32, &cands), 0);
    }

    #[test]
    fn policies_by_name() {
        assert_eq!(policy_by_name("best-fit").unwrap().name(), "best-fit");
        assert_eq!(policy_by_name("first-fit").unwrap().name(), "first-fit");
        assert_eq!(
            policy_by_name("worst-fit").unwrap_err().to_string(),
            "worst-fit: not a placement policy (expected best-fit or first-fit)"
        );
    }
}
