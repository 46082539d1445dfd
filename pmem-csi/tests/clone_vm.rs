//! Tier 3, inside the emulated-PMEM VM: a clone holds its source's bytes, and zeros beyond them.
//!
//! Old bytes are left first where new volumes will go (volumes filled with
//! a pattern and deleted with eraseAfter=false), so a clone's tail that
//! were not zeroed would show them. Then a source volume is filled with
//! pseudo-random bytes through its device, cloned at the same size and at a
//! larger one, and every byte of both clones is compared: the source's
//! bytes, then zeros. The source is unchanged, and writing a clone leaves
//! the source alone. lvm and direct (fsdax) volumes are block devices; a
//! direct devdax volume is read and written through pmem-dax's mapping.

mod common;
mod vm;

use common::*;
use pmem_csi::proto::volume_capability::{AccessType, BlockVolume};
use pmem_csi::proto::*;
use std::collections::HashMap;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use vm::*;

const MIB: i64 = 1 << 20;

fn block_cap() -> VolumeCapability {
    VolumeCapability {
        access_type: Some(AccessType::Block(BlockVolume {})),
        ..mount_cap()
    }
}

fn is_devdax(dev: &Path) -> bool {
    std::fs::metadata(dev)
        .unwrap_or_else(|e| panic!("{}: {e}", dev.display()))
        .file_type()
        .is_char_device()
}

/// Every byte of device `dev`.
fn read_device(dev: &Path) -> Vec<u8> {
    if is_devdax(dev) {
        let d = pmem_dax::DevDax::open(dev).expect("devdax");
        // SAFETY: the test's own volume; the driver does not touch it meanwhile.
        let m = unsafe { d.map(0, None) }.expect("map devdax");
        return m.as_slice().to_vec();
    }
    std::fs::read(dev).unwrap_or_else(|e| panic!("read {}: {e}", dev.display()))
}

/// Writes `bytes` at offset 0 of device `dev`, durably.
fn write_device(dev: &Path, bytes: &[u8]) {
    if is_devdax(dev) {
        let d = pmem_dax::DevDax::open(dev).expect("devdax");
        // SAFETY: as in read_device.
        let mut m = unsafe { d.map(0, None) }.expect("map devdax");
        m.write_persist(0, bytes).expect("write devdax");
        return;
    }
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(dev)
        .unwrap_or_else(|e| panic!("open {}: {e}", dev.display()));
    f.write_all(bytes).expect("write");
    f.sync_all().expect("flush");
}

/// `n` pseudo-random bytes (xorshift64 from `seed`).
fn random_bytes(n: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(n);
    out
}

fn clone_req(
    name: &str,
    source: &str,
    required: i64,
    params: &HashMap<String, String>,
) -> CreateVolumeRequest {
    CreateVolumeRequest {
        volume_content_source: Some(VolumeContentSource {
            r#type: Some(volume_content_source::Type::Volume(
                volume_content_source::VolumeSource {
                    volume_id: source.into(),
                },
            )),
        }),
        parameters: params.clone(),
        volume_capabilities: vec![block_cap()],
        ..create_req(name, required)
    }
}

async fn delete(c: &mut Clients, id: &str) {
    c.controller
        .delete_volume(DeleteVolumeRequest {
            volume_id: id.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("delete {id}: {e}"));
}

/// Leaves a pattern in `n` volumes of `size` bytes deleted without erasing (their space is free again).
async fn leave_old_bytes(
    c: &mut Clients,
    mode: &str,
    n: usize,
    size: i64,
    params: &HashMap<String, String>,
) {
    for i in 0..n {
        let mut p = params.clone();
        p.insert("eraseAfter".into(), "false".into());
        let req = CreateVolumeRequest {
            parameters: p,
            volume_capabilities: vec![block_cap()],
            ..create_req(&format!("old-{i}"), size)
        };
        let v = create_retrying(c, req).await.expect("old volume");
        let dev = device_of(mode, &v.volume_id);
        let len = read_device_len(&dev);
        write_device(&dev, &vec![0xA5; len]);
        delete(c, &v.volume_id).await;
    }
}

fn read_device_len(dev: &Path) -> usize {
    if is_devdax(dev) {
        return pmem_dax::DevDax::open(dev).expect("devdax").size() as usize;
    }
    pmem_ndctl::erase::device_size(dev).expect("size") as usize
}

/// Checks that clone `v` holds `want` and zeros after it.
fn check_clone(mode: &str, v: &Volume, want: &[u8], what: &str) {
    let got = read_device(&device_of(mode, &v.volume_id));
    assert!(got.len() >= want.len(), "{what}: {} bytes", got.len());
    if let Some(i) = (0..want.len()).find(|&i| got[i] != want[i]) {
        let differ = (0..want.len()).filter(|&i| got[i] != want[i]).count();
        let zeros = got[..want.len()].iter().filter(|&&b| b == 0).count();
        let at = want.len().min(i + 8);
        panic!(
            "{what}: byte {i} differs from the source's ({:x?} instead of {:x?}); {differ} of {} bytes differ, {zeros} read zero",
            &got[i..at],
            &want[i..at],
            want.len()
        );
    }
    if let Some(i) = got[want.len()..].iter().position(|&b| b != 0) {
        panic!(
            "{what}: byte {} beyond the copy is {:#x}, not zero",
            want.len() + i,
            got[want.len() + i]
        );
    }
}

async fn clone_copies(mode: &'static str, params: HashMap<String, String>) {
    reset();
    let d = Driver::start(mode);
    let mut c = clients(&d.sock).await;
    leave_old_bytes(&mut c, mode, 2, 256 * MIB, &params).await;

    let req = CreateVolumeRequest {
        parameters: params.clone(),
        volume_capabilities: vec![block_cap()],
        ..create_req("source", 64 * MIB)
    };
    let src = create_retrying(&mut c, req).await.expect("source");
    let src_dev = device_of(mode, &src.volume_id);
    let data = random_bytes(read_device_len(&src_dev), 0x9E37_79B9_7F4A_7C15);
    write_device(&src_dev, &data);
    assert!(
        read_device(&src_dev) == data,
        "{mode}: the source reads back what was written"
    );

    let same = create_retrying(&mut c, clone_req("same", &src.volume_id, 0, &params))
        .await
        .expect("clone of the same size");
    assert!(same.capacity_bytes >= src.capacity_bytes);
    check_clone(mode, &same, &data, &format!("{mode} same-size clone"));

    let larger = create_retrying(
        &mut c,
        clone_req("larger", &src.volume_id, 3 * 64 * MIB, &params),
    )
    .await
    .expect("larger clone");
    assert!(larger.capacity_bytes >= 3 * 64 * MIB);
    check_clone(mode, &larger, &data, &format!("{mode} larger clone"));

    assert!(read_device(&src_dev) == data, "{mode}: the source changed");
    // The clone is a copy, not a view: writing it leaves the source alone.
    write_device(&device_of(mode, &same.volume_id), &random_bytes(4 << 20, 7));
    assert!(
        read_device(&src_dev) == data,
        "{mode}: writing the clone changed the source"
    );

    // A retry returns the same clone; the source can go and the clone stays.
    let again = create_retrying(
        &mut c,
        clone_req("larger", &src.volume_id, 3 * 64 * MIB, &params),
    )
    .await
    .expect("retry");
    assert_eq!(again, larger);
    delete(&mut c, &src.volume_id).await;
    check_clone(
        mode,
        &larger,
        &data,
        &format!("{mode} clone after its source was deleted"),
    );
    delete(&mut c, &same.volume_id).await;
    delete(&mut c, &larger.volume_id).await;
    d.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
async fn vm_csi_clone_copies_bytes_and_zeroes_the_rest_lvm() {
    clone_copies("lvm", HashMap::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
async fn vm_csi_clone_copies_bytes_and_zeroes_the_rest_direct() {
    clone_copies("direct", HashMap::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "tier 3: runs inside the emulated-PMEM VM; run scripts/test"]
async fn vm_csi_clone_copies_bytes_and_zeroes_the_rest_direct_devdax() {
    clone_copies(
        "direct",
        HashMap::from([("mode".to_string(), "devdax".to_string())]),
    )
    .await;
    reset();
}
