//! Tier 1: the validation rules, by example and by property.

use super::*;
use crate::error::ErrorKind;
use proptest::prelude::*;

const MIB: u64 = 1 << 20;

fn rules() -> RegionRules {
    RegionRules {
        region: "region1".into(),
        enabled: true,
        read_only: false,
        labelled: true,
        region_align: 16 * MIB,
        ways: 1,
        max_extent: 1920 * MIB,
        default_align: 2 * MIB,
        supported_aligns: vec![4096, 2 * MIB, 1 << 30],
        btt_sector_sizes: vec![512, 520, 528, 4096, 4104, 4160, 4224],
        ns_sector_sizes: vec![512, 4096],
        page_size: 4096,
    }
}

fn req(mode: Mode, size: u64) -> Request<'static> {
    Request {
        mode,
        size: Some(size),
        name: None,
        align: None,
        map: None,
        sector_size: None,
    }
}

#[test]
fn misaligned_size_names_region_and_alignment() {
    let e = validate(&rules(), &req(Mode::Fsdax, 17 * MIB)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        e.to_string(),
        "region1: size 17 MiB is not a multiple of the 16 MiB alignment"
    );
}

#[test]
fn oversize_is_no_space_with_the_largest_extent() {
    let e = validate(&rules(), &req(Mode::Fsdax, 2048 * MIB)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpace);
    assert_eq!(
        e.to_string(),
        "region1: no room for 2 GiB: the largest that fits is 1920 MiB"
    );
}

#[test]
fn defaults_follow_ndctl() {
    let p = validate(&rules(), &req(Mode::Fsdax, 256 * MIB)).unwrap();
    assert_eq!(
        p,
        Plan {
            size: 256 * MIB,
            align: 2 * MIB,
            map: Some(MapLocation::Dev),
            sector_size: None
        }
    );
    let p = validate(&rules(), &req(Mode::Sector, 256 * MIB)).unwrap();
    assert_eq!(p.sector_size, Some(4096));
    assert_eq!(p.map, None);
    let mut r = req(Mode::Raw, 0);
    r.size = None;
    assert_eq!(
        validate(&rules(), &r).unwrap().size,
        1920 * MIB,
        "no size takes the largest extent"
    );
}

#[test]
fn refusals_are_typed_and_named() {
    let mut r = rules();
    r.enabled = false;
    assert_eq!(
        validate(&r, &req(Mode::Raw, 16 * MIB)).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    let mut r = rules();
    r.labelled = false;
    assert!(validate(&r, &req(Mode::Fsdax, 16 * MIB))
        .unwrap_err()
        .to_string()
        .contains("label-less"));
    let long = "x".repeat(64);
    let mut q = req(Mode::Fsdax, 16 * MIB);
    q.name = Some(&long);
    assert_eq!(
        validate(&rules(), &q).unwrap_err().to_string(),
        format!("{long}: name is 64 bytes long, the label holds at most 63")
    );
    let mut q = req(Mode::Raw, 16 * MIB);
    q.align = Some(2 * MIB);
    assert!(validate(&rules(), &q).is_err(), "raw takes no alignment");
    let mut q = req(Mode::Devdax, 16 * MIB);
    q.align = Some(MIB);
    assert!(validate(&rules(), &q)
        .unwrap_err()
        .to_string()
        .contains("alignment 1 MiB is not supported"));
    let mut q = req(Mode::Sector, 16 * MIB);
    q.sector_size = Some(1000);
    assert!(validate(&rules(), &q).is_err());
    let mut q = req(Mode::Sector, 16 * MIB);
    q.map = Some(MapLocation::Mem);
    assert!(validate(&rules(), &q).is_err());
}

#[test]
fn interleave_multiplies_the_mode_alignment() {
    let mut r = rules();
    r.ways = 3;
    r.region_align = MIB;
    let e = validate(&r, &req(Mode::Fsdax, 16 * MIB)).unwrap_err();
    assert!(e.to_string().contains("not a multiple of 6 MiB"), "{e}");
    assert!(validate(&r, &req(Mode::Fsdax, 18 * MIB)).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the request, an accepted plan keeps every rule, and a refusal
    /// is exactly when a rule is broken.
    #[test]
    fn accepted_iff_every_rule_holds(
        size_mib in 0u64..2200,
        extra in prop_oneof![Just(0u64), 1u64..(1 << 20)],
        mode in prop_oneof![Just(Mode::Fsdax), Just(Mode::Devdax), Just(Mode::Sector), Just(Mode::Raw)],
        ways in 1u64..4,
        max_mib in 0u64..1921,
    ) {
        let mut r = rules();
        r.ways = ways;
        r.max_extent = max_mib * MIB;
        let size = size_mib * MIB + extra;
        let out = validate(&r, &req(mode, size));
        let align = if matches!(mode, Mode::Fsdax | Mode::Devdax) { 2 * MIB } else { 4096 };
        let ok = size > 0
            && size % (16 * MIB) == 0
            && size % (align * ways) == 0
            && size >= mode.min_size()
            && size <= r.max_extent;
        prop_assert_eq!(out.is_ok(), ok, "{:?}", out);
        if let Ok(p) = out {
            prop_assert_eq!(p.size, size);
            prop_assert!(p.size <= r.max_extent);
        } else if size > r.max_extent && size % (16 * MIB) == 0 && size % (align * ways) == 0 && size >= mode.min_size() {
            prop_assert_eq!(out.unwrap_err().kind(), ErrorKind::NoSpace);
        }
    }
}

#[test]
fn a_mode_the_crate_does_not_know_is_listed_but_not_created() {
    let e = validate(&rules(), &req(Mode::Unknown(9), 16 * MIB)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        e.to_string(),
        "region1: cannot create a namespace of mode unknown(9)"
    );
}
