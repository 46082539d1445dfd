//! Tier-3 test support shared by the VM test binaries: a shell, the reset
//! state every test starts from, and the driver binary started in lvm or direct mode.

#![allow(dead_code)]

use crate::common::driver_bin;
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
