//! Allocation traces: the `create NAME SIZE [MODE]` / `delete NAME` format, a seeded generator, and a runner.

use super::allocator::Allocator;
use super::backend::{Backend, CreateRequest};
use super::capacity::CapacityReport;
use super::geometry::MIB;
use super::layout::Layout;
use crate::error::{Error, ErrorKind, Result};
use crate::size::Size;
use crate::types::Mode;
#[cfg(feature = "serde")]
use serde::Serialize;
use std::fmt;

/// One operation of a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create a namespace of raw `size` bytes, in `mode` or the run's default.
    Create {
        /// Its name.
        name: String,
        /// Raw size in bytes.
        size: u64,
        /// Mode, if the line names one.
        mode: Option<Mode>,
    },
    /// Delete the namespace of this name (skipped if its creation failed).
    Delete {
        /// Its name.
        name: String,
    },
}

fn size_token(n: u64) -> String {
    for (shift, unit) in [(30, "G"), (20, "M"), (10, "K")] {
        if n != 0 && n % (1 << shift) == 0 {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Create { name, size, mode } => {
                write!(f, "create {name} {}", size_token(*size))?;
                match mode {
                    Some(m) => write!(f, " {m}"),
                    None => Ok(()),
                }
            }
            Op::Delete { name } => write!(f, "delete {name}"),
        }
    }
}

/// Parses a trace: one operation a line, blank lines and `#` comments skipped.
pub fn parse_trace(text: &str) -> Result<Vec<Op>> {
    let mut ops = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = || format!("trace line {}", i + 1);
        let words: Vec<&str> = line.split_whitespace().collect();
        let op = match words.as_slice() {
            [] => continue,
            [w, ..] if w.starts_with('#') => continue,
            ["create", name, size, rest @ ..] if rest.len() <= 1 => Op::Create {
                name: name.to_string(),
                size: size
                    .parse::<Size>()
                    .map_err(|e| Error::invalid(at(), e.to_string()))?
                    .bytes(),
                mode: rest.first().map(|m| m.parse()).transpose()?,
            },
            ["delete", name] => Op::Delete {
                name: name.to_string(),
            },
            _ => {
                return Err(Error::invalid(
                    at(),
                    format!("expected 'create NAME SIZE [MODE]' or 'delete NAME', got '{line}'"),
                ))
            }
        };
        ops.push(op);
    }
    Ok(ops)
}

/// A small deterministic generator (SplitMix64), so traces depend on the seed only.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Generates `creates` create requests over regions of `region_sizes`, with
/// sizes log-uniform from 16 MiB to a quarter of the smallest region (in 16 MiB
/// steps). Before each create, random live namespaces are deleted until the
/// request fits under `load` × total capacity, so the trace runs at that load.
pub fn generate(seed: u64, region_sizes: &[u64], load: f64, creates: usize) -> Vec<Op> {
    let mut rng = SplitMix::new(seed);
    let total: u64 = region_sizes.iter().sum();
    let target = (total as f64 * load.clamp(0.0, 1.0)) as u64;
    let max_units = (region_sizes.iter().copied().min().unwrap_or(0) / 4 / (16 * MIB)).max(1);
    let log_max = (max_units as f64).ln();
    let mut live: Vec<(String, u64)> = Vec::new();
    let mut used = 0;
    let mut ops = Vec::new();
    for n in 0..creates {
        let x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let units = ((x * log_max).exp() as u64).clamp(1, max_units);
        let size = units * 16 * MIB;
        while used + size > target && !live.is_empty() {
            let (name, s) = live.swap_remove(rng.below(live.len() as u64) as usize);
            used -= s;
            ops.push(Op::Delete { name });
        }
        if used + size > target {
            continue;
        }
        let name = format!("ns{n}");
        live.push((name.clone(), size));
        used += size;
        ops.push(Op::Create {
            name,
            size,
            mode: None,
        });
    }
    ops
}

/// The outcome of a trace run, as `alloc_sim` prints it.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct TraceSummary {
    /// Create requests.
    pub requests: u64,
    /// Requests that got a namespace.
    pub satisfied: u64,
    /// Requests refused for lack of space.
    pub failed: u64,
    /// Capacity just before the final clean-up.
    pub capacity: CapacityReport,
    /// Placement decisions per second.
    pub decisions_per_sec: f64,
}

/// Runs `ops` through `alloc` (creates without a mode use `layout`), takes the
/// capacity report, then destroys every namespace the run created.
///
/// Requests refused with [`ErrorKind::NoSpace`] count as failed; any other
/// error stops the run (after the clean-up).
pub fn run_trace<B: Backend>(
    alloc: &mut Allocator<B>,
    ops: &[Op],
    layout: Layout,
) -> Result<TraceSummary> {
    run_trace_inspect(alloc, ops, layout, |_| ()).map(|(summary, ())| summary)
}

/// Like [`run_trace`], and calls `inspect` on the allocator in its final
/// state, before the clean-up (to ask what would happen to a next request).
pub fn run_trace_inspect<B: Backend, R>(
    alloc: &mut Allocator<B>,
    ops: &[Op],
    layout: Layout,
    inspect: impl FnOnce(&Allocator<B>) -> R,
) -> Result<(TraceSummary, R)> {
    let mut live: Vec<String> = Vec::new();
    let outcome = run_ops(alloc, ops, layout, &mut live);
    let capacity = alloc.capacity();
    let inspected = inspect(alloc);
    let mut cleanup = Ok(());
    for name in &live {
        if let Err(e) = alloc.destroy(name) {
            cleanup = cleanup.and(Err(e));
        }
    }
    let (requests, satisfied, failed) = outcome?;
    cleanup?;
    let summary = TraceSummary {
        requests,
        satisfied,
        failed,
        capacity: capacity?,
        decisions_per_sec: alloc.stats().per_sec(),
    };
    Ok((summary, inspected))
}

fn run_ops<B: Backend>(
    alloc: &mut Allocator<B>,
    ops: &[Op],
    layout: Layout,
    live: &mut Vec<String>,
) -> Result<(u64, u64, u64)> {
    let (mut requests, mut satisfied, mut failed) = (0, 0, 0);
    for op in ops {
        match op {
            Op::Create { name, size, mode } => {
                requests += 1;
                let request = CreateRequest {
                    name: name.clone(),
                    size: *size,
                    layout: mode.map_or(layout, Layout::new),
                };
                match alloc.create(&request) {
                    Ok(_) => {
                        satisfied += 1;
                        live.push(name.clone());
                    }
                    Err(e) if e.kind() == ErrorKind::NoSpace => failed += 1,
                    Err(e) => return Err(e),
                }
            }
            Op::Delete { name } => {
                if let Some(i) = live.iter().position(|n| n == name) {
                    alloc.destroy(name)?;
                    live.swap_remove(i);
                }
            }
        }
    }
    Ok((requests, satisfied, failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_the_format() {
        let ops = parse_trace("# demo\ncreate a 256M\n\ncreate b 2G devdax\ndelete a\n").unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[0].to_string(), "create a 256M");
        assert_eq!(ops[1].to_string(), "create b 2G devdax");
        assert_eq!(
            parse_trace(&ops[2].to_string()).unwrap(),
            vec![ops[2].clone()]
        );
        let e = parse_trace("create a\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "trace line 1: expected 'create NAME SIZE [MODE]' or 'delete NAME', got 'create a'"
        );
        assert!(parse_trace("create a 1.5G")
            .unwrap_err()
            .to_string()
            .starts_with("trace line 1: invalid size"));
        assert!(parse_trace("create a 1G memory").is_err());
    }

    #[test]
    fn generator_is_seeded_and_keeps_the_load() {
        let sizes = [1920 * MIB; 4];
        let a = generate(7, &sizes, 0.9, 300);
        assert_eq!(a, generate(7, &sizes, 0.9, 300));
        assert_ne!(a, generate(8, &sizes, 0.9, 300));
        let mut used = std::collections::HashMap::new();
        for op in &a {
            match op {
                Op::Create { name, size, .. } => {
                    assert_eq!(size % (16 * MIB), 0);
                    assert!(*size <= 480 * MIB);
                    used.insert(name.clone(), *size);
                }
                Op::Delete { name } => {
                    used.remove(name).unwrap();
                }
            }
            assert!(used.values().sum::<u64>() <= 4 * 1920 * MIB * 9 / 10);
        }
    }
}
