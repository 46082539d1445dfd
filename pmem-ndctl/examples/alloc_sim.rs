//! alloc_sim: runs an allocation trace through the namespace allocator and prints the outcome as JSON.
//!
//! ```text
//! alloc_sim --trace FILE [--regions SPEC] [--policy best-fit|first-fit]
//!           [--backend sim|real] [--mode fsdax|devdax|sector|raw]
//!           [--state FILE] [--next SIZE]
//! alloc_sim --gen-trace SEED [--regions SPEC] [--load 0.9] [--ops N]
//! alloc_sim --compare SEED[,SEED...] [--regions SPEC] [--load 0.9] [--ops N] [--mode MODE]
//! ```
//!
//! - `--trace`: one operation a line, `create NAME SIZE [MODE]` or `delete
//!   NAME` (sizes are raw namespace sizes: `256M`, `2G`). Prints
//!   `{"requests","satisfied","failed","capacity","decisions_per_sec"}`,
//!   the capacity taken just before every namespace the run made is
//!   destroyed. `--next SIZE` adds `next`: where each policy would put one
//!   more request of SIZE in that final state.
//! - `--regions`: `COUNTxSIZE` (`4x64G`, the default) or `1920M,1920M`.
//! - `--backend real`: the machine's enabled, labelled regions through
//!   libndctl (as root). They must hold no namespace when the run starts
//!   (it refuses otherwise), a `--regions` that does not match them is an
//!   error, and every namespace the run created is destroyed at the end
//!   (the backend refuses to destroy any other).
//! - `--state FILE`: the simulator starts from a saved state (JSON).
//! - `--gen-trace`: prints a seeded trace that keeps the load at `--load` of
//!   the regions' capacity for `--ops` create requests (default 2000).
//! - `--compare`: runs each seed's generated trace under best-fit and
//!   first-fit and prints the rejections of each.
//!
//! Exit status: 0 on success, 1 when a run fails, 2 for bad usage.

use pmem_ndctl::alloc::{
    decide, generate, parse_region_sizes, parse_trace, policy_by_name, run_trace,
    run_trace_inspect, Allocator, Backend, CreateRequest, Layout, NdctlBackend, Op, Simulator,
};
use pmem_ndctl::{Context, Error, Mode, Result, Size};
use serde_json::{json, Value};
use std::process::ExitCode;

const USAGE: &str = "usage: alloc_sim --trace FILE [--regions SPEC] [--policy best-fit|first-fit] \
[--backend sim|real] [--mode fsdax|devdax|sector|raw] [--state FILE] [--next SIZE]
       alloc_sim --gen-trace SEED [--regions SPEC] [--load 0.9] [--ops N]
       alloc_sim --compare SEED[,SEED...] [--regions SPEC] [--load 0.9] [--ops N] [--mode MODE]";

#[derive(Debug, Default)]
struct Args {
    trace: Option<String>,
    gen_trace: Option<u64>,
    compare: Option<Vec<u64>>,
    regions: Option<String>,
    policy: Option<String>,
    backend: Option<String>,
    mode: Option<String>,
    state: Option<String>,
    next: Option<u64>,
    load: Option<f64>,
    ops: Option<usize>,
}

fn usage(why: impl std::fmt::Display) -> Error {
    Error::invalid("alloc_sim", format!("{why}\n{USAGE}"))
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args> {
    let mut a = Args::default();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| usage(format!("{flag} needs a value")))
        };
        let num = |v: String| {
            v.parse()
                .map_err(|_| usage(format!("{flag}: '{v}' is not a number")))
        };
        match flag.as_str() {
            "--trace" => a.trace = Some(value()?),
            "--gen-trace" => a.gen_trace = Some(num(value()?)?),
            "--compare" => {
                let seeds = value()?;
                a.compare = Some(
                    seeds
                        .split(',')
                        .map(|s| num(s.to_string()))
                        .collect::<Result<_>>()?,
                )
            }
            "--regions" => a.regions = Some(value()?),
            "--policy" => a.policy = Some(value()?),
            "--backend" => a.backend = Some(value()?),
            "--mode" => a.mode = Some(value()?),
            "--state" => a.state = Some(value()?),
            "--next" => {
                let v = value()?;
                a.next = Some(v.parse::<Size>().map_err(|e| usage(e.to_string()))?.bytes());
            }
            "--load" => {
                a.load = Some(
                    value()?
                        .parse()
                        .map_err(|_| usage("--load: not a number"))?,
                )
            }
            "--ops" => a.ops = Some(num(value()?)? as usize),
            "-h" | "--help" => return Err(usage("")),
            other => return Err(usage(format!("unknown argument '{other}'"))),
        }
    }
    let actions = [
        a.trace.is_some(),
        a.gen_trace.is_some(),
        a.compare.is_some(),
    ];
    if actions.iter().filter(|x| **x).count() != 1 {
        return Err(usage("give exactly one of --trace, --gen-trace, --compare"));
    }
    match a.backend.as_deref() {
        None | Some("sim") => {}
        Some("real") if a.trace.is_some() && a.state.is_none() => {}
        Some("real") => return Err(usage("--backend real runs a --trace, and takes no --state")),
        Some(other) => {
            return Err(usage(format!(
                "unknown backend '{other}' (expected sim or real)"
            )))
        }
    }
    Ok(a)
}

/// Runs a trace file on any backend (the simulator or libndctl) and returns
/// the report as JSON text, keys in the order the summary declares them.
///
/// `own_all`: the backend is a real machine, so every region must start free
/// of namespaces this run did not make, and `--regions` must match it.
fn run_file<B: Backend>(backend: B, args: &Args, own_all: bool) -> Result<String> {
    let path = args.trace.as_deref().unwrap_or_default();
    let text = std::fs::read_to_string(path).map_err(|e| Error::invalid(path, e.to_string()))?;
    let ops = parse_trace(&text)?;
    let regions = backend.regions()?;
    if regions.is_empty() {
        return Err(Error::NotFound {
            object: "labelled region (initialise the DIMMs' labels first)".into(),
        });
    }
    if let Some(spec) = &args.regions {
        let want = parse_region_sizes(spec)?;
        let have: Vec<u64> = regions.iter().map(|r| r.geometry.size).collect();
        if want != have {
            let have: Vec<String> = have.iter().map(|s| Size(*s).to_string()).collect();
            return Err(Error::invalid(
                format!("regions '{spec}'"),
                format!("the backend's regions are [{}]", have.join(", ")),
            ));
        }
    }
    if own_all {
        if let Some(r) = regions.iter().find(|r| !r.namespaces.is_empty()) {
            let name = &r.geometry.name;
            return Err(Error::invalid(
                name,
                "holds namespaces this run did not make; refusing to run",
            ));
        }
    }
    let layout = Layout::new(mode(args)?);
    let policy = policy_by_name(args.policy.as_deref().unwrap_or("best-fit"))?;
    let mut alloc = Allocator::new(backend, policy);
    let next = args.next;
    let (summary, next) = run_trace_inspect(&mut alloc, &ops, layout, |a| {
        next.map(|size| next_decisions(a, size, layout))
    })?;
    // Serialising the struct itself (not through a `Value`, whose map sorts
    // its keys) keeps the fields in the order they are declared.
    let mut out =
        serde_json::to_string(&summary).map_err(|e| Error::invalid("summary", e.to_string()))?;
    if let Some(next) = next {
        // `out` is one JSON object: reopen it to add `next` last.
        out.pop();
        out.push_str(&format!(",\"next\":{}}}", next?));
    }
    Ok(out)
}

/// Where each policy would put one more request of `size`.
fn next_decisions<B: Backend>(a: &Allocator<B>, size: u64, layout: Layout) -> Result<Value> {
    let models = a.models()?;
    let request = CreateRequest {
        name: "next".into(),
        size,
        layout,
    };
    let mut out = json!({ "size": size });
    for name in ["best-fit", "first-fit"] {
        let policy = policy_by_name(name)?;
        out[name] = match decide(&models, &request, policy.as_ref()) {
            Ok(p) => json!({ "region": p.region_name, "offset": p.offset }),
            Err(e) => json!({ "error": e.to_string() }),
        };
    }
    Ok(out)
}

fn mode(args: &Args) -> Result<Mode> {
    args.mode.as_deref().unwrap_or("fsdax").parse()
}

fn sizes(args: &Args) -> Result<Vec<u64>> {
    parse_region_sizes(args.regions.as_deref().unwrap_or("4x64G"))
}

fn compare(args: &Args, seeds: &[u64]) -> Result<Value> {
    let sizes = sizes(args)?;
    let load = args.load.unwrap_or(0.9);
    let layout = Layout::new(mode(args)?);
    let mut rows = Vec::new();
    let (mut best_total, mut first_total) = (0, 0);
    for &seed in seeds {
        let ops = generate(seed, &sizes, load, args.ops.unwrap_or(2000));
        let failed = |policy: &str| -> Result<(u64, u64)> {
            let mut alloc = Allocator::new(Simulator::from_sizes(&sizes)?, policy_by_name(policy)?);
            let s = run_trace(&mut alloc, &ops, layout)?;
            Ok((s.requests, s.failed))
        };
        let (requests, best) = failed("best-fit")?;
        let (_, first) = failed("first-fit")?;
        best_total += best;
        first_total += first;
        rows.push(
            json!({ "seed": seed, "requests": requests, "best-fit": best, "first-fit": first,
                          "fewer_rejections_pct": reduction(best, first) }),
        );
    }
    Ok(json!({
        "regions": sizes.len(), "region_sizes": sizes, "load": load, "seeds": rows,
        "total": { "best-fit": best_total, "first-fit": first_total,
                   "fewer_rejections_pct": reduction(best_total, first_total) },
    }))
}

fn reduction(best: u64, first: u64) -> f64 {
    if first == 0 {
        0.0
    } else {
        ((first as f64 - best as f64) / first as f64 * 1000.0).round() / 10.0
    }
}

/// What a run prints.
enum Output {
    /// A generated trace.
    Text(String),
    /// A report, as JSON text.
    Json(String),
}

fn run(args: &Args) -> Result<Output> {
    if let Some(seed) = args.gen_trace {
        let ops = generate(
            seed,
            &sizes(args)?,
            args.load.unwrap_or(0.9),
            args.ops.unwrap_or(2000),
        );
        let lines: Vec<String> = ops.iter().map(Op::to_string).collect();
        return Ok(Output::Text(lines.join("\n")));
    }
    if let Some(seeds) = &args.compare {
        return compare(args, seeds).map(|v| Output::Json(v.to_string()));
    }
    if args.backend.as_deref() == Some("real") {
        let backend = NdctlBackend::owned_only(Context::new()?).labelled_only();
        return run_file(backend, args, true).map(Output::Json);
    }
    let sim = match &args.state {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| Error::invalid(path, e.to_string()))?;
            Simulator::from_json(&text)?
        }
        None => Simulator::from_sizes(&sizes(args)?)?,
    };
    run_file(sim, args, false).map(Output::Json)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(Output::Text(t)) => println!("{t}"),
        Ok(Output::Json(v)) => println!("{v}"),
        Err(e) => {
            eprintln!("alloc_sim: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
