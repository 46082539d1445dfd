//! Tier 3, each in a VM of its own (`boot_` tests boot it, with DIMMs laid out for
//! the case, and run the matching `guest_` test of this binary inside): the driver
//! on label-less regions (the DIMMs of many virtual machines) and on regions spread
//! over NUMA nodes.

mod common;
mod vm;

use common::*;
use pmem_csi::proto::*;
use std::path::PathBuf;
use std::process::Command;
use vm::*;

/// Boots `scripts/pmem-vm VM_ARGS` and runs this binary's ignored test `guest` in it.
fn boot_and_run(vm_args: &[&str], guest: &str) {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let exe = std::env::current_exe().expect("the test binary's path");
    let o = Command::new(repo.join("scripts/pmem-vm"))
        .args(vm_args)
        .args(["--timeout", "1500", "--"])
        .arg(exe)
        .args([
            "--ignored",
            "--exact",
            guest,
            "--test-threads=1",
            "--nocapture",
        ])
        .current_dir(&repo)
        .output()
        .expect("scripts/pmem-vm can be spawned");
    let out = String::from_utf8_lossy(&o.stdout);
    println!("{out}");
    assert!(
        o.status.success() && out.contains("1 passed"),
        "{guest} in the VM (exit {:?}):\n{out}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The label-less namespace of `region`: its name, mode and block device, as ndctl lists it.
fn label_less_namespace(region: &str) -> (String, String, Option<String>) {
    let ctx = pmem_ndctl::Context::new().expect("libndctl");
    let r = ctx.region(region).expect("region");
    assert!(!r.is_labelled(), "{region} has labels");
    let ns = r
        .namespaces()
        .find(|n| n.is_label_less() && n.size() > 0)
        .unwrap_or_else(|| panic!("{region}: no label-less namespace"));
    let info = ns.info().expect("namespace info");
    (
        info.dev,
        info.mode.to_string(),
        info.blockdev.map(|b| format!("/dev/{b}")),
    )
}

fn vgs() -> Vec<String> {
    sh("vgs --noheadings -o vg_name,pv_count --separator : 2>/dev/null | tr -d ' '")
        .lines()
        .filter(|l| l.starts_with("pmem-rs-"))
        .map(str::to_string)
        .collect()
}

async fn create_err(c: &mut Clients, name: &str, size: i64) -> tonic::Status {
    let req = CreateVolumeRequest {
        volume_capabilities: vec![block_cap()],
        ..create_req(name, size)
    };
    c.controller
        .create_volume(req)
        .await
        .expect_err("no room for the volume")
}

#[test]
#[ignore = "tier 3: boots the emulated-PMEM VM; run scripts/test"]
fn boot_label_less_regions_serve_lvm_volumes_and_direct_names_the_fix() {
    // No label storage at all, as on clouds' VMs: each region one raw namespace.
    boot_and_run(
        &["--label-size", "0", "--dimms", "2", "--dimm-size", "1G"],
        "guest_label_less_regions",
    );
}

#[tokio::test]
#[ignore = "runs inside the VM that boot_label_less_regions_serve_lvm_volumes_and_direct_names_the_fix boots"]
async fn guest_label_less_regions() {
    std::fs::create_dir_all(WORK).expect("work dir");
    let (ns0, mode0, _) = label_less_namespace("region0");
    let (ns1, mode1, dev1) = label_less_namespace("region1");
    assert_eq!(
        (mode0.as_str(), mode1.as_str()),
        ("raw", "raw"),
        "fresh label-less DIMMs"
    );
    // region1 holds someone's filesystem: it must be left exactly as it is.
    let dev1 = dev1.expect("region1's raw block device");
    sh(&format!("mkfs.ext4 -q -F -b 4096 {dev1} && mkdir -p /mnt/theirs && mount {dev1} /mnt/theirs && echo theirs > /mnt/theirs/f && umount /mnt/theirs"));
    let theirs = sh(&format!("head -c 1048576 {dev1} | sha256sum"));

    // direct mode cannot carve label-less regions: no capacity, and the answer says why and what to do.
    {
        let d = Driver::start("direct");
        let mut c = clients(&d.sock).await;
        let e = create_err(&mut c, "direct-on-label-less", 64 * MIB).await;
        assert_eq!(e.code(), tonic::Code::OutOfRange, "{e:?}");
        for word in [
            "label-less",
            "region0",
            "init-labels",
            "--device-manager lvm",
        ] {
            assert!(
                e.message().contains(word),
                "{word:?} not in {:?}",
                e.message()
            );
        }
    }

    // lvm mode converts region0's raw namespace to fsdax and serves volumes from it.
    let d = Driver::start("lvm");
    let mut c = clients(&d.sock).await;
    let e = create_err(&mut c, "more-than-region0", 1536 * MIB).await;
    assert_eq!(e.code(), tonic::Code::OutOfRange, "{e:?}");
    for word in ["region1", "ext2/3/4 filesystem"] {
        assert!(
            e.message().contains(word),
            "why region1 is not used: {word:?} not in {:?}",
            e.message()
        );
    }
    let cap = fs_cap("ext4");
    let v = create(&mut c, "on-label-less", 256 * MIB, cap.clone()).await;
    let (staging, target) = stage_publish(&mut c, &v, &cap, "label-less").await;
    let opts = mount_options(&staging).expect("staged");
    assert!(
        opts.split(',').any(|o| o.starts_with("dax")),
        "no dax: {opts}"
    );
    std::fs::write(target.join("kept"), b"label-less but persistent").expect("write");
    unpublish_and_unstage(&mut c, &v, &staging, &target).await;
    assert_eq!(
        label_less_namespace("region0").1,
        "fsdax",
        "{ns0} converted"
    );
    assert_eq!(
        vgs(),
        ["pmem-rs-region0:1"],
        "region1 (ext4) is not ours to use"
    );
    d.kill();

    // Again: nothing converted twice, the volume and its bytes kept.
    let d = Driver::start("lvm");
    let mut c = clients(&d.sock).await;
    assert_eq!(listed(&mut c).await, std::slice::from_ref(&v.volume_id));
    let (staging, target) = stage_publish(&mut c, &v, &cap, "label-less").await;
    assert_eq!(
        std::fs::read(target.join("kept")).expect("read back"),
        b"label-less but persistent"
    );
    unpublish_unstage_delete(&mut c, &v, &staging, &target).await;
    assert_eq!(vgs(), ["pmem-rs-region0:1"]);
    d.kill();

    assert_eq!(label_less_namespace("region1").1, "raw", "{ns1} left alone");
    assert_eq!(
        sh(&format!("head -c 1048576 {dev1} | sha256sum")),
        theirs,
        "{dev1} untouched"
    );
    assert!(sh(&format!("blkid -p -o value -s TYPE {dev1}")).contains("ext4"));
}

#[test]
#[ignore = "tier 3: boots the emulated-PMEM VM; run scripts/test"]
fn boot_numa_nodes_each_get_a_vg_when_joined() {
    boot_and_run(
        &[
            "--numa",
            "2",
            "--dimms",
            "4",
            "--dimm-size",
            "512M",
            "--mem",
            "2G",
        ],
        "guest_numa_nodes",
    );
}

#[tokio::test]
#[ignore = "runs inside the VM that boot_numa_nodes_each_get_a_vg_when_joined boots"]
async fn guest_numa_nodes() {
    reset();
    let ctx = pmem_ndctl::Context::new().expect("libndctl");
    let mut nodes: Vec<Option<u32>> = ctx.regions().map(|r| r.numa_node()).collect();
    nodes.sort();
    drop(ctx);
    assert_eq!(
        nodes,
        [Some(0), Some(0), Some(1), Some(1)],
        "two regions per node"
    );

    // One VG per region: 640 MiB fits in no region (a 512M DIMM with labels gives a 384 MiB region).
    {
        let d = Driver::start("lvm");
        let mut c = clients(&d.sock).await;
        let e = create_err(&mut c, "too-big-for-a-region", 640 * MIB).await;
        assert_eq!(e.code(), tonic::Code::OutOfRange, "{e:?}");
        assert_eq!(vgs().len(), 4, "{:?}", vgs());
        println!(
            "per region: {}",
            sh("vgs --noheadings -o vg_name,vg_size,pv_count --units m 2>/dev/null")
        );
    }
    reset();

    // Joined per NUMA node: two VGs of two PVs each, and the volume fits.
    let d = Driver::start_with("lvm", &["--join", "numa"]);
    let mut c = clients(&d.sock).await;
    assert_eq!(vgs(), ["pmem-rs-node0:2", "pmem-rs-node1:2"]);
    println!(
        "joined: {}",
        sh("vgs --noheadings -o vg_name,vg_size,pv_count --units m 2>/dev/null")
    );
    let v = create(&mut c, "spans-two-regions", 640 * MIB, block_cap()).await;
    let segments =
        sh("lvs --segments --noheadings -o vg_name,devices --separator : 2>/dev/null | tr -d ' '");
    let pvs: std::collections::BTreeSet<&str> = segments
        .lines()
        .filter_map(|l| l.strip_prefix("pmem-rs-node"))
        .filter_map(|l| l.split(':').nth(1))
        .map(|d| d.split('(').next().unwrap_or(d))
        .collect();
    assert_eq!(pvs.len(), 2, "on two regions' PVs: {segments}");
    delete(&mut c, &v.volume_id).await;
}
