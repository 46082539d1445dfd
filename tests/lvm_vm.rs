//! Tier 3, inside the emulated-PMEM VM: pmem-lvm on real LVM and real namespaces.
//! Every test starts from empty labelled regions and leaves no VG, PV or namespace behind.

use pmem::lvm::runner::LVM_CONFIG;
use pmem::lvm::{ErrorKind, Runner, SetupOptions, VolumeGroups, VolumeName};
use pmem::ndctl::Context;
use serde_json::Value;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::{Command, Output};
use std::sync::Arc;

const MIB: u64 = 1 << 20;

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .output()
        .unwrap_or_else(|e| panic!("{program} can run: {e}"))
}

fn ok(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8 output")
}

/// The real `lvm SUB ARGS`, with the container-safe configuration.
fn lvm(sub: &str, args: &[&str]) -> Output {
    let mut v = vec![sub, "--config", LVM_CONFIG];
    v.extend_from_slice(args);
    run("lvm", &v)
}

/// Names of the VGs LVM sees, or of the LVs with `lvs`.
fn lvm_names(sub: &str, field: &str) -> Vec<String> {
    let out = ok(
        lvm(
            sub,
            &[
                "--reportformat",
                "json",
                "-o",
                field,
                "--units",
                "b",
                "--nosuffix",
            ],
        ),
        sub,
    );
    let v: Value = serde_json::from_str(&out).expect("lvm prints JSON");
    let key = &sub[..2];
    v["report"][0][key]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r[field].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn ndctl_namespaces() -> Vec<Value> {
    let out = ok(run("ndctl", &["list", "-N"]), "ndctl list");
    if out.trim().is_empty() {
        return Vec::new();
    }
    match serde_json::from_str(&out).expect("ndctl prints JSON") {
        Value::Array(a) => a,
        v => vec![v],
    }
}

fn region_free(name: &str) -> u64 {
    let ctx = Context::new().expect("context");
    let r = ctx.region(name).expect("region");
    r.available_size()
}

/// Empty, labelled regions: every VG and PV removed first, then the real ndctl.
fn reset() {
    for vg in lvm_names("vgs", "vg_name") {
        let _ = lvm("vgremove", &["-f", "--", &vg]);
    }
    for pv in lvm_names("pvs", "pv_name") {
        let _ = lvm("pvremove", &["-y", "--", &pv]);
    }
    let _ = run("ndctl", &["destroy-namespace", "all", "-f"]);
    ok(run("ndctl", &["disable-region", "all"]), "disable-region");
    ok(run("ndctl", &["init-labels", "-f", "all"]), "init-labels");
    ok(run("ndctl", &["enable-region", "all"]), "enable-region");
}

/// Tears down through the library and checks nothing of ours is left.
fn teardown_and_check() {
    let mut ctx = Context::new().expect("context");
    VolumeGroups::teardown(&mut ctx, &Runner::new()).expect("teardown");
    assert!(
        lvm_names("vgs", "vg_name")
            .iter()
            .all(|v| !v.starts_with("pmem-rs")),
        "a pmem-rs VG is left"
    );
    assert!(
        ndctl_namespaces()
            .iter()
            .all(|n| n["name"].as_str() != Some("pmem-rs-lvm")),
        "a pmem-rs namespace is left"
    );
}

fn create_ns(region: &str, size: &str, name: &str) -> Value {
    let out = ok(
        run(
            "ndctl",
            &[
                "create-namespace",
                "-r",
                region,
                "-m",
                "fsdax",
                "-s",
                size,
                "-n",
                name,
            ],
        ),
        "create-namespace",
    );
    serde_json::from_str(&out).expect("ndctl prints JSON")
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
        .collect()
}

fn write_at(dev: &str, offset: u64, data: &[u8]) {
    let mut f = OpenOptions::new().write(true).open(dev).expect("open");
    f.seek(SeekFrom::Start(offset)).expect("seek");
    f.write_all(data).expect("write");
    f.sync_all().expect("sync");
}

fn read_at(dev: &str, offset: u64, len: usize) -> Vec<u8> {
    std::fs::write("/proc/sys/vm/drop_caches", "3").expect("drop caches");
    let mut f = OpenOptions::new().read(true).open(dev).expect("open");
    f.seek(SeekFrom::Start(offset)).expect("seek");
    let mut buf = vec![0; len];
    f.read_exact(&mut buf).expect("read");
    buf
}

fn vol(name: &str) -> VolumeName {
    VolumeName::new(name).expect("valid volume name")
}

#[test]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
fn vm_setup_absorbs_holes_and_leaves_foreign_objects_alone() {
    reset();
    // Fragment region0 with the real ndctl: a, b, c; destroy a and c; b stays in the middle.
    for n in ["frag-a", "foreign-b", "frag-c"] {
        create_ns("region0", "256M", n);
    }
    ok(
        run("ndctl", &["destroy-namespace", "-f", "namespace0.0"]),
        "destroy a",
    );
    ok(
        run("ndctl", &["destroy-namespace", "-f", "namespace0.2"]),
        "destroy c",
    );
    let foreign = format!(
        "/dev/{}",
        ndctl_namespaces()
            .iter()
            .find(|n| n["name"] == "foreign-b")
            .and_then(|n| n["blockdev"].as_str())
            .expect("foreign-b has a block device")
    );
    let (head, tail) = (pattern(4 << 20, 7), pattern(4 << 20, 99));
    write_at(&foreign, 0, &head);
    write_at(&foreign, 240 * MIB, &tail);
    // A foreign VG on region1.
    let other = create_ns("region1", "256M", "foreign-vg");
    let other_dev = format!("/dev/{}", other["blockdev"].as_str().expect("blockdev"));
    ok(lvm("vgcreate", &["--", "foreign", &other_dev]), "vgcreate");
    ok(
        lvm(
            "lvcreate",
            &["-y", "-n", "keep", "-L", "64m", "--", "foreign"],
        ),
        "lvcreate",
    );

    let free = region_free("region0");
    let groups = VolumeGroups::setup(&SetupOptions::default()).expect("setup");
    let vgs = groups.vgs();
    let vg0 = vgs
        .iter()
        .find(|v| v.name.as_str() == "pmem-rs-region0")
        .expect("VG for region0");
    println!(
        "hole absorption: region0 had {} MiB free in 2 holes; VG pmem-rs-region0 has {} MiB over {} PVs ({:.1}%)",
        free / MIB,
        vg0.size / MIB,
        vg0.pvs.len(),
        vg0.size as f64 * 100.0 / free as f64
    );
    assert!(vg0.pvs.len() >= 2, "one PV per hole: {vg0:?}");
    assert!(vg0.size * 10 >= free * 9, "VG {} < 90% of {free}", vg0.size);
    assert!(vgs.iter().any(|v| v.name.as_str() == "pmem-rs-region1"));
    assert_eq!(region_free("region0"), 0, "every hole was used");

    // Twice: nothing changes.
    let before = (ndctl_namespaces(), lvm_names("pvs", "pv_name"), vgs.clone());
    let again = VolumeGroups::setup(&SetupOptions::default()).expect("setup again");
    assert_eq!(again.vgs(), before.2);
    assert_eq!(ndctl_namespaces(), before.0);
    assert_eq!(lvm_names("pvs", "pv_name"), before.1);

    // Foreign objects: intact.
    assert_eq!(read_at(&foreign, 0, head.len()), head);
    assert_eq!(read_at(&foreign, 240 * MIB, tail.len()), tail);
    assert!(lvm_names("lvs", "lv_name").contains(&"keep".to_string()));

    // A new hole (the test frees its own namespace) is added by the next run.
    ok(
        run("ndctl", &["destroy-namespace", "-f", "namespace0.1"]),
        "destroy b",
    );
    let grown = VolumeGroups::setup(&SetupOptions::default()).expect("setup after a new hole");
    let vg0b = grown
        .vgs()
        .into_iter()
        .find(|v| v.name.as_str() == "pmem-rs-region0")
        .expect("VG");
    assert_eq!(vg0b.pvs.len(), vg0.pvs.len() + 1);
    assert!(vg0b.size > vg0.size + 200 * MIB);

    // Every volume starts on a 2 MiB boundary (huge-page DAX faults): the
    // PVs' data areas and the extents are multiples of 2 MiB, as LVM reports them.
    let out = ok(
        lvm(
            "pvs",
            &[
                "--reportformat",
                "json",
                "--units",
                "b",
                "--nosuffix",
                "-o",
                "pv_name,vg_name,pe_start,vg_extent_size",
            ],
        ),
        "pvs",
    );
    let v: Value = serde_json::from_str(&out).expect("lvm prints JSON");
    let rows = v["report"][0]["pv"].as_array().expect("pv rows").clone();
    let number = |r: &Value, k: &str| r[k].as_str().and_then(|s| s.parse::<u64>().ok());
    let ours: Vec<&Value> = rows
        .iter()
        .filter(|r| {
            r["vg_name"]
                .as_str()
                .is_some_and(|n| n.starts_with("pmem-rs-"))
        })
        .collect();
    assert!(ours.len() >= 3, "{rows:?}");
    for r in ours {
        assert_eq!(number(r, "pe_start").map(|n| n % (2 * MIB)), Some(0), "{r}");
        assert_eq!(number(r, "vg_extent_size"), Some(4 * MIB), "{r}");
    }
    assert!(grown.unaligned_pvs().expect("unaligned PVs").is_empty());
    // LVM's own default, as the foreign VG shows: 1 MiB, which the crate does not use.
    let foreign_pv = rows
        .iter()
        .find(|r| r["vg_name"] == "foreign")
        .expect("foreign PV");
    assert_eq!(number(foreign_pv, "pe_start"), Some(MIB), "{foreign_pv}");

    teardown_and_check();
    assert!(lvm_names("lvs", "lv_name").contains(&"keep".to_string()));
    assert!(lvm_names("vgs", "vg_name").contains(&"foreign".to_string()));
    reset();
}

#[test]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
fn vm_volumes_create_delete_grow_list_and_refuse_oversize() {
    reset();
    let groups = VolumeGroups::setup(&SetupOptions::default()).expect("setup");
    let name = vol("pvc-1/data base");
    let v = groups.create(&name, 100 * MIB + 1).expect("create");
    assert_eq!(v.size, 104 * MIB, "rounded up to 4 MiB extents");
    assert!(v.device.exists(), "{} exists", v.device.display());
    assert_eq!(groups.create(&name, 104 * MIB).expect("same again"), v);
    let e = groups.create(&name, 200 * MIB).expect_err("other size");
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);

    // A fresh value reads the same from LVM: the user's name comes from the tag.
    let fresh = VolumeGroups::open(Runner::new()).expect("open");
    assert_eq!(fresh.list().expect("list"), vec![v.clone()]);
    assert_eq!(fresh.lookup(&name), Some(v.clone()));
    assert_eq!(fresh.lookup(&vol("nope")), None);

    let grown = groups.grow(&name, 300 * MIB).expect("grow");
    assert_eq!(grown.size, 300 * MIB);
    assert_eq!(groups.grow(&name, 10 * MIB).expect("no shrink"), grown);
    let cap = groups.capacity().expect("capacity");
    assert_eq!(cap.size - cap.free, 300 * MIB);

    // Oversize: refused, nothing created.
    let lvs_before = lvm_names("lvs", "lv_name");
    let e = groups
        .create(&vol("huge"), cap.largest + 4 * MIB)
        .expect_err("oversize");
    assert_eq!(e.kind(), ErrorKind::NoSpace);
    assert!(e.to_string().contains("volume huge"), "{e}");
    assert_eq!(lvm_names("lvs", "lv_name"), lvs_before);
    assert_eq!(groups.capacity().expect("capacity").free, cap.free);
    // The largest that fits does fit.
    let big = groups
        .create(&vol("largest"), cap.largest)
        .expect("largest");
    groups.delete(&big.name).expect("delete largest");

    groups.delete(&name).expect("delete");
    assert!(!v.device.exists());
    groups.delete(&name).expect("delete again is fine");
    assert!(groups.list().expect("list").is_empty());
    assert_eq!(
        groups.grow(&name, MIB).expect_err("gone").kind(),
        ErrorKind::NotFound
    );
    teardown_and_check();
    reset();
}

#[test]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
fn vm_data_is_erased_between_volumes_and_mounted_volumes_are_kept() {
    reset();
    let groups = VolumeGroups::setup(&SetupOptions::default()).expect("setup");
    // Where the only LV lies: its VG and physical extent ranges.
    let seg = || {
        let out = ok(
            lvm("lvs", &["--noheadings", "-o", "vg_name,seg_pe_ranges"]),
            "lvs",
        );
        out.trim().to_string()
    };
    let first = groups.create(&vol("secret"), 64 * MIB).expect("create");
    let dev = first.device.to_str().expect("utf-8").to_string();
    let secret = pattern(64 << 20, 42);
    write_at(&dev, 0, &secret);
    let where_first = seg();
    groups.delete(&first.name).expect("delete");
    let second = groups.create(&vol("next"), 64 * MIB).expect("create");
    assert_eq!(seg(), where_first, "the new volume reuses the old extents");
    let dev2 = second.device.to_str().expect("utf-8").to_string();
    let data = read_at(&dev2, 0, 64 << 20);
    assert!(
        data.iter().all(|b| *b == 0),
        "the new volume shows old bytes"
    );

    // A mounted volume is refused and keeps its data.
    ok(
        run("mkfs.ext4", &["-q", "-F", "-b", "4096", &dev2]),
        "mkfs.ext4",
    );
    std::fs::create_dir_all("/mnt/pmem-lvm-test").expect("mkdir");
    ok(
        run("mount", &["-o", "dax", &dev2, "/mnt/pmem-lvm-test"]),
        "mount -o dax",
    );
    std::fs::write("/mnt/pmem-lvm-test/file", b"still here").expect("write file");
    let e = groups.delete(&second.name).expect_err("mounted");
    assert_eq!(e.kind(), ErrorKind::InUse, "{e}");
    assert_eq!(
        std::fs::read("/mnt/pmem-lvm-test/file").expect("read"),
        b"still here"
    );
    ok(run("umount", &["/mnt/pmem-lvm-test"]), "umount");
    ok(
        run("mount", &["-o", "dax", &dev2, "/mnt/pmem-lvm-test"]),
        "mount again",
    );
    assert_eq!(
        std::fs::read("/mnt/pmem-lvm-test/file").expect("read"),
        b"still here"
    );
    ok(run("umount", &["/mnt/pmem-lvm-test"]), "umount");
    groups.delete(&second.name).expect("delete once unmounted");
    teardown_and_check();
    reset();
}

#[test]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
fn vm_concurrent_creates_and_deletes_across_two_vgs() {
    reset();
    let groups = Arc::new(VolumeGroups::setup(&SetupOptions::default()).expect("setup"));
    assert_eq!(groups.vgs().len(), 2);
    // 8 × 400 MiB does not fit one VG (about 1.8 GiB each): both are used.
    let made: Vec<_> = (0..8)
        .map(|i| {
            let g = Arc::clone(&groups);
            std::thread::spawn(move || g.create(&vol(&format!("par-{i}")), 400 * MIB))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("thread").expect("create"))
        .collect();
    let vgs: std::collections::BTreeSet<_> = made.iter().map(|v| v.vg.clone()).collect();
    assert_eq!(vgs.len(), 2, "both VGs hold volumes");
    assert_eq!(groups.list().expect("list").len(), 8);

    // Four concurrent creates of one name: one volume.
    let same: Vec<_> = (0..4)
        .map(|_| {
            let g = Arc::clone(&groups);
            std::thread::spawn(move || g.create(&vol("same"), 8 * MIB))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("thread").expect("create same"))
        .collect();
    assert!(same.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(lvm_names("lvs", "lv_name").len(), 9);

    let deleted: Vec<_> = made
        .into_iter()
        .chain(same.into_iter().take(1))
        .map(|v| {
            let g = Arc::clone(&groups);
            std::thread::spawn(move || g.delete(&v.name))
        })
        .collect();
    for t in deleted {
        t.join().expect("thread").expect("delete");
    }
    assert!(lvm_names("lvs", "lv_name").is_empty(), "nothing left over");
    let cap = groups.capacity().expect("capacity");
    assert_eq!(cap.free, cap.size);
    teardown_and_check();
    reset();
}

#[test]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
fn vm_join_mode_and_percentage() {
    reset();
    let half = VolumeGroups::setup(&SetupOptions {
        percentage: 50,
        ..SetupOptions::default()
    })
    .expect("setup 50%");
    for vg in half.vgs() {
        assert!(
            vg.size <= 960 * MIB && vg.size >= 900 * MIB,
            "{vg:?} is about half a region"
        );
    }
    teardown_and_check();

    let joined = VolumeGroups::setup(&SetupOptions {
        join: true,
        ..SetupOptions::default()
    })
    .expect("setup --join");
    let vgs = joined.vgs();
    assert_eq!(vgs.len(), 1, "{vgs:?}");
    assert_eq!(vgs[0].name.as_str(), "pmem-rs-node0");
    assert_eq!(vgs[0].pvs.len(), 2, "one PV per region");
    // Larger than either region: the volume spans both.
    let v = joined
        .create(&vol("wide"), 2500 * MIB)
        .expect("create wide");
    assert_eq!(v.vg.as_str(), "pmem-rs-node0");
    // Switching layout while the joined VG exists is refused, not improvised.
    let e = VolumeGroups::setup(&SetupOptions::default()).expect_err("switch layout");
    assert_eq!(e.kind(), ErrorKind::InUse, "{e}");
    joined.delete(&v.name).expect("delete wide");
    teardown_and_check();
    reset();
}
