//! Volume create + delete through pmem-lvm against the bare `lvcreate` / `lvremove` commands, in one boot.
//!
//! Needs root, LVM and labelled regions (the emulated-PMEM VM): run `scripts/bench-lvm`.
//! Elsewhere it says why it cannot run and exits 0, so `cargo bench` stays usable.
//!
//! pmem-lvm's delete also erases the volume (the kernel writes zeros) before
//! removing it; the third column does that work with bare commands
//! (`blkdiscard --zeroout` between the two), so that the library's own
//! overhead can be told apart from the cost of erasing.

use pmem::lvm::runner::LVM_CONFIG;
use pmem::lvm::{Runner, SetupOptions, VolumeGroups, VolumeName};
use pmem::ndctl::Context;
use std::process::Command;
use std::time::{Duration, Instant};

const ROUNDS: usize = 15;
const MIB: u64 = 1 << 20;

fn cmd(program: &str, args: &[&str]) {
    let o = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .output()
        .expect("command runs");
    assert!(
        o.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn lvm(sub: &str, args: &[&str]) {
    let mut v = vec![sub, "--config", LVM_CONFIG];
    v.extend_from_slice(args);
    cmd("lvm", &v);
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let labelled = Context::new()
        .map(|c| c.regions().any(|r| r.is_labelled() && r.is_enabled()))
        .unwrap_or(false);
    let is_root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if !labelled || !is_root {
        println!("lvm_create_delete: needs root and a labelled PMEM region with LVM; run scripts/bench-lvm (the emulated-PMEM VM)");
        return;
    }
    let groups = VolumeGroups::setup(&SetupOptions::default()).expect("setup");
    let vg = groups.vgs().first().expect("a VG").name.to_string();
    println!(
        "{:<8} {:>6} {:>13} {:>22} {:>27}",
        "size", "rounds", "pmem-lvm ms", "lvcreate+lvremove ms", "lvcreate+zero+lvremove ms"
    );
    let (mut lib_all, mut bare_all, mut zero_all) = (Vec::new(), Vec::new(), Vec::new());
    for size in [16 * MIB, 64 * MIB, 256 * MIB] {
        let (mut lib, mut bare, mut zero) = (Vec::new(), Vec::new(), Vec::new());
        let bytes = format!("{size}b");
        for i in 0..ROUNDS {
            let name = VolumeName::new(format!("bench-{i}")).expect("name");
            let t = Instant::now();
            groups.create(&name, size).expect("library create");
            groups.delete(&name).expect("library delete");
            lib.push(t.elapsed());

            let t = Instant::now();
            lvm("lvcreate", &["-y", "-n", "bare", "-L", &bytes, "--", &vg]);
            lvm("lvremove", &["-y", "--", &format!("{vg}/bare")]);
            bare.push(t.elapsed());

            let t = Instant::now();
            lvm("lvcreate", &["-y", "-n", "bare", "-L", &bytes, "--", &vg]);
            cmd(
                "blkdiscard",
                &["--zeroout", "--", &format!("/dev/{vg}/bare")],
            );
            lvm("lvremove", &["-y", "--", &format!("{vg}/bare")]);
            zero.push(t.elapsed());
        }
        let (l, b, z) = (
            median(lib.clone()),
            median(bare.clone()),
            median(zero.clone()),
        );
        println!(
            "{:<8} {:>6} {:>13.1} {:>22.1} {:>27.1}",
            format!("{} MiB", size / MIB),
            ROUNDS,
            ms(l),
            ms(b),
            ms(z)
        );
        lib_all.extend(lib);
        bare_all.extend(bare);
        zero_all.extend(zero);
    }
    let n = lib_all.len();
    let (l, b, z) = (median(lib_all), median(bare_all), median(zero_all));
    let mut ctx = Context::new().expect("context");
    VolumeGroups::teardown(&mut ctx, &Runner::new()).expect("teardown");
    println!(
        "summary lvm_create_delete: pmem-lvm create+delete {:.0} ms vs bare lvcreate+lvremove {:.0} ms: {:+.1}% \
         (erase included; against bare commands doing the same erase {:.0} ms: {:+.1}%), median of {n}",
        ms(l),
        ms(b),
        (ms(l) / ms(b) - 1.0) * 100.0,
        ms(z),
        (ms(l) / ms(z) - 1.0) * 100.0
    );
}
