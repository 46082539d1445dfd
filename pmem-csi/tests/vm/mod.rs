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
