//! Test support: a driver serving on a unix socket in a temporary directory, and clients for it.

#![allow(dead_code, missing_docs)]

use hyper_util::rt::TokioIo;
use pmem_csi::proto::controller_client::ControllerClient;
use pmem_csi::proto::identity_client::IdentityClient;
use pmem_csi::proto::node_client::NodeClient;
use pmem_csi::proto::volume_capability::{access_mode::Mode, AccessMode, AccessType, MountVolume};
use pmem_csi::proto::*;
use std::path::{Path, PathBuf};
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
