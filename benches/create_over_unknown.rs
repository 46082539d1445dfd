//! How long CreateVolume takes over space of unknown content (zeroed first) against space known
//! to be zero, in one boot: lvm with a clean VG, lvm with a dirty VG, and direct mode.
//!
//! Also how long lvm's background zeroing of new PVs holds creates off after start.
//! Needs root and labelled PMEM regions: run `scripts/bench-zero` (the emulated-PMEM VM).
//! Elsewhere it says why it cannot run and exits 0.

use pmem::csi::driver::{Driver, SizeRange};
use pmem::csi::manager::{DeviceManager, LvmManager, NamespaceManager};
use pmem::csi::state::StateStore;
use pmem::csi::volume::Params;
use pmem::csi::Error;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 3;
const SIZE: u64 = 512 << 20;

/// Empty labelled regions, no VG or PV, no namespace.
fn pristine() {
    let cfg = "devices { obtain_device_list_from_udev=0 } activation { udev_sync=0 udev_rules=0 }";
    let script = format!(
        "for vg in $(lvm vgs --config '{cfg}' --noheadings -o vg_name 2>/dev/null); do lvm vgremove --config '{cfg}' -f -- $vg; done
         for pv in $(lvm pvs --config '{cfg}' --noheadings -o pv_name 2>/dev/null); do lvm pvremove --config '{cfg}' -ff -y -- $pv; done
         ndctl destroy-namespace all -f; ndctl disable-region all; ndctl init-labels -f all; ndctl enable-region all"
    );
    let _ = Command::new("sh").args(["-c", &script]).output();
}

fn driver(manager: Arc<dyn DeviceManager>, dir: &Path) -> Driver {
    std::fs::create_dir_all(dir).expect("state dir");
    Driver::start(
        "pmem-csi.bench".into(),
        "bench".into(),
        manager,
        StateStore::open(dir).expect("state"),
    )
    .expect("driver")
    .0
}

fn range() -> SizeRange {
    SizeRange {
        required: SIZE,
        limit: 0,
    }
}

/// Median seconds of ROUNDS creates of SIZE bytes named `prefix-N`, each deleted (erased) after.
fn creates(d: &Driver, prefix: &str) -> f64 {
    let mut secs = Vec::new();
    for i in 0..ROUNDS {
        let name = format!("{prefix}-{i}");
        let t = Instant::now();
        let v = d
            .create_volume(&name, range(), Params::default())
            .unwrap_or_else(|e| panic!("create {name}: {e}"));
        secs.push(t.elapsed().as_secs_f64());
        d.delete_volume(v.id.as_str()).expect("delete");
    }
    secs.sort_by(f64::total_cmp);
    secs[ROUNDS / 2]
}

/// Volumes made until no more fit and deleted with eraseAfter=false: every VG is dirty from then on.
fn leave_unerased(d: &Driver) {
    let params = Params {
        erase_after: false,
        ..Params::default()
    };
    let mut ids = Vec::new();
    loop {
        match d.create_volume(&format!("unerased-{}", ids.len()), range(), params.clone()) {
            Ok(v) => ids.push(v.id),
            Err(Error::ResourceExhausted(_)) => break,
            Err(e) => panic!("create unerased: {e}"),
        }
    }
    for id in ids {
        d.delete_volume(id.as_str()).expect("delete unerased");
    }
}

fn main() {
    let labelled = pmem::ndctl::Context::new()
        .map(|c| c.regions().any(|r| r.is_labelled() && r.is_enabled()))
        .unwrap_or(false);
    if !labelled {
        println!("create_over_unknown: no labelled PMEM region here; run scripts/bench-zero (the emulated-PMEM VM)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("zero-bench-{}", std::process::id()));

    pristine();
    let t = Instant::now();
    let lvm = driver(
        Arc::new(LvmManager::setup(100, false).expect("lvm setup")),
        &dir.join("lvm"),
    );
    // Creates wait while the new PVs are zeroed in the background, then are UNAVAILABLE: retry.
    let first = loop {
        match lvm.create_volume("first", range(), Params::default()) {
            Ok(v) => break v,
            Err(Error::Unavailable(why)) => {
                println!("create_over_unknown: {why}");
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) => panic!("first create: {e}"),
        }
    };
    let background = t.elapsed().as_secs_f64();
    let pv_bytes: u64 = pmem::lvm::VolumeGroups::open(pmem::lvm::Runner::new())
        .map(|g| g.vgs().iter().map(|v| v.size).sum())
        .unwrap_or(0);
    lvm.delete_volume(first.id.as_str()).expect("delete first");
    let clean = creates(&lvm, "clean");
    leave_unerased(&lvm);
    let dirty = creates(&lvm, "dirty");
    drop(lvm);

    pristine();
    let direct = driver(
        Arc::new(NamespaceManager::direct().expect("direct manager")),
        &dir.join("direct"),
    );
    let direct_secs = creates(&direct, "direct");
    drop(direct);
    pristine();

    let mib = SIZE >> 20;
    println!(
        "{:<52} {:>6} {:>10}",
        "CreateVolume (median of 3)", "MiB", "ms"
    );
    for (what, s) in [
        ("lvm, clean VG (known-zero space)", clean),
        ("lvm, dirty VG (unknown space, zeroed at create)", dirty),
        ("direct (unknown space, zeroed at create)", direct_secs),
    ] {
        println!("{what:<52} {mib:>6} {:>10.1}", s * 1000.0);
    }
    println!(
        "lvm start: creates held off {background:.2} s while {} MiB of new PVs were zeroed",
        pv_bytes >> 20
    );
    println!(
        "summary create_clean_ms={:.1} create_dirty_ms={:.1} create_direct_ms={:.1} dirty_over_clean={:.1} direct_over_clean={:.1}",
        clean * 1000.0,
        dirty * 1000.0,
        direct_secs * 1000.0,
        dirty / clean,
        direct_secs / clean
    );
    let _ = std::fs::remove_dir_all(&dir);
}
