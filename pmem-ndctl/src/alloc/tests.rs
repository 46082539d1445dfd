//! Tier-1 tests of the allocator: kernel facts and property tests over random traces.

use super::geometry::MIB;
use super::*;
use crate::error::ErrorKind;
use crate::types::Mode;
use proptest::prelude::*;

/// The VM's region: a 2 GiB emulated DIMM shows 2013265920 bytes.
const VM_REGION: u64 = 2013265920;

fn req(name: &str, size: u64, mode: Mode) -> CreateRequest {
    CreateRequest {
        name: name.into(),
        size,
        layout: Layout::new(mode),
    }
}

#[test]
fn vm_example_through_the_simulator() {
    assert_eq!(VM_REGION, 1920 * MIB);
    let mut sim = Simulator::from_sizes(&[VM_REGION]).unwrap();
    let mut made = Vec::new();
    for i in 0..4 {
        made.push(
            sim.create("region0", &req(&format!("fs{i}"), 256 * MIB, Mode::Fsdax))
                .unwrap(),
        );
    }
    made.push(
        sim.create("region0", &req("dax", 144 * MIB, Mode::Devdax))
            .unwrap(),
    );
    assert_eq!(made[0].usable, 250 * MIB, "256 MiB raw fsdax gives 250 MiB");
    assert_eq!(made[4].offset, 1024 * MIB);
    assert_eq!(made[1].dev, "namespace0.1");
    sim.destroy("region0", &made[1].dev).unwrap();
    sim.destroy("region0", &made[2].dev).unwrap();
    let r = &sim.regions().unwrap()[0];
    assert_eq!(r.available_size, 1264 * MIB);
    assert_eq!(r.max_available_extent, 752 * MIB);
    assert_eq!(r.namespaces.len(), 3);
}

#[test]
fn refusals_read_the_same_from_simulator_and_allocator() {
    let sim = Simulator::from_sizes(&[VM_REGION]).unwrap();
    let mut alloc = Allocator::new(sim.clone(), Box::new(BestFit));
    let mut sim = sim;
    for (size, mode) in [
        (17 * MIB, Mode::Fsdax),
        (8 * MIB, Mode::Devdax),
        (16 * MIB, Mode::Sector),
    ] {
        let r = req("v", size, mode);
        let a = alloc.create(&r).unwrap_err();
        let s = sim.create("region0", &r).unwrap_err();
        assert_eq!(a.to_string(), s.to_string());
        assert_eq!(a.kind(), ErrorKind::InvalidArgument);
    }
    assert_eq!(
        alloc
            .create(&req("v", 17 * MIB, Mode::Raw))
            .unwrap_err()
            .to_string(),
        "region0: size 17 MiB is not a multiple of the 16 MiB alignment"
    );
    assert_eq!(
        sim.create("region7", &req("v", 16 * MIB, Mode::Raw))
            .unwrap_err()
            .to_string(),
        "region7: not found"
    );
}

#[test]
fn no_space_names_the_largest_and_writes_nothing() {
    let sim = Simulator::from_sizes(&[VM_REGION, VM_REGION]).unwrap();
    let mut alloc = Allocator::new(sim, Box::new(BestFit));
    alloc.create(&req("a", 1024 * MIB, Mode::Raw)).unwrap();
    alloc.create(&req("b", 1024 * MIB, Mode::Raw)).unwrap();
    let before = alloc.backend().regions().unwrap();
    let e = alloc.create(&req("c", 1024 * MIB, Mode::Raw)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "region0,region1: no room for 1 GiB: the largest that fits is 896 MiB"
    );
    assert_eq!(alloc.backend().regions().unwrap(), before);
    let dup = alloc.create(&req("a", 16 * MIB, Mode::Raw)).unwrap_err();
    assert_eq!(
        dup.to_string(),
        "a: a namespace of this name already exists (namespace0.0)"
    );
    let cap = alloc.capacity().unwrap();
    assert_eq!(cap.total.free, 2 * 896 * MIB);
    assert_eq!(cap.total.largest.raw, 896 * MIB);
}

#[test]
fn first_fit_goes_by_total_free_space_and_fails_on_split_holes() {
    // region0: seven 256 MiB namespaces, every other one destroyed: 896 MiB
    // free, in holes of 256 MiB at most. region1 is empty.
    let mut sim = Simulator::from_sizes(&[VM_REGION, VM_REGION]).unwrap();
    for i in 0..7 {
        sim.create("region0", &req(&format!("n{i}"), 256 * MIB, Mode::Raw))
            .unwrap();
    }
    for dev in ["namespace0.1", "namespace0.3", "namespace0.5"] {
        sim.destroy("region0", dev).unwrap();
    }
    let r0 = &sim.regions().unwrap()[0];
    assert_eq!(
        (r0.available_size, r0.max_available_extent),
        (896 * MIB, 256 * MIB)
    );
    let big = req("big", 512 * MIB, Mode::Fsdax);

    let mut first = Allocator::new(sim.clone(), Box::new(FirstFit));
    let before = first.backend().regions().unwrap();
    let e = first.create(&big).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpace);
    assert_eq!(
        e.to_string(),
        "region0: no room for 512 MiB: the largest that fits is 256 MiB"
    );
    assert_eq!(first.backend().regions().unwrap(), before);
    // A request region0 can hold still goes there, to its lowest hole.
    let small = first.create(&req("small", 256 * MIB, Mode::Fsdax)).unwrap();
    assert_eq!(
        (small.dev.as_str(), small.offset),
        ("namespace0.7", 256 * MIB)
    );

    let mut best = Allocator::new(sim, Box::new(BestFit));
    let ns = best.create(&big).unwrap();
    assert_eq!((ns.dev.as_str(), ns.offset), ("namespace1.0", 0));
    // More than any region has free in total: both refuse, naming every region.
    let huge = req("huge", 1936 * MIB, Mode::Raw);
    for (mut a, largest) in [(first, "1920 MiB"), (best, "1408 MiB")] {
        assert_eq!(
            a.create(&huge).unwrap_err().to_string(),
            format!("region0,region1: no room for 1936 MiB: the largest that fits is {largest}")
        );
    }
}

/// Needs the `json` feature (on in `cargo test --workspace`, which pmem-csi enables it for).
#[cfg(feature = "json")]
#[test]
fn saved_state_resumes_with_the_same_decisions() {
    let mut sim = Simulator::from_sizes(&[VM_REGION, 4 << 30]).unwrap();
    for (i, mb) in [256, 512, 128, 1024].iter().enumerate() {
        let region = if i % 2 == 0 { "region0" } else { "region1" };
        sim.create(region, &req(&format!("n{i}"), mb * MIB, Mode::Fsdax))
            .unwrap();
    }
    sim.destroy("region0", "namespace0.0").unwrap();
    let json = sim.to_json();
    let mut loaded = Simulator::from_json(&json).unwrap();
    assert_eq!(loaded.regions().unwrap(), sim.regions().unwrap());
    let a = sim
        .create("region0", &req("x", 64 * MIB, Mode::Devdax))
        .unwrap();
    let b = loaded
        .create("region0", &req("x", 64 * MIB, Mode::Devdax))
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.offset, 0, "the freed lowest hole is reused first");
    assert_eq!(a.dev, "namespace0.2", "ids are not reused at once");

    let overlapping = json.replacen("\"offset\": 536870912", "\"offset\": 0", 1);
    assert_ne!(overlapping, json);
    let e = Simulator::from_json(&overlapping).unwrap_err();
    assert!(e.to_string().contains("overlaps a namespace"), "{e}");
    assert!(Simulator::from_json("{")
        .unwrap_err()
        .to_string()
        .starts_with("simulator state: "));
}

#[test]
fn label_less_region_has_one_fixed_raw_namespace() {
    let mut g = RegionGeometry::labelled("region0", 4 << 30, VM_REGION);
    g.labels = Labels::None;
    let mut sim = Simulator::new(vec![g]).unwrap();
    let r = &sim.regions().unwrap()[0];
    assert_eq!((r.available_size, r.namespaces.len()), (0, 1));
    assert_eq!(r.namespaces[0].size, VM_REGION);
    let e = sim
        .create("region0", &req("a", 16 * MIB, Mode::Fsdax))
        .unwrap_err();
    assert!(e.to_string().starts_with("region0: label-less region"));
    assert!(sim.destroy("region0", "namespace0.0").is_err());
}

#[test]
fn region_specs() {
    assert_eq!(parse_region_sizes("4x64G").unwrap(), vec![64 << 30; 4]);
    assert_eq!(
        parse_region_sizes("1920M,1920M").unwrap(),
        vec![VM_REGION; 2]
    );
    assert!(parse_region_sizes("0x1G").is_err());
    assert!(parse_region_sizes("ax1G").is_err());
    assert!(parse_region_sizes("1G,0").is_err());
    for absurd in [
        "1000000000x64G",
        "257x1G",
        "1x99999999999999999999G",
        "2x2P",
        "1x1M",
        &vec!["1G"; 300].join(","),
    ] {
        assert!(parse_region_sizes(absurd).is_err(), "{absurd} accepted");
    }
}

/// One step of a random trace: create (size in 16 MiB units, a mode) or
/// delete (the n-th live namespace).
#[derive(Debug, Clone)]
enum Step {
    Create(u64, Mode),
    Delete(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (1u64..48, prop::sample::select(Mode::ALL.to_vec())).prop_map(|(u, m)| Step::Create(u, m)),
        2 => any::<usize>().prop_map(Step::Delete),
    ]
}

/// Runs `steps`, checking the invariants after each; returns every decision.
fn run_checked(steps: &[Step], policy: Box<dyn Policy>) -> Vec<(String, String, u64)> {
    let sizes = [VM_REGION, 1024 * MIB, VM_REGION];
    let mut alloc = Allocator::new(Simulator::from_sizes(&sizes).unwrap(), policy);
    let mut shadow: Vec<RegionModel> = alloc.models().unwrap();
    let mut live: Vec<(String, String, u64)> = Vec::new();
    let mut decisions = Vec::new();
    for (n, s) in steps.iter().enumerate() {
        let before = alloc.backend().regions().unwrap();
        match s {
            Step::Create(units, mode) => {
                let r = req(&format!("v{n}"), units * 16 * MIB, *mode);
                let plan = alloc.plan(&r);
                match alloc.create(&r) {
                    Ok(ns) => {
                        let plan = plan.unwrap();
                        let region = plan.region_name.clone();
                        assert_eq!(ns.offset, plan.offset, "placement predicted");
                        let e = shadow[plan.region].allocate(r.size).unwrap();
                        assert_eq!(e.offset, ns.offset, "model and simulator agree");
                        decisions.push((region.clone(), ns.dev.clone(), ns.offset));
                        live.push((r.name, region, ns.offset));
                    }
                    Err(e) => {
                        assert_eq!(plan.unwrap_err().to_string(), e.to_string());
                        assert_eq!(
                            alloc.backend().regions().unwrap(),
                            before,
                            "failure changed nothing"
                        );
                    }
                }
            }
            Step::Delete(i) if !live.is_empty() => {
                let (name, region, offset) = live.swap_remove(i % live.len());
                alloc.destroy(&name).unwrap();
                let m = shadow.iter_mut().find(|m| m.name() == region).unwrap();
                m.remove(offset).unwrap();
            }
            Step::Delete(_) => {}
        }
        for (r, m) in alloc.backend().regions().unwrap().iter().zip(&shadow) {
            let g = &r.geometry;
            let used: u64 = r.namespaces.iter().map(|n| n.size).sum();
            assert_eq!(r.available_size + used, g.size, "free + used = size");
            assert_eq!(r.available_size, m.available_size());
            assert_eq!(r.max_available_extent, m.max_available_extent());
            assert_eq!(r.model().unwrap().extents(), m.extents());
            for w in r.namespaces.windows(2) {
                assert!(w[0].offset + w[0].size <= w[1].offset, "no overlap");
            }
            for ns in &r.namespaces {
                assert!(ns.offset + ns.size <= g.size);
                assert_eq!(ns.offset % g.align, 0, "aligned start");
                assert_eq!(ns.size % ns.layout.size_align(g), 0, "aligned size");
                assert_eq!(Some(ns.usable), ns.layout.usable(g, ns.offset, ns.size));
            }
        }
    }
    decisions
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_traces_keep_the_kernel_invariants(steps in prop::collection::vec(step(), 1..80)) {
        for p in ["best-fit", "first-fit"] {
            let a = run_checked(&steps, policy_by_name(p).unwrap());
            let b = run_checked(&steps, policy_by_name(p).unwrap());
            prop_assert_eq!(a, b, "same trace, same decisions");
        }
    }
}
