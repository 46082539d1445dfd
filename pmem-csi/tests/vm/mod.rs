//! Tier-3 test support shared by the VM test binaries: a shell, the reset state every test starts
//! from, the driver binary started in lvm or direct mode, and volumes created, staged and published.

#![allow(dead_code)]

use crate::common::{create_req, driver_bin, mount_cap, Clients};
use pmem_csi::proto::volume_capability::{AccessType, BlockVolume};
use pmem_csi::proto::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// Where the tests keep the driver's socket, state and mount points.
pub const WORK: &str = "/run/pmem-csi-e2e";

/// Runs `cmd` with `sh -c`; its standard output.
pub fn sh(cmd: &str) -> String {
    let o = Command::new("sh")
        .args(["-c", cmd])
        .output()
        .expect("sh runs");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Empty labelled regions, no VG of ours: the state every test starts from.
pub fn reset() {
    sh("for vg in $(vgs --noheadings -o vg_name 2>/dev/null); do case $vg in pmem-rs-*) vgremove -f $vg;; esac; done >/dev/null 2>&1
        for pv in $(pvs --noheadings -o pv_name 2>/dev/null); do pvremove -ff -y $pv; done >/dev/null 2>&1
        ndctl destroy-namespace all -f >/dev/null 2>&1; ndctl disable-region all >/dev/null 2>&1
        ndctl init-labels -f all >/dev/null 2>&1; ndctl enable-region all >/dev/null 2>&1");
    let _ = std::fs::remove_dir_all(WORK);
    std::fs::create_dir_all(WORK).expect("work dir");
}

/// The driver binary, serving on a socket in [`WORK`].
pub struct Driver {
    child: Child,
    /// The driver's CSI socket.
    pub sock: PathBuf,
    /// Its device manager.
    pub mode: &'static str,
}

impl Driver {
    /// Starts the driver binary with device manager `mode`.
    pub fn start(mode: &'static str) -> Driver {
        Driver::start_with(mode, &[])
    }

    /// Starts the driver binary with device manager `mode` and the options `extra`.
    pub fn start_with(mode: &'static str, extra: &[&str]) -> Driver {
        let sock = Path::new(WORK).join("csi.sock");
        let _ = std::fs::remove_file(&sock);
        let child = Command::new(driver_bin())
            .args([
                "--endpoint",
                &format!("unix://{}", sock.display()),
                "--node-id",
                "vm",
                "--device-manager",
                mode,
            ])
            .args(["--state-dir", &format!("{WORK}/state")])
            .args(["--kubelet-dir", WORK])
            .args(extra)
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("driver starts");
        Driver { child, sock, mode }
    }

    /// Kills the driver and waits for it.
    pub fn kill(self) {
        drop(self);
    }
}

/// A failing test must not leave its driver running: it would hold the
/// test's output open and the VM run would wait for it forever.
impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The options `target` is mounted with, if it is a mount point.
pub fn mount_options(target: &Path) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/mounts").expect("/proc/mounts");
    mounts
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && Path::new(f[1]) == target)
        .map(|f| f[3].to_string())
}

/// A mebibyte, as CSI sizes are given.
pub const MIB: i64 = 1 << 20;
/// A raw block volume's capability.
pub fn block_cap() -> VolumeCapability {
    VolumeCapability {
        access_type: Some(AccessType::Block(BlockVolume {})),
        ..mount_cap()
    }
}

/// A filesystem volume's capability with `fs`.
pub fn fs_cap(fs: &str) -> VolumeCapability {
    let mut c = mount_cap();
    if let Some(AccessType::Mount(m)) = c.access_type.as_mut() {
        m.fs_type = fs.into();
    }
    c
}

/// Creates volume `name` of `size` bytes with `cap`; panics naming it on failure.
pub async fn create(c: &mut Clients, name: &str, size: i64, cap: VolumeCapability) -> Volume {
    let req = CreateVolumeRequest {
        volume_capabilities: vec![cap],
        ..create_req(name, size)
    };
    c.controller
        .create_volume(req)
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"))
        .into_inner()
        .volume
        .expect("volume")
}

/// Stages and publishes (twice: idempotent) `v` beneath [`WORK`]; its staging and target paths.
pub async fn stage_publish(
    c: &mut Clients,
    v: &Volume,
    cap: &VolumeCapability,
    dir: &str,
) -> (PathBuf, PathBuf) {
    let staging = Path::new(WORK).join(format!("{dir}-staging"));
    let target = Path::new(WORK).join(format!("{dir}-target"));
    let ctx = v.volume_context.clone();
    c.node
        .node_stage_volume(NodeStageVolumeRequest {
            volume_id: v.volume_id.clone(),
            staging_target_path: staging.display().to_string(),
            volume_capability: Some(cap.clone()),
            volume_context: ctx.clone(),
            ..Default::default()
        })
        .await
        .expect("stage");
    for _ in 0..2 {
        c.node
            .node_publish_volume(NodePublishVolumeRequest {
                volume_id: v.volume_id.clone(),
                staging_target_path: staging.display().to_string(),
                target_path: target.display().to_string(),
                volume_capability: Some(cap.clone()),
                volume_context: ctx.clone(),
                ..Default::default()
            })
            .await
            .expect("publish (twice: idempotent)");
    }
    (staging, target)
}

/// Unpublishes, unstages and deletes `v`.
pub async fn unpublish_unstage_delete(c: &mut Clients, v: &Volume, staging: &Path, target: &Path) {
    unpublish_and_unstage(c, v, staging, target).await;
    delete(c, &v.volume_id).await;
}

/// Deletes volume `id`; panics naming it on failure.
pub async fn delete(c: &mut Clients, id: &str) {
    c.controller
        .delete_volume(DeleteVolumeRequest {
            volume_id: id.to_string(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("delete {id}: {e}"));
}

/// Unpublishes and unstages `v` (twice: idempotent); nothing stays mounted.
pub async fn unpublish_and_unstage(c: &mut Clients, v: &Volume, staging: &Path, target: &Path) {
    for _ in 0..2 {
        c.node
            .node_unpublish_volume(NodeUnpublishVolumeRequest {
                volume_id: v.volume_id.clone(),
                target_path: target.display().to_string(),
            })
            .await
            .expect("unpublish");
        c.node
            .node_unstage_volume(NodeUnstageVolumeRequest {
                volume_id: v.volume_id.clone(),
                staging_target_path: staging.display().to_string(),
            })
            .await
            .expect("unstage");
    }
    assert!(mount_options(target).is_none() && mount_options(staging).is_none());
}

/// The objects of an `ndctl list` answer: one object alone is printed bare, several as an array.
fn ndctl_objects(v: &serde_json::Value) -> Vec<&serde_json::Value> {
    match v {
        serde_json::Value::Array(a) => a.iter().collect(),
        serde_json::Value::Null => Vec::new(),
        one => vec![one],
    }
}

/// The device node of volume `id` (an LV, or a namespace's block or device-dax node).
pub fn device_of(mode: &str, id: &str) -> PathBuf {
    if mode == "lvm" {
        let lv = pmem_lvm::VolumeName::new(id)
            .expect("volume name")
            .lv_name();
        let paths = sh("lvs --noheadings -o lv_path");
        let path = paths
            .split_whitespace()
            .find(|p| p.ends_with(&format!("/{lv}")))
            .unwrap_or_else(|| panic!("no LV {lv} in {paths}"));
        return PathBuf::from(path);
    }
    let list: serde_json::Value = serde_json::from_str(&sh("ndctl list -N")).expect("ndctl list");
    let ns = ndctl_objects(&list)
        .into_iter()
        .find(|n| {
            n["name"]
                .as_str()
                .is_some_and(|s| s.starts_with(&format!("{id}.")))
        })
        .unwrap_or_else(|| panic!("no namespace of {id}"));
    let dev = ns["blockdev"]
        .as_str()
        .or(ns["chardev"].as_str())
        .expect("blockdev or chardev");
    PathBuf::from(format!("/dev/{dev}"))
}

/// CreateVolume, retried while the driver answers UNAVAILABLE (zeroing under way), as the provisioner does.
pub async fn create_retrying(
    c: &mut crate::common::Clients,
    req: pmem_csi::proto::CreateVolumeRequest,
) -> Result<pmem_csi::proto::Volume, tonic::Status> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(900);
    loop {
        match c.controller.create_volume(req.clone()).await {
            Ok(r) => return Ok(r.into_inner().volume.expect("volume")),
            Err(s)
                if s.code() == tonic::Code::Unavailable && std::time::Instant::now() < deadline =>
            {
                eprintln!("create {}: {} (retrying)", req.name, s.message());
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
            Err(s) => return Err(s),
        }
    }
}
