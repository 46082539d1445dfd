//! Tier 1: the driver is killed (SIGKILL) at each step of create and delete and restarted;
//! acknowledged volumes survive, no device is left without a record, and a retry succeeds.

mod common;

use common::*;
use pmem_csi::proto::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_step_of_create_and_delete_loses_and_leaks_nothing() {
    for point in [
        "create-before-device",
        "create-after-device",
        "create-after-record",
        "create-after-ack",
        "delete-before-device",
        "delete-after-device",
        "delete-after-record",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("csi.sock");
        let is_delete = point.starts_with("delete");

        // An acknowledged volume, and for delete points the victim too, before any crash.
        let child = spawn_sim(dir.path(), &[]);
        let mut c = clients(&sock).await;
        let kept = c
            .controller
            .create_volume(create_req("kept", 128 << 20))
            .await
            .unwrap()
            .into_inner()
            .volume
            .unwrap()
            .volume_id;
        let victim = if is_delete {
            Some(
                c.controller
                    .create_volume(create_req("victim", 128 << 20))
                    .await
                    .unwrap()
                    .into_inner()
                    .volume
                    .unwrap()
                    .volume_id,
            )
        } else {
            None
        };
        stop(child);

        let mut child = spawn_sim(dir.path(), &[("PMEM_CSI_CRASH_AT", point)]);
        let mut c = clients(&sock).await;
        let r = match &victim {
            Some(id) => c
                .controller
                .delete_volume(DeleteVolumeRequest {
                    volume_id: id.clone(),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            None => c
                .controller
                .create_volume(create_req("victim", 128 << 20))
                .await
                .map(|_| ()),
        };
        assert!(r.is_err(), "{point}: the request must not be acknowledged");
        let status = child.wait().unwrap();
        assert!(!status.success(), "{point}: the driver was killed");

        let child = spawn_sim(dir.path(), &[]);
        let mut c = clients(&sock).await;
        let now = listed(&mut c).await;
        assert!(
            now.contains(&kept),
            "{point}: an acknowledged volume was lost"
        );
        assert_eq!(
            acknowledged_devices(dir.path()),
            now,
            "{point}: acknowledged devices and listed volumes disagree after restart"
        );
        // The client retries; it must succeed and end in the requested state.
        match &victim {
            Some(id) => {
                c.controller
                    .delete_volume(DeleteVolumeRequest {
                        volume_id: id.clone(),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                assert_eq!(listed(&mut c).await, vec![kept.clone()], "{point}");
            }
            None => {
                let id = c
                    .controller
                    .create_volume(create_req("victim", 128 << 20))
                    .await
                    .unwrap()
                    .into_inner()
                    .volume
                    .unwrap()
                    .volume_id;
                let mut want = vec![kept.clone(), id];
                want.sort();
                assert_eq!(listed(&mut c).await, want, "{point}");
            }
        }
        assert_eq!(
            sim_devices(dir.path()).len(),
            listed(&mut c).await.len(),
            "{point}: a device is left that no volume owns"
        );
        assert_eq!(
            acknowledged_devices(dir.path()),
            listed(&mut c).await,
            "{point}"
        );
        stop(child);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_does_not_take_the_server_down() {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_sim(dir.path(), &[]);
    let mut c = clients(&dir.path().join("csi.sock")).await;
    let huge = CreateVolumeRequest {
        name: "x".repeat(100_000),
        ..create_req("", 1)
    };
    assert!(c.controller.create_volume(huge).await.is_err());
    let weird = CreateVolumeRequest {
        capacity_range: Some(CapacityRange {
            required_bytes: i64::MAX,
            limit_bytes: 0,
        }),
        ..create_req("max", 0)
    };
    assert!(c.controller.create_volume(weird).await.is_err());
    assert_eq!(
        c.identity
            .probe(ProbeRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready,
        Some(true)
    );
    stop(child);
}
