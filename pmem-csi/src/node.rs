//! The CSI Node service: thin handlers over [`crate::nodeops`], run off the async runtime.

use crate::driver::Driver;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::nodeops::{Access, NodeOps, EPHEMERAL_KEY};
use crate::proto::node_server::Node;
use crate::proto::node_service_capability::{rpc::Type as CapType, Rpc};
use crate::proto::volume_capability::AccessType;
use crate::proto::*;
use crate::volume::check_capability;
use std::collections::HashMap;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Serves Node for a driver.
pub struct NodeService {
    /// The node operations.
    pub ops: Arc<NodeOps>,
    /// Where operations are counted and timed.
    pub metrics: Arc<Metrics>,
}

fn access(c: Option<&VolumeCapability>) -> Result<Access, Error> {
    let c = c.ok_or_else(|| Error::invalid("volume capability is missing"))?;
    check_capability(c)?;
    Ok(match &c.access_type {
        Some(AccessType::Mount(m)) => Access::Mount {
            fs: if m.fs_type.is_empty() {
                "ext4".into()
            } else {
                m.fs_type.clone()
            },
            flags: m.mount_flags.clone(),
        },
        _ => Access::Block,
    })
}

fn need_id(id: &str) -> Result<(), Error> {
    if id.is_empty() {
        Err(Error::invalid("volume id is missing"))
    } else {
        Ok(())
    }
}

/// The volume path of a stats or expand request, checked in the order CSI
/// clients expect: id and path present, volume known, path usable.
fn volume_path(ops: &NodeOps, id: &str, path: &str) -> Result<std::path::PathBuf, Error> {
    need_id(id)?;
    if path.is_empty() {
        return Err(Error::invalid("volume path is missing"));
    }
    ops.record(id)?;
    if !path.starts_with('/') {
        // A relative path names nothing the volume could be published at.
        return Err(Error::NotFound(format!(
            "volume {} is not published at \"{}\"",
            crate::volume::shown(id),
            crate::volume::shown(path)
        )));
    }
    ops.kubelet.check("volume path", path)
}

impl NodeService {
    /// Runs `f` through [`crate::handler::run`].
    async fn run<T: Send + 'static>(
        &self,
        method: &'static str,
        volume: &str,
        f: impl FnOnce(&NodeOps) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Status> {
        crate::handler::run(&self.ops, &self.metrics, method, volume, f).await
    }

    fn driver(&self) -> &Driver {
        &self.ops.driver
    }
}

#[tonic::async_trait]
impl Node for NodeService {
    async fn node_stage_volume(
        &self,
        req: Request<NodeStageVolumeRequest>,
    ) -> Result<Response<NodeStageVolumeResponse>, Status> {
        let r = req.into_inner();
        need_id(&r.volume_id)?;
        let staging = self
            .ops
            .kubelet
            .check("staging target path", &r.staging_target_path)?;
        let access = access(r.volume_capability.as_ref())?;
        let id = r.volume_id.clone();
        self.run("NodeStageVolume", &r.volume_id, move |o| {
            o.stage(&id, &staging, &access)
        })
        .await?;
        Ok(Response::new(NodeStageVolumeResponse {}))
    }

    async fn node_unstage_volume(
        &self,
        req: Request<NodeUnstageVolumeRequest>,
    ) -> Result<Response<NodeUnstageVolumeResponse>, Status> {
        let r = req.into_inner();
        need_id(&r.volume_id)?;
        let staging = self
            .ops
            .kubelet
            .check("staging target path", &r.staging_target_path)?;
        let id = r.volume_id.clone();
        self.run("NodeUnstageVolume", &r.volume_id, move |o| {
            o.unstage(&id, &staging)
        })
        .await?;
        Ok(Response::new(NodeUnstageVolumeResponse {}))
    }

    async fn node_publish_volume(
        &self,
        req: Request<NodePublishVolumeRequest>,
    ) -> Result<Response<NodePublishVolumeResponse>, Status> {
        let r = req.into_inner();
        need_id(&r.volume_id)?;
        let target = self.ops.kubelet.check("target path", &r.target_path)?;
        let access = access(r.volume_capability.as_ref())?;
        let ephemeral = r
            .volume_context
            .get(EPHEMERAL_KEY)
            .is_some_and(|v| v == "true");
        let staging = match (&access, ephemeral) {
            (Access::Mount { .. }, false) => Some(
                self.ops
                    .kubelet
                    .check("staging target path", &r.staging_target_path)?,
            ),
            _ => None,
        };
        let id = r.volume_id.clone();
        let (ctx, ro) = (r.volume_context, r.readonly);
        self.run("NodePublishVolume", &r.volume_id, move |o| {
            if ephemeral {
                o.publish_ephemeral(&id, &ctx, &target, &access, ro)
            } else {
                o.publish(&id, staging.as_deref(), &target, &access, ro)
            }
        })
        .await?;
        Ok(Response::new(NodePublishVolumeResponse {}))
    }

    async fn node_unpublish_volume(
        &self,
        req: Request<NodeUnpublishVolumeRequest>,
    ) -> Result<Response<NodeUnpublishVolumeResponse>, Status> {
        let r = req.into_inner();
        need_id(&r.volume_id)?;
        let target = self.ops.kubelet.check("target path", &r.target_path)?;
        let id = r.volume_id.clone();
        self.run("NodeUnpublishVolume", &r.volume_id, move |o| {
            o.unpublish(&id, &target)
        })
        .await?;
        Ok(Response::new(NodeUnpublishVolumeResponse {}))
    }

    async fn node_get_volume_stats(
        &self,
        req: Request<NodeGetVolumeStatsRequest>,
    ) -> Result<Response<NodeGetVolumeStatsResponse>, Status> {
        let r = req.into_inner();
        let path = volume_path(&self.ops, &r.volume_id, &r.volume_path)?;
        let id = r.volume_id.clone();
        let u = self
            .run("NodeGetVolumeStats", &r.volume_id, move |o| {
                o.stats(&id, &path)
            })
            .await?;
        let usage = |(total, avail, used): (u64, u64, u64), unit: volume_usage::Unit| VolumeUsage {
            total: total as i64,
            available: avail as i64,
            used: used as i64,
            unit: unit as i32,
        };
        let mut out = vec![usage(u.bytes, volume_usage::Unit::Bytes)];
        if let Some(i) = u.inodes {
            out.push(usage(i, volume_usage::Unit::Inodes));
        }
        Ok(Response::new(NodeGetVolumeStatsResponse {
            usage: out,
            volume_condition: Some(VolumeCondition {
                abnormal: u.abnormal.is_some(),
                message: u.abnormal.unwrap_or_else(|| "mounted".into()),
            }),
        }))
    }

    /// Grows the volume's device to the requested size, then its filesystem:
    /// the whole expansion happens here (see [`crate::nodeops::NodeOps::expand`]).
    /// A device manager whose volumes cannot grow does not offer this.
    async fn node_expand_volume(
        &self,
        req: Request<NodeExpandVolumeRequest>,
    ) -> Result<Response<NodeExpandVolumeResponse>, Status> {
        if !self.driver().manager().can_expand() {
            return Err(Status::unimplemented(format!(
                "{} volumes cannot grow",
                self.driver().manager().kind()
            )));
        }
        let r = req.into_inner();
        let path = volume_path(&self.ops, &r.volume_id, &r.volume_path)?;
        let range = crate::controller::range(r.capacity_range.as_ref())?;
        let access = match &r.volume_capability {
            Some(c) => Some(access(Some(c))?),
            None => None,
        };
        let id = r.volume_id.clone();
        let size = self
            .run("NodeExpandVolume", &r.volume_id, move |o| {
                o.expand(&id, &path, range, access.as_ref())
            })
            .await?;
        Ok(Response::new(NodeExpandVolumeResponse {
            capacity_bytes: size as i64,
        }))
    }

    async fn node_get_capabilities(
        &self,
        _: Request<NodeGetCapabilitiesRequest>,
    ) -> Result<Response<NodeGetCapabilitiesResponse>, Status> {
        let mut caps = vec![
            CapType::StageUnstageVolume,
            CapType::GetVolumeStats,
            CapType::VolumeCondition,
        ];
        if self.driver().manager().can_expand() {
            caps.push(CapType::ExpandVolume);
        }
        Ok(Response::new(NodeGetCapabilitiesResponse {
            capabilities: caps
                .into_iter()
                .map(|t| NodeServiceCapability {
                    r#type: Some(node_service_capability::Type::Rpc(Rpc { r#type: t as i32 })),
                })
                .collect(),
        }))
    }

    async fn node_get_info(
        &self,
        _: Request<NodeGetInfoRequest>,
    ) -> Result<Response<NodeGetInfoResponse>, Status> {
        Ok(Response::new(NodeGetInfoResponse {
            node_id: self.driver().node_id.clone(),
            max_volumes_per_node: 0,
            accessible_topology: Some(Topology {
                segments: HashMap::from([(
                    self.driver().topology_key(),
                    self.driver().node_id.clone(),
                )]),
            }),
        }))
    }
}
