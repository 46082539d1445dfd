//! Tier 1: the driver tried as an attacker and as bad luck would, through real gRPC on the driver binary (sim mode).
//!
//! Each test names what it proves: acknowledged volumes outlive a lost state
//! directory, a missing device and a crash; pending devices wait for their
//! retry and only then go; node paths outside the kubelet directory, and
//! files the driver did not make, are never touched; bad requests get
//! exact codes.

mod common;

use common::*;
use pmem_csi::proto::volume_capability::{access_mode::Mode, AccessMode, AccessType, BlockVolume};
use pmem_csi::proto::*;
use std::path::Path;
use tonic::Code;

async fn create(c: &mut Clients, name: &str) -> String {
    c.controller
        .create_volume(create_req(name, 128 << 20))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap()
        .volume_id
}

fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> Code {
    r.expect_err("the request must fail").code()
}

async fn condition(c: &mut Clients, id: &str) -> VolumeCondition {
    c.controller
        .controller_get_volume(ControllerGetVolumeRequest {
            volume_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap()
        .volume_condition
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_dir_lost_keeps_every_volume() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("csi.sock");
    let child = spawn_sim(dir.path(), &[]);
    let mut c = clients(&sock).await;
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(create(&mut c, &format!("pvc-{i}")).await);
    }
    ids.sort();
    stop(child);
    // The state directory's records vanish (a changed hostPath, a reinstalled node).
    std::fs::remove_dir_all(dir.path().join("volumes")).unwrap();
    let child = spawn_sim(dir.path(), &[]);
    let mut c = clients(&sock).await;
    assert_eq!(listed(&mut c).await, ids, "every volume is still served");
    assert_eq!(
        acknowledged_devices(dir.path()),
        ids,
        "no device was erased"
    );
    // The records were rebuilt from the devices: names and parameters too.
    let again = c
        .controller
        .create_volume(create_req("pvc-3", 128 << 20))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert!(ids.contains(&again.volume_id));
    assert_eq!(
        again.volume_context.get("eraseAfter").map(String::as_str),
        Some("true")
    );
    stop(child);
}

/// Takes the namespace of volume `id` out of the simulator's saved state
/// (a region disabled while the driver was down) and returns the old text.
fn hide_device(dir: &Path, id: &str) -> String {
    let path = dir.join("sim-regions.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    fn strip(v: &mut serde_json::Value, id: &str) {
        match v {
            serde_json::Value::Array(a) => {
                a.retain(|x| {
                    !x.get("name")
                        .and_then(|n| n.as_str())
                        .is_some_and(|n| n.starts_with(id))
                });
                a.iter_mut().for_each(|x| strip(x, id));
            }
            serde_json::Value::Object(o) => o.values_mut().for_each(|x| strip(x, id)),
            _ => {}
        }
    }
    strip(&mut v, id);
    std::fs::write(&path, v.to_string()).unwrap();
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_missing_at_start_is_served_when_back() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("csi.sock");
    let child = spawn_sim(dir.path(), &[]);
    let mut c = clients(&sock).await;
    let gone = create(&mut c, "pvc-gone").await;
    let other = create(&mut c, "pvc-other").await;
    stop(child);
    let saved = hide_device(dir.path(), &gone);

    let child = spawn_sim(dir.path(), &[]);
    let mut c = clients(&sock).await;
    let mut want = vec![gone.clone(), other.clone()];
    want.sort();
    assert_eq!(
        listed(&mut c).await,
        want,
        "the record is kept, not forgotten"
    );
    let cond = condition(&mut c, &gone).await;
    assert!(
        cond.abnormal && cond.message.contains("missing"),
        "{cond:?}"
    );
    assert!(!condition(&mut c, &other).await.abnormal);
    let list = entries(&mut c).await;
    let entry = list
        .iter()
        .find(|e| e.volume.as_ref().unwrap().volume_id == gone)
        .unwrap();
    assert!(
        entry
            .status
            .as_ref()
            .unwrap()
            .volume_condition
            .as_ref()
            .unwrap()
            .abnormal
    );
    // Deleting it now could not erase it: the client is told to retry.
    let del = c
        .controller
        .delete_volume(DeleteVolumeRequest {
            volume_id: gone.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(code(del), Code::Unavailable);
    stop(child);

    // A second start with the device still missing forgets nothing either.
    let child = spawn_sim(dir.path(), &[]);
    let mut c = clients(&sock).await;
    assert_eq!(listed(&mut c).await, want);
    stop(child);

    // The region is back: the volume is served again, healthy.
    std::fs::write(dir.path().join("sim-regions.json"), saved).unwrap();
    let child = spawn_sim(dir.path(), &[]);
    let mut c = clients(&sock).await;
    assert_eq!(listed(&mut c).await, want);
    assert!(!condition(&mut c, &gone).await.abnormal);
    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_device_is_claimed_by_a_retry_and_orphans_go_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("csi.sock");
    let child = spawn_sim(dir.path(), &[]);
    let mut c = clients(&sock).await;
    let kept = create(&mut c, "acknowledged").await;
    stop(child);
    // Two creates that die after making their device, before answering.
    for name in ["retried", "abandoned"] {
        let mut child = spawn_sim(dir.path(), &[("PMEM_CSI_CRASH_AT", "create-after-device")]);
        let mut c = clients(&sock).await;
        assert!(c
            .controller
            .create_volume(create_req(name, 128 << 20))
            .await
            .is_err());
        let _ = child.wait();
    }
    assert_eq!(sim_devices(dir.path()).len(), 3);
    assert_eq!(acknowledged_devices(dir.path()), vec![kept.clone()]);

    // A long grace: the retry by name claims its pending device.
    let child = spawn_sim_with(dir.path(), &[], &["--orphan-grace", "600"]);
    let mut c = clients(&sock).await;
    let retried = create(&mut c, "retried").await;
    assert!(sim_devices(dir.path()).contains(&(retried.clone(), true)));
    assert_eq!(
        sim_devices(dir.path()).len(),
        3,
        "the retry made no second device"
    );
    stop(child);

    // A grace of one second: the abandoned device goes, nothing acknowledged does.
    let child = spawn_sim_with(dir.path(), &[], &["--orphan-grace", "1"]);
    let mut c = clients(&sock).await;
    let mut left = Vec::new();
    for _ in 0..100 {
        left = sim_devices(dir.path());
        if left.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut want = vec![(kept.clone(), true), (retried.clone(), true)];
    want.sort();
    assert_eq!(left, want, "only the unclaimed pending device was removed");
    let mut ids = vec![kept, retried];
    ids.sort();
    assert_eq!(listed(&mut c).await, ids);
    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_or_future_state_stops_the_driver_and_deletes_nothing() {
    for bad in ["{ not json", r#"{"format": 99, "id": "pmem-0"}"#] {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("csi.sock");
        let child = spawn_sim(dir.path(), &[]);
        let mut c = clients(&sock).await;
        let id = create(&mut c, "precious").await;
        stop(child);
        let file = dir.path().join(format!("volumes/{id}.json"));
        std::fs::write(&file, bad).unwrap();
        let before = std::fs::read(dir.path().join("sim-regions.json")).unwrap();
        let out = std::process::Command::new(driver_bin())
            .args([
                "--endpoint",
                &format!("unix://{}", sock.display()),
                "--node-id",
                "n",
                "--device-manager",
                "sim",
                "--sim-regions",
                "2x4G",
                "--state-dir",
                dir.path().to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&file.display().to_string()), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join("sim-regions.json")).unwrap(),
            before,
            "no device touched"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpublish_outside_kubelet_dir_is_refused_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let sock = dir.path().join("csi.sock");
    let kubelet = dir.path().join("kubelet");
    std::fs::create_dir(&kubelet).unwrap();
    let child = spawn_sim_with(
        dir.path(),
        &[],
        &["--kubelet-dir", kubelet.to_str().unwrap()],
    );
    let mut c = clients(&sock).await;
    let id = create(&mut c, "vol").await;
    let victim = outside.path().join("victim");
    std::fs::write(&victim, b"root's file").unwrap();
    let empty_dir = outside.path().join("empty");
    std::fs::create_dir(&empty_dir).unwrap();
    std::os::unix::fs::symlink(outside.path(), kubelet.join("link")).unwrap();
    let k = kubelet.display();
    for target in [
        victim.display().to_string(),
        empty_dir.display().to_string(),
        format!("{k}/link/victim"),
        format!("{k}/link"),
        format!("{k}/../kubelet/x"),
        "relative/x".into(),
        format!("{k}/a\0b"),
    ] {
        let r = c
            .node
            .node_unpublish_volume(NodeUnpublishVolumeRequest {
                volume_id: id.clone(),
                target_path: target.clone(),
            })
            .await;
        assert_eq!(code(r), Code::InvalidArgument, "{target:?}");
        let r = c
            .node
            .node_unstage_volume(NodeUnstageVolumeRequest {
                volume_id: id.clone(),
                staging_target_path: target.clone(),
            })
            .await;
        assert_eq!(code(r), Code::InvalidArgument, "{target:?}");
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"root's file");
    assert!(empty_dir.is_dir());

    // Inside the kubelet directory, what the driver did not make stays too.
    let foreign_file = kubelet.join("pods-file");
    std::fs::write(&foreign_file, b"kubelet's").unwrap();
    let foreign_dir = kubelet.join("pods-dir");
    std::fs::create_dir(&foreign_dir).unwrap();
    for p in [&foreign_file, &foreign_dir] {
        c.node
            .node_unpublish_volume(NodeUnpublishVolumeRequest {
                volume_id: id.clone(),
                target_path: p.display().to_string(),
            })
            .await
            .unwrap();
        c.node
            .node_unstage_volume(NodeUnstageVolumeRequest {
                volume_id: id.clone(),
                staging_target_path: p.display().to_string(),
            })
            .await
            .unwrap();
    }
    assert_eq!(std::fs::read(&foreign_file).unwrap(), b"kubelet's");
    assert!(foreign_dir.is_dir());
    // Stats answer only where the volume is published.
    let r = c
        .node
        .node_get_volume_stats(NodeGetVolumeStatsRequest {
            volume_id: id.clone(),
            volume_path: foreign_dir.display().to_string(),
            ..Default::default()
        })
        .await;
    assert_eq!(code(r), Code::NotFound);
    stop(child);
}

fn block_cap() -> VolumeCapability {
    VolumeCapability {
        access_mode: Some(AccessMode {
            mode: Mode::SingleNodeWriter as i32,
        }),
        access_type: Some(AccessType::Block(BlockVolume {})),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_exact_codes() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("csi.sock");
    let child = spawn_sim(dir.path(), &[]);
    let mut c = clients(&sock).await;
    // A limit below the smallest device the node can make.
    let tiny = CreateVolumeRequest {
        capacity_range: Some(CapacityRange {
            required_bytes: 0,
            limit_bytes: 1,
        }),
        ..create_req("tiny", 0)
    };
    assert_eq!(
        code(c.controller.create_volume(tiny).await),
        Code::OutOfRange
    );
    // A range the device fits: acknowledged within it, never above the device.
    let exact = CreateVolumeRequest {
        capacity_range: Some(CapacityRange {
            required_bytes: 100 << 20,
            limit_bytes: 100 << 20,
        }),
        ..create_req("exact", 0)
    };
    let v = c
        .controller
        .create_volume(exact)
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert_eq!(v.capacity_bytes, 100 << 20);
    // xfs cannot be made below 300 MiB: a smaller request gets that much, a lower limit is refused.
    let mut xfs = mount_cap();
    if let Some(AccessType::Mount(m)) = xfs.access_type.as_mut() {
        m.fs_type = "xfs".into();
    }
    let small_xfs = CreateVolumeRequest {
        volume_capabilities: vec![xfs.clone()],
        ..create_req("small-xfs", 64 << 20)
    };
    let v = c
        .controller
        .create_volume(small_xfs)
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert!(
        v.capacity_bytes >= 300 << 20,
        "xfs volume of {} bytes",
        v.capacity_bytes
    );
    let capped_xfs = CreateVolumeRequest {
        volume_capabilities: vec![xfs],
        capacity_range: Some(CapacityRange {
            required_bytes: 64 << 20,
            limit_bytes: 256 << 20,
        }),
        ..create_req("capped-xfs", 0)
    };
    let err = c.controller.create_volume(capped_xfs).await.unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange);
    assert!(err.message().contains("xfs"), "{}", err.message());
    // devdax is a character device: no filesystem mount.
    let devdax = CreateVolumeRequest {
        parameters: [("mode".to_string(), "devdax".to_string())].into(),
        ..create_req("dd", 128 << 20)
    };
    assert_eq!(
        code(c.controller.create_volume(devdax.clone()).await),
        Code::InvalidArgument
    );
    let dd = c
        .controller
        .create_volume(CreateVolumeRequest {
            volume_capabilities: vec![block_cap()],
            ..devdax
        })
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    // Validation with parameters the driver does not accept, or another mode: not confirmed.
    for params in [
        [("unknownKey".to_string(), "1".to_string())].into(),
        [("mode".to_string(), "fsdax".to_string())].into(),
    ] {
        let r = c
            .controller
            .validate_volume_capabilities(ValidateVolumeCapabilitiesRequest {
                volume_id: dd.volume_id.clone(),
                volume_capabilities: vec![block_cap()],
                parameters: params,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.confirmed.is_none() && !r.message.is_empty(), "{r:?}");
    }
    let r = c
        .controller
        .validate_volume_capabilities(ValidateVolumeCapabilitiesRequest {
            volume_id: dd.volume_id.clone(),
            volume_capabilities: vec![mount_cap()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.confirmed.is_none(), "a devdax volume cannot be mounted");
    stop(child);
}

#[test]
fn absurd_sim_regions_are_refused_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    for spec in ["1000000000x64G", "1x99999999999999999999G", "3x1K", "x", ""] {
        let out = std::process::Command::new(driver_bin())
            .args([
                "--endpoint",
                &format!("unix://{}/s.sock", dir.path().display()),
                "--node-id",
                "n",
                "--device-manager",
                "sim",
                "--sim-regions",
                spec,
                "--state-dir",
                dir.path().to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{spec}: {err}");
        assert!(err.contains("regions"), "{spec}: {err}");
        assert!(!err.contains("panicked"), "{spec}: {err}");
    }
}
