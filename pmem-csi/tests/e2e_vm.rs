//! Tier 3, inside the emulated-PMEM VM: the driver end to end through its gRPC socket, in lvm
//! and direct modes, with real namespaces, LVM, mkfs and DAX mounts.

mod common;
mod vm;

use common::*;
use pmem_csi::proto::*;
use std::collections::HashMap;
use std::path::Path;
use vm::*;

async fn lifecycle(mode: &'static str) {
    reset();
    let d = Driver::start(mode);
    let mut c = clients(&d.sock).await;

    // A filesystem volume: DAX mount, data through the mount.
    for fs in ["ext4", "xfs"] {
        let cap = fs_cap(fs);
        let v = create(&mut c, &format!("{mode}-{fs}"), 512 * MIB, cap.clone()).await;
        let (staging, target) = stage_publish(&mut c, &v, &cap, fs).await;
        let opts = mount_options(&staging).expect("staged");
        assert!(
            opts.split(',').any(|o| o.starts_with("dax")),
            "{mode} {fs}: staging mount without dax: {opts}"
        );
        std::fs::write(target.join("hello"), b"persistent memory").expect("write");
        assert_eq!(
            std::fs::read(staging.join("hello")).expect("read"),
            b"persistent memory"
        );
        let stats = c
            .node
            .node_get_volume_stats(NodeGetVolumeStatsRequest {
                volume_id: v.volume_id.clone(),
                volume_path: target.display().to_string(),
                ..Default::default()
            })
            .await
            .expect("stats")
            .into_inner();
        assert!(stats.usage[0].total > 400 * MIB, "{stats:?}");
        assert_eq!(stats.volume_condition.map(|c| c.abnormal), Some(false));
        unpublish_unstage_delete(&mut c, &v, &staging, &target).await;
    }

    // A raw block volume.
    let cap = block_cap();
    let v = create(&mut c, &format!("{mode}-block"), 64 * MIB, cap.clone()).await;
    let target = Path::new(WORK).join("block-target");
    for _ in 0..2 {
        c.node
            .node_publish_volume(NodePublishVolumeRequest {
                volume_id: v.volume_id.clone(),
                target_path: target.display().to_string(),
                volume_capability: Some(cap.clone()),
                ..Default::default()
            })
            .await
            .expect("publish block");
    }
    let pattern: Vec<u8> = (0..(1 << 20)).map(|i: u32| (i * 7 % 251) as u8).collect();
    {
        use std::io::{Read, Write};
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&target)
            .expect("open block target");
        f.write_all(&pattern).expect("write block");
        f.sync_all().expect("sync");
        let mut back = vec![0u8; pattern.len()];
        let mut r = std::fs::File::open(&target).expect("reopen");
        r.read_exact(&mut back).expect("read block");
        assert_eq!(back, pattern);
    }
    c.node
        .node_unpublish_volume(NodeUnpublishVolumeRequest {
            volume_id: v.volume_id.clone(),
            target_path: target.display().to_string(),
        })
        .await
        .expect("unpublish block");
    assert!(!target.exists());
    c.controller
        .delete_volume(DeleteVolumeRequest {
            volume_id: v.volume_id.clone(),
            ..Default::default()
        })
        .await
        .expect("delete block");

    // An ephemeral inline volume: one publish creates, stages and mounts it; unpublish deletes it.
    let target = Path::new(WORK).join("ephemeral-target");
    let ctx = HashMap::from([
        (
            "csi.storage.k8s.io/ephemeral".to_string(),
            "true".to_string(),
        ),
        ("size".to_string(), "128Mi".to_string()),
    ]);
    c.node
        .node_publish_volume(NodePublishVolumeRequest {
            volume_id: "csi-0123456789abcdef".into(),
            target_path: target.display().to_string(),
            volume_capability: Some(mount_cap()),
            volume_context: ctx,
            ..Default::default()
        })
        .await
        .expect("ephemeral publish");
    assert!(mount_options(&target).is_some());
    std::fs::write(target.join("scratch"), b"x").expect("write ephemeral");
    assert_eq!(entries(&mut c).await.len(), 1);
    c.node
        .node_unpublish_volume(NodeUnpublishVolumeRequest {
            volume_id: "csi-0123456789abcdef".into(),
            target_path: target.display().to_string(),
        })
        .await
        .expect("ephemeral unpublish");
    assert!(entries(&mut c).await.is_empty());

    // Killed and restarted in the middle of a lifecycle: the volume is still served.
    let cap = mount_cap();
    let v = create(&mut c, &format!("{mode}-survivor"), 256 * MIB, cap.clone()).await;
    let (staging, target) = stage_publish(&mut c, &v, &cap, "survivor").await;
    std::fs::write(target.join("before"), b"kill").expect("write");
    d.kill();
    let d = Driver::start(mode);
    let mut c = clients(&d.sock).await;
    let got = c
        .controller
        .controller_get_volume(ControllerGetVolumeRequest {
            volume_id: v.volume_id.clone(),
        })
        .await
        .expect("still served")
        .into_inner();
    assert_eq!(got.volume.map(|x| x.capacity_bytes), Some(v.capacity_bytes));
    let (staging2, target2) = stage_publish(&mut c, &v, &cap, "survivor").await;
    assert_eq!((staging2, &target2), (staging.clone(), &target));
    assert_eq!(
        std::fs::read(target.join("before")).expect("read after restart"),
        b"kill"
    );

    let grow = NodeExpandVolumeRequest {
        volume_id: v.volume_id.clone(),
        volume_path: target.display().to_string(),
        capacity_range: Some(CapacityRange {
            required_bytes: 512 * MIB,
            limit_bytes: 0,
        }),
        volume_capability: Some(cap.clone()),
        ..Default::default()
    };
    if mode == "lvm" {
        // Online expansion, all on the node: the LV grows, then the mounted filesystem.
        let n = c
            .node
            .node_expand_volume(grow.clone())
            .await
            .expect("node expand")
            .into_inner();
        assert!(
            n.capacity_bytes >= 512 * MIB,
            "device grew to {}",
            n.capacity_bytes
        );
        let again = c
            .node
            .node_expand_volume(grow)
            .await
            .expect("node expand again")
            .into_inner();
        assert_eq!(again.capacity_bytes, n.capacity_bytes, "idempotent");
        let stats = c
            .node
            .node_get_volume_stats(NodeGetVolumeStatsRequest {
                volume_id: v.volume_id.clone(),
                volume_path: target.display().to_string(),
                staging_target_path: String::new(),
            })
            .await
            .expect("stats after growth")
            .into_inner();
        let total = stats.usage[0].total;
        assert!(total > 400 * MIB, "filesystem grew to {total}");
        assert_eq!(
            std::fs::read(target.join("before")).expect("read after growth"),
            b"kill"
        );
    } else {
        // One namespace per volume cannot grow: no expansion is offered or done.
        let refused = c
            .node
            .node_expand_volume(grow)
            .await
            .expect_err("direct volumes cannot grow");
        assert_eq!(refused.code(), tonic::Code::Unimplemented, "{refused:?}");
    }
    unpublish_unstage_delete(&mut c, &v, &staging, &target).await;
    assert!(entries(&mut c).await.is_empty());
    assert_eq!(d.mode, mode);
    d.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
async fn vm_csi_lifecycle_lvm() {
    lifecycle("lvm").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
async fn vm_csi_lifecycle_direct() {
    lifecycle("direct").await;
}

async fn stress(mode: &'static str, volumes: usize) {
    reset();
    let d = Driver::start(mode);
    let mut c = clients(&d.sock).await;
    let mut tasks = Vec::new();
    for client in 0..10 {
        let mut ctl = c.controller.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..volumes / 10 {
                let v = ctl
                    .create_volume(create_req(&format!("stress-{client}-{i}"), 64 * MIB))
                    .await
                    .map_err(|e| format!("create: {e}"))?
                    .into_inner()
                    .volume
                    .unwrap();
                ctl.delete_volume(DeleteVolumeRequest {
                    volume_id: v.volume_id,
                    ..Default::default()
                })
                .await
                .map_err(|e| format!("delete: {e}"))?;
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.expect("client task").expect("no error under load");
    }
    assert!(entries(&mut c).await.is_empty());
    d.kill();
    let lvs = sh("lvs --noheadings -o lv_name 2>/dev/null");
    assert!(lvs.trim().is_empty(), "{mode}: LVs left behind: {lvs}");
    let ns = sh("ndctl list -N");
    if mode == "direct" {
        assert!(
            ns.trim().is_empty() || ns.trim() == "[]",
            "direct: namespaces left behind: {ns}"
        );
    } else {
        let named = ns.matches("\"name\":\"").count();
        let vg_members = ns.matches("\"name\":\"pmem-rs-lvm\"").count();
        assert_eq!(
            named, vg_members,
            "lvm: only the VGs' namespaces remain: {ns}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
async fn vm_csi_stress_lvm_100_volumes() {
    stress("lvm", 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
async fn vm_csi_stress_direct_20_volumes() {
    stress("direct", 20).await;
    reset();
    sh("ndctl destroy-namespace all -f >/dev/null 2>&1");
}

/// The state directory vanishes while volumes hold data (a changed hostPath,
/// a reinstalled node): every volume is served again from the record its
/// device carries, with its size, parameters and data, and deletes as usual.
async fn state_dir_lost(mode: &'static str) {
    reset();
    let d = Driver::start(mode);
    let mut c = clients(&d.sock).await;
    let cap = mount_cap();
    let mut vols = Vec::new();
    for i in 0..3 {
        let v = create(&mut c, &format!("{mode}-keep-{i}"), 128 * MIB, cap.clone()).await;
        let (staging, target) = stage_publish(&mut c, &v, &cap, &format!("keep{i}")).await;
        std::fs::write(target.join("data"), format!("volume {i}")).expect("write");
        vols.push((v, staging, target));
    }
    d.kill();
    std::fs::remove_dir_all(format!("{WORK}/state")).expect("state dir removed");
    let d = Driver::start(mode);
    let mut c = clients(&d.sock).await;
    let listed = entries(&mut c).await;
    assert_eq!(listed.len(), vols.len(), "{mode}: every volume is listed");
    for (i, (v, staging, target)) in vols.iter().enumerate() {
        let got = c
            .controller
            .controller_get_volume(ControllerGetVolumeRequest {
                volume_id: v.volume_id.clone(),
            })
            .await
            .expect("served again")
            .into_inner();
        let vol = got.volume.expect("volume");
        assert_eq!(vol.capacity_bytes, v.capacity_bytes, "{mode}: size kept");
        assert_eq!(
            vol.volume_context, v.volume_context,
            "{mode}: parameters kept"
        );
        let cond = got
            .status
            .and_then(|s| s.volume_condition)
            .expect("condition");
        assert!(!cond.abnormal, "{mode}: {cond:?}");
        assert_eq!(
            std::fs::read_to_string(target.join("data")).expect("read"),
            format!("volume {i}"),
            "{mode}: data intact"
        );
        unpublish_unstage_delete(&mut c, v, staging, target).await;
    }
    assert!(entries(&mut c).await.is_empty());
    if mode == "lvm" {
        assert!(
            !sh("lvs --noheadings -o lv_name 2>/dev/null").contains("vol-"),
            "no LV left"
        );
    }
    d.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
async fn vm_csi_state_dir_lost_keeps_every_volume_lvm() {
    state_dir_lost("lvm").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
async fn vm_csi_state_dir_lost_keeps_every_volume_direct() {
    state_dir_lost("direct").await;
}

/// The `dev` of the namespace that carries volume `id`, from the real ndctl.
fn namespace_of(id: &str) -> String {
    let list: serde_json::Value =
        serde_json::from_str(&sh("ndctl list -N -i")).expect("ndctl list is JSON");
    let all = list.as_array().cloned().unwrap_or_else(|| vec![list]);
    all.iter()
        .find(|n| n["name"].as_str().is_some_and(|s| s.starts_with(id)))
        .and_then(|n| n["dev"].as_str())
        .unwrap_or_else(|| panic!("no namespace for {id}: {all:?}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
async fn vm_csi_device_missing_at_start_is_served_when_back_direct() {
    reset();
    let d = Driver::start("direct");
    let mut c = clients(&d.sock).await;
    let cap = mount_cap();
    let v = create(&mut c, "direct-away", 128 * MIB, cap.clone()).await;
    let (staging, target) = stage_publish(&mut c, &v, &cap, "away").await;
    std::fs::write(target.join("data"), b"still here").expect("write");
    unpublish_and_unstage(&mut c, &v, &staging, &target).await;
    d.kill();
    // The namespace is disabled while the driver is down.
    let dev = namespace_of(&v.volume_id);
    sh(&format!("ndctl disable-namespace {dev}"));
    let d = Driver::start("direct");
    let mut c = clients(&d.sock).await;
    let got = c
        .controller
        .controller_get_volume(ControllerGetVolumeRequest {
            volume_id: v.volume_id.clone(),
        })
        .await
        .expect("the volume is kept")
        .into_inner();
    let cond = got
        .status
        .and_then(|s| s.volume_condition)
        .expect("condition");
    assert!(cond.abnormal, "{cond:?}");
    let del = c
        .controller
        .delete_volume(DeleteVolumeRequest {
            volume_id: v.volume_id.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(
        del.expect_err("no delete while missing").code(),
        tonic::Code::Unavailable
    );
    // Enabled again: served without a restart, data intact.
    sh(&format!("ndctl enable-namespace {dev}"));
    let (staging, target) = stage_publish(&mut c, &v, &cap, "away").await;
    assert_eq!(
        std::fs::read(target.join("data")).expect("read"),
        b"still here"
    );
    unpublish_unstage_delete(&mut c, &v, &staging, &target).await;
    d.kill();
}

async fn condition(c: &mut Clients, id: &str) -> VolumeCondition {
    c.controller
        .controller_get_volume(ControllerGetVolumeRequest {
            volume_id: id.into(),
        })
        .await
        .expect("get volume")
        .into_inner()
        .status
        .and_then(|s| s.volume_condition)
        .expect("condition")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
async fn vm_csi_volume_on_bad_blocks_is_abnormal_direct() {
    reset();
    let d = Driver::start("direct");
    let mut c = clients(&d.sock).await;
    let bad = create(&mut c, "media-bad", 64 * MIB, mount_cap()).await;
    let good = create(&mut c, "media-good", 64 * MIB, mount_cap()).await;
    // QEMU's DIMMs answer no SMART and report no media error: every volume is sound.
    for v in [&bad, &good] {
        let cond = condition(&mut c, &v.volume_id).await;
        assert!(!cond.abnormal, "{cond:?}");
    }
    let report = pmem_csi::media::read(&[]).expect("media report");
    assert!(!report.dimms.is_empty());
    assert!(
        report.dimms.iter().all(|m| m.state.is_none() && m.healthy),
        "{report:?}"
    );
    assert!(report.region_bad_sectors.iter().all(|(_, n)| *n == 0));
    d.kill();

    // Root may add a bad block to a pmem block device's list, as the kernel does when a
    // read hits a media error; the driver reads it when it starts (and on each pass).
    let dev = namespace_of(&bad.volume_id);
    let ns: serde_json::Value =
        serde_json::from_str(&sh(&format!("ndctl list -n {dev}"))).expect("JSON");
    let blockdev = ns[0]["blockdev"].as_str().expect("blockdev").to_string();
    std::fs::write(format!("/sys/block/{blockdev}/badblocks"), "8 8\n").expect("bad block");
    let d = Driver::start("direct");
    let mut c = clients(&d.sock).await;
    let cond = condition(&mut c, &bad.volume_id).await;
    assert!(
        cond.abnormal && cond.message.contains("8 bad 512-byte sectors"),
        "{cond:?}"
    );
    let cond = condition(&mut c, &good.volume_id).await;
    assert!(!cond.abnormal, "{cond:?}");
    // Deleting erases first; writing over the bad block needs the platform to clear the
    // poison, which QEMU cannot: the delete fails and the volume is kept.
    let del = c
        .controller
        .delete_volume(DeleteVolumeRequest {
            volume_id: bad.volume_id.clone(),
            ..Default::default()
        })
        .await;
    assert!(del.is_err(), "erased over a bad block QEMU cannot clear");
    assert!(
        condition(&mut c, &bad.volume_id).await.abnormal,
        "kept, still abnormal"
    );
    d.kill();
    // Re-probing the namespace rebuilds its list from the platform's (empty).
    sh(&format!(
        "ndctl disable-namespace {dev} && ndctl enable-namespace {dev}"
    ));
    let d = Driver::start("direct");
    let mut c = clients(&d.sock).await;
    assert!(!condition(&mut c, &bad.volume_id).await.abnormal);
    for v in [bad, good] {
        c.controller
            .delete_volume(DeleteVolumeRequest {
                volume_id: v.volume_id,
                ..Default::default()
            })
            .await
            .expect("delete");
    }
    d.kill();
}
