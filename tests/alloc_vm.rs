//! Tier 3, inside the emulated-PMEM VM: the allocator's simulator against the real regions.
//! The same seeded trace runs on both, and the region state must be identical after every step.

use pmem::ndctl::alloc::trace::SplitMix;
use pmem::ndctl::alloc::{
    generate, Allocator, Backend, BestFit, CreateRequest, Layout, NdctlBackend, Op, RegionState,
    Simulator,
};
use pmem::ndctl::{Context, ErrorKind, Mode};
use serde_json::Value;
use std::process::{Command, Output};
use std::time::Instant;

const MIB: u64 = 1 << 20;
/// One 2 GiB emulated DIMM gives a region of this size.
const VM_REGION: u64 = 1920 * MIB;

fn ndctl(args: &[&str]) -> Output {
    Command::new("ndctl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ndctl can run: {e}"))
}

fn ok(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8 output")
}

/// Both regions empty and labelled (v1.1, what `ndctl init-labels` writes), with the real ndctl.
fn reset() {
    let _ = ndctl(&["destroy-namespace", "all", "-f"]);
    ok(ndctl(&["disable-region", "all"]), "disable-region");
    ok(ndctl(&["init-labels", "-f", "all"]), "init-labels");
    ok(ndctl(&["enable-region", "all"]), "enable-region");
}

/// Destroys whatever a failed test left behind.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = ndctl(&["destroy-namespace", "all", "-f"]);
    }
}

/// What must be identical on both backends: every region's free space and
/// largest extent, and every namespace's name, offset, raw and usable size
/// and layout. Device names are the kernel's choice and are left out.
fn comparable(regions: &[RegionState]) -> Vec<(String, u64, u64, Vec<String>)> {
    regions
        .iter()
        .map(|r| {
            let namespaces = r
                .namespaces
                .iter()
                .map(|n| {
                    format!(
                        "{} {} at {:#x}: raw {} usable {}",
                        n.name, n.layout.mode, n.offset, n.size, n.usable
                    )
                })
                .collect();
            (
                r.geometry.name.clone(),
                r.available_size,
                r.max_available_extent,
                namespaces,
            )
        })
        .collect()
}

/// A seeded trace at 95% load on two 1920 MiB regions, each create in a random mode.
fn mixed_trace(seed: u64, creates: usize) -> Vec<(Op, Mode)> {
    let mut rng = SplitMix::new(seed ^ 0x5eed);
    generate(seed, &[VM_REGION, VM_REGION], 0.95, creates)
        .into_iter()
        .map(|op| {
            let mode = Mode::ALL[rng.below(Mode::ALL.len() as u64) as usize];
            (op, mode)
        })
        .collect()
}

#[test]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
fn vm_simulator_and_real_regions_agree_after_every_step() {
    reset();
    let _cleanup = Cleanup;
    let real = NdctlBackend::owned_only(Context::new().expect("libndctl context")).labelled_only();
    let start = real.regions().expect("real regions");
    let geometries: Vec<_> = start.iter().map(|r| r.geometry.clone()).collect();
    assert_eq!(
        geometries.iter().map(|g| g.size).collect::<Vec<_>>(),
        [VM_REGION, VM_REGION]
    );
    assert!(start.iter().all(|r| r.namespaces.is_empty()));
    let mut real = Allocator::new(real, Box::new(BestFit));
    let sim = Simulator::new(geometries).expect("simulator of the real geometry");
    let mut sim = Allocator::new(sim, Box::new(BestFit));
    assert_eq!(
        comparable(&sim.backend().regions().unwrap()),
        comparable(&start)
    );

    let trace = mixed_trace(4, 70);
    let (mut live, mut steps, mut made, mut deleted) = (Vec::new(), 0, 0, 0);
    let (mut no_space, mut invalid) = (0, 0);
    let timer = Instant::now();
    for (i, (op, mode)) in trace.iter().enumerate() {
        match op {
            Op::Create { name, size, .. } => {
                let request = CreateRequest {
                    name: name.clone(),
                    size: *size,
                    layout: Layout::new(*mode),
                };
                let (s, r) = (sim.create(&request), real.create(&request));
                match (s, r) {
                    (Ok(s), Ok(r)) => {
                        assert_eq!(
                            (s.offset, s.size, s.usable, s.layout),
                            (r.offset, r.size, r.usable, r.layout),
                            "step {i}: {op} {mode}: {} vs {}",
                            s.dev,
                            r.dev
                        );
                        live.push(name.clone());
                        made += 1;
                    }
                    (Err(s), Err(r)) => {
                        assert_eq!(s.to_string(), r.to_string(), "step {i}: {op} {mode}");
                        match s.kind() {
                            ErrorKind::NoSpace => no_space += 1,
                            ErrorKind::InvalidArgument => invalid += 1,
                            _ => panic!("step {i}: {op} {mode}: {s}"),
                        }
                    }
                    (s, r) => panic!("step {i}: {op} {mode}: simulator {s:?}, real {r:?}"),
                }
            }
            Op::Delete { name } => {
                let Some(at) = live.iter().position(|n| n == name) else {
                    continue;
                };
                live.swap_remove(at);
                sim.destroy(name).expect("simulator destroy");
                real.destroy(name)
                    .unwrap_or_else(|e| panic!("step {i}: {op}: {e}"));
                deleted += 1;
            }
        }
        let real_state = real.backend().regions().expect("real regions");
        assert_eq!(
            comparable(&sim.backend().regions().unwrap()),
            comparable(&real_state),
            "step {i}: {op} {mode}"
        );
        assert_eq!(
            sim.capacity().unwrap(),
            real.capacity().unwrap(),
            "step {i}"
        );
        steps += 1;
    }
    eprintln!(
        "alloc_vm: {} operations, {steps} steps compared ({made} created, {no_space} refused \
         for space, {invalid} as invalid, {deleted} deleted) in {:.1} s",
        trace.len(),
        timer.elapsed().as_secs_f64()
    );
    assert!(trace.len() >= 100, "at least 100 operations");
    assert!(
        deleted >= 30 && no_space >= 1,
        "the trace fragments the regions"
    );
    let modes: std::collections::HashSet<Mode> = trace.iter().map(|(_, m)| *m).collect();
    assert_eq!(modes.len(), Mode::ALL.len(), "every mode is exercised");

    for name in live.drain(..) {
        real.destroy(&name).expect("clean up");
    }
    let end = real.backend().regions().unwrap();
    assert!(end
        .iter()
        .all(|r| r.namespaces.is_empty() && r.available_size == VM_REGION));
}

#[path = "support/examples.rs"]
mod examples;

/// pmem-ndctl's `alloc_sim` example.
fn alloc_sim(args: &[&str]) -> Output {
    let path = examples::example("alloc_sim");
    Command::new(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{} can run: {e}", path.display()))
}

fn report(o: Output, what: &str) -> (String, Value) {
    let text = ok(o, what);
    let mut v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}"));
    v.as_object_mut()
        .expect("a JSON object")
        .remove("decisions_per_sec")
        .expect("decisions_per_sec is reported");
    (text, v)
}

#[test]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
fn vm_alloc_sim_real_prints_what_the_simulator_prints() {
    reset();
    let _cleanup = Cleanup;
    let trace = std::env::temp_dir().join(format!("alloc_vm-{}.trace", std::process::id()));
    std::fs::write(
        &trace,
        "create a 384M\ncreate b 512M devdax\ncreate e 256M sector\ncreate f 768M\n\
         create c 1664M raw\ncreate d 256M\ndelete a\ndelete e\ndelete d\ncreate g 2G\n",
    )
    .expect("write the trace");
    let t = trace.to_str().expect("utf-8 path");
    let common = ["--trace", t, "--regions", "1920M,1920M", "--next", "256M"];
    let (sim_text, sim) = report(alloc_sim(&common), "alloc_sim --backend sim");
    let real_args = [&common[..], &["--backend", "real"]].concat();
    let (real_text, real) = report(alloc_sim(&real_args), "alloc_sim --backend real");
    eprintln!("alloc_vm: sim:  {sim_text}alloc_vm: real: {real_text}");
    assert_eq!(
        real, sim,
        "same report on real regions and in the simulator"
    );
    assert!(
        real_text.starts_with(r#"{"requests":7,"satisfied":6,"failed":1,"capacity":{"#),
        "{real_text}"
    );
    let keys = ["\"capacity\"", "\"decisions_per_sec\"", "\"next\""];
    let at: Vec<usize> = keys.iter().map(|k| real_text.find(k).expect(k)).collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "keys in the issue's order"
    );
    assert_eq!(
        ok(ndctl(&["list", "-N"]), "list").trim(),
        "",
        "the run cleaned up"
    );

    // A --regions that does not match the machine is an error.
    let o = alloc_sim(&["--trace", t, "--regions", "4x1920M", "--backend", "real"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("regions '4x1920M': the backend's regions are [1920 MiB, 1920 MiB]"),
        "{err}"
    );

    // A namespace the run did not make: refused, and left alone.
    ok(
        ndctl(&[
            "create-namespace",
            "-r",
            "region1",
            "-m",
            "raw",
            "-s",
            "64M",
            "-n",
            "keep",
        ]),
        "create-namespace",
    );
    let o = alloc_sim(&["--trace", t, "--backend", "real"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("region1: holds namespaces this run did not make; refusing to run"),
        "{err}"
    );
    let left = ok(ndctl(&["list", "-N"]), "list");
    assert!(left.contains("\"name\":\"keep\""), "{left}");
    let _ = std::fs::remove_file(&trace);
}
