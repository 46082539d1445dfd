//! Tier 1: ids, names, parameters and capabilities, by example and by property.

use super::*;
use crate::proto::volume_capability::{AccessMode, BlockVolume, MountVolume};
use proptest::prelude::*;
use tonic::Code;

fn cap(access: Access, mount: Option<&str>) -> VolumeCapability {
    VolumeCapability {
        access_mode: Some(AccessMode {
            mode: access as i32,
        }),
        access_type: Some(match mount {
            Some(fs) => AccessType::Mount(MountVolume {
                fs_type: fs.into(),
                ..Default::default()
            }),
            None => AccessType::Block(BlockVolume {}),
        }),
    }
}

#[test]
fn parameters_known_defaults_and_unknown() {
    assert_eq!(Params::parse(&HashMap::new()).unwrap(), Params::default());
    let m = HashMap::from([
        ("eraseAfter".to_string(), "false".to_string()),
        ("mode".to_string(), "devdax".to_string()),
        ("csi.storage.k8s.io/pvc/name".to_string(), "x".to_string()),
    ]);
    let p = Params::parse(&m).unwrap();
    assert!(!p.erase_after && p.dax && p.mode == VolumeMode::Devdax);
    let bad = HashMap::from([("fstype".to_string(), "ext4".to_string())]);
    let e = Params::parse(&bad).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.to_string().contains("unknown parameter \"fstype\""));
    let bad = HashMap::from([("dax".to_string(), "maybe".to_string())]);
    assert_eq!(
        Params::parse(&bad).unwrap_err().code(),
        Code::InvalidArgument
    );
}

#[test]
fn capabilities() {
    assert!(check_capabilities(&[
        cap(Access::SingleNodeWriter, Some("ext4")),
        cap(Access::SingleNodeWriter, None)
    ])
    .is_ok());
    assert_eq!(
        check_capabilities(&[]).unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        check_capability(&cap(Access::MultiNodeMultiWriter, None))
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    assert_eq!(
        check_capability(&cap(Access::SingleNodeWriter, Some("btrfs")))
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    let mut c = cap(Access::SingleNodeWriter, None);
    c.access_type = None;
    assert_eq!(
        check_capability(&c).unwrap_err().code(),
        Code::InvalidArgument
    );
}

#[test]
fn malformed_ids_are_not_found_and_empty_is_invalid() {
    assert_eq!(
        VolumeId::parse("").unwrap_err().code(),
        Code::InvalidArgument
    );
    for bad in [
        "pmem-",
        "/dev/pmem0",
        "pmem-ZZZZ5678901234567890123456789012",
        "../../etc/passwd",
    ] {
        assert_eq!(
            VolumeId::parse(bad).unwrap_err().code(),
            Code::NotFound,
            "{bad}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any valid name maps to a well-formed id that parses back to itself,
    /// and different names give different ids.
    #[test]
    fn ids_from_names(a in "\\PC{1,40}", b in "\\PC{1,40}") {
        let (na, nb) = (VolumeName::parse(&a).unwrap(), VolumeName::parse(&b).unwrap());
        let ia = VolumeId::for_name(&na);
        prop_assert_eq!(VolumeId::parse(ia.as_str()).unwrap(), ia.clone());
        prop_assert!(!ia.as_str().contains('/'));
        if a != b {
            prop_assert_ne!(ia, VolumeId::for_name(&nb));
        }
    }

    /// Parsing never panics and accepts exactly the well-formed ids.
    #[test]
    fn id_parse_total(s in ".{0,64}") {
        let ok = VolumeId::parse(&s).is_ok();
        let well_formed = s.len() == 37 && s.starts_with("pmem-") && s[5..].chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
        prop_assert_eq!(ok, well_formed);
    }

    /// Names: accepted iff 1..=128 bytes without NUL.
    #[test]
    fn name_rules(s in "\\PC{0,140}") {
        prop_assert_eq!(VolumeName::parse(&s).is_ok(), !s.is_empty() && s.len() <= 128);
    }
}

#[test]
fn shown_text_cannot_forge_lines_and_is_bounded() {
    assert_eq!(shown("a\nb\"c"), "a\\nb\\\"c");
    let long = "x".repeat(10_000);
    assert!(shown(&long).len() <= 67);
    assert!(shown(&long).ends_with('…'));
    let e = VolumeId::parse(&format!("{long}\nforged line")).unwrap_err();
    assert!(!e.to_string().contains('\n') && e.to_string().len() < 200);
}
