//! Tier 3, inside the emulated-PMEM VM: MAP_SYNC on a DAX-mounted fsdax
//! namespace, and device-dax mappings with their alignment. Each test
//! reconfigures one region's namespace with the real `ndctl` and puts it
//! back to raw mode when done, even on failure. Media health: the emulated
//! DIMMs count no shutdowns; bad blocks are added to a pmem block device's list.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use pmem_dax::{map_file, BadRange, DevDax, ErrorKind, MapKind, MapOptions, Source};

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of `"key":"value"` in ndctl's JSON output.
fn json_str(json: &str, key: &str) -> String {
    let pat = format!("\"{key}\":\"");
    let at = json
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + pat.len();
    json[at..].split('"').next().unwrap_or_default().to_owned()
}

/// A namespace for a test: on a label-less region its one namespace
/// reconfigured (back to raw mode on drop), on a labelled region a new
/// 512 MiB namespace (destroyed on drop).
struct Namespace {
    name: String,
    json: String,
    mount: Option<PathBuf>,
    labelled: bool,
}

impl Namespace {
    fn create(region: &str, mode: &str) -> Namespace {
        let labelled = run("ndctl", &["list", "-R", "-r", region]).contains("\"iset_id\"");
        let json = if labelled {
            run(
                "ndctl",
                &["create-namespace", "-r", region, "-s", "512M", "-m", mode],
            )
        } else {
            let seed = format!("namespace{}.0", region.trim_start_matches("region"));
            run(
                "ndctl",
                &["create-namespace", "-f", "-e", &seed, "-m", mode],
            )
        };
        Namespace {
            name: json_str(&json, "dev"),
            json,
            mount: None,
            labelled,
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Some(m) = &self.mount {
            let _ = Command::new("umount").arg(m).status();
            let _ = fs::remove_dir(m);
        }
        let args: &[&str] = if self.labelled {
            &["destroy-namespace", "-f", &self.name]
        } else {
            &["create-namespace", "-f", "-e", &self.name, "-m", "raw"]
        };
        let _ = Command::new("ndctl").args(args).output();
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
fn vm_map_sync_on_a_dax_mount() {
    let mut ns = Namespace::create("region0", "fsdax");
    let dev = format!("/dev/{}", json_str(&ns.json, "blockdev"));
    run("mkfs.ext4", &["-q", "-F", "-b", "4096", &dev]);
    let mnt = PathBuf::from("/mnt/pmem-dax-vm-test");
    fs::create_dir_all(&mnt).expect("mount point");
    run("mount", &["-o", "dax", &dev, s(&mnt)]);
    ns.mount = Some(mnt.clone());

    let path = mnt.join("data");
    // SAFETY: the file is private to this test.
    let mut m = unsafe {
        MapOptions::new()
            .create(8 << 20)
            .require_dax(true)
            .map(&path)
    }
    .expect("MAP_SYNC map");
    assert_eq!(m.kind(), MapKind::Sync);
    assert_eq!(
        m.is_pmem(),
        pmem_dax::features().is_pmem_force().unwrap_or(true)
    );
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    m.write_persist(3, &payload).expect("write_persist");
    m.fill_persist(200_003, 4096, 0x77).expect("fill_persist");
    match m.deep_flush() {
        Ok(()) => {}
        Err(e) => assert_eq!(e.kind(), ErrorKind::Sysfs, "deep flush: {e}"),
    }
    drop(m);
    // SAFETY: as above.
    let m = unsafe { map_file(&path, 4096) }.expect("reopen");
    assert_eq!(m.kind(), MapKind::Sync);
    assert_eq!(m.len(), 8 << 20);
    assert_eq!(m.bytes(3, payload.len()).expect("read"), &payload[..]);
    assert!(m
        .bytes(200_003, 4096)
        .expect("read")
        .iter()
        .all(|&b| b == 0x77));
}

#[test]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
fn vm_devdax_mapping_honours_alignment() {
    let ns = Namespace::create("region1", "devdax");
    let path = format!("/dev/{}", json_str(&ns.json, "chardev"));
    let dax = DevDax::open(&path).expect("open device-dax");
    let align = dax.align();
    assert!(align >= 4096 && align.is_power_of_two(), "align {align}");
    assert!(
        dax.size() >= 16 << 20 && dax.size().is_multiple_of(align),
        "size {}",
        dax.size()
    );

    // SAFETY: the device was created for this test; no one else maps it.
    let e = unsafe { dax.map(4096, Some(align)) }.expect_err("misaligned offset");
    assert_eq!(e.kind(), ErrorKind::Misaligned);
    assert!(e.to_string().contains(&path), "{e}");
    // SAFETY: as above.
    let e = unsafe { dax.map(0, Some(align + 4096)) }.expect_err("misaligned length");
    assert_eq!(e.kind(), ErrorKind::Misaligned);
    // SAFETY: as above.
    let e = unsafe { dax.map(dax.size(), Some(align)) }.expect_err("past the end");
    assert_eq!(e.kind(), ErrorKind::InvalidSize);

    // SAFETY: as above.
    let mut part = unsafe { dax.map(align, Some(2 * align)) }.expect("map a part");
    assert_eq!(part.kind(), MapKind::DevDax);
    assert!(part.is_pmem() || pmem_dax::features().is_pmem_force() == Some(false));
    assert_eq!(part.len() as u64, 2 * align);
    assert!(
        (part.as_slice().as_ptr() as u64).is_multiple_of(align),
        "the kernel aligns the address"
    );
    part.write_persist(10, b"device-dax").expect("write");
    drop(part);
    // SAFETY: as above.
    let whole = unsafe { dax.map(0, None) }.expect("map whole");
    assert_eq!(whole.len() as u64, dax.size());
    assert_eq!(
        whole.bytes(align as usize + 10, 10).expect("read"),
        b"device-dax"
    );
}

/// The physical block (4 KiB) where `path`'s first extent starts and its length in
/// blocks, from `filefrag -v` (e2fsprogs), a reading independent of pmem-dax's FIEMAP.
fn first_extent(path: &Path) -> (u64, u64) {
    let out = run("filefrag", &["-v", s(path)]);
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("0:"))
        .unwrap_or_else(|| panic!("no extent 0 in {out}"));
    let f: Vec<&str> = line
        .split([':', ' ', '.'])
        .filter(|x| !x.is_empty())
        .collect();
    // 0: <logical start> <logical end> <physical start> <physical end> <length> ...
    (
        f[3].parse().expect("physical"),
        f[5].parse().expect("length"),
    )
}

#[test]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
fn vm_sources_on_emulated_dimms_have_no_shutdown_count_and_bad_blocks_map_into_files() {
    let mut ns = Namespace::create("region0", "fsdax");
    let bdev = json_str(&ns.json, "blockdev");
    let dev = format!("/dev/{bdev}");
    run("mkfs.ext4", &["-q", "-F", "-b", "4096", &dev]);
    let mnt = PathBuf::from("/mnt/pmem-dax-vm-health");
    fs::create_dir_all(&mnt).expect("mount point");
    run("mount", &["-o", "dax", &dev, s(&mnt)]);
    ns.mount = Some(mnt.clone());
    let path = mnt.join("pool");
    // SAFETY: the file is private to this test.
    let mut m = unsafe { MapOptions::new().create(8 << 20).map(&path) }.expect("map");
    m.fill_persist(0, 8 << 20, 0x5a).expect("write every block");
    drop(m);

    let src = Source::open(&path).expect("source");
    // QEMU's NVDIMMs answer no SMART, so the kernel shows no dirty_shutdown attribute.
    let e = src
        .unsafe_shutdown_count()
        .expect_err("QEMU counts no shutdowns");
    assert_eq!(e.kind(), ErrorKind::NotSupported, "{e}");
    assert!(e.to_string().contains("nmem"), "{e}");
    assert_eq!(src.badblocks().expect("bad blocks"), vec![]);

    // Root may add a bad block to the pmem device's list: block 3 of the file's first extent.
    let (phys, len) = first_extent(&path);
    assert!(len >= 4, "first extent of {len} blocks");
    let sector = (phys + 3) * 8;
    fs::write(
        format!("/sys/block/{bdev}/badblocks"),
        format!("{sector} 8\n"),
    )
    .expect("add a bad block");
    assert_eq!(
        src.badblocks().expect("bad blocks"),
        vec![BadRange::new(3 * 4096, 4096)]
    );
    let other = mnt.join("other");
    fs::write(&other, b"small").expect("another file");
    assert_eq!(
        Source::open(&other)
            .expect("source")
            .badblocks()
            .expect("none"),
        vec![]
    );

    let dns = Namespace::create("region1", "devdax");
    let chardev = format!("/dev/{}", json_str(&dns.json, "chardev"));
    let src = Source::open(&chardev).expect("device-dax source");
    let e = src
        .unsafe_shutdown_count()
        .expect_err("QEMU counts no shutdowns");
    assert_eq!(e.kind(), ErrorKind::NotSupported, "{e}");
    assert_eq!(
        src.badblocks().expect("no bad blocks on the region"),
        vec![]
    );
    // Not a source: a directory.
    let e = Source::open(&mnt).expect_err("a directory");
    assert_eq!(e.kind(), ErrorKind::NotSupported);
}
