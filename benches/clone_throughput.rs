//! Clone throughput of `pmem_csi::copy::copy_device` against `dd` of the same fsdax devices, in one boot.
//!
//! Needs root and labelled regions (the emulated-PMEM VM): run `scripts/bench-clone`.
//! Elsewhere it says why it cannot run and exits 0, so `cargo bench` stays usable.
//! Each copy is checked against its source with `cmp`. Device-dax to
//! device-dax is copied by the library only (dd cannot read or write one).

use pmem::csi::copy::copy_device;
use pmem::dax::DevDax;
use pmem::ndctl::{Context, Mode, NamespaceInfo, NamespaceSpec, Size};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const ROUNDS: usize = 3;
const FSDAX: u64 = 512 << 20;
const DEVDAX: u64 = 256 << 20;
const MIB: f64 = (1u64 << 20) as f64;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `dd if=src of=dst bs=2M` with `flags`; MiB/s.
fn dd(src: &Path, dst: &Path, size: u64, flags: &[&str]) -> f64 {
    let t = Instant::now();
    let s = Command::new("dd")
        .arg(format!("if={}", src.display()))
        .arg(format!("of={}", dst.display()))
        .args(["bs=2M", "status=none", "conv=fsync"])
        .args(flags)
        .arg(format!("count={}", size >> 21))
        .status()
        .expect("dd runs");
    assert!(s.success(), "dd failed");
    size as f64 / MIB / t.elapsed().as_secs_f64()
}

/// Fills `dev` with bytes that are not zero and not repeated (`dd` from /dev/urandom).
fn fill_random(dev: &Path, size: u64) {
    let s = Command::new("dd")
        .arg("if=/dev/urandom")
        .arg(format!("of={}", dev.display()))
        .args(["bs=1M", "status=none", "oflag=direct"])
        .arg(format!("count={}", size >> 20))
        .status()
        .expect("dd runs");
    assert!(s.success(), "filling {} failed", dev.display());
}

fn same_bytes(a: &Path, b: &Path, size: u64) -> bool {
    Command::new("cmp")
        .args(["-s", "-n", &size.to_string()])
        .args([a, b])
        .status()
        .expect("cmp runs")
        .success()
}

fn zero_device(dev: &Path) {
    pmem::ndctl::erase::zero_device(dev, &mut |_, _| {}).expect("zero");
}

fn node(ns: &NamespaceInfo) -> PathBuf {
    let d = ns
        .blockdev
        .clone()
        .or(ns.chardev.clone())
        .expect("device node");
    PathBuf::from(format!("/dev/{d}"))
}

fn main() {
    let mut ctx = match Context::new() {
        Ok(c) => c,
        Err(e) => {
            println!("clone_throughput: no libndctl context ({e}); run scripts/bench-clone");
            return;
        }
    };
    let region = |ctx: &Context, need: u64| {
        ctx.regions()
            .filter(|r| r.is_labelled() && r.is_enabled() && r.available_size() >= need)
            .map(|r| r.name())
            .next()
    };
    let mut make = |mode, size| {
        let r = region(&ctx, size + (64 << 20))?;
        Some(
            ctx.create_namespace(&NamespaceSpec::new(r.as_str(), mode, Size(size)))
                .expect("namespace"),
        )
    };
    let (Some(a), Some(b)) = (make(Mode::Fsdax, FSDAX), make(Mode::Fsdax, FSDAX)) else {
        println!("clone_throughput: no labelled regions with 2 x 512 MiB free here; run scripts/bench-clone (the emulated-PMEM VM)");
        return;
    };
    let (src, dst) = (node(&a), node(&b));
    let size = pmem::ndctl::erase::device_size(&src).expect("size");
    fill_random(&src, size);
    let (mut lib, mut dd_o, mut dd_io) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        zero_device(&dst);
        let c = copy_device(&src, size, &dst, true).expect("library copy");
        assert!(same_bytes(&src, &dst, size), "library copy differs");
        lib.push(c.mib_per_s());
        zero_device(&dst);
        dd_o.push(dd(&src, &dst, size, &["oflag=direct"]));
        assert!(same_bytes(&src, &dst, size), "dd copy differs");
        dd_io.push(dd(&src, &dst, size, &["iflag=direct", "oflag=direct"]));
    }
    let dax = (|| {
        let (a2, b2) = (make(Mode::Devdax, DEVDAX)?, make(Mode::Devdax, DEVDAX)?);
        let (s, d) = (node(&a2), node(&b2));
        let dax_size = DevDax::open(&s).expect("devdax").size();
        let v: Vec<f64> = (0..ROUNDS)
            .map(|_| {
                copy_device(&s, dax_size, &d, true)
                    .expect("devdax copy")
                    .mib_per_s()
            })
            .collect();
        Some((median(v), [a2, b2]))
    })();
    let (l, o, io) = (median(lib), median(dd_o), median(dd_io));
    println!(
        "{:<8} {:>6} {:>6} {:>14} {:>16} {:>22} {:>7}",
        "mode", "MiB", "rounds", "clone MiB/s", "dd oflag MiB/s", "dd iflag+oflag MiB/s", "ratio"
    );
    println!(
        "{:<8} {:>6} {:>6} {:>14.0} {:>16.0} {:>22.0} {:>7.2}",
        "fsdax",
        size >> 20,
        ROUNDS,
        l,
        o,
        io,
        l / o
    );
    if let Some((m, _)) = &dax {
        println!(
            "{:<8} {:>6} {:>6} {:>14.0} {:>16} {:>22} {:>7}",
            "devdax",
            DEVDAX >> 20,
            ROUNDS,
            m,
            "-",
            "-",
            "-"
        );
    }
    println!(
        "summary clone_fsdax_mib_s={l:.0} dd_oflag_direct_mib_s={o:.0} dd_iflag_oflag_direct_mib_s={io:.0} clone_over_dd={:.2} clone_devdax_mib_s={} (above 1: the clone is faster)",
        l / o,
        dax.as_ref().map_or("n/a".to_string(), |(m, _)| format!("{m:.0}"))
    );
    let mut all = vec![a, b];
    all.extend(dax.into_iter().flat_map(|(_, n)| n));
    for ns in all {
        ctx.destroy_namespace(&ns.dev, true).expect("destroy");
    }
}
