//! Tier 1: CreateVolume from a volume content source (CLONE_VOLUME) through the real gRPC server, sim device manager.
//!
//! The simulator has no bytes, so these tests check the rules (codes,
//! idempotence, sizes, records, crashes); the copy itself is checked in the
//! VM (clone_vm.rs).

mod common;

use common::*;
use pmem_csi::driver::{Driver, SizeRange};
use pmem_csi::manager::NamespaceManager;
use pmem_csi::proto::controller_service_capability::{rpc::Type as CapType, Type};
use pmem_csi::proto::volume_capability::{AccessType, BlockVolume};
use pmem_csi::proto::*;
use pmem_csi::volume::Params;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tonic::Code;

const MIB: i64 = 1 << 20;

fn sim(dir: &Path) -> Arc<NamespaceManager<pmem_ndctl::alloc::Simulator>> {
    Arc::new(NamespaceManager::sim(&[4 << 30, 4 << 30], dir.join("sim.json")).unwrap())
}

async fn start(dir: &Path) -> Clients {
    serve_manager(dir, sim(dir)).await
}

fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> Code {
    r.map(|_| ())
        .map_err(|s| s.code())
        .err()
        .unwrap_or(Code::Ok)
}

fn from_volume(id: &str) -> Option<VolumeContentSource> {
    Some(VolumeContentSource {
        r#type: Some(volume_content_source::Type::Volume(
            volume_content_source::VolumeSource {
                volume_id: id.into(),
            },
        )),
    })
}

/// A clone request of `name` from volume `source`, `required` bytes.
fn clone_req(name: &str, source: &str, required: i64) -> CreateVolumeRequest {
    CreateVolumeRequest {
        volume_content_source: from_volume(source),
        ..create_req(name, required)
    }
}

async fn create(c: &mut Clients, req: CreateVolumeRequest) -> Volume {
    c.controller
        .create_volume(req)
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap()
}

fn source_of(v: &Volume) -> Option<String> {
    match v.content_source.as_ref()?.r#type.as_ref()? {
        volume_content_source::Type::Volume(s) => Some(s.volume_id.clone()),
        volume_content_source::Type::Snapshot(_) => None,
    }
}

#[tokio::test]
async fn clone_is_advertised_and_the_clone_names_its_source_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path()).await;
    let caps = c
        .controller
        .controller_get_capabilities(ControllerGetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(caps.capabilities.iter().any(|cap| matches!(
        cap.r#type,
        Some(Type::Rpc(ref r)) if r.r#type == CapType::CloneVolume as i32
    )));
    let src = create(&mut c, create_req("src", 64 * MIB)).await;
    assert_eq!(source_of(&src), None, "a plain volume has no source");
    let copy = create(&mut c, clone_req("copy", &src.volume_id, 64 * MIB)).await;
    assert_ne!(copy.volume_id, src.volume_id);
    assert_eq!(source_of(&copy).as_deref(), Some(src.volume_id.as_str()));
    assert!(copy.capacity_bytes >= src.capacity_bytes);
    let got = c
        .controller
        .controller_get_volume(ControllerGetVolumeRequest {
            volume_id: copy.volume_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert_eq!(source_of(&got).as_deref(), Some(src.volume_id.as_str()));
    let listed = entries(&mut c).await;
    let listed_copy = listed
        .iter()
        .filter_map(|e| e.volume.as_ref())
        .find(|v| v.volume_id == copy.volume_id)
        .unwrap();
    assert_eq!(
        source_of(listed_copy).as_deref(),
        Some(src.volume_id.as_str())
    );
}

#[tokio::test]
async fn missing_sources_are_not_found_even_on_another_node() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path()).await;
    // A volume of another driver instance (another node): its id is well formed, but not here.
    let other = tempfile::tempdir().unwrap();
    let mut o = start(other.path()).await;
    let theirs = create(&mut o, create_req("theirs", 64 * MIB)).await;
    for source in [
        theirs.volume_id.as_str(),
        "pmem-00000000000000000000000000000000",
        "not-a-volume-id",
        "../../etc/passwd",
    ] {
        let r = c
            .controller
            .create_volume(clone_req("copy", source, 64 * MIB))
            .await;
        assert_eq!(code(r), Code::NotFound, "source {source}");
    }
    assert_eq!(listed(&mut c).await, Vec::<String>::new(), "nothing made");
}

#[tokio::test]
async fn bad_sources_and_bad_fields_are_refused_before_anything_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path()).await;
    let src = create(&mut c, create_req("src", 64 * MIB)).await;
    let snapshot = Some(VolumeContentSource {
        r#type: Some(volume_content_source::Type::Snapshot(
            volume_content_source::SnapshotSource {
                snapshot_id: "snap-1".into(),
            },
        )),
    });
    let cases = [
        CreateVolumeRequest {
            volume_content_source: snapshot,
            ..create_req("copy", 64 * MIB)
        },
        CreateVolumeRequest {
            volume_content_source: Some(VolumeContentSource { r#type: None }),
            ..create_req("copy", 64 * MIB)
        },
        clone_req("copy", "", 64 * MIB),
        // A valid source with another field wrong: nothing happens either.
        CreateVolumeRequest {
            volume_capabilities: vec![],
            ..clone_req("copy", &src.volume_id, 64 * MIB)
        },
        CreateVolumeRequest {
            parameters: HashMap::from([("bogus".to_string(), "1".to_string())]),
            ..clone_req("copy", &src.volume_id, 64 * MIB)
        },
        clone_req("", &src.volume_id, 64 * MIB),
        CreateVolumeRequest {
            capacity_range: Some(CapacityRange {
                required_bytes: -1,
                limit_bytes: 0,
            }),
            ..clone_req("copy", &src.volume_id, 64 * MIB)
        },
        // A clone is the same kind of device as its source.
        CreateVolumeRequest {
            parameters: HashMap::from([("mode".to_string(), "devdax".to_string())]),
            volume_capabilities: vec![block_cap()],
            ..clone_req("copy", &src.volume_id, 64 * MIB)
        },
    ];
    for (i, req) in cases.into_iter().enumerate() {
        let r = c.controller.create_volume(req).await;
        assert_eq!(code(r), Code::InvalidArgument, "case {i}");
    }
    assert_eq!(listed(&mut c).await, vec![src.volume_id.clone()]);
}

fn block_cap() -> VolumeCapability {
    VolumeCapability {
        access_type: Some(AccessType::Block(BlockVolume {})),
        ..mount_cap()
    }
}

#[tokio::test]
async fn sizes_below_the_source_are_out_of_range_and_larger_ones_fine() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path()).await;
    let src = create(&mut c, create_req("src", 256 * MIB)).await;
    let size = src.capacity_bytes;
    let limited = CreateVolumeRequest {
        capacity_range: Some(CapacityRange {
            required_bytes: 0,
            limit_bytes: size - MIB,
        }),
        ..clone_req("small", &src.volume_id, 0)
    };
    assert_eq!(
        code(c.controller.create_volume(limited).await),
        Code::OutOfRange
    );
    // No size given: the source's size (not the default of 1 GiB).
    let same = create(&mut c, clone_req("same", &src.volume_id, 0)).await;
    assert_eq!(same.capacity_bytes, size);
    // A smaller required size the range lets grow: the source's size.
    let raised = create(&mut c, clone_req("raised", &src.volume_id, 64 * MIB)).await;
    assert_eq!(raised.capacity_bytes, size);
    let larger = create(&mut c, clone_req("larger", &src.volume_id, 2 * size)).await;
    assert!(larger.capacity_bytes >= 2 * size);
    let mut want = vec![
        src.volume_id,
        same.volume_id,
        raised.volume_id,
        larger.volume_id,
    ];
    want.sort();
    assert_eq!(listed(&mut c).await, want, "the refused one was not made");
}

#[tokio::test]
async fn clones_are_idempotent_by_name_and_source() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path()).await;
    let a = create(&mut c, create_req("a", 64 * MIB)).await;
    let b = create(&mut c, create_req("b", 64 * MIB)).await;
    let copy = create(&mut c, clone_req("copy", &a.volume_id, 64 * MIB)).await;
    let again = create(&mut c, clone_req("copy", &a.volume_id, 64 * MIB)).await;
    assert_eq!(again, copy, "a retry returns the same volume");
    for (what, req) in [
        ("another source", clone_req("copy", &b.volume_id, 64 * MIB)),
        ("no source", create_req("copy", 64 * MIB)),
        (
            "a plain volume's name",
            clone_req("b", &a.volume_id, 64 * MIB),
        ),
    ] {
        assert_eq!(
            code(c.controller.create_volume(req).await),
            Code::AlreadyExists,
            "{what}"
        );
    }
    // The source deleted: the clone stays, a retry still returns it, a new clone is NOT_FOUND.
    c.controller
        .delete_volume(DeleteVolumeRequest {
            volume_id: a.volume_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let after = create(&mut c, clone_req("copy", &a.volume_id, 64 * MIB)).await;
    assert_eq!(after, copy);
    assert_eq!(
        code(
            c.controller
                .create_volume(clone_req("copy2", &a.volume_id, 64 * MIB))
                .await
        ),
        Code::NotFound
    );
}

#[tokio::test]
async fn the_source_is_locked_while_it_is_copied() {
    let dir = tempfile::tempdir().unwrap();
    let (d, _) = Driver::start(
        "pmem-csi.test".into(),
        "node-a".into(),
        sim(dir.path()),
        pmem_csi::state::StateStore::open(dir.path()).unwrap(),
    )
    .unwrap();
    let range = SizeRange::parse(64 * MIB, 0).unwrap();
    let src = d.create_volume("src", range, Params::default()).unwrap();
    let held = d.lock_volume(&[src.id.as_str()]).unwrap();
    let e = d
        .clone_volume("copy", range, Params::default(), src.id.as_str())
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted, "{e}");
    drop(held);
    let copy = d
        .clone_volume("copy", range, Params::default(), src.id.as_str())
        .unwrap();
    assert_eq!(copy.source, Some(src.id));
}

/// The driver killed before and after the copy: the clone is not
/// acknowledged, nothing is lost or leaked, and the retry makes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clone_killed_mid_way_is_not_acknowledged_and_the_retry_makes_it() {
    for point in [
        "create-after-device",
        "clone-before-copy",
        "clone-after-copy",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("csi.sock");
        let child = spawn_sim(dir.path(), &[]);
        let mut c = clients(&sock).await;
        let src = create(&mut c, create_req("src", 128 * MIB)).await;
        stop(child);

        let mut child = spawn_sim(dir.path(), &[("PMEM_CSI_CRASH_AT", point)]);
        let mut c = clients(&sock).await;
        let r = c
            .controller
            .create_volume(clone_req("copy", &src.volume_id, 128 * MIB))
            .await;
        assert!(r.is_err(), "{point}: the clone must not be acknowledged");
        assert!(!child.wait().unwrap().success(), "{point}: killed");

        let child = spawn_sim(dir.path(), &[]);
        let mut c = clients(&sock).await;
        assert_eq!(
            listed(&mut c).await,
            vec![src.volume_id.clone()],
            "{point}: only the source is a volume"
        );
        let copy = create(&mut c, clone_req("copy", &src.volume_id, 128 * MIB)).await;
        assert_eq!(
            source_of(&copy).as_deref(),
            Some(src.volume_id.as_str()),
            "{point}"
        );
        let mut want = vec![src.volume_id.clone(), copy.volume_id.clone()];
        want.sort();
        assert_eq!(listed(&mut c).await, want, "{point}");
        assert_eq!(acknowledged_devices(dir.path()), want, "{point}");
        assert_eq!(sim_devices(dir.path()).len(), 2, "{point}: nothing leaked");
        stop(child);
    }
}
