//! A gRPC channel over the driver's unix socket, waiting for the socket to appear.

use hyper_util::rt::TokioIo;
use std::path::Path;
use tonic::transport::{Channel, Endpoint, Uri};

/// Connects to `path`, retrying for up to a minute while the driver starts.
pub async fn connect(path: &Path) -> Result<Channel, tonic::Status> {
    connect_every(path, std::time::Duration::from_millis(100)).await
}

/// Connects to `path`, retrying every `step` for up to a minute.
pub async fn connect_every(
    path: &Path,
    step: std::time::Duration,
) -> Result<Channel, tonic::Status> {
    let tries = (60_000 / step.as_millis().max(1)) as usize;
    for _ in 0..tries {
        let p = path.to_path_buf();
        let ch = Endpoint::try_from("http://[::1]:1")
            .expect("static URI")
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let p = p.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(p).await?))
                }
            }))
            .await;
        if let Ok(ch) = ch {
            return Ok(ch);
        }
        tokio::time::sleep(step).await;
    }
    Err(tonic::Status::unavailable(format!(
        "no CSI driver answers at {} after a minute",
        path.display()
    )))
}
