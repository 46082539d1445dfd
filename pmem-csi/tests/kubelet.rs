//! Tier 1: what the kubelet sees of the driver without sidecars: plugin registration on its own
//! socket (the driver binary in sim mode), and `/healthz` on the metrics port following readiness.

mod common;

use common::*;
use pmem_csi::driver::Driver;
use pmem_csi::manager::NamespaceManager;
use pmem_csi::metrics::Metrics;
use pmem_csi::proto::identity_client::IdentityClient;
use pmem_csi::proto::ProbeRequest;
use pmem_csi::registration::proto::registration_client::RegistrationClient;
use pmem_csi::registration::proto::{InfoRequest, RegistrationStatus};
use pmem_csi::state::StateStore;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The CSI socket as the kubelet on the host would see it.
const HOST_ENDPOINT: &str = "/var/lib/kubelet/plugins/pmem-csi.test/csi.sock";

/// Kills the driver on drop, so that a failed assertion leaves no process behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The driver binary with registration on `dir/registry/pmem-csi.test-reg.sock`
/// and metrics on `port`, its standard error captured.
fn start(dir: &Path, port: u16) -> (Running, PathBuf) {
    let reg = dir.join("registry").join("pmem-csi.test-reg.sock");
    let metrics = format!("127.0.0.1:{port}");
    let child = sim_command(
        dir,
        &[("RUST_LOG", "info"), ("NO_COLOR", "1")],
        &[
            "--driver-name",
            "pmem-csi.test",
            "--registration-socket",
            reg.to_str().unwrap(),
            "--kubelet-registration-path",
            HOST_ENDPOINT,
            "--metrics-listen",
            &metrics,
        ],
    )
    .stderr(Stdio::piped())
    .spawn()
    .expect("driver starts");
    (Running(child), reg)
}

/// Waits for the driver to exit, a little longer than its shutdown grace;
/// its status and standard error.
fn exited(mut r: Running) -> (ExitStatus, String) {
    let deadline = Instant::now() + pmem_csi::server::SHUTDOWN_GRACE + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = r.0.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if status.is_none() {
        let _ = r.0.kill();
    }
    let mut err = String::new();
    r.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (
        status.unwrap_or_else(|| panic!("the driver did not stop:\n{err}")),
        err,
    )
}

/// Waits up to 30 s for a file at `p`.
async fn appears(p: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !p.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", p.display());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_names_the_csi_socket_once_csi_serves() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (driver, reg) = start(dir.path(), port);
    appears(&reg).await;
    // The CSI socket serves by then: one connection attempt, no retry. The
    // connection stays open and silent: it cannot hold the driver's exit.
    let csi = dir.path().join("csi.sock");
    let silent = tokio::net::UnixStream::connect(&csi).await;
    assert!(silent.is_ok(), "CSI socket not serving: {silent:?}");
    let mut identity = IdentityClient::new(channel(&csi).await);
    let probe = identity.probe(ProbeRequest {}).await.unwrap().into_inner();
    assert_eq!(probe.ready, Some(true));
    let mode = std::fs::metadata(&reg).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600, "registration socket mode {mode:o}");

    let mut kubelet = RegistrationClient::new(channel(&reg).await);
    let info = kubelet.get_info(InfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.r#type, "CSIPlugin");
    assert_eq!(info.name, "pmem-csi.test");
    assert_eq!(info.endpoint, HOST_ENDPOINT);
    assert_eq!(info.supported_versions, vec!["1.0.0".to_string()]);
    kubelet
        .notify_registration_status(RegistrationStatus {
            plugin_registered: true,
            error: String::new(),
        })
        .await
        .unwrap();

    // Ready: the liveness endpoint says so.
    let health = http_get(port, "/healthz").await.expect("healthz answers");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("\r\n\r\nok"), "{health}");

    // Still serving after a successful registration; SIGTERM stops it cleanly.
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop((identity, kubelet));
    let pid = driver.0.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let (status, log) = exited(driver);
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("registered with the kubelet"), "{log}");
    assert!(log.contains("connections still open at shutdown"), "{log}");
    drop(silent);
    assert!(!reg.exists(), "registration socket left behind");
    assert!(!csi.exists(), "CSI socket left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_registration_is_logged_and_stops_the_driver() {
    let dir = tempfile::tempdir().unwrap();
    let (driver, reg) = start(dir.path(), free_port());
    appears(&reg).await;
    let mut kubelet = RegistrationClient::new(channel(&reg).await);
    kubelet
        .notify_registration_status(RegistrationStatus {
            plugin_registered: false,
            error: "no supported version\n2020-01-01T00:00:00 INFO forged".into(),
        })
        .await
        .expect("the refusal is acknowledged");
    let (status, log) = exited(driver);
    assert_eq!(
        status.code(),
        Some(1),
        "signal {:?}: {log}",
        status.signal()
    );
    let refusal = log
        .lines()
        .find(|l| l.contains("refused the registration"))
        .unwrap_or_else(|| panic!("no refusal logged:\n{log}"));
    assert!(refusal.contains("ERROR"), "{refusal}");
    assert!(
        refusal.contains("no supported version\\n2020-01-01T00:00:00"),
        "the kubelet's error, escaped: {refusal}"
    );
    assert!(!log.lines().any(|l| l.starts_with("2020-01-01")), "{log}");
    assert!(!reg.exists(), "registration socket left behind");
    assert!(
        !dir.path().join("csi.sock").exists(),
        "CSI socket left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_503_until_csi_serves_and_after_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let manager = Arc::new(NamespaceManager::sim(&[4 << 30], dir.path().join("sim.json")).unwrap());
    let (driver, _) = Driver::start(
        "pmem-csi.test".into(),
        "node-a".into(),
        manager,
        StateStore::open(dir.path()).unwrap(),
    )
    .unwrap();
    let driver = Arc::new(driver);
    let metrics = Arc::new(Metrics::new());
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    tokio::spawn(pmem_csi::metrics::serve(
        tcp,
        metrics.clone(),
        driver.clone(),
    ));

    // Loaded, but the CSI endpoint does not serve yet.
    let before = http_get(port, "/healthz").await.expect("healthz answers");
    assert!(before.starts_with("HTTP/1.1 503"), "{before}");
    assert!(!driver.is_ready());

    let sock = dir.path().join("csi.sock");
    let listener = tokio::net::UnixListener::bind(&sock).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(pmem_csi::server::serve(
        listener,
        driver.clone(),
        metrics,
        pmem_csi::nodeops::NodePaths::new(dir.path(), dir.path()),
        async {
            let _ = stopped.await;
        },
    ));
    let mut c = clients(&sock).await;
    let probe = c
        .identity
        .probe(ProbeRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(probe.ready, Some(true));
    let serving = http_get(port, "/healthz").await.expect("healthz answers");
    assert!(serving.starts_with("HTTP/1.1 200"), "{serving}");
    assert!(serving.ends_with("\r\n\r\nok"), "{serving}");

    drop(c);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    let after = http_get(port, "/healthz").await.expect("healthz answers");
    assert!(after.starts_with("HTTP/1.1 503"), "{after}");
}

/// One HTTP/2 frame: 24-bit length, type, flags, stream id, payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.extend_from_slice(&[kind, flags]);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK literal header field with incremental indexing and a static-table name.
fn field(name_index: u8, value: &[u8]) -> Vec<u8> {
    let mut f = vec![0x40 | name_index, value.len() as u8];
    f.extend_from_slice(value);
    f
}

/// A GetInfo call as the kubelet's gRPC client makes it: the socket's path as `:authority`.
/// Returns every frame the driver sends back until the call's last frame or 10 s.
async fn get_info_naming_the_path(sock: &Path) -> Vec<(u8, Vec<u8>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::UnixStream::connect(sock).await.unwrap();
    let mut block = vec![0x83, 0x86]; // :method POST, :scheme http
    block.extend(field(4, b"/pluginregistration.Registration/GetInfo"));
    block.extend(field(1, sock.to_str().unwrap().as_bytes()));
    block.extend(field(31, b"application/grpc"));
    block.extend([0x40, 2, b't', b'e', 8]);
    block.extend(b"trailers");
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(0x4, 0, 0, &[])); // SETTINGS
    out.extend(frame(0x1, 0x4, 1, &block)); // HEADERS, END_HEADERS
    out.extend(frame(0x0, 0x1, 1, &[0, 0, 0, 0, 0])); // DATA: an empty InfoRequest, END_STREAM
    c.write_all(&out).await.unwrap();
    let mut frames = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let mut h = [0u8; 9];
        let read = tokio::time::timeout(Duration::from_secs(10), c.read_exact(&mut h)).await;
        if !matches!(read, Ok(Ok(_))) {
            break;
        }
        let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
        let mut p = vec![0u8; len];
        c.read_exact(&mut p).await.unwrap();
        let (kind, flags, stream) = (h[3], h[4], u32::from_be_bytes([h[5], h[6], h[7], h[8]]));
        if kind == 0x4 && flags & 1 == 0 {
            c.write_all(&frame(0x4, 0x1, 0, &[])).await.unwrap(); // SETTINGS ACK
        }
        let last = stream == 1 && (kind == 0x3 || (kind == 0x1 && flags & 0x1 != 0));
        frames.push((kind, p));
        if last {
            break;
        }
    }
    frames
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubelet_naming_the_socket_path_as_authority_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let (_driver, reg) = start(dir.path(), free_port());
    appears(&reg).await;
    let frames = get_info_naming_the_path(&reg).await;
    assert!(
        !frames.iter().any(|(kind, _)| *kind == 0x3),
        "the call was reset: {frames:?}"
    );
    let data: Vec<u8> = frames
        .iter()
        .filter(|(kind, _)| *kind == 0x0)
        .flat_map(|(_, p)| p.clone())
        .collect();
    let text = String::from_utf8_lossy(&data);
    assert!(
        text.contains("CSIPlugin")
            && text.contains("pmem-csi.test")
            && text.contains(HOST_ENDPOINT),
        "no PluginInfo in the answer: {frames:?}"
    );
}
