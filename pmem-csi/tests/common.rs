//! Test support: a driver serving on a unix socket in a temporary directory, and clients for it.

#![allow(dead_code, missing_docs)]

use hyper_util::rt::TokioIo;
use pmem_csi::proto::controller_client::ControllerClient;
use pmem_csi::proto::identity_client::IdentityClient;
use pmem_csi::proto::node_client::NodeClient;
use pmem_csi::proto::volume_capability::{access_mode::Mode, AccessMode, AccessType, MountVolume};
use pmem_csi::proto::*;
use pmem_csi::record::DeviceRecord;
use pmem_csi::state::Phase;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use tonic::transport::{Channel, Endpoint, Uri};

/// Connects to the CSI socket at `path`.
pub async fn channel(path: &Path) -> Channel {
    let path = path.to_path_buf();
    for _ in 0..2400 {
        if path.exists() {
            let p = path.clone();
            let ch = Endpoint::try_from("http://[::1]:1")
                .expect("static URI")
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let p = p.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(
                            tokio::net::UnixStream::connect(p).await?,
                        ))
                    }
                }))
                .await;
            if let Ok(ch) = ch {
                return ch;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no CSI server at {}", path.display());
}

/// The three clients over one channel.
pub struct Clients {
    pub identity: IdentityClient<Channel>,
    pub controller: ControllerClient<Channel>,
    pub node: NodeClient<Channel>,
}

/// Serves a driver over `manager` in `dir` (state, socket, kubelet directory) and returns its clients.
pub async fn serve_manager(
    dir: &Path,
    manager: std::sync::Arc<dyn pmem_csi::manager::DeviceManager>,
) -> Clients {
    let (driver, _) = pmem_csi::driver::Driver::start(
        "pmem-csi.test".into(),
        "node-a".into(),
        manager,
        pmem_csi::state::StateStore::open(dir).unwrap(),
    )
    .unwrap();
    let sock = dir.join("csi.sock");
    let listener = tokio::net::UnixListener::bind(&sock).unwrap();
    tokio::spawn(pmem_csi::server::serve(
        listener,
        std::sync::Arc::new(driver),
        std::sync::Arc::new(pmem_csi::metrics::Metrics::new()),
        pmem_csi::nodeops::NodePaths::new(dir, dir),
        std::future::pending(),
    ));
    clients(&sock).await
}

pub async fn clients(path: &Path) -> Clients {
    let ch = channel(path).await;
    Clients {
        identity: IdentityClient::new(ch.clone()),
        controller: ControllerClient::new(ch.clone()),
        node: NodeClient::new(ch),
    }
}

/// A single-node-writer ext4 mount capability.
pub fn mount_cap() -> VolumeCapability {
    VolumeCapability {
        access_mode: Some(AccessMode {
            mode: Mode::SingleNodeWriter as i32,
        }),
        access_type: Some(AccessType::Mount(MountVolume {
            fs_type: "ext4".into(),
            ..Default::default()
        })),
    }
}

pub fn create_req(name: &str, required: i64) -> CreateVolumeRequest {
    CreateVolumeRequest {
        name: name.into(),
        capacity_range: Some(CapacityRange {
            required_bytes: required,
            limit_bytes: 0,
        }),
        volume_capabilities: vec![mount_cap()],
        ..Default::default()
    }
}

/// The driver binary cargo built for these tests.
pub fn driver_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pmem-csi-driver"))
}

/// The driver binary in sim mode (two 4 GiB regions) with its state,
/// kubelet directory and socket in `dir`, `env` set and `args` appended.
pub fn sim_command(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let _ = std::fs::remove_file(dir.join("csi.sock"));
    let mut cmd = Command::new(driver_bin());
    cmd.args([
        "--endpoint",
        &format!("unix://{}", dir.join("csi.sock").display()),
        "--node-id",
        "node-a",
        "--device-manager",
        "sim",
        "--sim-regions",
        "2x4G",
        "--state-dir",
        dir.to_str().unwrap(),
        "--kubelet-dir",
        dir.to_str().unwrap(),
    ])
    .args(args)
    .env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Starts [`sim_command`].
pub fn spawn_sim_with(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Child {
    sim_command(dir, env, args).spawn().expect("driver starts")
}

/// [`spawn_sim_with`] without extra arguments.
pub fn spawn_sim(dir: &Path, env: &[(&str, &str)]) -> Child {
    spawn_sim_with(dir, env, &[])
}

/// Kills the driver and waits for it.
pub fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The volume ids the simulator's saved namespaces belong to, each with
/// whether it is acknowledged, in id order.
pub fn sim_devices(dir: &Path) -> Vec<(String, bool)> {
    fn walk(v: &serde_json::Value, out: &mut Vec<(String, bool)>) {
        match v {
            serde_json::Value::Object(o) => {
                if let Some(serde_json::Value::String(n)) = o.get("name") {
                    if let Some((id, rec)) = DeviceRecord::parse_namespace_name(n) {
                        let acked = rec.is_none_or(|r| r.phase == Phase::Acknowledged);
                        out.push((id.to_string(), acked));
                    }
                }
                o.values().for_each(|x| walk(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let text =
        std::fs::read_to_string(dir.join("sim-regions.json")).unwrap_or_else(|_| "null".into());
    let mut out = Vec::new();
    walk(&serde_json::from_str(&text).unwrap(), &mut out);
    out.sort();
    out
}

/// The acknowledged volume ids among [`sim_devices`].
pub fn acknowledged_devices(dir: &Path) -> Vec<String> {
    sim_devices(dir)
        .into_iter()
        .filter(|(_, a)| *a)
        .map(|(id, _)| id)
        .collect()
}

/// What ListVolumes reports.
pub async fn entries(c: &mut Clients) -> Vec<list_volumes_response::Entry> {
    c.controller
        .list_volumes(ListVolumesRequest::default())
        .await
        .expect("ListVolumes")
        .into_inner()
        .entries
}

/// The volume ids ListVolumes reports, sorted.
pub async fn listed(c: &mut Clients) -> Vec<String> {
    let mut ids: Vec<String> = entries(c)
        .await
        .into_iter()
        .map(|e| e.volume.unwrap().volume_id)
        .collect();
    ids.sort();
    ids
}

/// One `GET path` on 127.0.0.1:`port`: the whole response, or None when
/// the server closed or did not answer within 3 s.
pub async fn http_get(port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut out = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(3),
        s.read_to_string(&mut out),
    )
    .await
    .ok()?
    .ok()?;
    Some(out)
}

/// A TCP port free at the time of asking.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Implements the named [`pmem_csi::manager::DeviceManager`] methods of a fake
/// by forwarding them to its `inner` manager, after taking the guard its
/// method `$guard` returns, if one is given (`forward_to_inner!(guard held; list, ...)`);
/// the fake writes only the methods it changes.
#[allow(unused_macros)]
macro_rules! forward_to_inner {
    (guard $g:ident; $($m:ident),* $(,)?) => { $( forward_to_inner!(@ [$g] $m); )* };
    ($($m:ident),* $(,)?) => { $( forward_to_inner!(@ [] $m); )* };
    (@ [$($g:ident)?] create) => {
        fn create(
            &self,
            id: &pmem_csi::volume::VolumeId,
            size: u64,
            params: &pmem_csi::volume::Params,
            record: &pmem_csi::record::DeviceRecord,
        ) -> pmem_csi::error::Result<pmem_csi::manager::Device> {
            $(let _guard = self.$g();)?
            self.inner.create(id, size, params, record)
        }
    };
    (@ [$($g:ident)?] can_update_record) => {
        fn can_update_record(&self) -> bool {
            self.inner.can_update_record()
        }
    };
    (@ [$($g:ident)?] update_record) => {
        fn update_record(
            &self,
            id: &pmem_csi::volume::VolumeId,
            record: &pmem_csi::record::DeviceRecord,
        ) -> pmem_csi::error::Result<()> {
            $(let _guard = self.$g();)?
            self.inner.update_record(id, record)
        }
    };
    (@ [$($g:ident)?] min_size) => {
        fn min_size(&self, params: &pmem_csi::volume::Params) -> pmem_csi::error::Result<u64> {
            $(let _guard = self.$g();)?
            self.inner.min_size(params)
        }
    };
    (@ [$($g:ident)?] delete) => {
        fn delete(&self, id: &pmem_csi::volume::VolumeId, erase: bool) -> pmem_csi::error::Result<()> {
            $(let _guard = self.$g();)?
            self.inner.delete(id, erase)
        }
    };
    (@ [$($g:ident)?] expand) => {
        fn expand(&self, id: &pmem_csi::volume::VolumeId, size: u64) -> pmem_csi::error::Result<u64> {
            $(let _guard = self.$g();)?
            self.inner.expand(id, size)
        }
    };
    (@ [$($g:ident)?] list) => {
        fn list(&self) -> pmem_csi::error::Result<Vec<pmem_csi::manager::Device>> {
            $(let _guard = self.$g();)?
            self.inner.list()
        }
    };
    (@ [$($g:ident)?] left_out) => {
        fn left_out(&self) -> Option<String> {
            self.inner.left_out()
        }
    };
    (@ [$($g:ident)?] capacity) => {
        fn capacity(
            &self,
            params: &pmem_csi::volume::Params,
        ) -> pmem_csi::error::Result<pmem_csi::manager::Capacity> {
            $(let _guard = self.$g();)?
            self.inner.capacity(params)
        }
    };
}
#[allow(unused_imports)]
pub(crate) use forward_to_inner;
