//! Every LVM command, run through [`crate::process`] with a time limit, and its errors classified.
//!
//! Every command is an argument vector (`lvm SUB --config ... OPTIONS --
//! OPERANDS`), never a shell line; user values only appear as operands after
//! `--` or as values of fixed options, and were validated before. The
//! environment is `LC_ALL=C` and `LVM_SUPPRESS_FD_WARNINGS=1`, stdin is
//! empty, and the configuration is the container-safe one (no udev). A
//! failure's stderr is classified into the crate's [`Error`].

use crate::error::{Error, Result};
use crate::process::{Command, RunError};
use crate::report::{self, Row};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// LVM configuration for every command: no udev (containers, the test VM),
/// no devices file (see every device; ownership is checked by tags).
pub const LVM_CONFIG: &str = "devices { obtain_device_list_from_udev=0 use_devicesfile=0 } \
                              activation { udev_sync=0 udev_rules=0 }";

/// The fields asked of report commands, in bytes.
const REPORT_OPTIONS: [&str; 5] = ["--reportformat", "json", "--units", "b", "--nosuffix"];

/// One `lvm` subcommand as an argument vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvmCommand {
    sub: &'static str,
    options: Vec<String>,
    operands: Vec<String>,
}

impl LvmCommand {
    /// `lvm SUB`.
    pub fn new(sub: &'static str) -> Self {
        LvmCommand {
            sub,
            options: Vec::new(),
            operands: Vec::new(),
        }
    }

    /// A report command (`vgs`, `lvs`, `pvs`) printing `fields` as JSON, sizes in bytes.
    pub fn report(sub: &'static str, fields: &[&str]) -> Self {
        let mut c = LvmCommand::new(sub);
        c.options
            .extend(REPORT_OPTIONS.iter().map(|s| s.to_string()));
        c.options.push("-o".into());
        c.options.push(fields.join(","));
        c
    }

    /// Adds a fixed option (`-y`, `--addtag`).
    pub fn opt(mut self, o: &'static str) -> Self {
        self.options.push(o.into());
        self
    }

    /// Adds a fixed option and its value (`-L 67108864b`, `--addtag TAG`).
    pub fn opt_value(mut self, o: &'static str, value: impl Into<String>) -> Self {
        self.options.push(o.into());
        self.options.push(value.into());
        self
    }

    /// Adds an operand, placed after `--`.
    pub fn operand(mut self, v: impl Into<String>) -> Self {
        self.operands.push(v.into());
        self
    }

    /// The subcommand, e.g. `lvcreate`.
    pub fn sub(&self) -> &'static str {
        self.sub
    }

    /// The whole vector after the program name.
    pub fn argv(&self) -> Vec<String> {
        let mut v = vec![self.sub.to_string(), "--config".into(), LVM_CONFIG.into()];
        v.extend(self.options.iter().cloned());
        v.push("--".into());
        v.extend(self.operands.iter().cloned());
        v
    }
}

/// What a finished command printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs LVM commands. Cheap to clone; holds no global state.
#[derive(Debug, Clone)]
pub struct Runner {
    lvm: PathBuf,
    timeout: Duration,
}

impl Default for Runner {
    fn default() -> Self {
        Runner::new()
    }
}

impl Runner {
    /// `lvm` from `PATH`, 120 s per command.
    pub fn new() -> Self {
        Runner {
            lvm: "lvm".into(),
            timeout: Duration::from_secs(120),
        }
    }

    /// Uses the `lvm` binary at `path`.
    pub fn with_lvm(mut self, path: impl Into<PathBuf>) -> Self {
        self.lvm = path.into();
        self
    }

    /// Kills any command still running after `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs `cmd` about `object` (named in errors); its stdout on success.
    pub fn run(&self, object: &str, cmd: &LvmCommand) -> Result<Output> {
        let name = format!("lvm {}", cmd.sub());
        self.spawn(object, &name, &self.lvm, &cmd.argv())
    }

    /// Runs a report command and decodes the rows of its `key` (`vg`, `lv`, `pv`) report.
    pub fn report<T: Row>(&self, object: &str, cmd: &LvmCommand) -> Result<Vec<T>> {
        let out = self.run(object, cmd)?;
        report::decode(&out.stdout).map_err(|reason| Error::Decode {
            object: object.to_string(),
            command: format!("lvm {}", cmd.sub()),
            reason,
        })
    }

    /// Runs `lvm` through the workspace's one process runner.
    fn spawn(&self, object: &str, name: &str, program: &Path, argv: &[String]) -> Result<Output> {
        let finished = Command::new(program)
            .args(argv)
            .env("LVM_SUPPRESS_FD_WARNINGS", "1")
            .timeout(self.timeout)
            .name(name)
            .run()
            .map_err(|e| match e {
                RunError::Timeout { command, after } => Error::Timeout {
                    object: object.to_string(),
                    command,
                    after,
                },
                RunError::Start { source, .. } => Error::Io {
                    object: object.to_string(),
                    op: format!("start `{name}`"),
                    source,
                },
                RunError::Wait { source, .. } => Error::Io {
                    object: object.to_string(),
                    op: format!("wait for `{name}`"),
                    source,
                },
            })?;
        if finished.success() {
            return Ok(Output {
                stdout: finished.stdout,
                stderr: finished.stderr,
            });
        }
        Err(classify(
            object,
            name,
            &finished.status_text(),
            &finished.stderr,
        ))
    }
}

/// Turns a failed command's stderr into the crate's error, by LVM's
/// (`LC_ALL=C`) wording of lvm2 2.03.
pub fn classify(object: &str, command: &str, status: &str, stderr: &str) -> Error {
    let text: String = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("WARNING: "))
        .collect::<Vec<_>>()
        .join("; ");
    let has = |needle: &str| text.contains(needle);
    let object = object.to_string();
    if has("already exists") {
        Error::AlreadyExists {
            object,
            detail: text,
        }
    } else if has("insufficient free space")
        || has("Insufficient free space")
        || has("Insufficient suitable allocatable extents")
    {
        Error::NoSpace {
            object,
            detail: text,
        }
    } else if has("in use")
        || has("Can't remove open logical volume")
        || has("is already in volume group")
    {
        Error::InUse {
            object,
            detail: text,
        }
    } else if has("not found") || has("Failed to find") {
        Error::NotFound { object }
    } else if has("not larger than existing size") {
        Error::InvalidArgument {
            object,
            reason: text,
        }
    } else {
        Error::Command {
            object,
            command: command.to_string(),
            status: status.to_string(),
            stderr: if text.is_empty() {
                "(nothing on stderr)".into()
            } else {
                text
            },
        }
    }
}
