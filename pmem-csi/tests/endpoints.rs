//! Tier 1: the driver's endpoints under hostile use: a flood of idle metrics
//! connections, a permissive umask, slow device managers, names that try to forge log lines.

mod common;

use common::*;
use pmem_csi::error::Result as CsiResult;
use pmem_csi::manager::{CachedManager, Device, DeviceManager, NamespaceManager};
use pmem_csi::proto::*;
use pmem_csi::record::DeviceRecord;
use pmem_csi::volume::{Params, VolumeId};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::time::timeout;

/// The driver binary in sim mode, serving on `dir/csi.sock`, with `extra` arguments.
fn driver(dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(driver_bin());
    cmd.args([
        "--endpoint",
        &format!("unix://{}", dir.join("csi.sock").display()),
    ])
    .args(["--node-id", "node-a", "--device-manager", "sim"])
    .args([
        "--sim-regions",
        "2x4G",
        "--state-dir",
        dir.to_str().unwrap(),
    ])
    .args(extra)
    .env("NO_COLOR", "1");
    cmd
}

/// Kills the driver on drop, so that a failed assertion leaves no process behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Raises this process's soft limit of open files to hold the flood's sockets.
fn raise_open_files(want: u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write only `r`, which outlives the calls.
    let ok = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && {
            r.rlim_cur = r.rlim_cur.max(want.min(r.rlim_max));
            libc::setrlimit(libc::RLIMIT_NOFILE, &r) == 0
        }
    };
    assert!(
        ok && r.rlim_cur >= want,
        "need {want} open files, the hard limit is {}",
        r.rlim_max
    );
}

/// CPU seconds (user + system) process `pid` has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after_name.split(' ').collect();
    // Fields 14 and 15 of proc(5); `f` starts at field 3.
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks as f64 / hz as f64
}

/// One `GET /metrics`: the response, or None when the server closed or did not answer in time.
async fn get_metrics(port: u16) -> Option<String> {
    http_get(port, "/metrics").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_flood_leaves_csi_working() {
    const FLOOD: usize = 1000;
    raise_open_files(FLOOD as u64 + 1024);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = driver(
        dir.path(),
        &["--metrics-listen", &format!("127.0.0.1:{port}")],
    );
    cmd.env("RUST_LOG", "warn");
    // SAFETY: the closure runs in the child before exec and only calls setrlimit,
    // which is async-signal-safe; the limit is a container's usual 1024 files.
    unsafe {
        cmd.pre_exec(|| {
            let r = libc::rlimit {
                rlim_cur: 1024,
                rlim_max: 1024,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = Running(cmd.spawn().unwrap());
    let pid = child.0.id();
    let mut c = clients(&dir.path().join("csi.sock")).await;

    let mut flood = Vec::with_capacity(FLOOD);
    for i in 0..FLOOD {
        let conn = timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect(("127.0.0.1", port)),
        )
        .await;
        match conn {
            Ok(Ok(s)) => flood.push(s),
            other => panic!("idle connection {i} was not accepted: {other:?}"),
        }
    }

    // Every CSI call still works, promptly.
    let within = Duration::from_secs(10);
    for round in 0..3 {
        let name = format!("flooded-{round}");
        let v = timeout(
            within,
            c.controller.create_volume(create_req(&name, 64 << 20)),
        )
        .await
        .expect("CreateVolume answers")
        .expect("CreateVolume succeeds")
        .into_inner()
        .volume
        .unwrap();
        let probe = timeout(within, c.identity.probe(ProbeRequest {}))
            .await
            .expect("Probe answers")
            .unwrap()
            .into_inner();
        assert_eq!(probe.ready, Some(true));
        timeout(
            within,
            c.controller.get_capacity(GetCapacityRequest::default()),
        )
        .await
        .expect("GetCapacity answers")
        .unwrap();
        timeout(
            within,
            c.controller.delete_volume(DeleteVolumeRequest {
                volume_id: v.volume_id,
                secrets: Default::default(),
            }),
        )
        .await
        .expect("DeleteVolume answers")
        .expect("DeleteVolume succeeds");
    }

    // The flooded driver idles: it neither spins on accept nor polls the connections.
    let before = cpu_seconds(pid);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let used = cpu_seconds(pid) - before;
    assert!(used < 0.6, "the idle driver used {used:.2} s of CPU in 3 s");

    // A normal scrape answers (once the idle connections holding the slots are closed).
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        match get_metrics(port).await {
            Some(r) if r.starts_with("HTTP/1.1 200") => break r,
            _ if Instant::now() > deadline => panic!("GET /metrics never answered"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    assert!(body.contains("pmem_csi_capacity_bytes"), "{body}");
    assert!(body.contains("method=\"CreateVolume\""), "{body}");

    // Every idle connection was closed by the server, none kept open.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    for (i, mut s) in flood.into_iter().enumerate() {
        let mut buf = [0u8; 64];
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(n)) => panic!("idle connection {i} got {n} bytes"),
            Err(_) => panic!("idle connection {i} is still open"),
        }
    }
    let r = get_metrics(port).await.expect("scrape after the flood");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let r = get_metrics_path(port, "/other").await;
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
}

async fn get_metrics_path(port: u16, path: &str) -> String {
    http_get(port, path).await.expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_is_private_whatever_the_umask() {
    // SAFETY: getegid only reads the process's credentials.
    let gid = unsafe { libc::getegid() };
    for group in [None, Some(gid)] {
        let dir = tempfile::tempdir().unwrap();
        let gid_arg = gid.to_string();
        let extra: &[&str] = match group {
            Some(_) => &["--socket-group", &gid_arg],
            None => &[],
        };
        let mut cmd = driver(dir.path(), extra);
        // SAFETY: the closure runs in the child before exec and only calls umask,
        // which is async-signal-safe and cannot fail.
        unsafe {
            cmd.pre_exec(|| {
                libc::umask(0);
                Ok(())
            });
        }
        let _child = Running(cmd.spawn().unwrap());
        let sock = dir.path().join("csi.sock");
        let mut c = clients(&sock).await;
        c.identity.probe(ProbeRequest {}).await.unwrap();
        let meta = std::fs::metadata(&sock).unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        match group {
            None => assert_eq!(mode, 0o600, "socket mode {mode:o} under umask 0"),
            Some(g) => {
                assert_eq!(mode, 0o660, "socket mode {mode:o} with --socket-group");
                assert_eq!(meta.gid(), g);
            }
        }
    }
}

/// A fake device manager for logic tests: the simulator behind one lock
/// held through every call (as LVM's global lock and the allocator's mutex
/// are), whose creates take `slow` and announce themselves in `creating`.
struct SlowFakeManager {
    inner: Arc<dyn DeviceManager>,
    lock: Mutex<()>,
    slow: Duration,
    creating: Arc<AtomicBool>,
}

impl SlowFakeManager {
    fn held(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl DeviceManager for SlowFakeManager {
    forward_to_inner!(guard held; update_record, min_size, delete, expand, list, capacity);
    forward_to_inner!(can_update_record, left_out);
    fn kind(&self) -> &'static str {
        "sim"
    }
    fn create(
        &self,
        id: &VolumeId,
        size: u64,
        params: &Params,
        record: &DeviceRecord,
    ) -> CsiResult<Device> {
        let _held = self.held();
        self.creating.store(true, Ordering::SeqCst);
        std::thread::sleep(self.slow);
        self.inner.create(id, size, params, record)
    }
    fn can_expand(&self) -> bool {
        false
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_answers_while_a_long_operation_runs() {
    let dir = tempfile::tempdir().unwrap();
    let creating = Arc::new(AtomicBool::new(false));
    let sim = NamespaceManager::sim(&[4 << 30], dir.path().join("sim.json")).unwrap();
    let slow = SlowFakeManager {
        inner: Arc::new(sim),
        lock: Mutex::new(()),
        slow: Duration::from_secs(3),
        creating: creating.clone(),
    };
    // Built as the server builds its manager: capacity cached in front of the device manager.
    let manager = Arc::new(CachedManager::new(Arc::new(slow)));
    let mut c = serve_manager(dir.path(), manager).await;
    let free_before = c
        .controller
        .get_capacity(GetCapacityRequest::default())
        .await
        .unwrap()
        .into_inner()
        .available_capacity;

    let mut controller = c.controller.clone();
    let create =
        tokio::spawn(async move { controller.create_volume(create_req("slow", 1 << 30)).await });
    while !creating.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let fast = Duration::from_millis(500);
    let start = Instant::now();
    let probe = timeout(fast, c.identity.probe(ProbeRequest {}))
        .await
        .expect("Probe answers while a create holds the device manager")
        .unwrap()
        .into_inner();
    assert_eq!(probe.ready, Some(true));
    let cap = timeout(
        fast,
        c.controller.get_capacity(GetCapacityRequest::default()),
    )
    .await
    .expect("GetCapacity answers from memory while a create holds the device manager")
    .unwrap()
    .into_inner();
    assert_eq!(cap.available_capacity, free_before);
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(
        !create.is_finished(),
        "the create was meant to be still running"
    );

    create.await.unwrap().expect("the slow create succeeds");
    let after = c
        .controller
        .get_capacity(GetCapacityRequest::default())
        .await
        .unwrap()
        .into_inner()
        .available_capacity;
    assert!(
        after <= free_before - (1 << 30),
        "capacity after the create ({after}) is reread, not the cached {free_before}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_cannot_be_forged_by_names() {
    const FORGED: &str = "2020-01-01T00:00:00.000000Z  INFO forged: every volume deleted";
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = driver(dir.path(), &["--log-format", "text"]);
    cmd.env("RUST_LOG", "info").stderr(Stdio::piped());
    let mut child = Running(cmd.spawn().unwrap());
    // Read the log as it comes: a full pipe would block the driver.
    let mut stderr = child.0.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut log = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut log);
        String::from_utf8_lossy(&log).into_owned()
    });
    let mut c = clients(&dir.path().join("csi.sock")).await;

    let hostile = format!("x\n{FORGED}");
    let huge = format!("pmem-{}\n{FORGED}", "a".repeat(1 << 20));
    // A volume to ask about, with a newline in its name.
    let v = c
        .controller
        .create_volume(create_req(&hostile, 64 << 20))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    // Failing requests, each logged with its volume and error message.
    let _ = c
        .controller
        .create_volume(create_req(&hostile, 8 << 30))
        .await
        .unwrap_err();
    let _ = c
        .controller
        .create_volume(create_req(&huge[..4000], 64 << 20))
        .await
        .unwrap_err();
    let _ = c
        .controller
        .controller_get_volume(ControllerGetVolumeRequest {
            volume_id: huge.clone(),
        })
        .await
        .unwrap_err();
    let _ = c
        .node
        .node_get_volume_stats(NodeGetVolumeStatsRequest {
            volume_id: v.volume_id.clone(),
            volume_path: format!("/nonexistent/{hostile}"),
            staging_target_path: String::new(),
        })
        .await
        .unwrap_err();
    let _ = c
        .controller
        .validate_volume_capabilities(ValidateVolumeCapabilitiesRequest {
            volume_id: hostile.clone(),
            volume_capabilities: vec![mount_cap()],
            ..Default::default()
        })
        .await
        .unwrap_err();

    // Every line is written when its request fails; stop the driver at once.
    drop(c);
    child.0.kill().unwrap();
    let log = reader.join().unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let failures = lines
        .iter()
        .filter(|l| l.contains("request failed"))
        .count();
    assert!(failures >= 4, "the failures were logged:\n{log:.4000}");
    assert!(
        log.contains("\\n2020-01-01T00:00:00"),
        "the names were logged, escaped"
    );
    for line in &lines {
        assert!(
            line.starts_with(|ch: char| ch.is_ascii_digit()) && !line.starts_with("2020-01-01"),
            "a line not made by the logger: {line:.300}"
        );
        assert!(line.len() < 4096, "a {}-byte log line", line.len());
    }
}
