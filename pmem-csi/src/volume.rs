//! What a volume is to the driver: validated ids and names, StorageClass parameters, capabilities.

use crate::error::{Error, Result};
use crate::proto::volume_capability::{access_mode::Mode as Access, AccessType};
use crate::proto::VolumeCapability;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;

/// The longest volume name accepted (CSI names are at most 128 bytes).
pub const MAX_NAME_LEN: usize = 128;

/// A volume id: `pmem-` and 32 hex digits, derived from the volume name, so
/// it is stable, reveals no path, and fits every device manager's naming.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VolumeId(String);

impl VolumeId {
    /// The id of the volume called `name`.
    pub fn for_name(name: &VolumeName) -> Self {
        let digest = Sha256::digest(name.0.as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        VolumeId(format!("pmem-{hex}"))
    }

    /// Parses an id from a request; a malformed id is [`Error::NotFound`]
    /// (no such volume can exist), an empty one [`Error::InvalidArgument`].
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() {
            return Err(Error::invalid("volume id is missing"));
        }
        VolumeId::try_from(s.to_string())
            .map_err(|_| Error::NotFound(format!("volume \"{}\" does not exist", shown(s))))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for VolumeId {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        let ok = s.len() == 37
            && s.starts_with("pmem-")
            && s[5..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(VolumeId(s))
        } else {
            Err(format!("malformed volume id \"{}\"", shown(&s)))
        }
    }
}

impl From<VolumeId> for String {
    fn from(v: VolumeId) -> String {
        v.0
    }
}

impl fmt::Display for VolumeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Text from a request as it may appear in an error message: at most 64
/// bytes of it, escaped ([`crate::handler::loggable`]), so a name can
/// neither flood nor forge a log line.
pub fn shown(s: &str) -> String {
    crate::handler::loggable(s, 64)
}

/// A volume name from a CreateVolume request: 1 to 128 bytes, no NUL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VolumeName(pub String);

impl VolumeName {
    /// Validates a requested name.
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() {
            return Err(Error::invalid("volume name is missing"));
        }
        if s.len() > MAX_NAME_LEN {
            return Err(Error::invalid(format!(
                "volume name is {} bytes, the limit is {MAX_NAME_LEN}",
                s.len()
            )));
        }
        if s.contains('\0') {
            return Err(Error::invalid("volume name contains a NUL byte"));
        }
        Ok(VolumeName(s.to_string()))
    }
}

/// How a direct volume's namespace is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeMode {
    /// An fsdax namespace (block device, mountable with `-o dax`).
    Fsdax,
    /// A devdax namespace (character device).
    Devdax,
}

/// The StorageClass parameters the driver understands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// Erase the data when the volume is deleted (default true).
    pub erase_after: bool,
    /// Namespace mode for direct volumes (default fsdax).
    pub mode: VolumeMode,
    /// Mount with `-o dax` (default true); false mounts through the page cache.
    pub dax: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            erase_after: true,
            mode: VolumeMode::Fsdax,
            dax: true,
        }
    }
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(Error::invalid(format!(
            "parameter {}=\"{}\" is not a boolean",
            shown(key),
            shown(v)
        ))),
    }
}

impl Params {
    /// Parses StorageClass parameters; an unknown key is an error, except
    /// the `csi.storage.k8s.io/` keys the external-provisioner adds.
    pub fn parse(map: &HashMap<String, String>) -> Result<Self> {
        let mut p = Params::default();
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        for k in keys {
            let v = &map[k];
            match k.as_str() {
                "eraseAfter" => p.erase_after = parse_bool(k, v)?,
                "dax" => p.dax = parse_bool(k, v)?,
                "mode" => {
                    p.mode = match v.as_str() {
                        "fsdax" => VolumeMode::Fsdax,
                        "devdax" => VolumeMode::Devdax,
                        _ => {
                            return Err(Error::invalid(format!(
                                "parameter mode=\"{}\": expected fsdax or devdax",
                                shown(v)
                            )))
                        }
                    }
                }
                _ if k.starts_with("csi.storage.k8s.io/") => {}
                _ => {
                    return Err(Error::invalid(format!(
                        "unknown parameter \"{}\" (known: eraseAfter, mode, dax)",
                        shown(k)
                    )))
                }
            }
        }
        Ok(p)
    }

    /// The parameters as a volume context map (what NodeStage gets back).
    pub fn to_context(&self) -> HashMap<String, String> {
        let mode = match self.mode {
            VolumeMode::Fsdax => "fsdax",
            VolumeMode::Devdax => "devdax",
        };
        HashMap::from([
            ("eraseAfter".to_string(), self.erase_after.to_string()),
            ("mode".to_string(), mode.to_string()),
            ("dax".to_string(), self.dax.to_string()),
        ])
    }
}

/// Checks one capability: an access type and a single-node access mode are required.
pub fn check_capability(c: &VolumeCapability) -> Result<()> {
    let access = c
        .access_mode
        .as_ref()
        .ok_or_else(|| Error::invalid("volume capability without an access mode"))?;
    match c.access_type.as_ref() {
        None => {
            return Err(Error::invalid(
                "volume capability without an access type (block or mount)",
            ))
        }
        Some(AccessType::Mount(m)) if !matches!(m.fs_type.as_str(), "" | "ext4" | "xfs") => {
            return Err(Error::invalid(format!(
                "filesystem {:?} is not supported (ext4 or xfs)",
                m.fs_type
            )));
        }
        Some(_) => {}
    }
    match Access::try_from(access.mode) {
        Ok(
            Access::SingleNodeWriter
            | Access::SingleNodeReaderOnly
            | Access::SingleNodeSingleWriter
            | Access::SingleNodeMultiWriter,
        ) => Ok(()),
        Ok(m) => Err(Error::invalid(format!(
            "access mode {} is not supported: PMEM is local to one node",
            m.as_str_name()
        ))),
        Err(_) => Err(Error::invalid(format!(
            "unknown access mode {}",
            access.mode
        ))),
    }
}

/// The smallest filesystem mkfs.xfs makes (xfsprogs 5.19 and later refuse anything smaller).
pub const XFS_MIN_SIZE: u64 = 300 << 20;

/// The smallest volume the filesystem `fs` can be made on, with its name; None when any size does.
pub fn filesystem_minimum(fs: &str) -> Option<(u64, &'static str)> {
    (fs == "xfs").then_some((XFS_MIN_SIZE, "an xfs filesystem"))
}

/// The smallest volume every mount capability in `caps` can be made on.
pub fn capabilities_minimum(caps: &[VolumeCapability]) -> Option<(u64, &'static str)> {
    caps.iter()
        .filter_map(|c| match &c.access_type {
            Some(AccessType::Mount(m)) => filesystem_minimum(&m.fs_type),
            _ => None,
        })
        .max_by_key(|(size, _)| *size)
}

/// Checks a non-empty list of capabilities.
pub fn check_capabilities(caps: &[VolumeCapability]) -> Result<()> {
    if caps.is_empty() {
        return Err(Error::invalid("volume capabilities are missing"));
    }
    caps.iter().try_for_each(check_capability)
}

#[cfg(test)]
mod tests;
