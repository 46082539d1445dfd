//! `csi_client`: talks CSI to a pmem-csi driver over its unix socket.
//!
//! ```text
//! csi_client --endpoint unix:///run/csi/csi.sock walk [--size 256Mi] [--fs ext4|xfs] [--dir DIR]
//! csi_client --endpoint unix:///run/csi/csi.sock probe
//! csi_client --endpoint unix:///run/csi/csi.sock pairs N [--size 256Mi]
//! csi_client --endpoint unix:///run/csi/csi.sock create NAME [--size 256Mi]
//! csi_client --endpoint unix:///run/csi/csi.sock list
//! ```
//!
//! `probe` waits (polling every 2 ms) until the driver answers Probe with
//! ready, then exits 0: a start-up timer for scripts.
//!
//! `walk` takes one volume through its whole life (capacity, create, stage,
//! publish, write and read back, stats, expand when the driver can, unpublish,
//! unstage, delete), printing each call and its result on one line.
//!
//! `pairs N` times N CreateVolume+DeleteVolume pairs, one after another,
//! and prints their median and 99th percentile latency.

mod conn;

use pmem::csi::proto::volume_capability::{access_mode::Mode, AccessMode, AccessType, MountVolume};
use pmem::csi::proto::*;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

struct Args {
    probe: bool,
    create: Option<String>,
    list: bool,
    pairs: usize,
    endpoint: PathBuf,
    size: i64,
    fs: String,
    dir: PathBuf,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        probe: false,
        create: None,
        list: false,
        pairs: 0,
        endpoint: PathBuf::new(),
        size: 256 << 20,
        fs: "ext4".into(),
        dir: PathBuf::from("/run/csi-walk"),
    };
    let mut it = std::env::args().skip(1);
    let mut walk = false;
    while let Some(arg) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--endpoint" => a.endpoint = PathBuf::from(val()?.trim_start_matches("unix://")),
            "--size" => a.size = parse_size(&val()?)?,
            "--fs" => a.fs = val()?,
            "--dir" => a.dir = PathBuf::from(val()?),
            "walk" => walk = true,
            "probe" => a.probe = true,
            "create" => a.create = Some(val()?),
            "list" => a.list = true,
            "pairs" => a.pairs = val()?.parse().map_err(|_| "pairs needs a count")?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let chosen = walk || a.probe || a.pairs > 0 || a.create.is_some() || a.list;
    if !chosen || a.endpoint.as_os_str().is_empty() {
        return Err("usage: csi_client --endpoint unix:///path walk [--size 256Mi] [--fs ext4|xfs] [--dir DIR] | probe | pairs N [--size 256Mi] | create NAME [--size 256Mi] | list".into());
    }
    Ok(a)
}

fn parse_size(v: &str) -> Result<i64, String> {
    let (n, mult) = match v {
        _ if v.ends_with("Gi") => (&v[..v.len() - 2], 1 << 30),
        _ if v.ends_with("Mi") => (&v[..v.len() - 2], 1 << 20),
        _ => (v, 1),
    };
    n.parse::<i64>()
        .map(|n| n * mult)
        .map_err(|_| format!("bad size {v:?}"))
}

/// Prints one call and its outcome, in milliseconds.
fn show<T>(
    call: &str,
    start: Instant,
    r: &Result<T, tonic::Status>,
    ok: impl FnOnce(&T) -> String,
) {
    let ms = start.elapsed().as_secs_f64() * 1e3;
    match r {
        Ok(v) => println!("  {call:<28} OK     {:>7.1} ms  {}", ms, ok(v)),
        Err(s) => println!(
            "  {call:<28} {:?} {:>7.1} ms  {}",
            s.code(),
            ms,
            s.message()
        ),
    }
}

async fn probe(a: &Args) -> Result<(), tonic::Status> {
    let step = std::time::Duration::from_millis(2);
    let mut c = identity_client::IdentityClient::new(conn::connect_every(&a.endpoint, step).await?);
    loop {
        if let Ok(r) = c.probe(ProbeRequest {}).await {
            if r.into_inner().ready == Some(true) {
                return Ok(());
            }
        }
        tokio::time::sleep(step).await;
    }
}

/// Times `a.pairs` CreateVolume+DeleteVolume pairs of `a.size` bytes; prints p50 and p99.
async fn pairs(a: &Args) -> Result<(), tonic::Status> {
    let mut ctl = controller_client::ControllerClient::new(conn::connect(&a.endpoint).await?);
    let cap = VolumeCapability {
        access_mode: Some(AccessMode {
            mode: Mode::SingleNodeWriter as i32,
        }),
        access_type: Some(AccessType::Mount(MountVolume::default())),
    };
    let mut took = Vec::with_capacity(a.pairs);
    for i in 0..a.pairs {
        let t = Instant::now();
        let v = ctl
            .create_volume(CreateVolumeRequest {
                name: format!("pair-{}-{i}", std::process::id()),
                capacity_range: Some(CapacityRange {
                    required_bytes: a.size,
                    limit_bytes: 0,
                }),
                volume_capabilities: vec![cap.clone()],
                ..Default::default()
            })
            .await?
            .into_inner()
            .volume
            .unwrap_or_default();
        ctl.delete_volume(DeleteVolumeRequest {
            volume_id: v.volume_id,
            secrets: Default::default(),
        })
        .await?;
        took.push(t.elapsed().as_secs_f64() * 1e3);
    }
    took.sort_by(f64::total_cmp);
    let q = |p: f64| took[((took.len() - 1) as f64 * p).round() as usize];
    println!(
        "pairs={} p50_ms={:.2} p99_ms={:.2}",
        took.len(),
        q(0.5),
        q(0.99)
    );
    Ok(())
}

async fn walk(a: Args) -> Result<(), tonic::Status> {
    if a.probe {
        return probe(&a).await;
    }
    if a.pairs > 0 {
        return pairs(&a).await;
    }
    if a.create.is_some() || a.list {
        return create_or_list(&a).await;
    }
    let ch = conn::connect(&a.endpoint).await?;
    let mut id_c = identity_client::IdentityClient::new(ch.clone());
    let mut ctl = controller_client::ControllerClient::new(ch.clone());
    let mut node = node_client::NodeClient::new(ch);
    let cap = VolumeCapability {
        access_mode: Some(AccessMode {
            mode: Mode::SingleNodeWriter as i32,
        }),
        access_type: Some(AccessType::Mount(MountVolume {
            fs_type: a.fs.clone(),
            ..Default::default()
        })),
    };
    let (staging, target) = (a.dir.join("staging"), a.dir.join("target"));

    let t = Instant::now();
    let r = id_c
        .get_plugin_info(GetPluginInfoRequest {})
        .await
        .map(|r| r.into_inner());
    show("GetPluginInfo", t, &r, |i| {
        format!(
            "{} {} ({} manager)",
            i.name,
            i.vendor_version,
            i.manifest
                .get("device-manager")
                .cloned()
                .unwrap_or_default()
        )
    });
    let t = Instant::now();
    let r = id_c.probe(ProbeRequest {}).await.map(|r| r.into_inner());
    show("Probe", t, &r, |p| {
        format!("ready={}", p.ready.unwrap_or(false))
    });
    let t = Instant::now();
    let r = ctl
        .get_capacity(GetCapacityRequest::default())
        .await
        .map(|r| r.into_inner());
    show("GetCapacity", t, &r, |c| {
        format!(
            "{} MiB free, largest volume {} MiB",
            c.available_capacity >> 20,
            c.maximum_volume_size.unwrap_or(0) >> 20
        )
    });

    let t = Instant::now();
    let req = CreateVolumeRequest {
        name: "walk-demo".into(),
        capacity_range: Some(CapacityRange {
            required_bytes: a.size,
            limit_bytes: 0,
        }),
        volume_capabilities: vec![cap.clone()],
        ..Default::default()
    };
    let r = ctl.create_volume(req).await.map(|r| r.into_inner());
    show("CreateVolume walk-demo", t, &r, |v| {
        let v = v.volume.as_ref();
        format!(
            "{} ({} MiB)",
            v.map(|v| v.volume_id.as_str()).unwrap_or(""),
            v.map_or(0, |v| v.capacity_bytes) >> 20
        )
    });
    let vol = r?.volume.unwrap_or_default();
    let id = vol.volume_id.clone();

    let t = Instant::now();
    let r = node
        .node_stage_volume(NodeStageVolumeRequest {
            volume_id: id.clone(),
            staging_target_path: staging.display().to_string(),
            volume_capability: Some(cap.clone()),
            volume_context: vol.volume_context.clone(),
            ..Default::default()
        })
        .await;
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let line = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(&staging.display().to_string()))
        .unwrap_or("")
        .to_string();
    show("NodeStageVolume", t, &r, |_| {
        let f: Vec<&str> = line.split(' ').collect();
        format!(
            "{} on {} type {} ({})",
            f.first().unwrap_or(&""),
            f.get(1).unwrap_or(&""),
            f.get(2).unwrap_or(&""),
            f.get(3).unwrap_or(&"")
        )
    });
    let t = Instant::now();
    let r = node
        .node_publish_volume(NodePublishVolumeRequest {
            volume_id: id.clone(),
            staging_target_path: staging.display().to_string(),
            target_path: target.display().to_string(),
            volume_capability: Some(cap.clone()),
            volume_context: vol.volume_context.clone(),
            ..Default::default()
        })
        .await;
    show("NodePublishVolume", t, &r, |_| {
        format!("bind-mounted at {}", target.display())
    });
    let data = b"hello from persistent memory";
    let back = std::fs::write(target.join("hello.txt"), data)
        .and_then(|()| std::fs::read(target.join("hello.txt")));
    println!(
        "  {:<28} {}",
        "write + read back",
        if back.as_deref().ok() == Some(&data[..]) {
            "same bytes"
        } else {
            "MISMATCH"
        }
    );

    let t = Instant::now();
    let r = node
        .node_get_volume_stats(NodeGetVolumeStatsRequest {
            volume_id: id.clone(),
            volume_path: target.display().to_string(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner());
    show("NodeGetVolumeStats", t, &r, |s| {
        let b = s.usage.first().cloned().unwrap_or_default();
        format!("{} MiB total, {} MiB used", b.total >> 20, b.used >> 20)
    });
    let t = Instant::now();
    let r = ctl
        .controller_expand_volume(ControllerExpandVolumeRequest {
            volume_id: id.clone(),
            capacity_range: Some(CapacityRange {
                required_bytes: a.size * 2,
                limit_bytes: 0,
            }),
            volume_capability: Some(cap.clone()),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner());
    show("ControllerExpandVolume", t, &r, |e| {
        format!("{} MiB", e.capacity_bytes >> 20)
    });
    if r.is_ok() {
        let t = Instant::now();
        let r = node
            .node_expand_volume(NodeExpandVolumeRequest {
                volume_id: id.clone(),
                volume_path: target.display().to_string(),
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner());
        show("NodeExpandVolume", t, &r, |e| {
            format!("filesystem now {} MiB", e.capacity_bytes >> 20)
        });
    }
    let t = Instant::now();
    let r = node
        .node_unpublish_volume(NodeUnpublishVolumeRequest {
            volume_id: id.clone(),
            target_path: target.display().to_string(),
        })
        .await;
    show("NodeUnpublishVolume", t, &r, |_| String::new());
    let t = Instant::now();
    let r = node
        .node_unstage_volume(NodeUnstageVolumeRequest {
            volume_id: id.clone(),
            staging_target_path: staging.display().to_string(),
        })
        .await;
    show("NodeUnstageVolume", t, &r, |_| String::new());
    let t = Instant::now();
    let r = ctl
        .delete_volume(DeleteVolumeRequest {
            volume_id: id.clone(),
            ..Default::default()
        })
        .await;
    show("DeleteVolume", t, &r, |_| "erased and removed".into());
    let t = Instant::now();
    let r = ctl
        .get_capacity(GetCapacityRequest::default())
        .await
        .map(|r| r.into_inner());
    show("GetCapacity", t, &r, |c| {
        format!("{} MiB free again", c.available_capacity >> 20)
    });
    Ok(())
}

/// Creates one volume, or lists every volume with its size and condition.
async fn create_or_list(a: &Args) -> Result<(), tonic::Status> {
    let mut ctl = controller_client::ControllerClient::new(conn::connect(&a.endpoint).await?);
    if let Some(name) = &a.create {
        let req = CreateVolumeRequest {
            name: name.clone(),
            capacity_range: Some(CapacityRange {
                required_bytes: a.size,
                limit_bytes: 0,
            }),
            volume_capabilities: vec![VolumeCapability {
                access_mode: Some(AccessMode {
                    mode: Mode::SingleNodeWriter as i32,
                }),
                access_type: Some(AccessType::Mount(MountVolume::default())),
            }],
            ..Default::default()
        };
        let t = Instant::now();
        let r = ctl.create_volume(req).await;
        show(&format!("CreateVolume {name}"), t, &r, |v| {
            let v = v.get_ref().volume.clone().unwrap_or_default();
            format!("{} ({} MiB)", v.volume_id, v.capacity_bytes >> 20)
        });
        return r.map(drop);
    }
    let list = ctl
        .list_volumes(ListVolumesRequest::default())
        .await?
        .into_inner();
    for e in list.entries {
        let v = e.volume.unwrap_or_default();
        let c = e
            .status
            .and_then(|s| s.volume_condition)
            .unwrap_or_default();
        println!(
            "  {}  {:>6} MiB  {}",
            v.volume_id,
            v.capacity_bytes >> 20,
            if c.abnormal {
                c.message
            } else {
                "healthy".into()
            }
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("csi_client: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match rt.block_on(walk(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("csi_client: {e}");
            ExitCode::FAILURE
        }
    }
}
