//! Mappings without persistent memory: anonymous memory, files on a
//! non-DAX filesystem (the MAP_SYNC fallback), device-dax refusals, and the
//! error for each bad request. Tier 2 repeats the fallback on an ext4 loop
//! mount as root.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use pmem_dax::{map_file, DevDax, ErrorKind, MapKind, MapOptions, Mapping};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("pmem-dax-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn forced() -> Option<bool> {
    pmem_dax::features().is_pmem_force()
}

#[test]
fn anonymous_slices_and_views_are_bounds_checked() {
    let mut m = Mapping::anonymous(4096).expect("anonymous mapping");
    assert_eq!(m.len(), 4096);
    assert_eq!(m.kind(), MapKind::Anonymous);
    assert_eq!(m.is_pmem(), forced().unwrap_or(false));
    m.bytes_mut(4000, 96).expect("last bytes").fill(3);
    assert_eq!(m.bytes(4090, 6).expect("tail"), &[3; 6]);
    let e = m.bytes(4000, 97).expect_err("one past the end");
    assert_eq!(e.kind(), ErrorKind::OutOfRange);
    assert!(e.to_string().contains("[anonymous]"), "{e}");
    assert_eq!(
        m.bytes(usize::MAX, 2).expect_err("overflow").kind(),
        ErrorKind::OutOfRange
    );

    *m.view_mut::<u64>(8).expect("aligned u64") = 0x0102_0304_0506_0708;
    assert_eq!(
        m.bytes(8, 8).expect("bytes"),
        &0x0102_0304_0506_0708u64.to_ne_bytes()
    );
    assert_eq!(
        *m.view::<[u32; 2]>(8).expect("array view"),
        [0x0506_0708, 0x0102_0304]
    );
    assert_eq!(
        m.view::<u64>(4).expect_err("misaligned").kind(),
        ErrorKind::OutOfRange
    );
    assert_eq!(
        m.view::<u64>(4096 - 4).expect_err("outside").kind(),
        ErrorKind::OutOfRange
    );

    m.write_persist(100, b"durable").expect("write");
    m.fill_persist(200, 10, 0xee).expect("fill");
    m.persist(0, 4096).expect("persist");
    assert_eq!(m.bytes(100, 7).expect("read"), b"durable");
    assert_eq!(
        m.write_persist(4090, b"too long")
            .expect_err("outside")
            .kind(),
        ErrorKind::OutOfRange
    );
    assert_eq!(
        Mapping::anonymous(0).expect_err("empty").kind(),
        ErrorKind::InvalidSize
    );
}

#[test]
fn file_on_a_non_dax_filesystem_falls_back_to_msync() {
    let dir = TempDir::new("fallback");
    let path = dir.0.join("data");
    // SAFETY: the file is private to this test.
    let mut m = unsafe { map_file(&path, 1 << 20) }.expect("create and map");
    assert_eq!(m.kind(), MapKind::Shared, "the temp filesystem is not DAX");
    assert_eq!(m.is_pmem(), forced().unwrap_or(false));
    assert_eq!(m.len(), 1 << 20);
    m.write_persist(12345, b"hello").expect("write and msync");
    drop(m);
    assert_eq!(&fs::read(&path).expect("read back")[12345..12350], b"hello");
    // Reopening keeps the file's own length and content.
    // SAFETY: as above.
    let m = unsafe { MapOptions::new().create(4096).map(&path) }.expect("reopen");
    assert_eq!(m.len(), 1 << 20);
    assert_eq!(m.bytes(12345, 5).expect("bytes"), b"hello");
    // SAFETY: as above.
    let e = unsafe { MapOptions::new().require_dax(true).map(&path) }.expect_err("DAX required");
    assert_eq!(e.kind(), ErrorKind::NotDax);
    assert!(e.to_string().contains("data"), "{e}");
}

/// Maps `path` with `opts` and returns the error it must fail with.
fn refused(opts: MapOptions, path: &Path) -> pmem_dax::Error {
    // SAFETY: the test paths are private to this process.
    unsafe { opts.map(path) }.expect_err("the request must fail")
}

#[test]
fn bad_requests_name_the_file() {
    let dir = TempDir::new("errors");
    let create = || MapOptions::new().create(4096);
    let e = refused(create(), &dir.0.join("no-such-dir").join("f"));
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("no-such-dir"), "{e}");

    let e = refused(MapOptions::new().create(0), &dir.0.join("zero"));
    assert_eq!(e.kind(), ErrorKind::InvalidSize);
    assert!(
        !dir.0.join("zero").exists(),
        "a failed create leaves no file"
    );

    let e = refused(MapOptions::new().create(1 << 60), &dir.0.join("huge"));
    assert_eq!(e.kind(), ErrorKind::InvalidSize, "{e}");
    assert!(e.to_string().contains("huge"), "{e}");

    let e = refused(MapOptions::new(), &dir.0.join("absent"));
    assert_eq!(e.kind(), ErrorKind::NotFound);

    fs::write(dir.0.join("empty"), b"").expect("make empty file");
    let e = refused(MapOptions::new(), &dir.0.join("empty"));
    assert_eq!(e.kind(), ErrorKind::InvalidSize);

    let e = refused(create(), &dir.0);
    assert!(
        matches!(e.kind(), ErrorKind::Io | ErrorKind::InvalidSize),
        "{e}"
    );
}

#[test]
fn lock_keeps_a_second_mapping_out_until_drop() {
    let dir = TempDir::new("lock");
    let path = dir.0.join("locked");
    // SAFETY: private test file.
    let first = unsafe { MapOptions::new().create(4096).lock(true).map(&path) }.expect("first");
    let e = refused(MapOptions::new().lock(true), &path);
    assert_eq!(e.kind(), ErrorKind::Locked);
    assert!(e.to_string().contains("locked"), "{e}");
    drop(first);
    // SAFETY: as above.
    let again = unsafe { MapOptions::new().lock(true).map(&path) }.expect("free again");
    assert_eq!(again.len(), 4096);
}

#[test]
fn devdax_refuses_other_files() {
    let e = DevDax::open("/dev/null").expect_err("not dax");
    assert_eq!(e.kind(), ErrorKind::NotDevDax);
    assert!(e.to_string().contains("/dev/null"), "{e}");
    let e = DevDax::open("/etc/hostname").expect_err("regular file");
    assert_eq!(e.kind(), ErrorKind::NotDevDax);
    assert_eq!(
        DevDax::open("/dev/dax-absent").expect_err("absent").kind(),
        ErrorKind::NotFound
    );
}

fn run(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(st.success(), "{cmd} {args:?}: {st}");
}

/// Unmounts and removes on drop, so a failing test leaves nothing behind.
struct LoopMount {
    dir: TempDir,
    mnt: PathBuf,
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
        let _ = &self.dir;
    }
}

fn ext4_loop_mount(tag: &str) -> LoopMount {
    let dir = TempDir::new(tag);
    let img = dir.0.join("fs.img");
    let mnt = dir.0.join("mnt");
    fs::create_dir(&mnt).expect("mount point");
    fs::File::create(&img)
        .and_then(|f| f.set_len(64 << 20))
        .expect("image");
    run("mkfs.ext4", &["-q", "-b", "4096", path_str(&img)]);
    run("mount", &["-o", "loop", path_str(&img), path_str(&mnt)]);
    LoopMount { dir, mnt }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

#[test]
#[ignore = "tier 2: needs root on the host; run scripts/test"]
fn root_ext4_without_dax_refuses_map_sync() {
    let lm = ext4_loop_mount("ext4");
    let path = lm.mnt.join("log");
    // SAFETY: the file is private to this test.
    let e = unsafe {
        MapOptions::new()
            .create(1 << 20)
            .require_dax(true)
            .map(&path)
    }
    .expect_err("no DAX");
    assert_eq!(e.kind(), ErrorKind::NotDax, "{e}");
    assert!(!path.exists(), "the refused create leaves no file");
    // SAFETY: as above.
    let mut m = unsafe { map_file(&path, 1 << 20) }.expect("fallback mapping");
    assert_eq!(m.kind(), MapKind::Shared);
    assert_eq!(m.is_pmem(), forced().unwrap_or(false));
    m.write_persist(4096, b"on ext4").expect("write with msync");
    drop(m);
    assert_eq!(&fs::read(&path).expect("read")[4096..4103], b"on ext4");
}
