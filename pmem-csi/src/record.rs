//! The record each device carries of its volume, so the driver's state can be rebuilt from the devices alone.
//!
//! A device holds what a volume is: its phase (pending or acknowledged), its
//! parameters, whether it is ephemeral, the size limit it was acknowledged
//! under and, where the device has room, the name it was created with. The
//! lvm manager keeps it in LV tags (`pmem-csi.rec=...`, `pmem-csi.name=...`);
//! the namespace managers keep it in the namespace's name, after the volume
//! id (`<id>.<record>`, at most 63 bytes). The compact form is
//! `<version>.<flags in hex>.<limit in hex>`.

use crate::state::Phase;
use crate::volume::{Params, VolumeId, VolumeMode};
use pmem_lvm::names::{escape_tag_value, unescape_tag_value};

/// The version of the compact record this driver writes.
pub const RECORD_VERSION: u32 = 2;

const REC_TAG: &str = "pmem-csi.rec=";
const NAME_TAG: &str = "pmem-csi.name=";
const SOURCE_TAG: &str = "pmem-csi.source=";

const ERASE: u32 = 1;
const DAX: u32 = 2;
const EPHEMERAL: u32 = 4;
const DEVDAX: u32 = 8;
const ACKNOWLEDGED: u32 = 16;

/// What a device records of its volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Pending (made, not yet confirmed to a client) or acknowledged.
    pub phase: Phase,
    /// The client's size limit when the volume was created or last grown,
    /// bytes (0: none): the acknowledged capacity is the device's size capped by it.
    pub limit: u64,
    /// The StorageClass parameters.
    pub params: Params,
    /// A CSI ephemeral inline volume.
    pub ephemeral: bool,
    /// The name the volume was created with, where the device has room for it.
    pub name: Option<String>,
    /// The volume this one was cloned from, where the device has room for it.
    pub source: Option<VolumeId>,
}

impl DeviceRecord {
    /// The capacity acknowledged for a device of `device_size` usable bytes.
    pub fn acknowledged_size(&self, device_size: u64) -> u64 {
        match self.limit {
            0 => device_size,
            l => device_size.min(l),
        }
    }

    fn compact(&self) -> String {
        let mut flags = 0;
        for (on, bit) in [
            (self.params.erase_after, ERASE),
            (self.params.dax, DAX),
            (self.ephemeral, EPHEMERAL),
            (self.params.mode == VolumeMode::Devdax, DEVDAX),
            (self.phase == Phase::Acknowledged, ACKNOWLEDGED),
        ] {
            if on {
                flags |= bit;
            }
        }
        format!("{RECORD_VERSION}.{flags:x}.{:x}", self.limit)
    }

    /// Parses a compact record. A newer version's record is read for the
    /// fields this release knows and taken as acknowledged, whatever it says:
    /// an unknown record never makes a device removable.
    fn parse_compact(s: &str) -> Option<DeviceRecord> {
        let mut parts = s.splitn(3, '.');
        let version: u32 = parts.next()?.parse().ok()?;
        let flags = u32::from_str_radix(parts.next()?, 16).ok()?;
        let limit_text = parts.next()?;
        let limit = u64::from_str_radix(limit_text.split('.').next()?, 16).ok()?;
        if version < 2 || (version == RECORD_VERSION && limit_text.contains('.')) {
            return None;
        }
        let on = |bit: u32| flags & bit != 0;
        Some(DeviceRecord {
            phase: if on(ACKNOWLEDGED) || version > RECORD_VERSION {
                Phase::Acknowledged
            } else {
                Phase::Pending
            },
            limit,
            params: Params {
                erase_after: on(ERASE),
                dax: on(DAX),
                mode: if on(DEVDAX) {
                    VolumeMode::Devdax
                } else {
                    VolumeMode::Fsdax
                },
            },
            ephemeral: on(EPHEMERAL),
            name: None,
            source: None,
        })
    }

    /// The LV tags that carry this record.
    pub fn tags(&self) -> Vec<String> {
        let mut t = vec![format!("{REC_TAG}{}", self.compact())];
        if let Some(n) = &self.name {
            t.push(format!("{NAME_TAG}{}", escape_tag_value(n)));
        }
        if let Some(s) = &self.source {
            t.push(format!("{SOURCE_TAG}{s}"));
        }
        t
    }

    /// Whether `tag` is one of the tags [`DeviceRecord::tags`] writes.
    pub fn is_record_tag(tag: &str) -> bool {
        tag.starts_with(REC_TAG) || tag.starts_with(NAME_TAG) || tag.starts_with(SOURCE_TAG)
    }

    /// The record kept in an LV's tags, if it has one.
    pub fn from_tags(tags: &[String]) -> Option<DeviceRecord> {
        let mut rec = tags
            .iter()
            .find_map(|t| DeviceRecord::parse_compact(t.strip_prefix(REC_TAG)?))?;
        rec.name = tags
            .iter()
            .find_map(|t| unescape_tag_value(t.strip_prefix(NAME_TAG)?));
        rec.source = tags
            .iter()
            .find_map(|t| VolumeId::try_from(t.strip_prefix(SOURCE_TAG)?.to_string()).ok());
        Some(rec)
    }

    /// The namespace name that carries volume `id` and this record (the
    /// volume name does not fit a namespace label and is left out).
    pub fn namespace_name(&self, id: &VolumeId) -> String {
        format!("{id}.{}", self.compact())
    }

    /// The volume id and record in a namespace name: a bare id (what format 1
    /// wrote) has no record; a name that starts with no volume id is `None`.
    pub fn parse_namespace_name(name: &str) -> Option<(VolumeId, Option<DeviceRecord>)> {
        let (id, rest) = match name.split_once('.') {
            Some((id, rest)) => (id, Some(rest)),
            None => (name, None),
        };
        let id = VolumeId::try_from(id.to_string()).ok()?;
        match rest {
            None => Some((id, None)),
            Some(r) => Some((id, Some(DeviceRecord::parse_compact(r)?))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::VolumeName;
    use proptest::prelude::*;

    fn id() -> VolumeId {
        VolumeId::for_name(&VolumeName::parse("vol-a").unwrap())
    }

    fn rec(phase: Phase, limit: u64, name: Option<&str>) -> DeviceRecord {
        DeviceRecord {
            phase,
            limit,
            params: Params {
                erase_after: false,
                mode: VolumeMode::Devdax,
                dax: true,
            },
            ephemeral: true,
            name: name.map(str::to_string),
            source: None,
        }
    }

    #[test]
    fn namespace_names_fit_a_label_and_round_trip() {
        let r = rec(Phase::Pending, u64::MAX, None);
        let n = r.namespace_name(&id());
        assert!(n.len() <= 63, "{n} is {} bytes", n.len());
        assert_eq!(
            DeviceRecord::parse_namespace_name(&n),
            Some((id(), Some(r)))
        );
        assert_eq!(
            DeviceRecord::parse_namespace_name(id().as_str()),
            Some((id(), None)),
            "format 1 named namespaces by the bare id"
        );
        for other in [
            "pmem-rs-lvm",
            "",
            "pmem-xyz.2.1.0",
            &format!("{}.junk", id()),
        ] {
            assert_eq!(DeviceRecord::parse_namespace_name(other), None, "{other}");
        }
    }

    #[test]
    fn newer_records_are_read_as_acknowledged() {
        let n = format!("{}.3.0.40000000.77", id());
        let (_, r) = DeviceRecord::parse_namespace_name(&n).unwrap();
        let r = r.unwrap();
        assert_eq!(r.phase, Phase::Acknowledged);
        assert_eq!(r.limit, 1 << 30);
    }

    #[test]
    fn acknowledged_size_is_capped_by_the_limit() {
        assert_eq!(rec(Phase::Acknowledged, 0, None).acknowledged_size(5), 5);
        assert_eq!(rec(Phase::Acknowledged, 4, None).acknowledged_size(5), 4);
        assert_eq!(rec(Phase::Acknowledged, 9, None).acknowledged_size(5), 5);
    }

    proptest! {
        #[test]
        fn tags_round_trip_and_are_valid_lvm_tags(name in "\\PC{1,40}|[\\x00-\\x7f]{1,128}", limit: u64, ack: bool) {
            let mut r = rec(if ack { Phase::Acknowledged } else { Phase::Pending }, limit, Some(&name));
            r.source = ack.then(id);
            let tags = r.tags();
            for t in &tags {
                prop_assert!(pmem_lvm::names::check_tag(t).is_ok(), "{}", t);
                prop_assert!(DeviceRecord::is_record_tag(t));
            }
            prop_assert_eq!(DeviceRecord::from_tags(&tags), Some(r));
        }
    }
}
