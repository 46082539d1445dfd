//! The environment switches (libpmem's names and meanings), eADR detection
//! and the fallbacks of the one-time choice, checked through
//! `Features::select` with an explicit environment, and once through a
//! child process to see that `features()` reads the real one.

use std::fs;
use std::process::Command;

use pmem_dax::{
    is_eadr, parse_domain, regions_in, CpuFeatures, Durability, Features, Flush, Movnt,
};

fn env_of<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

/// A CPU with everything; `select` masks it with the real one, so tests
/// compare against what the running CPU has.
fn all() -> CpuFeatures {
    CpuFeatures {
        clflush: true,
        clflushopt: true,
        clwb: true,
        sse2: true,
        avx2: true,
        avx512f: true,
    }
}

fn host() -> CpuFeatures {
    CpuFeatures::detect()
}

fn best_flush(c: CpuFeatures) -> Flush {
    if c.clwb {
        Flush::Clwb
    } else if c.clflushopt {
        Flush::ClflushOpt
    } else {
        Flush::Clflush
    }
}

#[test]
fn defaults_take_the_best_the_cpu_has() {
    let f = Features::select(all(), false, |_| None);
    let h = host();
    assert_eq!(f.flush(), best_flush(h));
    assert_eq!(f.flush_instruction(), best_flush(h));
    let movnt = if h.avx512f {
        Movnt::Avx512f
    } else if h.avx2 {
        Movnt::Avx2
    } else {
        Movnt::Sse2
    };
    assert_eq!(f.movnt(), movnt);
    assert_eq!(f.movnt_threshold(), pmem_dax::DEFAULT_MOVNT_THRESHOLD);
    assert_eq!(f.is_pmem_force(), None);
    assert!(!f.eadr());
}

#[test]
fn no_clwb_and_no_clflushopt_fall_back_in_order() {
    let h = host();
    let f = Features::select(all(), false, env_of(&[("PMEM_NO_CLWB", "1")]));
    assert_eq!(
        f.flush(),
        if h.clflushopt {
            Flush::ClflushOpt
        } else {
            Flush::Clflush
        }
    );
    let f = Features::select(
        all(),
        false,
        env_of(&[("PMEM_NO_CLWB", "1"), ("PMEM_NO_CLFLUSHOPT", "1")]),
    );
    assert_eq!(f.flush(), Flush::Clflush);
    assert!(!f.flush_needs_fence(), "clflush is ordered by itself");
    // Only "1" switches off, as in libpmem.
    let f = Features::select(all(), false, env_of(&[("PMEM_NO_CLWB", "0")]));
    assert_eq!(f.flush(), best_flush(h));
}

#[test]
fn cpu_without_clwb_or_clflushopt_uses_clflush() {
    let cpu = CpuFeatures {
        clwb: false,
        clflushopt: false,
        ..all()
    };
    assert_eq!(
        Features::select(cpu, false, |_| None).flush(),
        Flush::Clflush
    );
    let cpu = CpuFeatures {
        clwb: false,
        ..all()
    };
    let expect = if host().clflushopt {
        Flush::ClflushOpt
    } else {
        Flush::Clflush
    };
    assert_eq!(Features::select(cpu, false, |_| None).flush(), expect);
}

#[test]
fn no_flush_and_eadr() {
    let h = host();
    let f = Features::select(all(), false, env_of(&[("PMEM_NO_FLUSH", "1")]));
    assert_eq!(f.flush(), Flush::Skip);
    assert_eq!(f.flush_instruction(), best_flush(h));
    assert!(
        f.flush_needs_fence(),
        "fences are kept when flushes are skipped"
    );
    let f = Features::select(all(), true, |_| None);
    assert_eq!(f.flush(), Flush::Skip, "eADR skips flushes");
    assert!(f.eadr());
    let f = Features::select(all(), true, env_of(&[("PMEM_NO_FLUSH", "0")]));
    assert_eq!(
        f.flush(),
        best_flush(h),
        "PMEM_NO_FLUSH=0 flushes even under eADR"
    );
}

#[test]
fn movnt_switches() {
    let h = host();
    let f = Features::select(all(), false, env_of(&[("PMEM_NO_MOVNT", "1")]));
    assert_eq!(f.movnt(), Movnt::None);
    let f = Features::select(all(), false, env_of(&[("PMEM_AVX512F", "0")]));
    assert_eq!(f.movnt(), if h.avx2 { Movnt::Avx2 } else { Movnt::Sse2 });
    let f = Features::select(all(), false, env_of(&[("PMEM_AVX", "0")]));
    assert_eq!(f.movnt(), Movnt::Sse2, "PMEM_AVX=0 leaves SSE2 only");
    let cpu = CpuFeatures {
        avx2: false,
        avx512f: false,
        ..all()
    };
    assert_eq!(Features::select(cpu, false, |_| None).movnt(), Movnt::Sse2);
    let cpu = CpuFeatures {
        sse2: false,
        avx2: false,
        avx512f: false,
        ..all()
    };
    assert_eq!(Features::select(cpu, false, |_| None).movnt(), Movnt::None);
}

#[test]
fn movnt_threshold_parses_or_keeps_the_default() {
    let t = |v| {
        Features::select(all(), false, env_of(&[("PMEM_MOVNT_THRESHOLD", v)])).movnt_threshold()
    };
    assert_eq!(t("0"), 0);
    assert_eq!(t("4096"), 4096);
    assert_eq!(t("-5"), pmem_dax::DEFAULT_MOVNT_THRESHOLD);
    assert_eq!(t("lots"), pmem_dax::DEFAULT_MOVNT_THRESHOLD);
}

#[test]
fn is_pmem_force() {
    let f =
        |v| Features::select(all(), false, env_of(&[("PMEM_IS_PMEM_FORCE", v)])).is_pmem_force();
    assert_eq!(f("1"), Some(true));
    assert_eq!(f("0"), Some(false));
    assert_eq!(f("yes"), None);
}

#[test]
fn report_names_the_choice() {
    let f = Features::select(
        all(),
        false,
        env_of(&[("PMEM_NO_MOVNT", "1"), ("PMEM_IS_PMEM_FORCE", "1")]),
    );
    let line = f.to_string();
    assert!(
        line.contains("movnt=none") && line.contains("is_pmem_force=1"),
        "{line}"
    );
    assert!(line.contains(&format!("flush={}", f.flush())), "{line}");
}

#[test]
fn eadr_needs_every_region_in_cpu_cache() {
    let dir = std::env::temp_dir().join(format!("pmem-dax-sysfs-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let region = |name: &str, domain: Option<&str>, deep: bool| {
        let r = dir.join(name);
        fs::create_dir_all(&r).expect("make fake region");
        if let Some(d) = domain {
            fs::write(r.join("persistence_domain"), format!("{d}\n")).expect("write domain");
        }
        let mode = if deep { 0o644 } else { 0o444 };
        fs::write(r.join("deep_flush"), "").expect("write deep_flush");
        let perm = std::os::unix::fs::PermissionsExt::from_mode(mode);
        fs::set_permissions(r.join("deep_flush"), perm).expect("chmod deep_flush");
    };
    assert!(!is_eadr(&regions_in(&dir)), "no regions: not eADR");
    region("region0", Some("cpu_cache"), false);
    region("region1", Some("cpu_cache"), true);
    fs::create_dir_all(dir.join("namespace0.0")).expect("make namespace dir");
    let rs = regions_in(&dir);
    assert_eq!(rs.len(), 2);
    assert!(is_eadr(&rs));
    assert!(rs[0].deep_flush.is_none() && rs[1].deep_flush.is_some());
    region("region2", Some("memory_controller"), false);
    assert!(!is_eadr(&regions_in(&dir)));
    fs::remove_dir_all(dir.join("region2")).expect("remove region2");
    region("region3", None, false);
    assert!(
        !is_eadr(&regions_in(&dir)),
        "an unreported domain is not eADR"
    );
    assert_eq!(
        parse_domain("memory_controller\n"),
        Durability::MemoryController
    );
    assert_eq!(parse_domain(""), Durability::Unknown);
    fs::remove_dir_all(&dir).expect("clean up");
}

/// Prints `features()` when run as the child of `features_read_the_process_environment`.
#[test]
fn child_print_features() {
    if std::env::var_os("PMEM_DAX_TEST_CHILD").is_some() {
        println!("FEATURES {}", pmem_dax::features());
    }
}

#[test]
fn features_read_the_process_environment() {
    let exe = std::env::current_exe().expect("test executable path");
    let out = Command::new(exe)
        .args([
            "--exact",
            "child_print_features",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PMEM_DAX_TEST_CHILD", "1")
        .env("PMEM_NO_MOVNT", "1")
        .env("PMEM_NO_FLUSH", "1")
        .env("PMEM_MOVNT_THRESHOLD", "1234")
        .env("PMEM_IS_PMEM_FORCE", "0")
        .output()
        .expect("run child test");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.split_once("FEATURES ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no report in {text}"));
    for want in [
        "flush=none",
        "movnt=none",
        "movnt_threshold=1234",
        "is_pmem_force=0",
    ] {
        assert!(line.contains(want), "{want} missing from {line}");
    }
}
