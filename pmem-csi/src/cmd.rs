//! The one place the driver runs a program (mkfs, mount, blkid, resize): argument vectors, no shell,
//! `LC_ALL=C`, a timeout, and failures classified.

use crate::error::{Error, Result};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a command may take.
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    /// Exit status code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `program args...`; a non-zero exit is returned in [`Output::code`], not as an error.
pub fn run_status(program: &str, args: &[&str]) -> Result<Output> {
    let mut child = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Internal(format!("cannot run {program}: {e}")))?;
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let mut stderr = String::new();
    if let Some(e) = err.as_mut() {
        let _ = e.read_to_string(&mut stderr);
    }
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() > TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Internal(format!(
                    "{program} {} timed out",
                    args.join(" ")
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(Error::Internal(format!("{program}: {e}"))),
        }
    };
    Ok(Output {
        code: status.code().unwrap_or(-1),
        stdout: reader.join().unwrap_or_default(),
        stderr,
    })
}

/// Runs `program args...` and fails unless it exits 0; the error carries stderr.
pub fn run(program: &str, args: &[&str]) -> Result<Output> {
    let o = run_status(program, args)?;
    if o.code == 0 {
        return Ok(o);
    }
    let msg = format!(
        "{program} {} failed (exit {}): {}",
        args.join(" "),
        o.code,
        o.stderr.trim()
    );
    let lower = o.stderr.to_ascii_lowercase();
    Err(
        if lower.contains("no such file") || lower.contains("does not exist") {
            Error::NotFound(msg)
        } else if lower.contains("busy") || lower.contains("in use") {
            Error::FailedPrecondition(msg)
        } else {
            Error::Internal(msg)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_output_and_classification() {
        let o = run_status("sh", &["-c", "echo out; echo err >&2; exit 3"]).unwrap();
        assert_eq!(
            (o.code, o.stdout.as_str(), o.stderr.as_str()),
            (3, "out\n", "err\n")
        );
        let e = run("ls", &["--", "/no/such/path"]).unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound);
        assert!(e.to_string().contains("/no/such/path"));
        assert!(
            run("sh", &["-c", "echo 'device is busy' >&2; exit 32"])
                .unwrap_err()
                .code()
                == tonic::Code::FailedPrecondition
        );
        assert!(run("/no/such/program", &[]).is_err());
    }
}
