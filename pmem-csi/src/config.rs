//! The driver's command line.

use crate::error::{Error, Result};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Which device manager provides volumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagerKind {
    /// LVM logical volumes in one volume group per region (pmem-lvm).
    Lvm,
    /// One namespace per volume, placed best-fit (pmem-ndctl's allocator).
    Direct,
    /// The allocator's simulator: no PMEM needed.
    Sim,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The parsed command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// The unix socket to serve on.
    pub endpoint: PathBuf,
    /// This node's id (topology value).
    pub node_id: String,
    /// The CSI driver name.
    pub driver_name: String,
    /// The device manager.
    pub manager: ManagerKind,
    /// Where volume records live.
    pub state_dir: PathBuf,
    /// Percentage of each region the lvm manager uses.
    pub pmem_percentage: u8,
    /// lvm manager: one VG per NUMA node joining its regions (`--join numa`)
    /// instead of one per region (`--join region`, the default).
    pub join_numa: bool,
    /// Region sizes of the sim manager.
    pub sim_regions: String,
    /// Where to serve Prometheus metrics.
    pub metrics_listen: Option<SocketAddr>,
    /// Log format.
    pub log_format: LogFormat,
    /// The kubelet's directory: every staging and target path lies beneath it.
    pub kubelet_dir: PathBuf,
    /// How long a pending device waits for a retry before it is removed.
    pub orphan_grace: std::time::Duration,
    /// The group given access to the CSI socket (mode 0660); none: 0600, owner only.
    pub socket_group: Option<u32>,
    /// Registration with the kubelet, when asked for.
    pub registration: Option<KubeletRegistration>,
}

/// Where the driver registers with the kubelet (see [`crate::registration`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletRegistration {
    /// The registration socket to serve, in the kubelet's plugin registry
    /// (`/var/lib/kubelet/plugins_registry/NAME-reg.sock` as the driver sees it).
    pub socket: PathBuf,
    /// The CSI socket as the kubelet on the host sees it, told to the kubelet.
    pub kubelet_endpoint: PathBuf,
}

/// The usage text.
pub const USAGE: &str =
    "usage: pmem-csi-driver --endpoint unix:///path/csi.sock --node-id NODE [--driver-name NAME]
                       --device-manager lvm|direct|sim [--state-dir DIR] [--pmem-percentage P]
                       [--join region|numa]   (lvm: one VG per region, or per NUMA node)
                       [--sim-regions SPEC] [--metrics-listen ADDR] [--log-format text|json]
                       [--kubelet-dir DIR] [--orphan-grace SECONDS]
                       [--socket-group GID|NAME]   (socket mode 0660 for that group, else 0600)
                       [--registration-socket PATH --kubelet-registration-path PATH]
                           (register with the kubelet: serve its plugin registration on PATH,
                            naming the CSI socket as the host sees it; a refused registration
                            stops the driver with exit status 1, so that the pod restarts)
                       [--dry-run]   (check the arguments and exit)";

impl Config {
    /// Parses the arguments (without the program name).
    pub fn parse(args: &[String]) -> Result<Config> {
        let mut c = Config {
            endpoint: PathBuf::new(),
            node_id: String::new(),
            driver_name: "pmem-csi.pmem-rs.io".into(),
            manager: ManagerKind::Lvm,
            state_dir: PathBuf::from("/var/lib/pmem-csi"),
            pmem_percentage: 100,
            join_numa: false,
            sim_regions: "4x64G".into(),
            metrics_listen: None,
            log_format: LogFormat::Text,
            kubelet_dir: PathBuf::from("/var/lib/kubelet"),
            orphan_grace: crate::driver::DEFAULT_ORPHAN_GRACE,
            socket_group: None,
            registration: None,
        };
        let (mut reg_socket, mut reg_endpoint) = (None, None);
        let mut manager = None;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (key, inline) = match a.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => (a.as_str(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| it.next().cloned())
                    .ok_or_else(|| Error::invalid(format!("{key} needs a value")))
            };
            match key {
                "--endpoint" => {
                    let v = value()?;
                    let path = v.strip_prefix("unix://").ok_or_else(|| {
                        Error::invalid(format!("--endpoint {v:?}: expected unix:///path"))
                    })?;
                    c.endpoint = PathBuf::from(path);
                }
                "--node-id" => c.node_id = value()?,
                "--driver-name" => c.driver_name = value()?,
                "--device-manager" => {
                    manager = Some(match value()?.as_str() {
                        "lvm" => ManagerKind::Lvm,
                        "direct" => ManagerKind::Direct,
                        "sim" => ManagerKind::Sim,
                        other => {
                            return Err(Error::invalid(format!(
                                "--device-manager {other:?}: expected lvm, direct or sim"
                            )))
                        }
                    })
                }
                "--state-dir" => c.state_dir = PathBuf::from(value()?),
                "--pmem-percentage" => {
                    let v = value()?;
                    c.pmem_percentage = v
                        .parse()
                        .ok()
                        .filter(|p| (1..=100).contains(p))
                        .ok_or_else(|| {
                            Error::invalid(format!("--pmem-percentage {v:?}: expected 1 to 100"))
                        })?;
                }
                "--join" => {
                    c.join_numa = match value()?.as_str() {
                        "region" => false,
                        "numa" => true,
                        other => {
                            return Err(Error::invalid(format!(
                                "--join {other:?}: expected region or numa"
                            )))
                        }
                    }
                }
                "--sim-regions" => c.sim_regions = value()?,
                "--metrics-listen" => {
                    let v = value()?;
                    c.metrics_listen = Some(v.parse().map_err(|_| {
                        Error::invalid(format!("--metrics-listen {v:?}: expected HOST:PORT"))
                    })?);
                }
                "--log-format" => {
                    c.log_format = match value()?.as_str() {
                        "text" => LogFormat::Text,
                        "json" => LogFormat::Json,
                        other => {
                            return Err(Error::invalid(format!(
                                "--log-format {other:?}: expected text or json"
                            )))
                        }
                    }
                }
                "--kubelet-dir" => c.kubelet_dir = absolute(key, &value()?)?,
                "--orphan-grace" => {
                    let v = value()?;
                    let secs: u64 = v.parse().map_err(|_| {
                        Error::invalid(format!("--orphan-grace {v:?}: expected seconds"))
                    })?;
                    c.orphan_grace = std::time::Duration::from_secs(secs);
                }
                "--socket-group" => c.socket_group = Some(crate::socket::group_id(&value()?)?),
                "--registration-socket" => reg_socket = Some(absolute(key, &value()?)?),
                "--kubelet-registration-path" => reg_endpoint = Some(absolute(key, &value()?)?),
                other => return Err(Error::invalid(format!("unknown option {other:?}\n{USAGE}"))),
            }
        }
        if c.endpoint.as_os_str().is_empty() || c.node_id.is_empty() {
            return Err(Error::invalid(format!(
                "--endpoint and --node-id are required\n{USAGE}"
            )));
        }
        c.manager = manager
            .ok_or_else(|| Error::invalid(format!("--device-manager is required\n{USAGE}")))?;
        if c.join_numa && c.manager != ManagerKind::Lvm {
            return Err(Error::invalid(
                "--join numa needs --device-manager lvm: only LVM can pool regions",
            ));
        }
        c.registration = match (reg_socket, reg_endpoint) {
            (Some(socket), Some(kubelet_endpoint)) => Some(KubeletRegistration {
                socket,
                kubelet_endpoint,
            }),
            (None, None) => None,
            _ => {
                return Err(Error::invalid(
                    "--registration-socket and --kubelet-registration-path go together",
                ))
            }
        };
        Ok(c)
    }
}

/// The value of option `key`: an absolute path.
fn absolute(key: &str, v: &str) -> Result<PathBuf> {
    if !v.starts_with('/') || v.contains('\0') {
        return Err(Error::invalid(format!(
            "{key} {v:?}: expected an absolute path"
        )));
    }
    Ok(PathBuf::from(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Result<Config> {
        let mut args: Vec<String> = ["--endpoint", "unix:///csi/csi.sock", "--node-id", "n"]
            .iter()
            .chain(["--device-manager", "sim"].iter())
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        Config::parse(&args)
    }

    #[test]
    fn join_is_region_or_numa_and_numa_needs_lvm() {
        assert!(!parse(&[]).unwrap().join_numa);
        let lvm = |j: &str| {
            Config::parse(
                &[
                    "--endpoint",
                    "unix:///c.sock",
                    "--node-id",
                    "n",
                    "--device-manager",
                    "lvm",
                    "--join",
                    j,
                ]
                .map(String::from),
            )
        };
        assert!(lvm("numa").unwrap().join_numa);
        assert!(!lvm("region").unwrap().join_numa);
        for bad in ["NUMA", "", "node"] {
            assert_eq!(
                lvm(bad).unwrap_err().code(),
                tonic::Code::InvalidArgument,
                "{bad:?}"
            );
        }
        let e = parse(&["--join", "numa"]).unwrap_err();
        assert!(e.to_string().contains("lvm"), "{e}");
    }

    #[test]
    fn registration_needs_both_absolute_paths() {
        assert_eq!(parse(&[]).unwrap().registration, None);
        let c = parse(&[
            "--registration-socket",
            "/registry/x-reg.sock",
            "--kubelet-registration-path=/var/lib/kubelet/plugins/x/csi.sock",
        ])
        .unwrap();
        assert_eq!(
            c.registration,
            Some(KubeletRegistration {
                socket: "/registry/x-reg.sock".into(),
                kubelet_endpoint: "/var/lib/kubelet/plugins/x/csi.sock".into(),
            })
        );
        for bad in [
            &["--registration-socket", "/registry/x-reg.sock"][..],
            &["--kubelet-registration-path", "/k/csi.sock"],
            &[
                "--registration-socket",
                "relative.sock",
                "--kubelet-registration-path",
                "/k/csi.sock",
            ],
            &[
                "--registration-socket",
                "/r.sock",
                "--kubelet-registration-path",
                "",
            ],
            &["--registration-socket"],
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{bad:?}");
        }
    }
}
