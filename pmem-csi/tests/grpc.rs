//! Tier 1: every service method through a real tonic server on a unix socket, sim device manager.

mod common;

use common::*;
use pmem_csi::manager::NamespaceManager;
use pmem_csi::proto::*;
use std::collections::HashMap;
use std::sync::Arc;
use tonic::Code;

const MIB: i64 = 1 << 20;
const GIB: i64 = 1 << 30;

/// Serves a sim driver (two 4 GiB regions) in `dir` and returns its clients.
async fn start(dir: &std::path::Path) -> Clients {
    let manager =
        Arc::new(NamespaceManager::sim(&[4 << 30, 4 << 30], dir.join("sim.json")).unwrap());
    serve_manager(dir, manager).await
}

fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> Code {
    r.map(|_| ())
        .map_err(|s| s.code())
        .err()
        .unwrap_or(Code::Ok)
}

#[tokio::test]
async fn identity_reports_name_capabilities_and_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path()).await;
    let info = c
        .identity
        .get_plugin_info(GetPluginInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.name, "pmem-csi.test");
    assert_eq!(info.vendor_version, env!("CARGO_PKG_VERSION"));
    let caps = c
        .identity
        .get_plugin_capabilities(GetPluginCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(caps.capabilities.len() >= 2);
    let probe = c
        .identity
        .probe(ProbeRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(probe.ready, Some(true));
}

#[tokio::test]
async fn create_is_idempotent_and_conflicts_are_already_exists() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path()).await;
    let v1 = c
        .controller
        .create_volume(create_req("vol-a", 64 * MIB))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert!(v1.capacity_bytes >= 64 * MIB);
    assert!(v1.volume_id.starts_with("pmem-") && !v1.volume_id.contains('/'));
    assert_eq!(
        v1.accessible_topology[0]
            .segments
            .get("pmem-csi.test/node")
            .map(String::as_str),
        Some("node-a")
    );
    let v2 = c
        .controller
        .create_volume(create_req("vol-a", 64 * MIB))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert_eq!(v1.volume_id, v2.volume_id);
    let mut bigger = create_req("vol-a", 2 * GIB);
    bigger.capacity_range.as_mut().unwrap().limit_bytes = 2 * GIB;
    assert_eq!(
        code(c.controller.create_volume(bigger).await),
        Code::AlreadyExists
    );
    let mut other = create_req("vol-a", 64 * MIB);
    other.parameters = HashMap::from([("eraseAfter".into(), "false".into())]);
    assert_eq!(
        code(c.controller.create_volume(other).await),
        Code::AlreadyExists
    );
    // Exact sizes with limit == required are honoured.
    let mut exact = create_req("vol-exact", 64 * MIB);
    exact.capacity_range.as_mut().unwrap().limit_bytes = 64 * MIB;
    let v = c
        .controller
        .create_volume(exact)
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert_eq!(v.capacity_bytes, 64 * MIB);
}

#[tokio::test]
async fn invalid_requests_are_invalid_argument() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path()).await;
    let cases: Vec<(&str, CreateVolumeRequest)> = vec![
        ("no name", create_req("", 64 * MIB)),
        (
            "no capabilities",
            CreateVolumeRequest {
                volume_capabilities: vec![],
                ..create_req("x", 64 * MIB)
            },
        ),
        (
            "unknown parameter",
            CreateVolumeRequest {
                parameters: HashMap::from([("fsType".into(), "ext4".into())]),
                ..create_req("x", 64 * MIB)
            },
        ),
        (
            "multi-node access",
            CreateVolumeRequest {
                volume_capabilities: vec![VolumeCapability {
                    access_mode: Some(volume_capability::AccessMode {
                        mode: volume_capability::access_mode::Mode::MultiNodeMultiWriter as i32,
                    }),
                    ..mount_cap()
                }],
                ..create_req("x", 64 * MIB)
            },
        ),
        (
            "content source",
            CreateVolumeRequest {
                volume_content_source: Some(VolumeContentSource {
                    r#type: Some(volume_content_source::Type::Snapshot(
                        volume_content_source::SnapshotSource {
                            snapshot_id: "s".into(),
                        },
                    )),
                }),
                ..create_req("x", 64 * MIB)
            },
        ),
        ("negative size", create_req("x", -1)),
        ("name too long", create_req(&"n".repeat(129), 64 * MIB)),
    ];
    for (what, req) in cases {
        assert_eq!(
            code(c.controller.create_volume(req).await),
            Code::InvalidArgument,
            "{what}"
        );
    }
    assert_eq!(
        code(
            c.controller
                .delete_volume(DeleteVolumeRequest::default())
                .await
        ),
        Code::InvalidArgument
    );
    assert_eq!(
        code(
            c.node
                .node_publish_volume(NodePublishVolumeRequest {
                    volume_id: "x".into(),
                    target_path: "rel/../x".into(),
                    volume_capability: Some(mount_cap()),
                    ..Default::default()
                })
                .await
        ),
        Code::InvalidArgument
    );
}

#[tokio::test]
async fn sizes_beyond_the_node_are_out_of_range_and_lack_of_space_is_exhausted() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path()).await;
    assert_eq!(
        code(
            c.controller
                .create_volume(create_req("huge", 64 * GIB))
                .await
        ),
        Code::OutOfRange
    );
    // Each region holds one 3 GiB volume; the third cannot fit anywhere.
    c.controller
        .create_volume(create_req("big-1", 3 * GIB))
        .await
        .unwrap();
    c.controller
        .create_volume(create_req("big-2", 3 * GIB))
        .await
        .unwrap();
    assert_eq!(
        code(
            c.controller
                .create_volume(create_req("big-3", 3 * GIB))
                .await
        ),
        Code::ResourceExhausted
    );
    let cap = c
        .controller
        .get_capacity(GetCapacityRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(cap.available_capacity > 0 && cap.maximum_volume_size.unwrap() < 3 * GIB);
}

#[tokio::test]
async fn delete_is_idempotent_and_unknown_ids_are_handled_per_method() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path()).await;
    let id = c
        .controller
        .create_volume(create_req("vol-d", 64 * MIB))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap()
        .volume_id;
    for _ in 0..2 {
        c.controller
            .delete_volume(DeleteVolumeRequest {
                volume_id: id.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    c.controller
        .delete_volume(DeleteVolumeRequest {
            volume_id: "../not-ours".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let get = c
        .controller
        .controller_get_volume(ControllerGetVolumeRequest {
            volume_id: id.clone(),
        })
        .await;
    assert_eq!(code(get), Code::NotFound);
    let validate = ValidateVolumeCapabilitiesRequest {
        volume_id: id.clone(),
        volume_capabilities: vec![mount_cap()],
        ..Default::default()
    };
    assert_eq!(
        code(c.controller.validate_volume_capabilities(validate).await),
        Code::NotFound
    );
    // Volumes grow on their node: the controller has no expansion for any id
    // (NodeExpandVolume of unknown ids: tests/expand.rs).
    let expand = ControllerExpandVolumeRequest {
        volume_id: id.clone(),
        capacity_range: Some(CapacityRange {
            required_bytes: GIB,
            limit_bytes: 0,
        }),
        ..Default::default()
    };
    assert_eq!(
        code(c.controller.controller_expand_volume(expand).await),
        Code::Unimplemented
    );
    let unpublish = NodeUnpublishVolumeRequest {
        volume_id: id,
        target_path: dir.path().join("x").display().to_string(),
    };
    assert_eq!(
        code(c.node.node_unpublish_volume(unpublish).await),
        Code::NotFound
    );
}

#[tokio::test]
async fn validate_list_paging_get_and_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path()).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            c.controller
                .create_volume(create_req(&format!("v{i}"), 64 * MIB))
                .await
                .unwrap()
                .into_inner()
                .volume
                .unwrap()
                .volume_id,
        );
    }
    let ok = ValidateVolumeCapabilitiesRequest {
        volume_id: ids[0].clone(),
        volume_capabilities: vec![mount_cap()],
        ..Default::default()
    };
    assert!(c
        .controller
        .validate_volume_capabilities(ok)
        .await
        .unwrap()
        .into_inner()
        .confirmed
        .is_some());
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .controller
            .list_volumes(ListVolumesRequest {
                max_entries: 2,
                starting_token: token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.entries.len() <= 2);
        seen.extend(
            page.entries
                .into_iter()
                .map(|e| e.volume.unwrap().volume_id),
        );
        if page.next_token.is_empty() {
            break;
        }
        token = page.next_token;
    }
    ids.sort();
    assert_eq!(seen, ids);
    let bad = ListVolumesRequest {
        max_entries: 0,
        starting_token: "nonsense".into(),
    };
    assert_eq!(code(c.controller.list_volumes(bad).await), Code::Aborted);
    let got = c
        .controller
        .controller_get_volume(ControllerGetVolumeRequest {
            volume_id: ids[1].clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.volume.unwrap().volume_id, ids[1]);
    let elsewhere = GetCapacityRequest {
        accessible_topology: Some(Topology {
            segments: HashMap::from([("pmem-csi.test/node".into(), "node-b".into())]),
        }),
        ..Default::default()
    };
    assert_eq!(
        c.controller
            .get_capacity(elsewhere)
            .await
            .unwrap()
            .into_inner()
            .available_capacity,
        0
    );
    let bad_param = GetCapacityRequest {
        parameters: HashMap::from([("mode".into(), "sector".into())]),
        ..Default::default()
    };
    assert_eq!(
        code(c.controller.get_capacity(bad_param).await),
        Code::InvalidArgument
    );
}

#[tokio::test]
async fn concurrent_creates_of_one_name_make_one_volume() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path()).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut ctl = c.controller.clone();
        tasks.push(tokio::spawn(async move {
            ctl.create_volume(create_req("same", 256 * MIB)).await
        }));
    }
    let mut ok_ids = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => ok_ids.push(r.into_inner().volume.unwrap().volume_id),
            Err(s) => assert_eq!(s.code(), Code::Aborted, "{s}"),
        }
    }
    assert!(!ok_ids.is_empty());
    ok_ids.dedup();
    assert_eq!(ok_ids.len(), 1);
    assert_eq!(entries(&mut c).await.len(), 1);
}

#[tokio::test]
async fn node_info_and_capabilities() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path()).await;
    let info = c
        .node
        .node_get_info(NodeGetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.node_id, "node-a");
    assert_eq!(
        info.accessible_topology.unwrap().segments["pmem-csi.test/node"],
        "node-a"
    );
    let caps = c
        .node
        .node_get_capabilities(NodeGetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(caps.capabilities.len() >= 3);
}
