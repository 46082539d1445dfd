//! The driver's programs (mkfs, mount, blkid, resize) run through the workspace's one runner
//! ([`pmem_lvm::process`]), with a time limit, and their failures classified into gRPC codes.

use crate::error::{Error, Result};
use pmem_lvm::process::{Command, RunError};
use std::time::Duration;

/// How long a command may take unless its caller says otherwise.
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// How long making a filesystem may take: it writes metadata across the whole device.
pub const MKFS_TIMEOUT: Duration = Duration::from_secs(1800);

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

/// Runs `program args...` with the default [`TIMEOUT`]; a non-zero exit is returned in
/// [`Output::code`], not as an error.
pub fn run_status(program: &str, args: &[&str]) -> Result<Output> {
    run_status_within(TIMEOUT, program, args)
}

/// [`run_status`] with its own time limit; past it the command's process group is killed.
pub fn run_status_within(timeout: Duration, program: &str, args: &[&str]) -> Result<Output> {
    let f = Command::new(program)
        .args(args)
        .timeout(timeout)
        .run()
        .map_err(|e| match e {
            RunError::Timeout { .. } => Error::Internal(format!("deadline exceeded: {e}")),
            e => Error::Internal(e.to_string()),
        })?;
    Ok(Output {
        code: f.code.unwrap_or(-1),
        stdout: f.stdout,
        stderr: f.stderr,
    })
}

/// Runs `program args...` with the default [`TIMEOUT`] and fails unless it exits 0; the
/// error carries stderr.
pub fn run(program: &str, args: &[&str]) -> Result<Output> {
    run_within(TIMEOUT, program, args)
}

/// [`run`] with its own time limit.
pub fn run_within(timeout: Duration, program: &str, args: &[&str]) -> Result<Output> {
    let o = run_status_within(timeout, program, args)?;
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
    use std::time::Instant;

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

    #[test]
    fn hung_command_is_killed_at_timeout() {
        // The background sleep holds stderr open: reading it to the end first would never return.
        let t = Instant::now();
        let e =
            run_within(Duration::from_secs(1), "sh", &["-c", "sleep 60 & sleep 60"]).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        assert_eq!(e.code(), tonic::Code::Internal);
        assert_eq!(
            e.to_string(),
            "deadline exceeded: `sh -c sleep 60 & sleep 60` did not finish within 1s and was killed"
        );
    }
}
