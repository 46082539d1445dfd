//! The workspace's one way to run a program: an argument vector with a time limit, whose process group is killed when late.
//!
//! A [`Command`] is a program and its arguments, never a shell line. It runs
//! with `LC_ALL=C` (plus any variables the caller adds), stdin from
//! `/dev/null`, and in a process group of its own. Its stdout and stderr are
//! read by two threads at once, so a command that fills one pipe while the
//! other is being read cannot deadlock. At the deadline the whole group is
//! killed with `SIGKILL` (children that still hold the pipes too), and the
//! caller gets [`RunError::Timeout`] naming the command. A non-zero exit is
//! not an error here: callers classify [`Finished`] themselves.

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long to wait, after killing a late command, for its leader to exit and its pipes to close.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// How long the pipes may stay open after the leader exited (a child of the
/// command still holds them) before the rest of the group is killed.
const LINGER_GRACE: Duration = Duration::from_secs(2);

/// A program to run: argument vector, extra environment, time limit.
#[derive(Debug, Clone)]
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    timeout: Duration,
    name: Option<String>,
}

/// What a command that ran to its end left: exit status and output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The exit code, or `None` when a signal ended it.
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Standard output (invalid UTF-8 replaced).
    pub stdout: String,
    /// Standard error (invalid UTF-8 replaced).
    pub stderr: String,
}

impl Finished {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The status as text: `exit status 3`, `killed by signal 9`.
    pub fn status_text(&self) -> String {
        match (self.code, self.signal) {
            (Some(c), _) => format!("exit status {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            (None, None) => "unknown status".into(),
        }
    }
}

/// Why a command gave no [`Finished`]. Each names the command.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The program could not be started (not found, not executable).
    #[error("cannot start `{command}`: {source}")]
    Start {
        /// The command.
        command: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// It ran past its time limit; its process group was killed.
    #[error("`{command}` did not finish within {after:?} and was killed")]
    Timeout {
        /// The command.
        command: String,
        /// The limit.
        after: Duration,
    },
    /// Waiting for it failed.
    #[error("cannot wait for `{command}`: {source}")]
    Wait {
        /// The command.
        command: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl RunError {
    /// The command the error is about.
    pub fn command(&self) -> &str {
        match self {
            RunError::Start { command, .. }
            | RunError::Timeout { command, .. }
            | RunError::Wait { command, .. } => command,
        }
    }
}

/// What the watcher threads report.
enum Event {
    /// Pipe `0` (stdout) or `1` (stderr) closed; all it carried.
    Pipe(usize, Vec<u8>),
    /// The leader exited (not yet reaped, so its group id stays reserved).
    Exited,
}

impl Command {
    /// `program` with no arguments and a 60 s limit.
    pub fn new(program: impl Into<OsString>) -> Self {
        Command {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            timeout: Duration::from_secs(60),
            name: None,
        }
    }

    /// Adds one argument.
    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = A>, A: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable besides `LC_ALL=C`.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Kills the command (its whole process group) after `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Names the command in errors (default: the program and its arguments).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The name errors use.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            std::iter::once(&self.program)
                .chain(&self.args)
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        })
    }

    /// Runs the command to its end or its deadline.
    pub fn run(&self) -> Result<Finished, RunError> {
        let command = self.display_name();
        let started = Instant::now();
        let deadline = started + self.timeout;
        let mut child = std::process::Command::new(&self.program)
            .args(&self.args)
            .env("LC_ALL", "C")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|source| RunError::Start {
                command: command.clone(),
                source,
            })?;
        let group = Pid::from_child(&child);
        let rx = watch(&mut child, group);
        let mut outs: [Option<Vec<u8>>; 2] = [None, None];
        let mut exited_at: Option<Instant> = None;
        let mut killed_late = false;
        while outs.iter().any(Option::is_none) || exited_at.is_none() {
            let now = Instant::now();
            let until = match exited_at {
                Some(t) => deadline.min(t + LINGER_GRACE),
                None => deadline,
            };
            match rx.recv_timeout(until.saturating_duration_since(now)) {
                Ok(Event::Pipe(i, buf)) => outs[i] = Some(buf),
                Ok(Event::Exited) => exited_at = Some(Instant::now()),
                Err(RecvTimeoutError::Timeout) if Instant::now() >= deadline => {
                    killed_late = true;
                    break;
                }
                // The leader is gone; what still holds its pipes belongs to its group.
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if outs.iter().any(Option::is_none) || exited_at.is_none() {
            // The leader is not reaped yet, so the group id cannot have been reused.
            let _ = rustix::process::kill_process_group(group, Signal::KILL);
            drain(&rx, &mut outs, &mut exited_at, Instant::now() + KILL_GRACE);
        }
        if killed_late || exited_at.is_none() {
            if exited_at.is_some() {
                let _ = child.wait();
            } else {
                // Stuck in the kernel even after SIGKILL: reap it whenever it goes.
                std::thread::spawn(move || child.wait());
            }
            return Err(RunError::Timeout {
                command,
                after: self.timeout,
            });
        }
        let status = child.wait().map_err(|source| RunError::Wait {
            command: command.clone(),
            source,
        })?;
        use std::os::unix::process::ExitStatusExt;
        let [stdout, stderr] =
            outs.map(|b| String::from_utf8_lossy(&b.unwrap_or_default()).into_owned());
        Ok(Finished {
            code: status.code(),
            signal: status.signal(),
            stdout,
            stderr,
        })
    }
}

/// Starts the two pipe readers and the exit watcher of `child`.
fn watch(child: &mut Child, pid: Pid) -> Receiver<Event> {
    let (tx, rx) = mpsc::channel();
    let pipes: [Option<Box<dyn Read + Send>>; 2] = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ];
    for (i, pipe) in pipes.into_iter().enumerate() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            let _ = tx.send(Event::Pipe(i, buf));
        });
    }
    std::thread::spawn(move || {
        // WNOWAIT: see the exit but leave the zombie, which keeps the group id reserved.
        let opts = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
        while let Err(rustix::io::Errno::INTR) = rustix::process::waitid(WaitId::Pid(pid), opts) {}
        let _ = tx.send(Event::Exited);
    });
    rx
}

/// Collects events until both pipes closed and the leader exited, or `until`.
fn drain(
    rx: &Receiver<Event>,
    outs: &mut [Option<Vec<u8>>; 2],
    exited_at: &mut Option<Instant>,
    until: Instant,
) {
    while outs.iter().any(Option::is_none) || exited_at.is_none() {
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(Event::Pipe(i, buf)) => outs[i] = Some(buf),
            Ok(Event::Exited) => *exited_at = Some(Instant::now()),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_default_to_the_argument_vector() {
        let c = Command::new("mkfs.ext4").args(["-q", "--", "/dev/pmem0"]);
        assert_eq!(c.display_name(), "mkfs.ext4 -q -- /dev/pmem0");
        assert_eq!(c.name("mkfs").display_name(), "mkfs");
    }

    #[test]
    fn status_text_says_how_it_ended() {
        let f = Finished {
            code: None,
            signal: Some(9),
            stdout: String::new(),
            stderr: String::new(),
        };
        assert_eq!(f.status_text(), "killed by signal 9");
        assert!(!f.success());
    }
}
