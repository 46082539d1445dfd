//! `pmem-csi`: a Kubernetes CSI driver for persistent memory.
//!
//! It runs on every node with PMEM and serves the CSI identity,
//! controller and node services on a unix socket (the external-provisioner runs in
//! node-deployment mode beside it). The driver is thin: volumes come from a
//! device manager over the layers below (LVM, one namespace per volume, or
//! the allocator's simulator); the driver validates requests, keeps each
//! volume's record on its device (with a cache on disk that may vanish), and
//! answers with the right gRPC codes.
//!
//! Modules:
//! - [`proto`]: the CSI v1 messages and services, compiled from `proto/csi.proto`;
//! - [`config`]: the command line;
//! - [`server`]: building the driver and serving gRPC on the socket;
//! - [`socket`]: the driver's unix sockets, created private whatever the umask;
//! - [`registration`]: registering with the kubelet (its plugin registration service);
//! - [`identity`], [`controller`], [`node`]: the CSI services, thin handlers;
//! - [`handler`]: what every handler does around its work (blocking pool, span, metrics, panics);
//! - [`driver`]: the logic of each controller operation as plain functions;
//! - [`clone`]: CreateVolume from a volume content source (CLONE_VOLUME);
//!   [`copy`]: the device-to-device copy with non-temporal stores;
//! - [`nodeops`]: the node operations (mkfs, DAX mounts, bind mounts, stats, growth, ephemeral volumes);
//! - [`cmd`]: the one runner of external programs; [`mountinfo`]: what is mounted where;
//! - [`manager`]: device managers (`lvm`, `direct`, `sim`);
//! - [`volume`]: volume ids, names, parameters and capabilities;
//! - [`record`]: the record each device carries of its volume (the truth);
//! - [`reconcile`]: rebuilding the volume table from the devices, and the periodic pass over them;
//! - [`state`]: the atomic on-disk cache of volume records;
//! - [`paths`]: node paths checked beneath the kubelet directory, and what the driver made there;
//! - [`locks`]: the per-volume in-flight locks (ABORTED);
//! - [`metrics`]: Prometheus metrics, and the health endpoint for the kubelet's liveness probe;
//! - [`zeroing`]: zeroing space before volumes get it, its progress and the gate creates wait at;
//! - [`error`]: the error type and its gRPC codes.

pub mod authority;
pub mod clone;
pub mod cmd;
pub mod config;
pub mod controller;
pub mod copy;
pub mod driver;
pub mod error;
pub mod handler;
pub mod identity;
pub mod locks;
pub mod manager;
pub mod media;
pub mod metrics;
pub mod mountinfo;
pub mod node;
pub mod nodeops;
pub mod paths;
pub mod reconcile;
pub mod record;
pub mod registration;
pub mod server;
pub mod socket;
pub mod state;
pub mod volume;
pub mod zeroing;

pub mod proto {
    //! The CSI v1 messages and services (generated from `proto/csi.proto`).
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("csi.v1");
}

pub use error::{Error, Result};
