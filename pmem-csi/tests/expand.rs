//! Tier 1: volume expansion happens on the node (NodeExpandVolume grows the device, then the
//! filesystem); the controller offers none. Through a real tonic server on a unix socket.
//!
//! The simulator's namespaces cannot grow (nor can direct mode's), so growth
//! is tested over a fake device manager for logic tests that keeps grown
//! sizes beside the simulator; what the simulator itself offers is tested as it is.

mod common;

use common::*;
use pmem_csi::error::{Error as CsiError, Result as CsiResult};
use pmem_csi::manager::{Device, DeviceManager, NamespaceManager};
use pmem_csi::proto::controller_service_capability::rpc::Type as ControllerCap;
use pmem_csi::proto::node_service_capability::rpc::Type as NodeCap;
use pmem_csi::proto::plugin_capability::{volume_expansion, Type as PluginCap};
use pmem_csi::proto::volume_capability::{access_mode::Mode, AccessMode, AccessType, BlockVolume};
use pmem_csi::proto::*;
use pmem_csi::volume::{Params, VolumeId};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::Code;

const MIB: i64 = 1 << 20;
const GIB: i64 = 1 << 30;

/// A fake device manager for logic tests: the simulator, whose devices
/// "grow" by sizes kept in memory beside it, within the space it reports;
/// each growth takes `slow` and announces itself in `growing`.
struct GrowingFakeManager {
    inner: Arc<dyn DeviceManager>,
    grown: Mutex<HashMap<VolumeId, u64>>,
    slow: Duration,
    growing: Arc<AtomicBool>,
}

impl GrowingFakeManager {
    fn overlay(&self, mut d: Device) -> Device {
        if let Some(size) = self.grown.lock().unwrap().get(&d.id) {
            d.size = *size;
        }
        d
    }
}

impl DeviceManager for GrowingFakeManager {
    forward_to_inner!(
        create,
        can_update_record,
        update_record,
        min_size,
        left_out,
        capacity
    );
    fn kind(&self) -> &'static str {
        "sim"
    }
    fn delete(&self, id: &VolumeId, erase: bool) -> CsiResult<()> {
        self.grown.lock().unwrap().remove(id);
        self.inner.delete(id, erase)
    }
    fn can_expand(&self) -> bool {
        true
    }
    fn expand(&self, id: &VolumeId, size: u64) -> CsiResult<u64> {
        let now = self
            .list()?
            .into_iter()
            .find(|d| &d.id == id)
            .ok_or_else(|| CsiError::NotFound(format!("volume {id} has no device")))?
            .size;
        if size <= now {
            return Ok(now);
        }
        self.growing.store(true, Ordering::SeqCst);
        std::thread::sleep(self.slow);
        let free = self.inner.capacity(&Params::default())?.free;
        if size - now > free {
            return Err(CsiError::ResourceExhausted(format!(
                "{id}: no room to grow"
            )));
        }
        self.grown.lock().unwrap().insert(id.clone(), size);
        Ok(size)
    }
    fn list(&self) -> CsiResult<Vec<Device>> {
        Ok(self
            .inner
            .list()?
            .into_iter()
            .map(|d| self.overlay(d))
            .collect())
    }
}

/// Serves a driver over `manager` in `dir` and returns its clients.
async fn serve(dir: &Path, manager: Arc<dyn DeviceManager>) -> Clients {
    serve_manager(dir, manager).await
}

fn sim(dir: &Path) -> Arc<dyn DeviceManager> {
    Arc::new(NamespaceManager::sim(&[4 << 30, 4 << 30], dir.join("sim.json")).unwrap())
}

/// The simulator behind the growing fake, whose growths take `slow`.
async fn start_growing_slowly(dir: &Path, slow: Duration, growing: Arc<AtomicBool>) -> Clients {
    let fake = GrowingFakeManager {
        inner: sim(dir),
        grown: Mutex::new(HashMap::new()),
        slow,
        growing,
    };
    serve(dir, Arc::new(fake)).await
}

/// The simulator behind the growing fake.
async fn start_growing(dir: &Path) -> Clients {
    start_growing_slowly(dir, Duration::ZERO, Arc::default()).await
}

fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> Code {
    r.map(|_| ()).err().map_or(Code::Ok, |s| s.code())
}

fn block_cap() -> VolumeCapability {
    VolumeCapability {
        access_mode: Some(AccessMode {
            mode: Mode::SingleNodeWriter as i32,
        }),
        access_type: Some(AccessType::Block(BlockVolume {})),
    }
}

/// What each service says about expansion: (VolumeExpansion ONLINE, node
/// EXPAND_VOLUME, controller EXPAND_VOLUME).
async fn expansion_offered(c: &mut Clients) -> (bool, bool, bool) {
    let plugin = c
        .identity
        .get_plugin_capabilities(GetPluginCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .capabilities
        .into_iter()
        .any(|cap| {
            matches!(cap.r#type, Some(PluginCap::VolumeExpansion(e))
                if e.r#type == volume_expansion::Type::Online as i32)
        });
    let node = c
        .node
        .node_get_capabilities(NodeGetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .capabilities
        .into_iter()
        .any(|cap| {
            matches!(cap.r#type, Some(node_service_capability::Type::Rpc(r))
                if r.r#type == NodeCap::ExpandVolume as i32)
        });
    let controller = c
        .controller
        .controller_get_capabilities(ControllerGetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .capabilities
        .into_iter()
        .any(|cap| {
            matches!(cap.r#type, Some(controller_service_capability::Type::Rpc(r))
                if r.r#type == ControllerCap::ExpandVolume as i32)
        });
    (plugin, node, controller)
}

/// A block volume of `size` bytes and a file beneath the kubelet directory
/// (`dir`) standing for its published path.
async fn block_volume(c: &mut Clients, dir: &Path, name: &str, size: i64) -> (String, String) {
    let v = c
        .controller
        .create_volume(CreateVolumeRequest {
            volume_capabilities: vec![block_cap()],
            ..create_req(name, size)
        })
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    let target = dir.join(format!("{name}-target"));
    std::fs::write(&target, b"").unwrap();
    (v.volume_id, target.display().to_string())
}

fn grow(id: &str, path: &str, required: i64, limit: i64) -> NodeExpandVolumeRequest {
    NodeExpandVolumeRequest {
        volume_id: id.into(),
        volume_path: path.into(),
        capacity_range: Some(CapacityRange {
            required_bytes: required,
            limit_bytes: limit,
        }),
        volume_capability: Some(block_cap()),
        ..Default::default()
    }
}

async fn size_of(c: &mut Clients, id: &str) -> i64 {
    c.controller
        .controller_get_volume(ControllerGetVolumeRequest {
            volume_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap()
        .capacity_bytes
}

#[tokio::test]
async fn a_manager_that_cannot_grow_offers_no_expansion_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = serve(dir.path(), sim(dir.path())).await;
    assert_eq!(expansion_offered(&mut c).await, (false, false, false));
    let (id, path) = block_volume(&mut c, dir.path(), "fixed", 64 * MIB).await;
    let before = size_of(&mut c, &id).await;
    assert_eq!(
        code(c.node.node_expand_volume(grow(&id, &path, GIB, 0)).await),
        Code::Unimplemented
    );
    let controller = ControllerExpandVolumeRequest {
        volume_id: id.clone(),
        capacity_range: Some(CapacityRange {
            required_bytes: GIB,
            limit_bytes: 0,
        }),
        ..Default::default()
    };
    assert_eq!(
        code(c.controller.controller_expand_volume(controller).await),
        Code::Unimplemented
    );
    assert_eq!(size_of(&mut c, &id).await, before);
}

#[tokio::test]
async fn a_manager_that_grows_offers_online_expansion_on_the_node_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start_growing(dir.path()).await;
    assert_eq!(expansion_offered(&mut c).await, (true, true, false));
    let (id, _) = block_volume(&mut c, dir.path(), "grows", 64 * MIB).await;
    let controller = ControllerExpandVolumeRequest {
        volume_id: id,
        capacity_range: Some(CapacityRange {
            required_bytes: GIB,
            limit_bytes: 0,
        }),
        ..Default::default()
    };
    assert_eq!(
        code(c.controller.controller_expand_volume(controller).await),
        Code::Unimplemented
    );
}

#[tokio::test]
async fn node_expand_grows_the_device_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start_growing(dir.path()).await;
    let (id, path) = block_volume(&mut c, dir.path(), "grown", 64 * MIB).await;
    let grown = c
        .node
        .node_expand_volume(grow(&id, &path, 256 * MIB, 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(grown.capacity_bytes, 256 * MIB);
    assert_eq!(size_of(&mut c, &id).await, 256 * MIB);

    // The same request again, a smaller one, and one without a range: nothing changes.
    for (required, with_range) in [(256 * MIB, true), (128 * MIB, true), (0, false)] {
        let mut again = grow(&id, &path, required, 0);
        if !with_range {
            again.capacity_range = None;
        }
        let r = c.node.node_expand_volume(again).await.unwrap().into_inner();
        assert_eq!(r.capacity_bytes, 256 * MIB, "asked {required}");
    }
    assert_eq!(size_of(&mut c, &id).await, 256 * MIB);

    // Without a capability, a regular file is neither a mount nor a device node of the volume.
    let mut unknown_use = grow(&id, &path, GIB, 0);
    unknown_use.volume_capability = None;
    assert_eq!(
        code(c.node.node_expand_volume(unknown_use).await),
        Code::NotFound
    );
    // A mounted filesystem is asked for where nothing is mounted.
    let mut mount = grow(&id, &path, GIB, 0);
    mount.volume_capability = Some(mount_cap());
    assert_eq!(code(c.node.node_expand_volume(mount).await), Code::NotFound);
    assert_eq!(size_of(&mut c, &id).await, 256 * MIB);
}

#[tokio::test]
async fn hostile_node_expand_requests_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start_growing(dir.path()).await;
    let (id, path) = block_volume(&mut c, dir.path(), "target", 64 * MIB).await;
    let before = size_of(&mut c, &id).await;
    let unknown = VolumeId::for_name(&pmem_csi::volume::VolumeName::parse("nobody").unwrap());
    let outside = tempfile::tempdir().unwrap();
    let outside_file = outside.path().join("x");
    std::fs::write(&outside_file, b"").unwrap();
    let missing = dir.path().join("not-published").display().to_string();
    let no_access_mode = VolumeCapability {
        access_mode: None,
        ..block_cap()
    };
    let cases: Vec<(&str, NodeExpandVolumeRequest, Code)> = vec![
        ("no id", grow("", &path, GIB, 0), Code::InvalidArgument),
        ("no path", grow(&id, "", GIB, 0), Code::InvalidArgument),
        (
            "unknown id",
            grow(unknown.as_str(), &path, GIB, 0),
            Code::NotFound,
        ),
        (
            "forged id",
            grow("pmem-x\n2020-01-01 INFO forged", &path, GIB, 0),
            Code::NotFound,
        ),
        (
            "relative path",
            grow(&id, "target-target", GIB, 0),
            Code::NotFound,
        ),
        (
            "outside the kubelet dir",
            grow(&id, outside_file.to_str().unwrap(), GIB, 0),
            Code::InvalidArgument,
        ),
        (
            "escaping with ..",
            grow(
                &id,
                &format!("{}/../{}", dir.path().display(), outside_file.display()),
                GIB,
                0,
            ),
            Code::InvalidArgument,
        ),
        (
            "nothing at the path",
            grow(&id, &missing, GIB, 0),
            Code::NotFound,
        ),
        (
            "limit below required",
            grow(&id, &path, GIB, 512 * MIB),
            Code::InvalidArgument,
        ),
        (
            "negative size",
            grow(&id, &path, -1, 0),
            Code::InvalidArgument,
        ),
        (
            "beyond the node",
            grow(&id, &path, 64 * GIB, 0),
            Code::OutOfRange,
        ),
        (
            "beyond any size",
            grow(&id, &path, i64::MAX, 0),
            Code::OutOfRange,
        ),
        (
            "capability without access mode",
            NodeExpandVolumeRequest {
                volume_capability: Some(no_access_mode),
                ..grow(&id, &path, GIB, 0)
            },
            Code::InvalidArgument,
        ),
    ];
    for (what, req, want) in cases {
        assert_eq!(code(c.node.node_expand_volume(req).await), want, "{what}");
    }
    assert_eq!(size_of(&mut c, &id).await, before);
    // Possible on this node, but not with what is free now.
    for i in 0..2 {
        block_volume(&mut c, dir.path(), &format!("filler-{i}"), 3 * GIB).await;
    }
    assert_eq!(
        code(
            c.node
                .node_expand_volume(grow(&id, &path, 3 * GIB, 0))
                .await
        ),
        Code::ResourceExhausted
    );
    assert_eq!(size_of(&mut c, &id).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_growing_volume_is_locked_against_other_operations() {
    let dir = tempfile::tempdir().unwrap();
    let growing = Arc::new(AtomicBool::new(false));
    let mut c = start_growing_slowly(dir.path(), Duration::from_secs(2), growing.clone()).await;
    let (id, path) = block_volume(&mut c, dir.path(), "busy", 64 * MIB).await;
    let mut node = c.node.clone();
    let first = {
        let req = grow(&id, &path, 256 * MIB, 0);
        tokio::spawn(async move { node.node_expand_volume(req).await })
    };
    while !growing.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        code(
            c.node
                .node_expand_volume(grow(&id, &path, 512 * MIB, 0))
                .await
        ),
        Code::Aborted
    );
    let delete = DeleteVolumeRequest {
        volume_id: id.clone(),
        ..Default::default()
    };
    assert_eq!(
        code(c.controller.delete_volume(delete).await),
        Code::Aborted
    );
    assert!(
        !first.is_finished(),
        "the first growth was meant to be running"
    );
    let grown = first.await.unwrap().unwrap().into_inner();
    assert_eq!(grown.capacity_bytes, 256 * MIB);
    assert_eq!(size_of(&mut c, &id).await, 256 * MIB);
}
