//! Placement policies: which region gets a namespace (the kernel then decides where in it).

use crate::error::{Error, Result};

/// One region that accepts a request's size and layout, as a policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Index of the region in the list the allocator was given.
    pub region: usize,
    /// Size of the hole the kernel will carve the namespace from, or `None`
    /// when no hole of the region holds it (the kernel would refuse).
    pub hole: Option<u64>,
    /// Size of the region's largest hole.
    pub largest_hole: u64,
    /// The region's free bytes, in all holes together.
    pub available: u64,
}

/// Chooses the region for a request of `size` raw bytes.
pub trait Policy: Send + Sync + std::fmt::Debug {
    /// The name used on command lines and in reports.
    fn name(&self) -> &'static str;

    /// Picks one of `candidates` (in region order) by its position in the
    /// slice, or `None` to refuse the request. A pick whose `hole` is `None`
    /// is a region the kernel will refuse: the request then fails too.
    fn choose(&self, size: u64, candidates: &[Candidate]) -> Option<usize>;
}

/// PMEM-CSI's rule: the first region, in order, with enough free space in
/// total (`available >= size`). It does not look at holes: when that
/// region's free space is split and no hole holds the request, the request
/// fails although another region could have held it.
#[derive(Debug, Clone, Copy, Default)]
pub struct FirstFit;

impl Policy for FirstFit {
    fn name(&self) -> &'static str {
        "first-fit"
    }

    fn choose(&self, size: u64, candidates: &[Candidate]) -> Option<usize> {
        candidates.iter().position(|c| c.available >= size)
    }
}

/// Among regions whose hole holds the request, the one where that hole is
/// the tightest fit (least waste). Ties keep large holes intact: a region
/// where that hole is not its largest goes first, then the fuller region,
/// then the first.
#[derive(Debug, Clone, Copy, Default)]
pub struct BestFit;

impl Policy for BestFit {
    fn name(&self) -> &'static str {
        "best-fit"
    }

    fn choose(&self, size: u64, candidates: &[Candidate]) -> Option<usize> {
        candidates
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.hole.map(|hole| (i, hole, c)))
            // min_by_key keeps the first of equal keys: the lowest region wins a full tie.
            .min_by_key(|(_, hole, c)| {
                (hole - size.min(*hole), *hole == c.largest_hole, c.available)
            })
            .map(|(i, _, _)| i)
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

    fn c(region: usize, hole: Option<u64>, largest_hole: u64, available: u64) -> Candidate {
        Candidate {
            region,
            hole,
            largest_hole,
            available,
        }
    }

    #[test]
    fn best_fit_takes_the_tightest_hole() {
        let cands = [
            c(0, Some(100), 100, 300),
            c(1, Some(40), 90, 200),
            c(2, Some(60), 60, 60),
        ];
        assert_eq!(BestFit.choose(40, &cands), Some(1));
        assert_eq!(FirstFit.choose(40, &cands), Some(0));
    }

    #[test]
    fn first_fit_looks_at_total_free_space_only() {
        // Region 0 has 300 free in holes of at most 100: first-fit still
        // picks it for 200 (and the request then fails), best-fit takes region 2.
        let cands = [
            c(0, None, 100, 300),
            c(1, None, 90, 150),
            c(2, Some(250), 250, 250),
        ];
        assert_eq!(FirstFit.choose(200, &cands), Some(0));
        assert_eq!(BestFit.choose(200, &cands), Some(2));
        // Not enough free space anywhere: both refuse.
        assert_eq!(FirstFit.choose(400, &cands), None);
        assert_eq!(BestFit.choose(400, &[c(0, None, 100, 300)]), None);
        // Region 0 has too little free space in total: the next that has enough.
        let cands = [c(0, Some(100), 100, 100), c(1, Some(150), 150, 150)];
        assert_eq!(FirstFit.choose(120, &cands), Some(1));
        assert_eq!(FirstFit.choose(100, &cands), Some(0));
    }

    #[test]
    fn best_fit_ties_keep_large_holes() {
        // Same waste: region 0 would cut its largest hole, region 1 would not.
        let cands = [c(0, Some(64), 64, 64), c(1, Some(64), 512, 900)];
        assert_eq!(BestFit.choose(32, &cands), Some(1));
        // Same waste, neither is the largest hole: the fuller region.
        let cands = [c(0, Some(64), 512, 900), c(1, Some(64), 512, 700)];
        assert_eq!(BestFit.choose(32, &cands), Some(1));
        // Full tie: the first.
        let cands = [c(0, Some(64), 512, 700), c(1, Some(64), 512, 700)];
        assert_eq!(BestFit.choose(32, &cands), Some(0));
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
