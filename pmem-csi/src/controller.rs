//! The CSI Controller service: each handler validates, runs the driver function off the async runtime, maps the error.

use crate::driver::{Driver, SizeRange};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::proto::controller_server::Controller;
use crate::proto::controller_service_capability::{rpc::Type as CapType, Rpc};
use crate::proto::*;
use crate::state::VolumeRecord;
use crate::volume::{check_capabilities, check_capability, Params, VolumeMode};
use std::collections::HashMap;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Serves Controller for a driver.
pub struct ControllerService {
    /// The driver.
    pub driver: Arc<Driver>,
    /// Where operations are counted and timed.
    pub metrics: Arc<Metrics>,
}

impl ControllerService {
    /// Runs `f` through [`crate::handler::run`].
    async fn run<T: Send + 'static>(
        &self,
        method: &'static str,
        volume: &str,
        f: impl FnOnce(&Driver) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Status> {
        crate::handler::run(&self.driver, &self.metrics, method, volume, f).await
    }

    fn volume(&self, rec: &VolumeRecord) -> Volume {
        Volume {
            capacity_bytes: rec.size as i64,
            volume_id: rec.id.to_string(),
            volume_context: rec.params.to_context(),
            content_source: rec.source.as_ref().map(|s| VolumeContentSource {
                r#type: Some(volume_content_source::Type::Volume(
                    volume_content_source::VolumeSource {
                        volume_id: s.to_string(),
                    },
                )),
            }),
            accessible_topology: vec![self.topology()],
        }
    }

    fn topology(&self) -> Topology {
        Topology {
            segments: HashMap::from([(self.driver.topology_key(), self.driver.node_id.clone())]),
        }
    }

    fn condition(&self, abnormal: Option<String>) -> Option<VolumeCondition> {
        Some(VolumeCondition {
            abnormal: abnormal.is_some(),
            message: abnormal.unwrap_or_else(|| "the volume's device is present".into()),
        })
    }

    /// Whether `t` (if given) names this node.
    fn is_here(&self, t: &Topology) -> bool {
        t.segments
            .get(&self.driver.topology_key())
            .is_none_or(|n| *n == self.driver.node_id)
    }
}

/// A request's capacity range, checked (none given: no bounds).
pub(crate) fn range(r: Option<&CapacityRange>) -> Result<SizeRange, Error> {
    r.map_or(Ok(SizeRange::default()), |r| {
        SizeRange::parse(r.required_bytes, r.limit_bytes)
    })
}

#[tonic::async_trait]
impl Controller for ControllerService {
    async fn create_volume(
        &self,
        req: Request<CreateVolumeRequest>,
    ) -> Result<Response<CreateVolumeResponse>, Status> {
        let r = req.into_inner();
        if r.name.is_empty() {
            return Err(Error::invalid("volume name is missing").into());
        }
        check_capabilities(&r.volume_capabilities)?;
        let source = content_source(r.volume_content_source.as_ref())?;
        let params = Params::parse(&r.parameters)?;
        check_mode_access(&params, &r.volume_capabilities)?;
        let mut size = range(r.capacity_range.as_ref())?;
        if let Some((min, what)) = crate::volume::capabilities_minimum(&r.volume_capabilities) {
            size = size.at_least(min, what)?;
        }
        if let Some(req) = &r.accessibility_requirements {
            if !req.requisite.is_empty() && !req.requisite.iter().any(|t| self.is_here(t)) {
                return Err(Error::ResourceExhausted(format!(
                    "node {} is not among the requisite topologies",
                    self.driver.node_id
                ))
                .into());
            }
        }
        let name = r.name.clone();
        let rec = self
            .run("CreateVolume", &name, move |d| match source {
                Some(src) => d.clone_volume(&r.name, size, params, &src),
                None => d.create_volume(&r.name, size, params),
            })
            .await?;
        Ok(Response::new(CreateVolumeResponse {
            volume: Some(self.volume(&rec)),
        }))
    }

    async fn delete_volume(
        &self,
        req: Request<DeleteVolumeRequest>,
    ) -> Result<Response<DeleteVolumeResponse>, Status> {
        let id = req.into_inner().volume_id;
        if id.is_empty() {
            return Err(Error::invalid("volume id is missing").into());
        }
        self.run("DeleteVolume", &id.clone(), move |d| d.delete_volume(&id))
            .await?;
        Ok(Response::new(DeleteVolumeResponse {}))
    }

    async fn controller_publish_volume(
        &self,
        _: Request<ControllerPublishVolumeRequest>,
    ) -> Result<Response<ControllerPublishVolumeResponse>, Status> {
        Err(Status::unimplemented(
            "volumes are local to their node: there is nothing to publish",
        ))
    }

    async fn controller_unpublish_volume(
        &self,
        _: Request<ControllerUnpublishVolumeRequest>,
    ) -> Result<Response<ControllerUnpublishVolumeResponse>, Status> {
        Err(Status::unimplemented(
            "volumes are local to their node: there is nothing to unpublish",
        ))
    }

    async fn validate_volume_capabilities(
        &self,
        req: Request<ValidateVolumeCapabilitiesRequest>,
    ) -> Result<Response<ValidateVolumeCapabilitiesResponse>, Status> {
        let r = req.into_inner();
        if r.volume_id.is_empty() {
            return Err(Error::invalid("volume id is missing").into());
        }
        if r.volume_capabilities.is_empty() {
            return Err(Error::invalid("volume capabilities are missing").into());
        }
        let id = r.volume_id.clone();
        let rec = self
            .run("ValidateVolumeCapabilities", &r.volume_id, move |d| {
                d.volume(&id)
            })
            .await?;
        let unsupported = r
            .volume_capabilities
            .iter()
            .find_map(|c| check_capability(c).err())
            .or_else(|| match Params::parse(&r.parameters) {
                Err(e) => Some(e),
                Ok(p) if p != rec.params => Some(Error::invalid(
                    "the parameters differ from the ones the volume was created with",
                )),
                Ok(_) => None,
            })
            .or_else(|| check_mode_access(&rec.params, &r.volume_capabilities).err());
        Ok(Response::new(match unsupported {
            Some(e) => ValidateVolumeCapabilitiesResponse {
                confirmed: None,
                message: e.to_string(),
            },
            None => ValidateVolumeCapabilitiesResponse {
                confirmed: Some(validate_volume_capabilities_response::Confirmed {
                    volume_context: r.volume_context,
                    volume_capabilities: r.volume_capabilities,
                    parameters: r.parameters,
                    mutable_parameters: HashMap::new(),
                }),
                message: String::new(),
            },
        }))
    }

    async fn list_volumes(
        &self,
        req: Request<ListVolumesRequest>,
    ) -> Result<Response<ListVolumesResponse>, Status> {
        let r = req.into_inner();
        let (recs, next) = self
            .run("ListVolumes", "", move |d| {
                d.list_volumes(&r.starting_token, r.max_entries)
            })
            .await?;
        Ok(Response::new(ListVolumesResponse {
            entries: recs
                .into_iter()
                .map(|(rec, abnormal)| list_volumes_response::Entry {
                    volume: Some(self.volume(&rec)),
                    status: Some(list_volumes_response::VolumeStatus {
                        published_node_ids: vec![],
                        volume_condition: self.condition(abnormal),
                    }),
                })
                .collect(),
            next_token: next.unwrap_or_default(),
        }))
    }

    async fn get_capacity(
        &self,
        req: Request<GetCapacityRequest>,
    ) -> Result<Response<GetCapacityResponse>, Status> {
        let r = req.into_inner();
        r.volume_capabilities
            .iter()
            .try_for_each(check_capability)?;
        let params = Params::parse(&r.parameters)?;
        if r.accessible_topology
            .as_ref()
            .is_some_and(|t| !self.is_here(t))
        {
            return Ok(Response::new(GetCapacityResponse {
                available_capacity: 0,
                maximum_volume_size: Some(0),
                minimum_volume_size: None,
            }));
        }
        let cap = self
            .run("GetCapacity", "", move |d| d.capacity(&params))
            .await?;
        Ok(Response::new(GetCapacityResponse {
            available_capacity: cap.free as i64,
            maximum_volume_size: Some(cap.max_volume as i64),
            minimum_volume_size: None,
        }))
    }

    async fn controller_get_capabilities(
        &self,
        _: Request<ControllerGetCapabilitiesRequest>,
    ) -> Result<Response<ControllerGetCapabilitiesResponse>, Status> {
        let types = [
            CapType::CreateDeleteVolume,
            CapType::ListVolumes,
            CapType::GetCapacity,
            CapType::GetVolume,
            CapType::VolumeCondition,
            CapType::CloneVolume,
        ];
        Ok(Response::new(ControllerGetCapabilitiesResponse {
            capabilities: types
                .into_iter()
                .map(|t| ControllerServiceCapability {
                    r#type: Some(rpc_type(t)),
                })
                .collect(),
        }))
    }

    /// Volumes grow on the node that holds them (NodeExpandVolume, under
    /// the plugin capability VolumeExpansion ONLINE): this driver runs on
    /// every node, and only the one holding a volume can grow its device.
    /// Without the controller capability EXPAND_VOLUME the external-resizer
    /// only records the new size, and the kubelet calls NodeExpandVolume.
    async fn controller_expand_volume(
        &self,
        _: Request<ControllerExpandVolumeRequest>,
    ) -> Result<Response<ControllerExpandVolumeResponse>, Status> {
        Err(Status::unimplemented(
            "volumes grow on their node: NodeExpandVolume",
        ))
    }

    async fn controller_get_volume(
        &self,
        req: Request<ControllerGetVolumeRequest>,
    ) -> Result<Response<ControllerGetVolumeResponse>, Status> {
        let id = req.into_inner().volume_id;
        let (rec, abnormal) = self
            .run("ControllerGetVolume", &id.clone(), move |d| {
                let rec = d.volume(&id)?;
                let abnormal = d.condition(&rec.id);
                Ok((rec, abnormal))
            })
            .await?;
        Ok(Response::new(ControllerGetVolumeResponse {
            volume: Some(self.volume(&rec)),
            status: Some(controller_get_volume_response::VolumeStatus {
                published_node_ids: vec![],
                volume_condition: self.condition(abnormal),
            }),
        }))
    }
}

/// The source volume id of a request's content source (`None`: no source).
/// Snapshots are not supported (INVALID_ARGUMENT, as CSI names for a source
/// the plugin cannot create from); an empty source or id is INVALID_ARGUMENT.
fn content_source(s: Option<&VolumeContentSource>) -> Result<Option<String>, Error> {
    use volume_content_source::Type;
    match s.map(|s| s.r#type.as_ref()) {
        None => Ok(None),
        Some(None) => Err(Error::invalid("volume content source without a type")),
        Some(Some(Type::Snapshot(_))) => Err(Error::invalid(
            "volume content source: snapshots are not supported (CREATE_DELETE_SNAPSHOT is not offered); clone a volume instead",
        )),
        Some(Some(Type::Volume(v))) if v.volume_id.is_empty() => Err(Error::invalid(
            "volume content source: the source volume id is missing",
        )),
        Some(Some(Type::Volume(v))) => Ok(Some(v.volume_id.clone())),
    }
}

/// A devdax volume is a character device: it can only be used as a raw block volume.
fn check_mode_access(params: &Params, caps: &[VolumeCapability]) -> Result<(), Error> {
    let mount = caps
        .iter()
        .any(|c| matches!(c.access_type, Some(volume_capability::AccessType::Mount(_))));
    if params.mode == VolumeMode::Devdax && mount {
        return Err(Error::invalid(
            "mode=devdax volumes are character devices: only block access is possible, not a filesystem mount",
        ));
    }
    Ok(())
}

fn rpc_type(t: CapType) -> controller_service_capability::Type {
    controller_service_capability::Type::Rpc(Rpc { r#type: t as i32 })
}
