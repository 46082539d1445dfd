//! Tier 3, booting the emulated-PMEM VM from the host: five power cuts in
//! the middle of `persistent_log append` on a DAX-mounted fsdax namespace.
//! After each cut the VM boots again on the same NVDIMM backing files and
//! `persistent_log verify` must find every record that was reported
//! persisted before the cut, in a valid log.
//!
//! Needs pmem-dax's `persistent_log` example built first (`cargo build
//! --workspace --examples`; scripts/test passes its path from Cargo) and the
//! rig of `scripts/pmem-vm`.

use std::path::{Path, PathBuf};
use std::process::Command;

const ROUNDS: usize = 5;
/// Seconds the append runs before the power is cut.
const CUT_AFTER: &str = "3";

/// Runs in the guest. $1: example binary, $2: 1 on the first boot (make the
/// namespace and filesystem), $3: seconds to append before cutting the
/// power, 0 to only verify.
const GUEST: &str = r#"
set -eu
exe=$1 first=$2 cut=$3
if [ "$first" = 1 ]; then ndctl create-namespace -f -e namespace0.0 -m fsdax >/dev/null; fi
dev=/dev/$(ndctl list -N | sed -n 's/.*"blockdev":"\([^"]*\)".*/\1/p' | head -n 1)
if [ "$first" = 1 ]; then mkfs.ext4 -q -F -b 4096 "$dev"; fi
mkdir -p /mnt/plog
mount -o dax "$dev" /mnt/plog
if [ "$first" != 1 ]; then "$exe" --path /mnt/plog/log verify; fi
if [ "$cut" != 0 ]; then
  "$exe" --path /mnt/plog/log --size 128M append 1000000 &
  sleep "$cut"
  echo b > /proc/sysrq-trigger
  sleep 60
fi
"#;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[path = "support/examples.rs"]
mod examples;

/// pmem-dax's `persistent_log` example.
fn example() -> PathBuf {
    examples::example("persistent_log")
}

/// One boot: its exit code and standard output.
fn boot(state: &Path, first: bool, cut: &str) -> (i32, String) {
    let out = Command::new(repo_root().join("scripts/pmem-vm"))
        .current_dir(repo_root())
        .args([
            "--dimms",
            "1",
            "--dimm-size",
            "1G",
            "--timeout",
            "120",
            "--state",
        ])
        .arg(state)
        .args(["--", "bash", "-c", GUEST, "guest"])
        .arg(example())
        .args([if first { "1" } else { "0" }, cut])
        .output()
        .expect("run scripts/pmem-vm");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "--- boot (first={first}, cut={cut}) exit {:?}\n{stdout}{stderr}",
        out.status.code()
    );
    (out.status.code().unwrap_or(-1), stdout)
}

/// The last `persisted K` line.
fn last_persisted(stdout: &str) -> Option<u64> {
    stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("persisted ")?.trim().parse().ok())
}

fn verdict(stdout: &str) -> serde_json::Value {
    let line = stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no verify line in {stdout}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("bad verify line {line}: {e}"))
}

struct StateDir(PathBuf);

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
#[ignore = "tier 3: boots the emulated-PMEM VM; run scripts/test"]
fn boot_power_cuts_never_lose_a_persisted_record() {
    let state =
        StateDir(std::env::temp_dir().join(format!("pmem-dax-power-cut-{}", std::process::id())));
    std::fs::create_dir_all(&state.0).expect("state dir");
    let mut promised = 0;
    for round in 1..=ROUNDS {
        let (code, out) = boot(&state.0, round == 1, CUT_AFTER);
        assert_eq!(
            code, 125,
            "round {round}: the guest must lose power mid-append"
        );
        if round > 1 {
            let v = verdict(&out);
            assert_eq!(v["valid"], true, "round {round}: {v}");
            assert_eq!(
                v["pmem"], true,
                "round {round}: the mapping must be MAP_SYNC: {v}"
            );
            let found = v["records"].as_u64().expect("records");
            assert!(
                found >= promised,
                "round {round}: {found} records, {promised} were persisted"
            );
        }
        let k = last_persisted(&out)
            .unwrap_or_else(|| panic!("round {round}: nothing persisted before the cut"));
        assert!(
            k > promised,
            "round {round}: the append made no progress ({k})"
        );
        eprintln!("round {round}: power cut after {k} records reported persisted");
        promised = k;
    }
    let (code, out) = boot(&state.0, false, "0");
    assert_eq!(code, 0, "final verify boot");
    let v = verdict(&out);
    let found = v["records"].as_u64().expect("records");
    assert_eq!(v["valid"], true, "{v}");
    assert!(
        found >= promised,
        "after the last cut: {found} records, {promised} were persisted"
    );
    eprintln!("after {ROUNDS} power cuts: {found} records, {promised} reported persisted, {v}");
}
