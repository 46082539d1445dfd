//! Namespace create + destroy through pmem-ndctl against the `ndctl` command line, in one boot.
//!
//! Needs root and labelled regions (the emulated-PMEM VM): run `scripts/bench-ndctl`.
//! Elsewhere it says why it cannot run and exits 0, so `cargo bench` stays usable.

use pmem::ndctl::{Context, Mode, NamespaceSpec, Size};
use std::process::Command;
use std::time::{Duration, Instant};

const ROUNDS: usize = 10;

fn cli(args: &[&str]) -> String {
    let o = Command::new("ndctl")
        .args(args)
        .output()
        .expect("ndctl runs");
    assert!(
        o.status.success(),
        "ndctl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn dev_of(json: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).expect("ndctl prints JSON");
    v["dev"].as_str().expect("dev").to_string()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let region = match Context::new() {
        Ok(ctx) => ctx
            .regions()
            .find(|r| r.is_labelled() && r.is_enabled() && r.available_size() >= 512 << 20)
            .map(|r| r.name()),
        Err(_) => None,
    };
    let Some(region) = region else {
        println!("ndctl_create_destroy: no labelled region with 512 MiB free here; run scripts/bench-ndctl (the emulated-PMEM VM)");
        return;
    };
    println!(
        "{:<8} {:>6} {:>14} {:>14} {:>7}",
        "mode", "rounds", "library ms", "ndctl CLI ms", "ratio"
    );
    let mut ratios = Vec::new();
    let (mut lib_all, mut cli_all) = (Vec::new(), Vec::new());
    for mode in [Mode::Fsdax, Mode::Devdax, Mode::Raw] {
        let (mut lib, mut cmd) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let mut ctx = Context::new().expect("context");
            let ns = ctx
                .create_namespace(&NamespaceSpec::new(region.as_str(), mode, Size(256 << 20)))
                .expect("library create");
            ctx.destroy_namespace(&ns.dev, true)
                .expect("library destroy");
            drop(ctx);
            lib.push(t.elapsed());

            let t = Instant::now();
            let dev = dev_of(&cli(&[
                "create-namespace",
                "-r",
                &region,
                "-m",
                mode.as_str(),
                "-s",
                "256M",
            ]));
            cli(&["destroy-namespace", "-f", &dev]);
            cmd.push(t.elapsed());
        }
        let (l, c) = (median(lib.clone()), median(cmd.clone()));
        let ratio = c.as_secs_f64() / l.as_secs_f64();
        ratios.push(ratio);
        lib_all.extend(lib);
        cli_all.extend(cmd);
        println!(
            "{:<8} {:>6} {:>14.1} {:>14.1} {:>7.2}",
            mode.as_str(),
            ROUNDS,
            l.as_secs_f64() * 1e3,
            c.as_secs_f64() * 1e3,
            ratio
        );
    }
    let geo = ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64;
    println!(
        "summary create_destroy_library_ms={:.1} create_destroy_cli_ms={:.1} cli_over_library_geomean={:.2} (above 1: the library is faster)",
        median(lib_all).as_secs_f64() * 1e3,
        median(cli_all).as_secs_f64() * 1e3,
        geo.exp()
    );
}
