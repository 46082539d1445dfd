//! Tier 1: the runner against recorded lvm2 2.03 reports and error texts, and its process handling.

use pmem_lvm::report::{decode, LvRow, PvRow, Row, VgRow};
use pmem_lvm::runner::{classify, LvmCommand, LVM_CONFIG};
use pmem_lvm::{ErrorKind, Runner, VolumeName};
use proptest::prelude::*;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const VGS: &str = include_str!("fixtures/vgs.json");
const LVS: &str = include_str!("fixtures/lvs.json");
const PVS: &str = include_str!("fixtures/pvs.json");
const EMPTY: &str = include_str!("fixtures/empty-vgs.json");
const ERRORS: &str = include_str!("fixtures/errors.txt");

#[test]
fn decodes_recorded_reports() {
    let vgs: Vec<VgRow> = decode(VGS).unwrap();
    assert_eq!(vgs.len(), 2);
    assert_eq!(vgs[0].name, "pmem-rs-region0");
    assert_eq!(vgs[0].size, 1_182_793_728);
    assert_eq!(vgs[0].free, 1_115_684_864);
    assert_eq!(vgs[0].extent_size, 4 << 20);
    assert_eq!(vgs[0].tags, ["pmem-rs"]);
    assert_eq!(vgs[0].pv_count, 2);
    assert!(vgs[1].tags.is_empty());

    let lvs: Vec<LvRow> = decode(LVS).unwrap();
    assert_eq!(lvs[0].size, 64 << 20);
    assert_eq!(
        lvs[0].tags.iter().find_map(|t| VolumeName::from_tag(t)),
        Some(VolumeName::new("db-1").unwrap())
    );
    assert_eq!(lvs[1].path, "/dev/other/root");

    let pvs: Vec<PvRow> = decode(PVS).unwrap();
    assert_eq!(pvs[1].vg, "");
    assert_eq!(pvs[1].size, 262_144_000);

    assert!(decode::<VgRow>(EMPTY).unwrap().is_empty());
    // A report of another kind has no rows of this kind.
    assert!(decode::<LvRow>(VGS).unwrap().is_empty());
}

#[test]
fn malformed_reports_are_errors_not_panics() {
    assert!(decode::<VgRow>("").is_err());
    assert!(decode::<VgRow>("{}").is_err());
    assert!(decode::<VgRow>(r#"{"report":[{"vg":{}}]}"#).is_err());
    let e = decode::<VgRow>(r#"{"report":[{"vg":[{"vg_name":"a"}]}]}"#).unwrap_err();
    assert_eq!(e, "field vg_size is missing");
    let e = decode::<VgRow>(&VGS.replace("\"1182793728\"", "\"12x\"")).unwrap_err();
    assert_eq!(e, "field vg_size is not a number: \"12x\"");
}

#[test]
fn classifies_recorded_error_texts() {
    let mut cases = 0;
    for block in ERRORS.split("== ").skip(1) {
        let (head, text) = block.split_once('\n').unwrap();
        let (kind, command) = head.split_once(' ').unwrap();
        let e = classify("volume db-1", command, "exit status 5", text);
        let want = match kind {
            "AlreadyExists" => ErrorKind::AlreadyExists,
            "NoSpace" => ErrorKind::NoSpace,
            "NotFound" => ErrorKind::NotFound,
            "InUse" => ErrorKind::InUse,
            "InvalidArgument" => ErrorKind::InvalidArgument,
            "Other" => ErrorKind::Other,
            k => panic!("unknown kind {k} in errors.txt"),
        };
        assert_eq!(e.kind(), want, "{command}: {text}");
        assert!(e.to_string().starts_with("volume db-1: "), "{e}");
        cases += 1;
    }
    assert_eq!(cases, 10);
    let e = classify(
        "VG x",
        "lvm pvchange",
        "exit status 5",
        "  Physical volume /dev/pmem0 not changed\n",
    );
    assert_eq!(
        e.to_string(),
        "VG x: `lvm pvchange` failed (exit status 5): Physical volume /dev/pmem0 not changed"
    );
}

#[test]
fn commands_are_argument_vectors_with_user_values_after_the_separator() {
    let cmd = LvmCommand::report("vgs", VgRow::FIELDS).operand("-rf");
    let argv = cmd.argv();
    assert_eq!(argv[..3], ["vgs", "--config", LVM_CONFIG]);
    for w in ["--reportformat", "json", "--units", "b", "--nosuffix"] {
        assert!(argv.contains(&w.to_string()));
    }
    let sep = argv.iter().position(|a| a == "--").unwrap();
    assert_eq!(argv[sep + 1..], ["-rf"]);
    assert!(LVM_CONFIG.contains("udev_sync=0"));
    assert!(LVM_CONFIG.contains("udev_rules=0"));
    assert!(LVM_CONFIG.contains("obtain_device_list_from_udev=0"));
}

/// A stand-in `lvm` (a shell script) to test the process handling itself.
fn script(name: &str, body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pmem-lvm-runner-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn runs_with_c_locale_and_classifies_failures() {
    let echo = script(
        "echo-env",
        r#"echo "$LC_ALL $LVM_SUPPRESS_FD_WARNINGS $1 $#"; cat"#,
    );
    let out = Runner::new()
        .with_lvm(&echo)
        .run("VG a", &LvmCommand::new("vgs").operand("x"))
        .unwrap();
    assert_eq!(
        out.stdout, "C 1 vgs 5\n",
        "stdin is empty, argv is vgs --config CFG -- x"
    );
    let fail = script("fail", "echo '  Volume group \"a\" not found' >&2; exit 5");
    let e = Runner::new()
        .with_lvm(&fail)
        .run("VG a", &LvmCommand::new("vgs"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.to_string(), "VG a: not found");
    let e = Runner::new()
        .with_lvm("/nonexistent/lvm")
        .run("VG a", &LvmCommand::new("vgs"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Other);
}

#[test]
fn kills_a_command_past_its_time_limit() {
    let slow = script("slow", "exec sleep 30");
    let t = Instant::now();
    let e = Runner::new()
        .with_lvm(&slow)
        .with_timeout(Duration::from_millis(300))
        .run("VG a", &LvmCommand::new("vgs"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(
        e.to_string(),
        "VG a: `lvm vgs` did not finish within 300ms and was killed"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decoder_never_panics_on_any_text(s in "\\PC{0,300}") {
        let _ = decode::<VgRow>(&s);
        let _ = decode::<LvRow>(&s);
        let _ = decode::<PvRow>(&s);
    }

    #[test]
    fn decoder_never_panics_on_mangled_reports(cut in 0usize..600, insert in "[\\[\\]{}\",:0-9a-z ]{0,8}") {
        for base in [VGS, LVS, PVS] {
            let mut s: String = base.chars().take(cut).collect();
            s.push_str(&insert);
            s.extend(base.chars().skip(cut));
            let _ = decode::<VgRow>(&s);
            let _ = decode::<LvRow>(&s);
            let _ = decode::<PvRow>(&s);
        }
    }

    #[test]
    fn classify_never_panics(s in "\\PC{0,300}") {
        let _ = classify("x", "lvm x", "exit status 5", &s);
    }
}

#[test]
fn row_fields_are_what_the_decoder_reads() {
    assert!(VgRow::FIELDS.contains(&"vg_tags"));
    assert!(LvRow::FIELDS.contains(&"lv_tags"));
    assert!(PvRow::FIELDS.contains(&"pv_tags"));
}

/// A stand-in `lvm` that answers reports from the recorded fixtures and
/// appends each subcommand it runs to `calls`.
fn recorded_lvm(calls: &std::path::Path) -> PathBuf {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    script(
        "recorded-lvm",
        &format!(
            r#"echo "$1" >> '{}'; case "$1" in vgs|lvs|pvs) cat '{fixtures}'/"$1".json;; *) exit 3;; esac"#,
            calls.display()
        ),
    )
}

#[test]
fn capacity_costs_one_vgs_report() {
    let calls = script("unused", "").with_file_name("calls");
    let groups =
        pmem_lvm::VolumeGroups::open(Runner::new().with_lvm(recorded_lvm(&calls))).unwrap();
    std::fs::write(&calls, "").unwrap();
    let c = groups.capacity().unwrap();
    assert_eq!(std::fs::read_to_string(&calls).unwrap(), "vgs\n");
    assert_eq!(c.vgs.len(), 1, "only the pmem-rs VG counts: {c:?}");
    assert_eq!((c.size, c.free), (1_182_793_728, 1_115_684_864));
    // What capacity does not reread is kept: the VG's PVs and volume count.
    let vg = &groups.vgs()[0];
    assert!(!vg.pvs.is_empty(), "{vg:?}");
    assert_eq!(
        groups
            .lookup(&VolumeName::new("db-1").unwrap())
            .map(|v| v.size),
        Some(64 << 20)
    );
}
