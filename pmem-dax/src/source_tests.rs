//! Logic tests of `source` on a fake sysfs tree under a temporary directory (the emulated
//! NVDIMMs report neither media errors nor shutdown counts), and FIEMAP on a real file.

use super::*;
use crate::ErrorKind;
use std::os::unix::fs::symlink;
use std::sync::atomic::{AtomicU32, Ordering};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// A fake sysfs: one bus with region0 over nmem0 and nmem1, a pmem block device with a
/// partition, and a device-dax device; removed on drop.
struct FakeSysfs {
    root: PathBuf,
}

impl FakeSysfs {
    fn new() -> FakeSysfs {
        static N: AtomicU32 = AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "pmem-dax-fake-sysfs-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let f = FakeSysfs { root };
        let region = "devices/ndbus0/region0";
        f.write(&format!("{region}/mappings"), "2\n");
        f.write(&format!("{region}/mapping0"), &format!("nmem0,0,{GIB},0\n"));
        f.write(&format!("{region}/mapping1"), &format!("nmem1,0,{GIB},1\n"));
        f.write(&format!("{region}/resource"), "0x100000000\n");
        f.write(&format!("{region}/badblocks"), "");
        f.write("devices/ndbus0/nmem0/nfit/dirty_shutdown", "3\n");
        f.write("devices/ndbus0/nmem1/nfit/dirty_shutdown", "4\n");
        let disk = format!("{region}/namespace0.0/block/pmem0");
        f.write(&format!("{disk}/badblocks"), "");
        f.write(&format!("{disk}/pmem0p1/partition"), "1\n");
        f.write(&format!("{disk}/pmem0p1/start"), "2048\n");
        f.write(&format!("{disk}/pmem0p1/size"), "4096\n");
        // The device-dax device's data starts 2 MiB into the region, 8 MiB long.
        let dax = format!("{region}/dax0.1/dax0.1");
        f.write(&format!("{dax}/resource"), "0x100200000\n");
        f.write(&format!("{dax}/size"), &format!("{}\n", 8 * MIB));
        f.write("devices/virtual/block/vda/size", "1000\n");
        f.link("dev/block/259:0", &disk);
        f.link("dev/block/259:1", &format!("{disk}/pmem0p1"));
        f.link("dev/char/252:1", &dax);
        f.link("dev/block/254:0", "devices/virtual/block/vda");
        f
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.root.join(rel);
        fs::create_dir_all(p.parent().expect("has a parent")).expect("mkdir");
        fs::write(&p, text).expect("write");
    }

    fn link(&self, rel: &str, target: &str) {
        let p = self.root.join(rel);
        fs::create_dir_all(p.parent().expect("has a parent")).expect("mkdir");
        symlink(self.root.join(target), &p).expect("symlink");
    }

    fn file_on(&self, dev: &str) -> Source {
        Source {
            path: PathBuf::from("/mnt/pmem/pool"),
            kind: Kind::File {
                sys: self.root.join("dev/block").join(dev),
            },
        }
    }

    fn devdax(&self) -> Source {
        Source {
            path: PathBuf::from("/dev/dax0.1"),
            kind: Kind::DevDax {
                sys: self.root.join("dev/char/252:1"),
            },
        }
    }
}

impl Drop for FakeSysfs {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

#[test]
fn fake_sysfs_unsafe_shutdown_count_sums_the_regions_dimms() {
    let f = FakeSysfs::new();
    assert_eq!(f.file_on("259:0").unsafe_shutdown_count().expect("usc"), 7);
    assert_eq!(f.file_on("259:1").unsafe_shutdown_count().expect("usc"), 7);
    assert_eq!(f.devdax().unsafe_shutdown_count().expect("usc"), 7);
    // A shutdown counted by one DIMM shows in the sum: the pattern an application compares.
    f.write("devices/ndbus0/nmem1/nfit/dirty_shutdown", "5\n");
    assert_eq!(f.devdax().unsafe_shutdown_count().expect("usc"), 8);
    // One DIMM that does not count makes the whole count unknown.
    fs::remove_file(f.root.join("devices/ndbus0/nmem1/nfit/dirty_shutdown")).expect("rm");
    let e = f
        .devdax()
        .unsafe_shutdown_count()
        .expect_err("nmem1 has no count");
    assert_eq!(e.kind(), ErrorKind::NotSupported);
    assert!(
        e.to_string().contains("/dev/dax0.1") && e.to_string().contains("nmem1"),
        "{e}"
    );
}

#[test]
fn fake_sysfs_devices_off_every_region_are_not_supported() {
    let f = FakeSysfs::new();
    let plain = f.file_on("254:0");
    assert_eq!(
        plain.unsafe_shutdown_count().unwrap_err().kind(),
        ErrorKind::NotSupported
    );
    assert_eq!(
        plain.badblocks().unwrap_err().kind(),
        ErrorKind::NotSupported
    );
    let gone = f.file_on("0:45");
    assert_eq!(
        gone.unsafe_shutdown_count().unwrap_err().kind(),
        ErrorKind::NotSupported
    );
    assert_eq!(
        gone.badblocks().unwrap_err().kind(),
        ErrorKind::NotSupported
    );
}

#[test]
fn fake_sysfs_devdax_bad_ranges_are_the_regions_within_the_device() {
    let f = FakeSysfs::new();
    assert_eq!(f.devdax().badblocks().expect("none"), vec![]);
    // Region sectors: 4096 is the device's first, 4096 + 16384 its end.
    f.write(
        "devices/ndbus0/region0/badblocks",
        "0 8\n4092 8\n4200 1\n20470 16\n30000 4\n",
    );
    assert_eq!(
        f.devdax().badblocks().expect("ranges"),
        vec![
            BadRange::new(0, 4 * 512),
            BadRange::new(104 * 512, 512),
            BadRange::new(16374 * 512, 10 * 512),
        ]
    );
    f.write("devices/ndbus0/region0/badblocks", "12 x\n");
    let e = f.devdax().badblocks().expect_err("garbage");
    assert_eq!(e.kind(), ErrorKind::Sysfs);
    assert!(e.to_string().contains("region0/badblocks"), "{e}");
}

#[test]
fn fake_sysfs_a_partition_sees_the_disks_list_shifted() {
    let f = FakeSysfs::new();
    let disk = "devices/ndbus0/region0/namespace0.0/block/pmem0/badblocks";
    f.write(disk, "10 1\n2050 2\n6140 8\n");
    assert_eq!(
        block_device_bad_ranges(&f.root.join("dev/block/259:1")).expect("ranges"),
        vec![
            BadRange::new(2 * 512, 2 * 512),
            BadRange::new(4092 * 512, 4 * 512)
        ]
    );
    assert_eq!(
        block_device_bad_ranges(&f.root.join("dev/block/259:0")).expect("ranges"),
        vec![
            BadRange::new(10 * 512, 512),
            BadRange::new(2050 * 512, 1024),
            BadRange::new(6140 * 512, 8 * 512)
        ]
    );
}

#[test]
fn device_ranges_map_through_extents_to_file_offsets() {
    let k = 1024;
    let extents = [
        Extent {
            logical: 0,
            physical: MIB,
            len: 64 * k,
        },
        Extent {
            logical: 64 * k,
            physical: 4 * MIB,
            len: 64 * k,
        },
    ];
    let device = [
        BadRange::new(MIB + 4096, 512),
        BadRange::new(4 * MIB, 1024),
        BadRange::new(MIB + 64 * k - 512, 1024), // runs past the first extent's end
        BadRange::new(2 * MIB, 4096),            // in no extent of the file
    ];
    assert_eq!(
        file_ranges(&extents, &device),
        vec![
            BadRange::new(4096, 512),
            // The end of the first extent and the start of the second are adjacent in the file.
            BadRange::new(64 * k - 512, 512 + 1024),
        ]
    );
    assert_eq!(file_ranges(&extents, &[]), vec![]);
}

#[test]
fn fiemap_lists_a_written_files_extents() {
    let path = std::env::temp_dir().join(format!("pmem-dax-fiemap-{}", std::process::id()));
    fs::write(&path, vec![7u8; 300_000]).expect("write");
    let file = File::open(&path).expect("open");
    let got = sys::extents(&file);
    let _ = fs::remove_file(&path);
    let extents = match got {
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            eprintln!("skipped: the temporary directory's filesystem has no FIEMAP");
            return;
        }
        other => other.expect("FIEMAP"),
    };
    assert_eq!(extents.first().map(|e| e.logical), Some(0), "{extents:?}");
    let covered: u64 = extents.iter().map(|e| e.len).sum();
    assert!(covered >= 300_000, "{extents:?}");
    assert!(extents.windows(2).all(|w| w[0].logical < w[1].logical));
}

#[test]
fn open_refuses_what_is_neither_file_nor_devdax() {
    let e = Source::open(std::env::temp_dir()).expect_err("a directory");
    assert_eq!(e.kind(), ErrorKind::NotSupported);
    let e = Source::open("/nonexistent/pool").expect_err("missing");
    assert_eq!(e.kind(), ErrorKind::NotFound);
}
