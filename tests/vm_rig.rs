//! Tier 3: the emulated-PMEM VM itself (`scripts/pmem-vm`): regions per DIMM, exit codes,
//! output streams, persistence of labels across reboots, and power cuts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "support/examples.rs"]
mod examples;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `scripts/pmem-vm ARGS` from the repository root.
fn pmem_vm(args: &[&str]) -> Output {
    Command::new(repo().join("scripts/pmem-vm"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("scripts/pmem-vm can be spawned")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("pmem-vm exits, it is not killed")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn regions(json: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(json).expect("ndctl list prints JSON");
    // `ndctl list -R` prints a bare array, or an object with "regions" when combined.
    match v {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(o) => o["regions"].as_array().cloned().unwrap_or_default(),
        other => panic!("unexpected ndctl output {other}"),
    }
}

#[test]
#[ignore = "tier 3: boots the emulated-PMEM VM; run scripts/test"]
fn boot_dimm_count_gives_one_region_each() {
    let o = pmem_vm(&[
        "--dimms",
        "3",
        "--dimm-size",
        "1G",
        "--",
        "ndctl",
        "list",
        "-R",
    ]);
    assert_eq!(
        code(&o),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = regions(&stdout(&o));
    assert_eq!(r.len(), 3, "regions: {r:?}");
    for region in &r {
        assert_eq!(region["type"], "pmem");
        // The DIMM less its label area, aligned down to the 128 MiB backend alignment.
        assert_eq!(region["size"].as_u64(), Some((1 << 30) - (128 << 20)));
    }
}

#[test]
#[ignore = "tier 3: boots the emulated-PMEM VM; run scripts/test"]
fn boot_exit_status_and_streams_are_the_commands() {
    let o = pmem_vm(&[
        "--",
        "sh",
        "-c",
        "echo to-stdout; echo to-stderr >&2; printf 'cwd=%s\\n' \"$PWD\"; exit 7",
    ]);
    assert_eq!(code(&o), 7);
    let cwd = repo().canonicalize().expect("repo path");
    assert_eq!(stdout(&o), format!("to-stdout\ncwd={}\n", cwd.display()));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("to-stderr"), "stderr: {err}");
    assert!(
        !stdout(&o).contains("pmem-vm:"),
        "progress lines leak into stdout"
    );

    assert_eq!(code(&pmem_vm(&["--", "false"])), 1);
}

#[test]
#[ignore = "tier 3: boots the emulated-PMEM VM; run scripts/test"]
fn boot_timeout_exits_124() {
    let t = std::time::Instant::now();
    let o = pmem_vm(&["--timeout", "5", "--", "sleep", "60"]);
    assert_eq!(code(&o), 124);
    assert!(t.elapsed().as_secs() < 40, "took {:?}", t.elapsed());
}

fn state_dir(name: &str) -> PathBuf {
    let d = repo().join("target/test-state").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("target/ is writable");
    d
}

fn in_vm_with_state(state: &Path, script: &str) -> Output {
    let s = state.to_str().expect("utf-8 path");
    pmem_vm(&["--state", s, "--", "sh", "-ec", script])
}

#[test]
#[ignore = "tier 3: boots the emulated-PMEM VM; run scripts/test"]
fn boot_labels_and_namespace_survive_reboot() {
    let state = state_dir("labels-reboot");
    let o = in_vm_with_state(
        &state,
        "ndctl disable-region all >/dev/null; ndctl init-labels -f all >/dev/null
         ndctl enable-region all >/dev/null
         ndctl create-namespace -r region0 -m fsdax -s 256M -n keep-me >/dev/null",
    );
    assert_eq!(
        code(&o),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = in_vm_with_state(&state, "ndctl list -N -r region0");
    assert_eq!(
        code(&o),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    let ns = match &v {
        serde_json::Value::Array(a) => a.clone(),
        obj => vec![obj.clone()],
    };
    let kept: Vec<_> = ns.iter().filter(|n| n["name"] == "keep-me").collect();
    assert_eq!(kept.len(), 1, "namespaces after reboot: {v}");
    assert_eq!(kept[0]["mode"], "fsdax");
    assert_eq!(
        kept[0]["size"].as_u64(),
        Some(250 << 20),
        "256M raw is 250M usable"
    );
}

#[test]
#[ignore = "tier 3: boots the emulated-PMEM VM; run scripts/test"]
fn boot_power_cut_after_sync_loses_nothing() {
    let state = state_dir("power-cut");
    let data = state.join("pattern.bin");
    let pattern: Vec<u8> = (0..(4u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&data, &pattern).expect("write pattern");
    let d = data.display();
    let o = in_vm_with_state(
        &state,
        &format!(
            "ndctl create-namespace -f -e namespace0.0 -m fsdax >/dev/null
             dev=/dev/$(ndctl list -n namespace0.0 | sed -n 's/.*\"blockdev\":\"\\([^\"]*\\)\".*/\\1/p')
             dd if={d} of=$dev bs=1M seek=8 conv=fsync status=none
             sync
             echo b > /proc/sysrq-trigger; sleep 30"
        ),
    );
    assert_eq!(
        code(&o),
        125,
        "a power cut ends the boot: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = in_vm_with_state(
        &state,
        &format!(
            "dev=/dev/$(ndctl list -n namespace0.0 | sed -n 's/.*\"blockdev\":\"\\([^\"]*\\)\".*/\\1/p')
             dd if=$dev bs=1M skip=8 count=4 status=none | cmp - {d} && echo intact"
        ),
    );
    assert_eq!(
        code(&o),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(stdout(&o), "intact\n");
}

#[test]
#[ignore = "tier 3: boots the emulated-PMEM VM; run scripts/test"]
fn boot_namespaces_from_the_library_survive_reboot() {
    let state = state_dir("ndctl-reboot");
    let ours = examples::example("ndctl");
    let n = ours.display();
    let o = in_vm_with_state(
        &state,
        &format!(
            "{n} disable-region all 2>/dev/null; {n} init-labels all 2>/dev/null; {n} enable-region all 2>/dev/null
             {n} create-namespace -r region0 -m fsdax -s 256M -n kept-fsdax >/dev/null
             {n} create-namespace -r region1 -m devdax -s 512M -n kept-devdax >/dev/null"
        ),
    );
    assert_eq!(
        code(&o),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = in_vm_with_state(&state, &format!("{n} list -N > /tmp/ours.json && ndctl list -N > /tmp/theirs.json && cmp /tmp/ours.json /tmp/theirs.json && cat /tmp/ours.json"));
    assert_eq!(
        code(&o),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    let names: Vec<&str> = v
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert!(
        names.contains(&"kept-fsdax") && names.contains(&"kept-devdax"),
        "after reboot: {v}"
    );
}

#[test]
#[ignore = "tier 3: boots the emulated-PMEM VM; run scripts/test"]
fn boot_ndctl_work_alike_lists_label_less_dimms_like_ndctl() {
    // A fresh boot: the DIMMs' label areas are empty, each region has one raw namespace.
    let n = examples::example("ndctl");
    let script = format!(
        "ndctl list -R | grep -q iset_id && {{ echo labelled; exit 3; }}
         ndctl list -N | grep -q '\"mode\":\"raw\"' || {{ echo no raw namespace; exit 4; }}
         for a in list 'list -RND' 'list -RNDi' 'list -N' 'list -D' 'list -R -r region1' 'list -N -r 0' \\
                  'list -DH' 'list -D --health' 'list -RN --media-errors' 'list -RNDHM'; do
           ndctl $a > /tmp/theirs.json; {n} $a > /tmp/ours.json
           cmp -s /tmp/theirs.json /tmp/ours.json || {{ echo \"differs: $a\"; diff /tmp/theirs.json /tmp/ours.json; exit 1; }}
         done
         # A media error on the raw namespace's block device (root may add one to its list).
         dev=$(ndctl list -N -r region0 | sed -n 's/.*\"blockdev\":\"\\([^\"]*\\)\".*/\\1/p')
         echo '16 8' > /sys/block/$dev/badblocks || {{ echo cannot add a bad block to $dev; exit 5; }}
         for a in 'list -RNDH' 'list -RN --media-errors' 'list -N -M -r region0'; do
           ndctl $a > /tmp/theirs.json; {n} $a > /tmp/ours.json
           cmp -s /tmp/theirs.json /tmp/ours.json || {{ echo \"differs: $a\"; diff /tmp/theirs.json /tmp/ours.json; exit 1; }}
         done
         grep -q '\"badblock_count\":8' /tmp/ours.json || {{ echo no bad blocks listed; exit 6; }}
         # (region0 keeps its bad block: regions 1 and 2 are converted, one by each ndctl.)
         # Converting the raw namespace in place: like ndctl, only with -f, and the same JSON but for the uuid.
         {n} create-namespace -e namespace2.0 -m fsdax 2>/dev/null && {{ echo converted without -f; exit 5; }}
         ndctl create-namespace -f -e namespace1.0 -m fsdax | grep -v uuid | sed 's/1\\.0/N/; s/pmem1/pmemN/' > /tmp/theirs.json
         {n} create-namespace -f -e namespace2.0 -m fsdax | grep -v uuid | sed 's/2\\.0/N/; s/pmem2/pmemN/' > /tmp/ours.json
         cmp -s /tmp/theirs.json /tmp/ours.json || {{ echo 'differs: create-namespace -f -e'; diff /tmp/theirs.json /tmp/ours.json; exit 1; }}
         {n} list -N > /tmp/ours.json; ndctl list -N > /tmp/theirs.json
         cmp -s /tmp/theirs.json /tmp/ours.json || {{ echo 'differs: list -N after conversion'; diff /tmp/theirs.json /tmp/ours.json; exit 1; }}
         grep -c '\"mode\":\"fsdax\"' /tmp/ours.json | grep -qx 2 || {{ echo not both fsdax; cat /tmp/ours.json; exit 6; }}
         echo same",
        n = n.display()
    );
    let o = pmem_vm(&[
        "--dimms",
        "3",
        "--dimm-size",
        "1G",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(
        code(&o),
        0,
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(stdout(&o), "same\n");
}
