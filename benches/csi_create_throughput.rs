//! CreateVolume throughput of the pmem-csi driver (lvm mode, 10 concurrent gRPC clients)
//! against a bare `lvm lvcreate` loop on the same volume groups, in one boot.
//!
//! Needs root and labelled PMEM regions: run `scripts/bench-csi` (the emulated-PMEM VM).
//! Elsewhere it says why it cannot run and exits 0.

use hyper_util::rt::TokioIo;
use pmem::csi::driver::Driver;
use pmem::csi::manager::LvmManager;
use pmem::csi::metrics::Metrics;
use pmem::csi::proto::controller_client::ControllerClient;
use pmem::csi::proto::volume_capability::{access_mode::Mode, AccessMode, AccessType, BlockVolume};
use pmem::csi::proto::*;
use pmem::csi::state::StateStore;
use pmem::lvm::runner::LVM_CONFIG;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;
use tonic::transport::{Endpoint, Uri};

const VOLUMES: usize = 40;
const CLIENTS: usize = 10;
const SIZE: i64 = 64 << 20;

fn lvm(args: &[&str]) -> bool {
    Command::new("lvm")
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The driver's VGs, from `vgs`.
fn vgs() -> Vec<String> {
    let o = Command::new("lvm")
        .args([
            "vgs",
            "--config",
            LVM_CONFIG,
            "--noheadings",
            "-o",
            "vg_name",
        ])
        .output()
        .expect("lvm vgs");
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .filter(|v| v.starts_with("pmem-rs-"))
        .map(str::to_string)
        .collect()
}

/// Seconds for a sequential `lvcreate` of VOLUMES volumes, spread over the VGs like the driver's.
fn bare_loop(vgs: &[String]) -> f64 {
    let t = Instant::now();
    for i in 0..VOLUMES {
        let vg = &vgs[i % vgs.len()];
        let name = format!("bare{i}");
        let size = format!("{SIZE}b");
        assert!(
            lvm(&[
                "lvcreate", "--config", LVM_CONFIG, "--yes", "--name", &name, "--size", &size,
                "--", vg
            ]),
            "lvcreate {name}"
        );
    }
    let secs = t.elapsed().as_secs_f64();
    for i in 0..VOLUMES {
        let lv = format!("{}/bare{i}", vgs[i % vgs.len()]);
        lvm(&["lvremove", "--config", LVM_CONFIG, "--yes", "--", &lv]);
    }
    secs
}

async fn driver_run(sock: &std::path::Path) -> f64 {
    let p = sock.to_path_buf();
    let ch = Endpoint::try_from("http://[::1]:1")
        .expect("static URI")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let p = p.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(p).await?))
            }
        }))
        .await
        .expect("connect");
    let cap = VolumeCapability {
        access_mode: Some(AccessMode {
            mode: Mode::SingleNodeWriter as i32,
        }),
        access_type: Some(AccessType::Block(BlockVolume {})),
    };
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mut ctl = ControllerClient::new(ch.clone());
        let cap = cap.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..VOLUMES / CLIENTS {
                let req = CreateVolumeRequest {
                    name: format!("tp-{c}-{i}"),
                    capacity_range: Some(CapacityRange {
                        required_bytes: SIZE,
                        limit_bytes: 0,
                    }),
                    volume_capabilities: vec![cap.clone()],
                    ..Default::default()
                };
                ids.push(
                    ctl.create_volume(req)
                        .await
                        .expect("CreateVolume")
                        .into_inner()
                        .volume
                        .expect("volume")
                        .volume_id,
                );
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.expect("client"));
    }
    let secs = t.elapsed().as_secs_f64();
    let mut ctl = ControllerClient::new(ch);
    for id in ids {
        ctl.delete_volume(DeleteVolumeRequest {
            volume_id: id,
            ..Default::default()
        })
        .await
        .expect("DeleteVolume");
    }
    secs
}

fn main() {
    let labelled = pmem::ndctl::Context::new()
        .map(|c| c.regions().any(|r| r.is_labelled() && r.is_enabled()))
        .unwrap_or(false);
    if !labelled || !lvm(&["version"]) {
        println!("csi_create_throughput: no labelled PMEM region or no lvm here; run scripts/bench-csi (the emulated-PMEM VM)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("csi-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let manager = Arc::new(LvmManager::setup(100, false).expect("lvm setup"));
    let vgs = vgs();
    assert!(!vgs.is_empty(), "setup made no VG");
    let (driver, _) = Driver::start(
        "pmem-csi.bench".into(),
        "bench".into(),
        manager,
        StateStore::open(&dir).expect("state"),
    )
    .expect("driver");
    let sock = dir.join("csi.sock");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let driver_secs = rt.block_on(async {
        let listener = tokio::net::UnixListener::bind(&sock).expect("bind");
        tokio::spawn(pmem::csi::server::serve(
            listener,
            Arc::new(driver),
            Arc::new(Metrics::new()),
            pmem::csi::nodeops::NodePaths::new(&dir, &dir),
            std::future::pending(),
        ));
        driver_run(&sock).await
    });
    let bare_secs = bare_loop(&vgs);
    let (d, b) = (VOLUMES as f64 / driver_secs, VOLUMES as f64 / bare_secs);
    println!(
        "{:<40} {:>8} {:>10} {:>12}",
        "", "volumes", "seconds", "volumes/s"
    );
    println!(
        "{:<40} {:>8} {:>10.2} {:>12.2}",
        format!("pmem-csi CreateVolume, {CLIENTS} clients"),
        VOLUMES,
        driver_secs,
        d
    );
    println!(
        "{:<40} {:>8} {:>10.2} {:>12.2}",
        "bare lvcreate loop", VOLUMES, bare_secs, b
    );
    println!("summary csi_create_per_sec={d:.2} bare_lvcreate_per_sec={b:.2} ratio={:.2} (target >= 0.9)", d / b);
    let _ = std::fs::remove_dir_all(&dir);
}
