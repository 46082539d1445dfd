//! Zeroing throughput of `pmem_ndctl::erase` against `dd if=/dev/zero oflag=direct` on the same fsdax device, in one boot.
//!
//! Needs root and labelled regions (the emulated-PMEM VM): run `scripts/bench-zero`.
//! Elsewhere it says why it cannot run and exits 0, so `cargo bench` stays usable.
//! A device-dax namespace is zeroed by the library too (dd cannot write one).

use pmem_dax::DevDax;
use pmem_ndctl::erase::zero_device;
use pmem_ndctl::{Context, Mode, NamespaceSpec, Size};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const ROUNDS: usize = 3;
const FSDAX: u64 = 1 << 30;
const DEVDAX: u64 = 512 << 20;
const MIB: f64 = (1u64 << 20) as f64;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / MIB / d.as_secs_f64()
}

/// Zeroes `dev` with the library; MiB/s. Checks that a pattern written first is gone.
fn library(dev: &Path, size: u64) -> f64 {
    let offsets = [0, size / 2, size - 4096];
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .expect("open");
    for &o in &offsets {
        f.seek(SeekFrom::Start(o)).unwrap();
        f.write_all(&[0xAB; 4096]).unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    let mut reports = 0;
    let t = Instant::now();
    let n = zero_device(dev, &mut |_, _| reports += 1).expect("library zeroing");
    let d = t.elapsed();
    assert_eq!(n, size);
    assert!(reports >= 1);
    let mut f = std::fs::File::open(dev).unwrap();
    for &o in &offsets {
        let mut buf = [1u8; 4096];
        f.seek(SeekFrom::Start(o)).unwrap();
        f.read_exact(&mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0), "byte left at {o}");
    }
    mib_s(n, d)
}

/// Zeroes `dev` with `dd ... bs=1M oflag=direct`; MiB/s.
fn dd(dev: &Path, size: u64) -> f64 {
    let t = Instant::now();
    let s = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", dev.display()))
        .args(["bs=1M", "oflag=direct", "status=none"])
        .arg(format!("count={}", size >> 20))
        .status()
        .expect("dd runs");
    assert!(s.success(), "dd failed");
    mib_s(size, t.elapsed())
}

/// Zeroes devdax `dev` with the library; MiB/s. Checks a pattern written first through a mapping is gone.
fn library_devdax(dev: &Path) -> f64 {
    let dax = DevDax::open(dev).expect("devdax");
    let len = dax.align().max(2 << 20);
    // SAFETY: the namespace was made by this bench and nothing else uses it.
    let mut m = unsafe { dax.map(0, Some(len)) }.expect("map");
    m.fill_persist(0, len as usize, 0xAB).unwrap();
    drop(m);
    let t = Instant::now();
    let n = zero_device(dev, &mut |_, _| {}).expect("library zeroing");
    let d = t.elapsed();
    // SAFETY: as above.
    let m = unsafe { dax.map(0, Some(len)) }.expect("map");
    assert!(m.as_slice().iter().all(|&b| b == 0), "devdax not zeroed");
    mib_s(n, d)
}

fn main() {
    let mut ctx = match Context::new() {
        Ok(c) => c,
        Err(e) => {
            println!("zero_throughput: no libndctl context ({e}); run scripts/bench-zero");
            return;
        }
    };
    let region = |ctx: &Context, need: u64| {
        ctx.regions()
            .filter(|r| r.is_labelled() && r.is_enabled() && r.available_size() >= need)
            .map(|r| r.name())
            .next()
    };
    let Some(r) = region(&ctx, FSDAX + (64 << 20)) else {
        println!("zero_throughput: no labelled region with 1 GiB free here; run scripts/bench-zero (the emulated-PMEM VM)");
        return;
    };
    let ns = ctx
        .create_namespace(&NamespaceSpec::new(r.as_str(), Mode::Fsdax, Size(FSDAX)))
        .expect("fsdax namespace");
    let dev = format!("/dev/{}", ns.blockdev.clone().expect("block device"));
    let size = pmem_ndctl::erase::device_size(Path::new(&dev)).expect("size");
    let (mut lib, mut cmd) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        cmd.push(dd(Path::new(&dev), size));
        lib.push(library(Path::new(&dev), size));
    }
    ctx.destroy_namespace(&ns.dev, true).expect("destroy");
    let (l, c) = (median(lib), median(cmd));
    println!(
        "{:<8} {:>10} {:>6} {:>14} {:>14} {:>7}",
        "mode", "MiB", "rounds", "library MiB/s", "dd MiB/s", "ratio"
    );
    println!(
        "{:<8} {:>10} {:>6} {:>14.0} {:>14.0} {:>7.2}",
        "fsdax",
        size >> 20,
        ROUNDS,
        l,
        c,
        l / c
    );
    let dax = region(&ctx, DEVDAX + (64 << 20)).map(|r| {
        let ns = ctx
            .create_namespace(&NamespaceSpec::new(r.as_str(), Mode::Devdax, Size(DEVDAX)))
            .expect("devdax namespace");
        let dev = format!("/dev/{}", ns.chardev.clone().expect("character device"));
        let size = pmem_ndctl::erase::device_size(Path::new(&dev)).expect("size");
        let v: Vec<f64> = (0..ROUNDS)
            .map(|_| library_devdax(Path::new(&dev)))
            .collect();
        ctx.destroy_namespace(&ns.dev, true).expect("destroy");
        let m = median(v);
        println!(
            "{:<8} {:>10} {:>6} {:>14.0} {:>14} {:>7}",
            "devdax",
            size >> 20,
            ROUNDS,
            m,
            "-",
            "-"
        );
        m
    });
    println!(
        "summary zero_fsdax_library_mib_s={l:.0} zero_fsdax_dd_mib_s={c:.0} library_over_dd={:.2} zero_devdax_library_mib_s={} (above 1: the library is faster)",
        l / c,
        dax.map_or("n/a".to_string(), |m| format!("{m:.0}"))
    );
}
