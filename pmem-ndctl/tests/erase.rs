//! The one erase: refusals on any host (tier 1), loop devices as root (tier 2).

use pmem_ndctl::erase::{device_size, zero_device, zero_range};
use pmem_ndctl::ErrorKind;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::Command;

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pmem-erase-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_regular_file_or_a_missing_path_is_refused_naming_it() {
    let d = temp_dir("refuse");
    let file = d.join("data");
    std::fs::write(&file, [7u8; 4096]).unwrap();
    let e = zero_device(&file, &mut |_, _| {}).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.to_string().contains(file.to_str().unwrap()), "{e}");
    assert_eq!(std::fs::read(&file).unwrap(), [7u8; 4096], "left intact");
    assert_eq!(
        device_size(&file).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    let missing = d.join("nothing");
    let e = zero_range(&missing, 0, 512, &mut |_, _| {}).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("nothing"), "{e}");
    std::fs::remove_dir_all(d).unwrap();
}

/// A loop device over a 64 MiB image filled with 0xAB, detached on drop.
struct Loop {
    dev: PathBuf,
    dir: PathBuf,
}

impl Loop {
    fn new(tag: &str) -> Loop {
        let dir = temp_dir(tag);
        let img = dir.join("img");
        std::fs::write(&img, vec![0xABu8; 64 << 20]).unwrap();
        let out = Command::new("losetup")
            .args(["--find", "--show", "--"])
            .arg(&img)
            .output()
            .unwrap();
        assert!(out.status.success(), "losetup: {out:?}");
        let dev = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        Loop { dev, dir }
    }

    fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        let mut f = std::fs::File::open(&self.dev).unwrap();
        f.seek(SeekFrom::Start(offset)).unwrap();
        let mut buf = vec![0u8; len];
        f.read_exact(&mut buf).unwrap();
        buf
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg(self.dir.join("mnt"))
            .stderr(std::process::Stdio::null())
            .status();
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
#[ignore = "tier 2: needs root on the host; run scripts/test"]
fn root_zeroes_a_range_then_the_whole_block_device_with_progress() {
    let lo = Loop::new("range");
    assert_eq!(device_size(&lo.dev).unwrap(), 64 << 20);
    let mut reports = Vec::new();
    let n = zero_range(&lo.dev, 1 << 20, 2 << 20, &mut |d, t| reports.push((d, t))).unwrap();
    assert_eq!(n, 2 << 20);
    assert_eq!(reports.last(), Some(&(2 << 20, 2 << 20)));
    assert!(lo.read((1 << 20) - 512, 512).iter().all(|&b| b == 0xAB));
    assert!(lo.read(1 << 20, 2 << 20).iter().all(|&b| b == 0));
    assert!(lo.read(3 << 20, 512).iter().all(|&b| b == 0xAB));
    let e = zero_range(&lo.dev, 100, 512, &mut |_, _| {}).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    let e = zero_range(&lo.dev, 63 << 20, 2 << 20, &mut |_, _| {}).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(
        lo.read(63 << 20, 512).iter().all(|&b| b == 0xAB),
        "a refused range is left untouched"
    );

    reports.clear();
    let n = zero_device(&lo.dev, &mut |d, t| reports.push((d, t))).unwrap();
    assert_eq!(n, 64 << 20);
    assert_eq!(reports.last(), Some(&(64 << 20, 64 << 20)));
    assert!(reports.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(lo.read(0, 64 << 20).iter().all(|&b| b == 0));
}

#[test]
#[ignore = "tier 2: needs root on the host; run scripts/test"]
fn root_a_mounted_block_device_is_refused_busy_and_left_intact() {
    let lo = Loop::new("mounted");
    let ok = |c: &mut Command| assert!(c.status().unwrap().success(), "{c:?}");
    ok(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&lo.dev));
    let mnt = lo.dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    ok(Command::new("mount").arg(&lo.dev).arg(&mnt));
    std::fs::File::create(mnt.join("kept"))
        .and_then(|mut f| f.write_all(b"still here"))
        .unwrap();
    let e = zero_device(&lo.dev, &mut |_, _| {}).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy, "{e}");
    assert!(e.to_string().contains(lo.dev.to_str().unwrap()), "{e}");
    assert_eq!(std::fs::read(mnt.join("kept")).unwrap(), b"still here");
    ok(Command::new("umount").arg(&mnt));
    // The ext4 superblock's magic (0xEF53 at byte 1080) is still there.
    assert_eq!(lo.read(1080, 2), [0x53, 0xEF]);
}
