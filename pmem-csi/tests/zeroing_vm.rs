//! Tier 3, inside the emulated-PMEM VM: a new volume never shows bytes it did not write.
//!
//! The regions are first filled with a known pattern through the real ndctl
//! (a raw namespace over each whole region, written, destroyed), as an
//! earlier tenant or installation would leave them. The driver then creates
//! volumes covering the regions; every byte of each reads zero through its
//! block device, and a DAX-mounted one shows no pattern either. Then the
//! pattern is written into every volume, they are deleted by the driver
//! (half of them with eraseAfter=false), the regions covered again, and
//! the new volumes read zero again.

mod common;
mod vm;

use common::*;
use pmem_csi::proto::volume_capability::{AccessType, BlockVolume};
use pmem_csi::proto::*;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use vm::*;

/// What the earlier tenant left: 16 bytes, repeated over every byte of the regions.
const PATTERN: &[u8; 16] = b"OLD-TENANT-DATA!";
const MIB: i64 = 1 << 20;

/// The bytes of the block device at `dev`.
fn size_of(dev: &Path) -> u64 {
    use std::io::{Seek, SeekFrom};
    std::fs::File::open(dev)
        .and_then(|mut f| f.seek(SeekFrom::End(0)))
        .unwrap_or_else(|e| panic!("size of {}: {e}", dev.display()))
}

/// Writes [`PATTERN`] over every byte of `dev` and flushes it.
fn write_pattern(dev: &Path) {
    let size = size_of(dev);
    let chunk: Vec<u8> = PATTERN.iter().copied().cycle().take(1 << 20).collect();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(dev)
        .unwrap_or_else(|e| panic!("open {}: {e}", dev.display()));
    let mut done = 0u64;
    while done < size {
        let n = (size - done).min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n]).expect("write pattern");
        done += n as u64;
    }
    f.sync_all().expect("flush pattern");
}

/// Fills every region with the pattern through a raw namespace made and
/// destroyed with the ndctl command; returns the bytes written.
fn fill_regions_with_pattern() -> u64 {
    let regions: serde_json::Value =
        serde_json::from_str(&sh("ndctl list -R")).expect("ndctl list -R");
    let mut total = 0;
    for r in listed(&regions) {
        let region = r["dev"].as_str().expect("region dev");
        let ns: serde_json::Value = serde_json::from_str(&sh(&format!(
            "ndctl create-namespace -r {region} -m raw -f"
        )))
        .unwrap_or_else(|e| panic!("raw namespace on {region}: {e}"));
        let dev = PathBuf::from(format!(
            "/dev/{}",
            ns["blockdev"].as_str().expect("blockdev")
        ));
        write_pattern(&dev);
        total += size_of(&dev);
    }
    sh("ndctl destroy-namespace all -f >/dev/null 2>&1");
    assert_eq!(
        sh("ndctl list -N")
            .trim()
            .trim_matches(|c| c == '[' || c == ']'),
        "",
        "the patterned namespaces are gone"
    );
    total
}

/// The objects of an `ndctl list` answer: one object alone is printed bare, several as an array.
fn listed(v: &serde_json::Value) -> Vec<&serde_json::Value> {
    match v {
        serde_json::Value::Array(a) => a.iter().collect(),
        serde_json::Value::Null => Vec::new(),
        one => vec![one],
    }
}

/// Whether every byte of `dev` is zero; else what `cmp` says of the first other byte.
fn reads_zero(dev: &Path) -> Result<(), String> {
    let size = size_of(dev);
    let out = std::process::Command::new("cmp")
        .args(["-n", &size.to_string(), "/dev/zero"])
        .arg(dev)
        .output()
        .expect("cmp runs");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            dev.display(),
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    }
}

/// How many 16-byte-aligned copies of the pattern `dev` holds (the pattern was written aligned).
fn pattern_copies(dev: &Path) -> usize {
    let mut f = std::fs::File::open(dev).expect("open for reading");
    let mut buf = vec![0u8; 1 << 20];
    let mut found = 0;
    loop {
        let n = f.read(&mut buf).expect("read");
        if n == 0 {
            return found;
        }
        found += buf[..n].chunks_exact(16).filter(|c| c == PATTERN).count();
    }
}

fn block_cap() -> VolumeCapability {
    VolumeCapability {
        access_type: Some(AccessType::Block(BlockVolume {})),
        ..mount_cap()
    }
}

/// Creates volumes until the regions are covered (512, then 128, then 32
/// MiB each until none fits); the first is a filesystem volume, the rest
/// raw block; with `alternate_erase` every other one has eraseAfter=false.
async fn cover(c: &mut Clients, prefix: &str, alternate_erase: bool) -> Vec<Volume> {
    let mut out = Vec::new();
    for size in [512 * MIB, 128 * MIB, 32 * MIB] {
        loop {
            let i = out.len();
            let mut params = HashMap::new();
            if alternate_erase && i % 2 == 1 {
                params.insert("eraseAfter".to_string(), "false".to_string());
            }
            let req = CreateVolumeRequest {
                parameters: params,
                volume_capabilities: vec![if i == 0 { mount_cap() } else { block_cap() }],
                ..create_req(&format!("{prefix}-{i}"), size)
            };
            match create_retrying(c, req).await {
                Ok(v) => out.push(v),
                Err(s)
                    if matches!(
                        s.code(),
                        tonic::Code::ResourceExhausted | tonic::Code::OutOfRange
                    ) =>
                {
                    break
                }
                Err(s) => panic!("create {prefix}-{i} of {size} bytes: {s}"),
            }
        }
    }
    assert!(out.len() > 2, "{prefix}: only {} volumes fit", out.len());
    out
}

/// Every byte of every volume reads zero through its block device, and the
/// first, staged with ext4 on a DAX mount, holds no pattern under its filesystem.
async fn check_zero(c: &mut Clients, mode: &str, vols: &[Volume], what: &str) -> u64 {
    let mut bytes = 0;
    for v in vols {
        let dev = device_of(mode, &v.volume_id);
        if let Err(e) = reads_zero(&dev) {
            panic!("{mode} {what}: volume {} shows old bytes: {e}", v.volume_id);
        }
        bytes += size_of(&dev);
    }
    let v = &vols[0];
    let staging = Path::new(WORK).join(format!("{what}-staging"));
    c.node
        .node_stage_volume(NodeStageVolumeRequest {
            volume_id: v.volume_id.clone(),
            staging_target_path: staging.display().to_string(),
            volume_capability: Some(mount_cap()),
            volume_context: v.volume_context.clone(),
            ..Default::default()
        })
        .await
        .expect("stage");
    let opts = mount_options(&staging).expect("staged");
    assert!(
        opts.split(',').any(|o| o.starts_with("dax")),
        "{mode}: staged without dax: {opts}"
    );
    std::fs::write(staging.join("fresh"), b"new tenant").expect("write through the DAX mount");
    assert_eq!(
        std::fs::read(staging.join("fresh")).expect("read through the DAX mount"),
        b"new tenant"
    );
    let dev = device_of(mode, &v.volume_id);
    assert_eq!(
        pattern_copies(&dev),
        0,
        "{mode} {what}: the DAX-mounted volume shows old bytes"
    );
    c.node
        .node_unstage_volume(NodeUnstageVolumeRequest {
            volume_id: v.volume_id.clone(),
            staging_target_path: staging.display().to_string(),
        })
        .await
        .expect("unstage");
    bytes
}

async fn new_volumes_read_zero(mode: &'static str) {
    reset();
    let patterned = fill_regions_with_pattern();
    let d = Driver::start(mode);
    let mut c = clients(&d.sock).await;

    let vols = cover(&mut c, "first", true).await;
    let bytes = check_zero(&mut c, mode, &vols, "first").await;
    assert!(
        bytes * 10 >= patterned * 8,
        "{mode}: the volumes cover {bytes} of the {patterned} patterned bytes"
    );
    if mode == "lvm" {
        let tags = sh("pvs --noheadings -o pv_tags");
        assert!(
            tags.lines().all(|l| l.contains("pmem-rs.zeroed")),
            "every PV recorded as zeroed: {tags}"
        );
    }

    // The old tenant's pattern in every volume, then the driver's delete (every other one unerased).
    for v in &vols {
        write_pattern(&device_of(mode, &v.volume_id));
    }
    for v in &vols {
        delete(&mut c, &v.volume_id).await;
    }
    if mode == "lvm" {
        let tags = sh("vgs --noheadings -o vg_tags");
        assert!(
            tags.contains("pmem-rs.dirty"),
            "a VG a volume left unerased is dirty: {tags}"
        );
    }

    let again = cover(&mut c, "again", false).await;
    check_zero(&mut c, mode, &again, "again").await;
    for v in &again {
        delete(&mut c, &v.volume_id).await;
    }
    d.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
async fn vm_new_volumes_read_zero_over_old_data_lvm() {
    new_volumes_read_zero("lvm").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
async fn vm_new_volumes_read_zero_over_old_data_direct() {
    new_volumes_read_zero("direct").await;
    reset();
}

/// Deletes volume `id` through the driver.
async fn delete(c: &mut Clients, id: &str) {
    c.controller
        .delete_volume(DeleteVolumeRequest {
            volume_id: id.to_string(),
            ..Default::default()
        })
        .await
        .expect("delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
async fn vm_volume_grown_over_unerased_space_reads_zero_lvm() {
    reset();
    let d = Driver::start("lvm");
    let mut c = clients(&d.sock).await;
    // One large unerased volume per VG leaves the pattern in most of each VG's extents.
    let unerased = HashMap::from([("eraseAfter".to_string(), "false".to_string())]);
    let mut old = Vec::new();
    for i in 0..2 {
        let req = CreateVolumeRequest {
            parameters: unerased.clone(),
            volume_capabilities: vec![block_cap()],
            ..create_req(&format!("old-{i}"), 1536 * MIB)
        };
        let v = create_retrying(&mut c, req).await.expect("create old");
        write_pattern(&device_of("lvm", &v.volume_id));
        old.push(v);
    }
    for v in &old {
        delete(&mut c, &v.volume_id).await;
    }
    let tags = sh("vgs --noheadings -o vg_tags");
    assert_eq!(
        tags.matches("pmem-rs.dirty").count(),
        2,
        "both VGs dirty: {tags}"
    );

    // A small new volume grown over the old extents: every byte reads zero.
    let req = CreateVolumeRequest {
        volume_capabilities: vec![block_cap()],
        ..create_req("grown", 64 * MIB)
    };
    let v = create_retrying(&mut c, req).await.expect("create grown");
    let dev = device_of("lvm", &v.volume_id);
    assert_eq!(reads_zero(&dev), Ok(()), "new volume in a dirty VG");
    // Grown on the node, as the kubelet does for a block volume: published first.
    let target = Path::new(WORK).join("grown-target");
    c.node
        .node_publish_volume(NodePublishVolumeRequest {
            volume_id: v.volume_id.clone(),
            target_path: target.display().to_string(),
            volume_capability: Some(block_cap()),
            ..Default::default()
        })
        .await
        .expect("publish block");
    let r = c
        .node
        .node_expand_volume(NodeExpandVolumeRequest {
            volume_id: v.volume_id.clone(),
            volume_path: target.display().to_string(),
            capacity_range: Some(CapacityRange {
                required_bytes: 1600 * MIB,
                limit_bytes: 0,
            }),
            volume_capability: Some(block_cap()),
            ..Default::default()
        })
        .await
        .expect("expand")
        .into_inner();
    c.node
        .node_unpublish_volume(NodeUnpublishVolumeRequest {
            volume_id: v.volume_id.clone(),
            target_path: target.display().to_string(),
        })
        .await
        .expect("unpublish block");
    assert!(r.capacity_bytes >= 1600 * MIB);
    assert_eq!(size_of(&dev), r.capacity_bytes as u64);
    assert_eq!(reads_zero(&dev), Ok(()), "grown volume shows old bytes");
    let tags = sh("vgs --noheadings -o vg_tags");
    assert_eq!(
        tags.matches("pmem-rs.dirty").count(),
        1,
        "the grown volume's VG was scrubbed clean, the other stays dirty: {tags}"
    );
    delete(&mut c, &v.volume_id).await;
    d.kill();
}
