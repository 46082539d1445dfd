//! Cloning a volume (CSI CLONE_VOLUME): a new volume on this node holding a byte copy of an existing one.
//!
//! The rules, in the order they are checked (the request's fields were
//! checked by the handler before any of this):
//! - The source id must name an acknowledged volume of this node: a
//!   malformed id, a volume of another node or of another driver instance
//!   (none of which this node holds) and a volume still being created are
//!   all NOT_FOUND. A source whose device is missing is UNAVAILABLE.
//! - Idempotence: a volume of the same name made from the same source is
//!   returned as it is (even when the source was deleted since); one made
//!   from another source, or made without one, is ALREADY_EXISTS. A pending
//!   clone (its copy interrupted) is copied again by the retry.
//! - Parameters: `mode` must be the source's (a clone is the same kind of
//!   device: fsdax or devdax), else INVALID_ARGUMENT; `eraseAfter` and `dax`
//!   are the clone's own. The filesystem comes with the bytes: a clone of a
//!   formatted volume holds the source's filesystem, whatever `fs_type` the
//!   request names (NodeStage mounts what is there).
//! - Size: the whole of the source's device is copied, so the clone is at
//!   least that large. A capacity limit below it is OUT_OF_RANGE; a required
//!   size below it is raised to it (the range allows the larger size); a
//!   larger size is fine, and the bytes beyond the copy read zero.
//! - The source's lock is held for the copy (another operation on it is
//!   ABORTED meanwhile), and the clone is acknowledged only once the copy is
//!   durable ([`crate::copy`]).

use crate::driver::{check_existing, Driver, SizeRange};
use crate::error::{Error, Result};
use crate::state::{Phase, VolumeRecord};
use crate::volume::{shown, Params, VolumeId, VolumeName};
use std::path::{Path, PathBuf};

impl Driver {
    /// Creates volume `name` as a copy of volume `source` (idempotent by name and source).
    pub fn clone_volume(
        &self,
        name: &str,
        range: SizeRange,
        params: Params,
        source: &str,
    ) -> Result<VolumeRecord> {
        let name = VolumeName::parse(name)?;
        let id = VolumeId::for_name(&name);
        let not_found = || {
            Error::NotFound(format!(
                "source volume \"{}\" does not exist on node {}",
                shown(source),
                self.node_id
            ))
        };
        let src = match VolumeId::parse(source) {
            Err(Error::NotFound(_)) => return Err(not_found()),
            other => other?,
        };
        let _guard = self.lock_volume(&[&name.0, id.as_str(), src.as_str()])?;
        let existing = self.table().get(&id).cloned();
        if let Some(e) = &existing {
            check_existing(&name, e, range, &params, false)?;
            match (&e.rec.source, e.rec.phase) {
                (Some(s), Phase::Acknowledged | Phase::Deleting) if *s == src => {
                    return Ok(e.rec.clone())
                }
                // Never answered: the retry copies again (a pending volume whose
                // source was not recorded is claimed too: no client holds it).
                (s, Phase::Pending) if s.as_ref().is_none_or(|s| *s == src) => {}
                (Some(s), _) => {
                    return Err(Error::AlreadyExists(format!(
                        "volume {:?} exists as a clone of volume {s}, not of {src}",
                        name.0
                    )))
                }
                (None, _) => {
                    return Err(Error::AlreadyExists(format!(
                        "volume {:?} exists and is not a clone of volume {src}",
                        name.0
                    )))
                }
            }
        }
        let source_rec = self.volume(src.as_str()).map_err(|_| not_found())?;
        if let Some(why) = self.condition(&src) {
            return Err(Error::Unavailable(format!("source volume {src}: {why}")));
        }
        if source_rec.params.mode != params.mode {
            return Err(Error::invalid(format!(
                "parameter mode={:?} differs from the source volume {src}'s mode={:?}: a clone is the same kind of device",
                params.mode, source_rec.params.mode
            )));
        }
        let device = self
            .manager()
            .list()?
            .into_iter()
            .find(|d| d.id == src)
            .ok_or_else(|| {
                Error::Unavailable(format!("source volume {src}: its device is not listed"))
            })?;
        let len = device.size;
        if range.limit != 0 && range.limit < len {
            return Err(Error::OutOfRange(format!(
                "volume {:?}: the capacity limit of {} bytes is smaller than the source volume {src} ({len} bytes)",
                name.0, range.limit
            )));
        }
        let range = SizeRange {
            required: range.required.max(len),
            limit: range.limit,
        };
        let from = PathBuf::from(&device.path);
        let fill = move |dst: &Path, zeroed: bool| {
            crate::copy::copy_device(&from, len, dst, zeroed).map(|_| ())
        };
        let Some(e) = existing else {
            return self.make(&name, range, params, false, Some((&src, &fill)));
        };
        // A pending clone whose copy was cut short.
        if e.rec.size < len {
            return Err(Error::AlreadyExists(format!(
                "volume {:?} exists with {} bytes, less than its source {src} ({len} bytes)",
                name.0, e.rec.size
            )));
        }
        let recorded = e.rec.source.is_some();
        let rec = VolumeRecord {
            source: Some(src.clone()),
            ..e.rec
        };
        if !recorded {
            self.manager()
                .update_record(&id, &crate::driver::device_record(&rec, range.limit))?;
            self.cache(&rec);
        }
        self.fill_pending(&id, &fill)?;
        self.acknowledge(rec, range.limit)
    }
}
