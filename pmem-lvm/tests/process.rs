//! Tier 1: the workspace's process runner against real programs (sh, sleep, head).

use pmem_lvm::process::{Command, RunError};
use std::time::{Duration, Instant};

/// Whether process `pid` still runs (a zombie waiting for its reaper counts as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(") ").next().and_then(|r| r.chars().next());
            !matches!(state, Some('Z') | Some('X'))
        }
        Err(_) => false,
    }
}

#[test]
fn hung_command_is_killed_at_timeout() {
    let pids = std::env::temp_dir().join(format!("pmem-process-pids-{}", std::process::id()));
    let _ = std::fs::remove_file(&pids);
    // The background sleep inherits stdout and stderr, so the pipes stay open
    // even if its parent were killed alone.
    let script = format!(
        "sleep 60 & echo $$ $! > {}; sleep 60",
        pids.to_str().unwrap()
    );
    let t = Instant::now();
    let e = Command::new("sh")
        .args(["-c", &script])
        .timeout(Duration::from_secs(1))
        .run()
        .unwrap_err();
    let took = t.elapsed();
    assert!(matches!(e, RunError::Timeout { .. }), "{e}");
    assert!(took >= Duration::from_secs(1), "fired early: {took:?}");
    assert!(took < Duration::from_secs(3), "fired late: {took:?}");
    assert!(e.to_string().starts_with("`sh -c sleep 60 & echo"), "{e}");
    assert!(
        e.to_string()
            .ends_with("did not finish within 1s and was killed"),
        "{e}"
    );
    let text = std::fs::read_to_string(&pids).unwrap();
    let _ = std::fs::remove_file(&pids);
    let pids: Vec<u32> = text
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{text}");
    let t = Instant::now();
    while pids.iter().any(|&p| alive(p)) && t.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for p in pids {
        assert!(!alive(p), "process {p} survived the timeout");
    }
}

#[test]
fn large_stdout_and_stderr_together_do_not_deadlock() {
    // 2 MiB on each pipe, interleaved, far beyond a pipe's 64 KiB buffer.
    let f = Command::new("sh")
        .args([
            "-c",
            "for i in 1 2 3 4 5 6 7 8; do head -c 262144 /dev/zero | tr '\\0' o; \
             head -c 262144 /dev/zero | tr '\\0' e >&2; done",
        ])
        .timeout(Duration::from_secs(30))
        .run()
        .unwrap();
    assert!(f.success(), "{}", f.status_text());
    assert_eq!(f.stdout.len(), 2 << 20);
    assert_eq!(f.stderr.len(), 2 << 20);
    assert!(f.stdout.bytes().all(|b| b == b'o'));
    assert!(f.stderr.bytes().all(|b| b == b'e'));
}

#[test]
fn exit_status_environment_and_stdin() {
    let f = Command::new("sh")
        .args(["-c", "echo \"$LC_ALL $EXTRA\"; cat; echo err >&2; exit 3"])
        .env("EXTRA", "x")
        .run()
        .unwrap();
    assert_eq!(
        (f.code, f.stdout.as_str(), f.stderr.as_str()),
        (Some(3), "C x\n", "err\n")
    );
    assert_eq!(f.status_text(), "exit status 3");
    let f = Command::new("sh").args(["-c", "kill -9 $$"]).run().unwrap();
    assert_eq!((f.code, f.signal), (None, Some(9)));
}

#[test]
fn a_missing_program_is_a_start_error_naming_it() {
    let e = Command::new("/no/such/program").arg("x").run().unwrap_err();
    assert!(matches!(e, RunError::Start { .. }));
    assert_eq!(e.command(), "/no/such/program x");
}

#[test]
fn a_child_left_holding_the_pipes_does_not_delay_the_result() {
    // The leader exits at once; its background child keeps the pipes open.
    let t = Instant::now();
    let f = Command::new("sh")
        .args(["-c", "sleep 60 & echo done"])
        .timeout(Duration::from_secs(30))
        .run()
        .unwrap();
    assert!(f.success());
    assert_eq!(f.stdout, "done\n");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}
