//! Criterion bench `allocator`: the time of one placement decision at 1,000 live namespaces.
//!
//! The regions (4 × 64 GiB) are filled with namespaces of 16 MiB to 256 MiB
//! and thinned out at random to 1,000 live ones, so every region has many
//! holes. Criterion reports the mean; the bench also times 20,000 single
//! decisions and prints their p50 and p99 (the issue asks for p99 < 10 µs).

use criterion::{black_box, Criterion};
use pmem::ndctl::alloc::trace::SplitMix;
use pmem::ndctl::alloc::{
    decide, Backend, BestFit, CreateRequest, FirstFit, Layout, Policy, RegionModel, Simulator,
};
use pmem::ndctl::Mode;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
const LIVE: usize = 1000;

/// Regions holding `LIVE` namespaces with holes between them.
fn fragmented() -> Vec<RegionModel> {
    let mut sim = Simulator::from_sizes(&[64 << 30; 4]).expect("valid region sizes");
    let mut rng = SplitMix::new(42);
    let mut made = Vec::new();
    for i in 0..LIVE + 400 {
        let region = format!("region{}", i % 4);
        let request = CreateRequest {
            name: format!("ns{i}"),
            size: (1 + rng.below(16)) * 16 * MIB,
            layout: Layout::new(Mode::Fsdax),
        };
        let ns = sim
            .create(&region, &request)
            .expect("the regions are large enough");
        made.push((region, ns.dev));
    }
    while made.len() > LIVE {
        let (region, dev) = made.swap_remove(rng.below(made.len() as u64) as usize);
        sim.destroy(&region, &dev).expect("it was just made");
    }
    sim.regions()
        .expect("the simulator always lists")
        .iter()
        .map(|r| r.model().expect("a simulator state is coherent"))
        .collect()
}

fn request(size: u64) -> CreateRequest {
    CreateRequest {
        name: "next".into(),
        size,
        layout: Layout::new(Mode::Fsdax),
    }
}

/// Times `n` single decisions over a mix of sizes and prints p50 / p99.
fn percentiles(models: &[RegionModel], policy: &dyn Policy, n: usize) {
    let sizes = [16 * MIB, 64 * MIB, 256 * MIB, 1 << 30, 8 << 30];
    let mut ns: Vec<u128> = Vec::with_capacity(n);
    for i in 0..n {
        let r = request(sizes[i % sizes.len()]);
        let t = Instant::now();
        let placed = decide(black_box(models), black_box(&r), policy);
        ns.push(t.elapsed().as_nanos());
        black_box(placed.ok());
    }
    ns.sort_unstable();
    let at = |q: f64| ns[((n as f64 * q) as usize).min(n - 1)] as f64 / 1000.0;
    println!(
        "allocator/{}: {} decisions at {LIVE} live namespaces: p50 {:.2} µs, p99 {:.2} µs, max {:.2} µs",
        policy.name(),
        n,
        at(0.50),
        at(0.99),
        at(1.0)
    );
}

fn bench(c: &mut Criterion) {
    let models = fragmented();
    let live: usize = models.iter().map(|m| m.extents().len()).sum();
    assert_eq!(live, LIVE);
    let holes: usize = models.iter().map(|m| m.hole_count()).sum();
    println!("allocator: {live} live namespaces, {holes} holes in 4 regions");
    for policy in [&BestFit as &dyn Policy, &FirstFit] {
        percentiles(&models, policy, 20_000);
        for (label, size) in [("256M", 256 * MIB), ("8G", 8 << 30)] {
            let r = request(size);
            c.bench_function(&format!("decide/{}/{label}", policy.name()), |b| {
                b.iter(|| decide(black_box(&models), black_box(&r), policy))
            });
        }
    }
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
}
