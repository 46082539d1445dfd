//! `lvm`: PMEM volume groups and volumes from the command line, through `pmem_lvm`.
//!
//! ```text
//! lvm setup [--percentage P] [--join]   # prints the VGs as JSON
//! lvm create NAME SIZE                  # prints the volume as JSON (name, device, size, vg)
//! lvm grow NAME SIZE                    # prints the grown volume as JSON
//! lvm delete NAME                       # erases, then removes the volume
//! lvm list                              # JSON list of volumes
//! lvm capacity                          # JSON capacity report
//! lvm teardown                          # removes every volume, VG, PV and namespace it made
//! ```
//!
//! Needs root, LVM and labelled PMEM regions (try it in `scripts/pmem-vm`).
//! Errors go to stderr with exit status 1; bad usage exits with 2.

use pmem_lvm::{Runner, SetupOptions, VolumeGroups, VolumeName};
use pmem_ndctl::{Context, Size};
use std::process::ExitCode;

const USAGE: &str =
    "usage: lvm setup [--percentage P] [--join] | create NAME SIZE | grow NAME SIZE \
                     | delete NAME | list | capacity | teardown";

/// Prints any serialisable value as pretty JSON.
macro_rules! print_json {
    ($v:expr) => {{
        let s = serde_json::to_string_pretty(&$v).map_err(|e| e.to_string())?;
        println!("{s}");
        Ok(())
    }};
}

fn size(s: &str) -> Result<u64, String> {
    s.parse::<Size>()
        .map(Size::bytes)
        .map_err(|e| e.to_string())
}

fn name(s: &str) -> Result<VolumeName, String> {
    VolumeName::new(s).map_err(|e| e.to_string())
}

fn open() -> Result<VolumeGroups, String> {
    VolumeGroups::open(Runner::new()).map_err(|e| e.to_string())
}

fn setup(args: &[String]) -> Result<(), String> {
    let mut opts = SetupOptions::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--join" => opts.join = true,
            "--percentage" => {
                let p = it.next().ok_or("--percentage needs a value")?;
                opts.percentage = p
                    .parse()
                    .map_err(|_| format!("--percentage {p}: not a number from 1 to 100"))?;
            }
            other => return Err(format!("setup: unknown option {other}\n{USAGE}")),
        }
    }
    let mut ctx = Context::new().map_err(|e| e.to_string())?;
    let (groups, skipped) =
        VolumeGroups::setup_report(&mut ctx, &opts).map_err(|e| e.to_string())?;
    for s in skipped {
        eprintln!("lvm setup: {} left alone: {}", s.region, s.reason);
    }
    print_json!(groups.vgs())
}

fn run(args: &[String]) -> Result<(), String> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = |e: pmem_lvm::Error| e.to_string();
    match words.as_slice() {
        ["setup", ..] => setup(&args[1..]),
        ["create", n, s] => print_json!(open()?.create(&name(n)?, size(s)?).map_err(err)?),
        ["grow", n, s] => print_json!(open()?.grow(&name(n)?, size(s)?).map_err(err)?),
        ["delete", n] => open()?.delete(&name(n)?).map_err(err),
        ["list"] => print_json!(open()?.list().map_err(err)?),
        ["capacity"] => print_json!(open()?.capacity().map_err(err)?),
        ["teardown"] => {
            let mut ctx = Context::new().map_err(|e| e.to_string())?;
            print_json!(VolumeGroups::teardown(&mut ctx, &Runner::new()).map_err(err)?)
        }
        _ => Err(USAGE.to_string()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.starts_with("usage:") || e.contains("\nusage:") => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("lvm: {e}");
            ExitCode::FAILURE
        }
    }
}
