//! The driver accepts the flags its Kubernetes DaemonSets pass (deploy/*/node.yaml),
//! and each mode's CSIDriver and StorageClass name the driver the DaemonSet runs.
//!
//! A plain-text reading of the manifests, enough for these few facts: the
//! full check (API schemas, every reference) is `deploy/check`.

use std::path::{Path, PathBuf};
use std::process::Command;

const MODES: [&str; 2] = ["lvm", "direct"];

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn read(mode: &str, file: &str) -> String {
    let p = deploy_dir().join(mode).join(file);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The argument list that holds `--device-manager`: the driver container's.
fn driver_args(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let item = |l: &str| l.trim_start().strip_prefix("- ").map(str::to_string);
    let indent = |l: &str| l.len() - l.trim_start().len();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with("- --device-manager"))
        .expect("node.yaml has a container with --device-manager");
    let depth = indent(lines[at]);
    let same = |l: &&str| indent(l) == depth && l.trim_start().starts_with("- ");
    let start = (0..at)
        .rev()
        .find(|&i| !same(&lines[i]) && !lines[i].trim_start().starts_with('#'))
        .map_or(0, |i| i + 1);
    lines[start..]
        .iter()
        .take_while(|l| same(l) || l.trim_start().starts_with('#'))
        .filter_map(|l| item(l))
        .map(|a| a.trim_matches('"').to_string())
        .collect()
}

/// The value after `key: ` on the first line that has it.
fn field(yaml: &str, key: &str) -> String {
    yaml.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(key)?
                .strip_prefix(": ")
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no {key:?} in the manifest"))
}

#[test]
fn daemonset_flags_are_accepted_by_the_driver() {
    for mode in MODES {
        let args = driver_args(&read(mode, "node.yaml"));
        assert!(
            args.iter()
                .any(|a| a == &format!("--device-manager={mode}")),
            "deploy/{mode}/node.yaml: driver args {args:?} do not select {mode}"
        );
        // The kubelet expands $(NODE_NAME) from the pod's spec.nodeName.
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("$(NODE_NAME)", "node-1"))
            .collect();
        assert!(
            !args.iter().any(|a| a.contains("$(")),
            "deploy/{mode}/node.yaml: unexpanded variable in {args:?}"
        );
        let out = Command::new(env!("CARGO_BIN_EXE_pmem-csi-driver"))
            .args(&args)
            .arg("--dry-run")
            .output()
            .expect("run pmem-csi-driver");
        assert!(
            out.status.success(),
            "deploy/{mode}/node.yaml: pmem-csi-driver {args:?} --dry-run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn each_mode_names_one_driver_everywhere() {
    for mode in MODES {
        let node = read(mode, "node.yaml");
        let name = driver_args(&node)
            .iter()
            .find_map(|a| a.strip_prefix("--driver-name=").map(str::to_string))
            .unwrap_or_else(|| panic!("deploy/{mode}/node.yaml: no --driver-name"));
        assert_eq!(
            field(&read(mode, "csidriver.yaml"), "name"),
            name,
            "deploy/{mode}/csidriver.yaml"
        );
        assert_eq!(
            field(&read(mode, "storageclass.yaml"), "provisioner"),
            name,
            "deploy/{mode}/storageclass.yaml"
        );
        let registration =
            format!("--kubelet-registration-path=/var/lib/kubelet/plugins/{name}/csi.sock");
        assert!(
            node.contains(&registration),
            "deploy/{mode}/node.yaml: the driver must pass {registration}"
        );
    }
}
