//! The allocator: validates a request, lets a policy pick the region, predicts the kernel's placement, creates.

use super::backend::{AllocatedNamespace, Backend, CreateRequest};
use super::capacity::CapacityReport;
use super::geometry::validate_name;
use super::policy::{Candidate, Policy};
use super::region::RegionModel;
use crate::error::{Error, Result};
use crate::size::Size;
use std::time::{Duration, Instant};

/// Where a request will go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Index of the region in the list decided over.
    pub region: usize,
    /// The region's name.
    pub region_name: String,
    /// The offset in the region where the kernel will put the namespace.
    pub offset: u64,
}

/// Decides where `request` goes among `regions` under `policy`, without
/// changing anything.
///
/// A size that no region accepts (alignment, minimum, label-less) fails with
/// the first region's reason. When the policy refuses, or picks a region
/// where no hole holds the request (first-fit judges by total free space),
/// the request fails with [`Error::NoSpace`] naming the regions considered
/// and the largest size that fits in them.
pub fn decide(
    regions: &[RegionModel],
    request: &CreateRequest,
    policy: &dyn Policy,
) -> Result<Placement> {
    let size = request.size;
    let layout = &request.layout;
    let mut candidates = Vec::with_capacity(regions.len());
    let mut first_refusal = None;
    for (i, m) in regions.iter().enumerate() {
        if let Err(e) = layout.check(m.geometry(), size) {
            first_refusal.get_or_insert(e);
            continue;
        }
        // The hole the kernel will use, if the namespace's metadata fits there.
        let hole = m
            .first_fit(size)
            .filter(|h| layout.usable(m.geometry(), h.offset, size).is_some());
        candidates.push(Candidate {
            region: i,
            hole: hole.map(|h| h.size),
            largest_hole: m.max_available_extent(),
            available: m.available_size(),
        });
    }
    if candidates.is_empty() {
        return Err(first_refusal.unwrap_or_else(|| Error::NotFound {
            object: "region (none to allocate from)".into(),
        }));
    }
    let no_space = |considered: &[Candidate]| {
        let names: Vec<&str> = considered
            .iter()
            .map(|c| regions[c.region].name())
            .collect();
        let largest = considered
            .iter()
            .map(|c| regions[c.region].largest_for(layout))
            .max()
            .unwrap_or(0);
        Error::NoSpace {
            object: names.join(","),
            requested: Size(size),
            largest: Size(largest),
        }
    };
    let Some(c) = policy
        .choose(size, &candidates)
        .and_then(|pick| candidates.get(pick))
    else {
        return Err(no_space(&candidates));
    };
    let m = &regions[c.region];
    let Some(hole) = c.hole.and_then(|_| m.first_fit(size)) else {
        return Err(no_space(std::slice::from_ref(c)));
    };
    Ok(Placement {
        region: c.region,
        region_name: m.name().to_string(),
        offset: hole.offset,
    })
}

/// Count and total time of placement decisions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecisionStats {
    /// Decisions taken.
    pub count: u64,
    /// Time spent in them.
    pub time: Duration,
}

impl DecisionStats {
    /// Decisions per second (0 when none were timed).
    pub fn per_sec(&self) -> f64 {
        let s = self.time.as_secs_f64();
        if s > 0.0 {
            self.count as f64 / s
        } else {
            0.0
        }
    }
}

/// Creates and destroys namespaces through a [`Backend`], choosing regions with a [`Policy`].
pub struct Allocator<B> {
    backend: B,
    policy: Box<dyn Policy>,
    stats: DecisionStats,
}

impl<B: Backend> Allocator<B> {
    /// An allocator over `backend` using `policy`.
    pub fn new(backend: B, policy: Box<dyn Policy>) -> Self {
        Allocator {
            backend,
            policy,
            stats: DecisionStats::default(),
        }
    }

    /// The policy in use.
    pub fn policy(&self) -> &dyn Policy {
        self.policy.as_ref()
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, mutably.
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// Gives the backend back.
    pub fn into_backend(self) -> B {
        self.backend
    }

    /// Decisions taken so far and their time.
    pub fn stats(&self) -> DecisionStats {
        self.stats
    }

    /// The extent models of the backend's regions, as they are now.
    pub fn models(&self) -> Result<Vec<RegionModel>> {
        self.backend.regions()?.iter().map(|r| r.model()).collect()
    }

    /// Where `request` would go now; changes nothing.
    pub fn plan(&self, request: &CreateRequest) -> Result<Placement> {
        decide(&self.models()?, request, self.policy.as_ref())
    }

    /// The namespace named `name` and its region, if there is one.
    pub fn find(&self, name: &str) -> Result<Option<(String, AllocatedNamespace)>> {
        Ok(self.backend.regions()?.into_iter().find_map(|r| {
            let region = r.geometry.name;
            r.namespaces
                .into_iter()
                .find(|n| n.name == name)
                .map(|n| (region, n))
        }))
    }

    /// Creates a namespace: checks the name is new, decides the region (every
    /// refusal comes before anything is written), then has the backend create it.
    pub fn create(&mut self, request: &CreateRequest) -> Result<AllocatedNamespace> {
        validate_name(&request.name)?;
        if let Some((_, ns)) = self.find(&request.name)? {
            return Err(Error::invalid(
                &request.name,
                format!("a namespace of this name already exists ({})", ns.dev),
            ));
        }
        let models = self.models()?;
        let start = Instant::now();
        let decision = decide(&models, request, self.policy.as_ref());
        self.stats.count += 1;
        self.stats.time += start.elapsed();
        let placement = decision?;
        self.backend.create(&placement.region_name, request)
    }

    /// Destroys the namespace named `name`.
    pub fn destroy(&mut self, name: &str) -> Result<()> {
        let (region, ns) = self.find(name)?.ok_or_else(|| Error::NotFound {
            object: name.to_string(),
        })?;
        self.backend.destroy(&region, &ns.dev)
    }

    /// Renames the namespace named `name` to `new_name` (where the backend can).
    pub fn rename(&mut self, name: &str, new_name: &str) -> Result<()> {
        validate_name(new_name)?;
        let (region, ns) = self.find(name)?.ok_or_else(|| Error::NotFound {
            object: name.to_string(),
        })?;
        self.backend.rename(&region, &ns.dev, new_name)
    }

    /// The capacity report of the regions as they are now.
    pub fn capacity(&self) -> Result<CapacityReport> {
        Ok(CapacityReport::from_models(&self.models()?))
    }
}
