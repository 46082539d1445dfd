//! Tier 3, inside the emulated-PMEM VM: files on volumes the driver provisioned map with 2 MiB
//! (PMD) DAX faults, for ext4 and xfs, in lvm and direct modes.
//!
//! The kernel's `fs_dax:dax_pmd_fault_done` tracepoint reports every
//! huge-page DAX fault with its result: `NOPAGE` when a 2 MiB page was
//! mapped, `FALLBACK` when the fault fell back to 4 KiB pages (a misaligned
//! device, LV or extent). `/proc/PID/smaps` cannot tell: DAX pages are not
//! counted there.

mod common;
mod vm;

use common::*;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use vm::*;

const MIB: usize = 1 << 20;
const HUGE_PAGE: usize = 2 * MIB;
/// The big files' size: 16 huge pages.
const FILE_SIZE: usize = 32 * MIB;
/// Of the 16, at least this many must be mapped with a 2 MiB page.
const MIN_PMD: usize = 14;
const TRACING: &str = "/sys/kernel/tracing";
const EVENT: &str = "events/fs_dax/dax_pmd_fault_done/enable";

fn write_tracefs(file: &str, text: &str) {
    let path = Path::new(TRACING).join(file);
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Mounts tracefs if it is not there yet.
fn tracefs() {
    if !Path::new(TRACING).join(EVENT).exists() {
        sh(&format!("mount -t tracefs nodev {TRACING}"));
    }
    assert!(
        Path::new(TRACING).join(EVENT).exists(),
        "no {EVENT} under {TRACING}: the kernel lacks the fs_dax tracepoints"
    );
}

/// Huge-page DAX faults on one file: (mapped with 2 MiB, fell back to 4 KiB, other results).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Faults {
    pmd: usize,
    fallback: usize,
    other: usize,
}

/// Counts the `dax_pmd_fault_done` events of the file with `dev` and `ino` in the trace.
fn count(trace: &str, dev: u64, ino: u64) -> Faults {
    let who = format!(
        "dax_pmd_fault_done: dev {}:{} ino {ino:#x} ",
        libc::major(dev),
        libc::minor(dev)
    );
    let mut f = Faults::default();
    for line in trace.lines().filter(|l| l.contains(&who)) {
        let result = line.split_whitespace().last().unwrap_or("");
        if result.split('|').any(|r| r == "NOPAGE") {
            f.pmd += 1;
        } else if result.split('|').any(|r| r == "FALLBACK") {
            f.fallback += 1;
        } else {
            f.other += 1;
        }
    }
    f
}

/// Maps `file` (already `FILE_SIZE` long) shared, writes a byte into every
/// 4 KiB page, and returns the huge-page faults that took.
fn touch_mapped(file: &File) -> Faults {
    let meta = file.metadata().expect("stat");
    write_tracefs("trace", "");
    write_tracefs(EVENT, "1");
    // SAFETY: a fresh shared mapping of a file this test owns, FILE_SIZE
    // long (checked by the callers); the kernel picks the address.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            FILE_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(
        addr,
        libc::MAP_FAILED,
        "mmap: {}",
        std::io::Error::last_os_error()
    );
    assert_eq!(
        addr as usize % HUGE_PAGE,
        0,
        "the kernel aligns DAX mappings of big files to 2 MiB"
    );
    for offset in (0..FILE_SIZE).step_by(4096) {
        // SAFETY: offset < FILE_SIZE, inside the mapping made above.
        unsafe { std::ptr::write_volatile(addr.cast::<u8>().add(offset), 0xa5) };
    }
    // SAFETY: the mapping made above, not used after this.
    assert_eq!(unsafe { libc::munmap(addr, FILE_SIZE) }, 0, "munmap");
    write_tracefs(EVENT, "0");
    let trace = std::fs::read_to_string(Path::new(TRACING).join("trace")).expect("read trace");
    count(&trace, meta.dev(), meta.ino())
}

/// Writes small files of odd sizes first, as an application would, so that
/// the big files do not land on an aligned start by luck.
fn scatter_small_files(dir: &Path) {
    for i in 0..5 {
        std::fs::write(dir.join(format!("small{i}")), vec![7u8; 1_200_000]).expect("small file");
        let odd = File::create(dir.join(format!("odd{i}"))).expect("odd file");
        // SAFETY: fallocate on an open file descriptor; no memory is passed.
        let rc = unsafe { libc::fallocate(odd.as_raw_fd(), 0, 0, 3_100_000) };
        assert_eq!(rc, 0, "fallocate: {}", std::io::Error::last_os_error());
    }
    sh("sync");
}

/// A `FILE_SIZE` file at `path`: its blocks reserved up front
/// (`fallocate`), or left to the faults (sparse).
fn big_file(path: &Path, reserve: bool) -> File {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .expect("create");
    if reserve {
        // SAFETY: fallocate on an open file descriptor; no memory is passed.
        let rc = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, FILE_SIZE as libc::off_t) };
        assert_eq!(rc, 0, "fallocate: {}", std::io::Error::last_os_error());
    } else {
        f.set_len(FILE_SIZE as u64).expect("truncate");
    }
    assert_eq!(f.metadata().expect("stat").len(), FILE_SIZE as u64);
    f
}

async fn pmd_faults(mode: &'static str) {
    reset();
    tracefs();
    let d = Driver::start(mode);
    let mut c = clients(&d.sock).await;
    let mut failures = Vec::new();
    for fs in ["ext4", "xfs"] {
        let cap = fs_cap(fs);
        let v = create(&mut c, &format!("{mode}-pmd-{fs}"), 512 << 20, cap.clone()).await;
        let (staging, target) = stage_publish(&mut c, &v, &cap, &format!("pmd-{fs}")).await;
        let opts = mount_options(&staging).expect("staged");
        assert!(
            opts.split(',').any(|o| o.starts_with("dax")),
            "{mode} {fs}: staging mount without dax: {opts}"
        );
        scatter_small_files(&target);
        for (name, reserve) in [("fallocated", true), ("sparse", false)] {
            let path = target.join(name);
            let faults = touch_mapped(&big_file(&path, reserve));
            println!(
                "{mode} {fs} {name}: {} of {} huge pages mapped by PMD faults ({} fell back to 4 KiB, {} other)",
                faults.pmd,
                FILE_SIZE / HUGE_PAGE,
                faults.fallback,
                faults.other
            );
            if faults.pmd < MIN_PMD {
                failures.push(format!(
                    "{mode} {fs} {name}: {faults:?}, want at least {MIN_PMD} PMD faults; extents:\n{}",
                    sh(&format!("filefrag -v {}", path.display()))
                ));
            }
        }
        unpublish_unstage_delete(&mut c, &v, &staging, &target).await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
async fn vm_pmd_faults_on_ext4_and_xfs_lvm() {
    pmd_faults("lvm").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
async fn vm_pmd_faults_on_ext4_and_xfs_direct() {
    pmd_faults("direct").await;
}

#[test]
fn trace_lines_are_counted_per_file_and_result() {
    // As the 6.1 kernel prints them (one file 254:3 ino 0x8e, another file and device).
    let line = |dev: &str, ino: &str, result: &str| {
        format!(
            "  t-365 [000] .....   130.706535: dax_pmd_fault_done: dev {dev} ino {ino} shared \
             WRITE|ALLOW_RETRY|KILLABLE|USER|INTERRUPTIBLE address 0x7efc9e000000 vm_start \
             0x7efc9e000000 vm_end 0x7efca0000000 pgoff 0x0 max_pgoff 0x2000 {result}\n"
        )
    };
    let trace = [
        "# tracer: nop\n".to_string(),
        line("254:3", "0x8e", "NOPAGE"),
        line("254:3", "0x8e", "NOPAGE"),
        line("254:3", "0x8e", "FALLBACK"),
        line("254:3", "0x8e", "SIGBUS"),
        line("254:3", "0x8e0", "NOPAGE"),
        line("259:3", "0x8e", "NOPAGE"),
    ]
    .concat();
    let dev = libc::makedev(254, 3);
    assert_eq!(
        count(&trace, dev, 0x8e),
        Faults {
            pmd: 2,
            fallback: 1,
            other: 1
        }
    );
    assert_eq!(count(&trace, dev, 0x8f), Faults::default());
}
