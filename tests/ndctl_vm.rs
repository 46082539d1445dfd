//! Tier 3, inside the emulated-PMEM VM: pmem-ndctl and its `ndctl` work-alike judged against
//! the real `ndctl` in the same boot. Every test puts the regions in the state it needs first.

use pmem::ndctl::{BadBlock, Context, ErrorKind, Mode, NamespaceSpec, Size};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

const MIB: u64 = 1 << 20;

#[path = "support/examples.rs"]
mod examples;

/// The work-alike, pmem-ndctl's `ndctl` example.
fn ours_path() -> PathBuf {
    examples::example("ndctl")
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} can run: {e}"))
}

fn ours(args: &[&str]) -> Output {
    run(ours_path().to_str().expect("utf-8 path"), args)
}

fn real(args: &[&str]) -> Output {
    run("ndctl", args)
}

fn ok(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8 output")
}

fn json(s: &str) -> Value {
    if s.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
    }
}

/// `ndctl ARGS` and the work-alike print the same thing, byte for byte.
fn assert_same_listing(args: &[&str]) -> Value {
    let theirs = ok(real(args), "ndctl");
    let mine = ok(ours(args), "work-alike");
    assert_eq!(
        json(&mine),
        json(&theirs),
        "ndctl {args:?} differs field for field"
    );
    assert_eq!(mine, theirs, "ndctl {args:?} differs in layout");
    json(&theirs)
}

fn assert_all_listings_same() {
    for args in [
        &["list"][..],
        &["list", "-RND"],
        &["list", "-RNDi"],
        &["list", "-N"],
        &["list", "-D"],
        &["list", "-R", "-r", "region1"],
        &["list", "-N", "-r", "0"],
        &["list", "-DH"],
        &["list", "-D", "--health"],
        &["list", "-RN", "--media-errors"],
        &["list", "-RNDHM"],
    ] {
        assert_same_listing(args);
    }
}

/// Puts both regions back to empty, labelled or label-less, with the real ndctl.
fn reset(labelled: bool) {
    let _ = real(&["destroy-namespace", "all", "-f"]);
    ok(real(&["disable-region", "all"]), "disable-region");
    if labelled {
        ok(real(&["init-labels", "-f", "all"]), "init-labels");
    } else {
        ok(real(&["zero-labels", "all"]), "zero-labels");
    }
    ok(real(&["enable-region", "all"]), "enable-region");
}

fn region(name: &str) -> Value {
    let v = json(&ok(real(&["list", "-R", "-r", name]), "list region"));
    v[0].clone()
}

#[test]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
fn vm_labels_every_mode_and_fragmentation_match_ndctl() {
    reset(false);
    // Labels through the work-alike: the real ndctl must see them.
    ok(ours(&["disable-region", "all"]), "disable-region");
    ok(ours(&["init-labels", "all"]), "init-labels");
    ok(ours(&["enable-region", "all"]), "enable-region");
    assert_all_listings_same();
    assert!(
        region("region0")["iset_id"].is_u64(),
        "labelled regions report an iset_id"
    );

    for (mode, name) in [
        ("fsdax", "a-fsdax"),
        ("devdax", "a-devdax"),
        ("sector", "a-sector"),
        ("raw", "a-raw"),
    ] {
        let made = json(&ok(
            ours(&[
                "create-namespace",
                "-r",
                "region0",
                "-m",
                mode,
                "-s",
                "256M",
                "-n",
                name,
            ]),
            mode,
        ));
        assert_eq!(made["mode"], mode);
        assert_eq!(made["name"], name);
    }
    // One made by the real ndctl: the library must see it as ndctl does.
    ok(
        real(&[
            "create-namespace",
            "-r",
            "region1",
            "-m",
            "fsdax",
            "-s",
            "512M",
            "-n",
            "theirs",
        ]),
        "ndctl create",
    );
    assert_all_listings_same();
    let ns = assert_same_listing(&["list", "-N", "-r", "region0"]);
    let sizes: Vec<(String, u64)> = ns
        .as_array()
        .expect("array")
        .iter()
        .map(|n| {
            (
                n["mode"].as_str().unwrap_or("").to_string(),
                n["size"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert!(
        sizes.contains(&("fsdax".into(), 250 * MIB)),
        "256M fsdax gives 250M usable: {sizes:?}"
    );
    assert!(sizes.contains(&("devdax".into(), 250 * MIB)), "{sizes:?}");
    assert!(sizes.contains(&("raw".into(), 256 * MIB)), "{sizes:?}");

    // Fragment region1: five 256M namespaces after the 512M one, destroy the 2nd and 4th.
    ok(
        real(&["destroy-namespace", "-f", "all", "-r", "region1"]),
        "clean region1",
    );
    let mut devs = Vec::new();
    for i in 0..5 {
        let mode = if i == 4 { "devdax" } else { "fsdax" };
        let made = json(&ok(
            ours(&[
                "create-namespace",
                "-r",
                "region1",
                "-m",
                mode,
                "-s",
                "256M",
            ]),
            "create",
        ));
        devs.push(made["dev"].as_str().expect("dev").to_string());
    }
    ok(ours(&["destroy-namespace", "-f", &devs[1]]), "destroy");
    ok(
        real(&["destroy-namespace", "-f", &devs[3]]),
        "destroy with ndctl",
    );
    let r1 = region("region1");
    let size = r1["size"].as_u64().expect("size");
    assert_eq!(r1["available_size"].as_u64(), Some(size - 3 * 256 * MIB));
    assert_eq!(
        r1["max_available_extent"].as_u64(),
        Some(size - 5 * 256 * MIB),
        "the tail is the largest hole"
    );
    assert_all_listings_same();
    let ctx = Context::new().expect("context");
    let r = ctx.region("region1").expect("region1");
    assert_eq!(Some(r.available_size()), r1["available_size"].as_u64());
    assert_eq!(
        r.max_available_extent(),
        r1["max_available_extent"].as_u64()
    );
}

/// What a failed request must not change: the region and its live namespaces.
fn region0_state() -> (Value, Value) {
    (
        region("region0"),
        json(&ok(real(&["list", "-N", "-r", "region0"]), "list -N")),
    )
}

#[test]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
fn vm_refused_and_failed_creates_leave_the_region_unchanged() {
    reset(true);
    ok(
        ours(&[
            "create-namespace",
            "-r",
            "region0",
            "-m",
            "fsdax",
            "-s",
            "256M",
        ]),
        "first namespace",
    );
    let before = region0_state();
    for (args, expect) in [
        (
            &["-r", "region0", "-s", "4G"][..],
            "region0: no room for 4 GiB: the largest that fits is",
        ),
        (
            &["-r", "region0", "-s", "17M"],
            "region0: size 17 MiB is not a multiple of the 16 MiB alignment",
        ),
        (&["-r", "region7", "-s", "16M"], "region7: not found"),
        (
            &["-r", "region0", "-s", "16M", "-a", "1M"],
            "alignment 1 MiB is not supported",
        ),
        (
            &["-r", "region0", "-s", "16M", "-n", &"n".repeat(64)],
            "name is 64 bytes long, the label holds at most 63",
        ),
    ] {
        let o = ours(&[&["create-namespace"][..], args].concat());
        assert!(!o.status.success(), "{args:?} was accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(expect), "{args:?}: {err}");
        assert_eq!(region0_state(), before, "{args:?} changed region0");
    }
    let mut ctx = Context::new().expect("context");
    let e = ctx
        .create_namespace(&NamespaceSpec::new("region0", Mode::Fsdax, Size(4 << 30)))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpace);
    // A failure at every step of the kernel sequence is rolled back; the
    // first step count that is not cut short creates the namespace.
    for mode in [Mode::Fsdax, Mode::Devdax, Mode::Sector, Mode::Raw] {
        let mut step = 0;
        let made = loop {
            let spec = NamespaceSpec::new("region0", mode, Size(64 * MIB))
                .name("doomed")
                .fail_after_step(step);
            match ctx.create_namespace(&spec) {
                Ok(made) => break made,
                Err(e) => {
                    assert!(
                        e.to_string().contains("injected failure"),
                        "{mode} step {step}: {e}"
                    );
                    assert_eq!(
                        region0_state(),
                        before,
                        "{mode} failing after step {step} changed region0"
                    );
                }
            }
            step += 1;
        };
        assert!(step >= 4, "{mode}: only {step} steps");
        assert_eq!(made.mode, mode);
        ctx.destroy_namespace(&made.dev, true).expect("destroy");
        assert_eq!(
            region0_state(),
            before,
            "{mode}: create + destroy changed region0"
        );
    }
    let made = ctx
        .create_namespace(&NamespaceSpec::new("region0", Mode::Sector, Size(64 * MIB)))
        .expect("create after rollbacks");
    assert_eq!(made.mode, Mode::Sector);
}

#[test]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
fn vm_busy_namespaces_are_refused_and_intact() {
    reset(true);
    let made = json(&ok(
        ours(&[
            "create-namespace",
            "-r",
            "region0",
            "-m",
            "fsdax",
            "-s",
            "256M",
            "-n",
            "mounted",
        ]),
        "create",
    ));
    let dev = made["dev"].as_str().expect("dev").to_string();
    let blk = format!("/dev/{}", made["blockdev"].as_str().expect("blockdev"));
    let mnt = "/run/pmem-ndctl-busy";
    std::fs::create_dir_all(mnt).expect("mkdir");
    ok(run("mkfs.ext4", &["-q", "-F", "-b", "4096", &blk]), "mkfs");
    ok(run("mount", &["-o", "dax", &blk, mnt]), "mount -o dax");
    std::fs::write(format!("{mnt}/keep"), b"still here").expect("write");
    let o = ours(&["destroy-namespace", "-f", &dev]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("busy"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut ctx = Context::new().expect("context");
    assert_eq!(
        ctx.destroy_namespace(&dev, true).unwrap_err().kind(),
        ErrorKind::Busy
    );
    assert_eq!(
        ctx.disable_region("region0").unwrap_err().kind(),
        ErrorKind::Busy
    );
    assert_eq!(
        std::fs::read(format!("{mnt}/keep")).expect("read"),
        b"still here"
    );
    ok(run("umount", &[mnt]), "umount");
    ok(run("mount", &["-o", "dax", &blk, mnt]), "mount again");
    assert_eq!(
        std::fs::read(format!("{mnt}/keep")).expect("read after remount"),
        b"still here"
    );
    ok(run("umount", &[mnt]), "umount");
    ctx.destroy_namespace(&dev, true)
        .expect("destroy once unmounted");

    // A device-dax instance held open by a process is busy too.
    let dax = ctx
        .create_namespace(&NamespaceSpec::new(
            "region0",
            Mode::Devdax,
            Size(256 * MIB),
        ))
        .expect("devdax");
    let chardev = format!("/dev/{}", dax.chardev.clone().expect("chardev"));
    let mut holder = Command::new("sh")
        .args(["-c", &format!("exec 3<{chardev}; exec sleep 30")])
        .spawn()
        .expect("holder");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let e = ctx.destroy_namespace(&dax.dev, true).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy, "{e}");
    holder.kill().expect("kill holder");
    holder.wait().expect("reap holder");
    ctx.destroy_namespace(&dax.dev, true)
        .expect("destroy once closed");
}

/// The first `len` bytes at `offset` of device-dax `dev`, read through a mapping.
fn dax_bytes(dev: &str, offset: u64, len: u64) -> Vec<u8> {
    let d = pmem::dax::DevDax::open(dev).expect("devdax");
    let start = offset / d.align() * d.align();
    let span = (offset + len - start).div_ceil(d.align()) * d.align();
    // SAFETY: the namespace belongs to this test; nothing else writes it while mapped.
    let m = unsafe { d.map(start, Some(span)) }.expect("map");
    let from = (offset - start) as usize;
    m.as_slice()[from..from + len as usize].to_vec()
}

#[test]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
fn vm_erase_refuses_busy_devices_and_zeroes_free_ones() {
    use pmem::ndctl::erase::{zero_device, zero_range};
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::path::Path;
    reset(true);
    let mut ctx = Context::new().expect("context");

    // fsdax: a mounted device is refused and its data kept; unmounted it is zeroed whole.
    let fs = ctx
        .create_namespace(&NamespaceSpec::new("region0", Mode::Fsdax, Size(256 * MIB)))
        .expect("fsdax");
    let blk = format!("/dev/{}", fs.blockdev.clone().expect("blockdev"));
    let mnt = "/run/pmem-ndctl-erase";
    std::fs::create_dir_all(mnt).expect("mkdir");
    ok(run("mkfs.ext4", &["-q", "-F", "-b", "4096", &blk]), "mkfs");
    ok(run("mount", &["-o", "dax", &blk, mnt]), "mount -o dax");
    std::fs::write(format!("{mnt}/keep"), b"still here").expect("write");
    let e = zero_device(Path::new(&blk), &mut |_, _| {}).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy, "{e}");
    assert!(e.to_string().contains(&blk), "{e}");
    assert_eq!(std::fs::read(format!("{mnt}/keep")).unwrap(), b"still here");
    ok(run("umount", &[mnt]), "umount");
    let mut f = std::fs::OpenOptions::new().write(true).open(&blk).unwrap();
    f.seek(SeekFrom::End(-4096)).unwrap();
    f.write_all(&[0xAB; 4096]).unwrap();
    f.sync_all().unwrap();
    drop(f);
    let mut last = (0, 0);
    let n = zero_device(Path::new(&blk), &mut |d, t| last = (d, t)).expect("zero fsdax");
    assert_eq!(last, (n, n));
    let mut all = Vec::new();
    std::fs::File::open(&blk)
        .unwrap()
        .read_to_end(&mut all)
        .unwrap();
    assert_eq!(all.len() as u64, n);
    assert!(
        all.iter().all(|&b| b == 0),
        "a byte of the fsdax device survived"
    );
    ctx.destroy_namespace(&fs.dev, true).expect("destroy fsdax");

    // devdax: refused while a process holds it; a range and then all of it zeroed.
    let dax = ctx
        .create_namespace(&NamespaceSpec::new(
            "region0",
            Mode::Devdax,
            Size(256 * MIB),
        ))
        .expect("devdax");
    let chardev = format!("/dev/{}", dax.chardev.clone().expect("chardev"));
    {
        let d = pmem::dax::DevDax::open(&chardev).expect("devdax");
        // SAFETY: as in dax_bytes.
        let mut m = unsafe { d.map(0, Some(d.align())) }.expect("map");
        m.fill_persist(0, 16384, 0xAB).expect("pattern");
    }
    let mut holder = Command::new("sh")
        .args(["-c", &format!("exec 3<{chardev}; exec sleep 30")])
        .spawn()
        .expect("holder");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let e = zero_device(Path::new(&chardev), &mut |_, _| {}).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy, "{e}");
    holder.kill().expect("kill holder");
    holder.wait().expect("reap holder");
    assert!(dax_bytes(&chardev, 0, 16384).iter().all(|&b| b == 0xAB));
    zero_range(Path::new(&chardev), 4096, 8192, &mut |_, _| {}).expect("zero a range");
    let b = dax_bytes(&chardev, 0, 16384);
    assert!(b[..4096].iter().all(|&x| x == 0xAB), "before the range");
    assert!(b[4096..12288].iter().all(|&x| x == 0), "the range");
    assert!(b[12288..].iter().all(|&x| x == 0xAB), "after the range");
    let n = zero_device(Path::new(&chardev), &mut |_, _| {}).expect("zero devdax");
    assert!(dax_bytes(&chardev, 0, 16384).iter().all(|&x| x == 0));
    assert!(dax_bytes(&chardev, n - 4096, 4096).iter().all(|&x| x == 0));
    ctx.destroy_namespace(&dax.dev, true)
        .expect("destroy devdax");
}

#[test]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
fn vm_emulated_dimms_answer_no_smart_and_injected_bad_blocks_list_like_ndctl() {
    reset(false);
    // Within one boot a region stays labelled once it was (an earlier test
    // binary labelled it): then region0's raw namespace is made, not found.
    if region("region0")["iset_id"].is_u64() {
        ok(
            real(&[
                "create-namespace",
                "-r",
                "region0",
                "-m",
                "raw",
                "-s",
                "64M",
            ]),
            "create a raw namespace",
        );
    }
    let raw_dev = {
        let ctx = Context::new().expect("libndctl context");
        // QEMU's NVDIMMs implement only the label DSMs: no SMART command at all.
        for d in ctx.dimms() {
            match d.health() {
                Ok(None) => {}
                other => panic!("{}: expected no SMART on QEMU, got {other:?}", d.name()),
            }
        }
        for r in ctx.regions() {
            assert_eq!(r.badblocks(), vec![], "{}", r.name());
            for ns in r.namespaces() {
                assert_eq!(ns.badblocks(), vec![], "{}", ns.name());
            }
        }
        // A non-interleaved region's sectors all sit on its one DIMM.
        let r0 = ctx.region("region0").expect("region0");
        let names: Vec<String> = r0
            .badblock_dimms(&BadBlock::new(0, 1))
            .iter()
            .map(|d| d.name())
            .collect();
        assert_eq!(names, vec![r0.mappings()[0].dimm.clone()]);
        let ns = r0
            .namespaces()
            .find(|n| n.size() > 0)
            .expect("raw namespace");
        ns.info().expect("info").blockdev.expect("raw block device")
    };
    // The emulator cannot report media errors, but root may add entries to a pmem
    // block device's bad-block list; the kernel then fails I/O there, and ndctl lists them.
    std::fs::write(format!("/sys/block/{raw_dev}/badblocks"), "16 8\n").expect("add a bad block");
    {
        let ctx = Context::new().expect("libndctl context");
        let r0 = ctx.region("region0").expect("region0");
        let ns = r0
            .namespaces()
            .find(|n| n.size() > 0)
            .expect("raw namespace");
        assert_eq!(ns.badblocks(), vec![BadBlock::new(16, 8)]);
        assert_eq!(
            r0.badblocks(),
            vec![],
            "the region's own list is the platform's"
        );
    }
    let v = assert_same_listing(&["list", "-N", "--media-errors", "-r", "region0"]);
    assert_eq!(v[0]["badblock_count"], 8, "{v}");
    assert_eq!(v[0]["badblocks"][0]["offset"], 16, "{v}");
    assert_same_listing(&["list", "-RNM"]);
    assert_same_listing(&["list", "-N"]);
    // Re-probing the namespace rebuilds its list from the platform's: the entry is gone.
    reset(false);
    assert_same_listing(&["list", "-RN", "--media-errors"]);
}
