//! Byte-exact checks of the copy, move and fill primitives: every size from
//! 0 to 4,096 bytes at several offsets, for every store kernel and flush
//! instruction this CPU has. All bytes of the range must be written and no
//! byte outside it touched.

use pmem_dax::{CpuFeatures, Features, MemFlags, Movnt};

const MAX: usize = 4096;
/// Untouchable bytes on each side of the range.
const GUARD: usize = 192;
const OFFSETS: [usize; 7] = [0, 1, 7, 8, 31, 33, 63];

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// One `Features` per non-temporal kernel the CPU has (threshold 0, so the
/// kernel runs from the first whole line), each with a different flush,
/// plus ordinary stores with flushes only.
fn variants() -> Vec<Features> {
    let cpu = CpuFeatures::detect();
    let no_wide = CpuFeatures {
        avx2: false,
        avx512f: false,
        ..cpu
    };
    let mut out = vec![
        Features::select(cpu, false, env_of(&[("PMEM_MOVNT_THRESHOLD", "0")])),
        Features::select(
            cpu,
            false,
            env_of(&[
                ("PMEM_MOVNT_THRESHOLD", "0"),
                ("PMEM_AVX512F", "0"),
                ("PMEM_NO_CLWB", "1"),
            ]),
        ),
        Features::select(
            no_wide,
            false,
            env_of(&[
                ("PMEM_MOVNT_THRESHOLD", "0"),
                ("PMEM_NO_CLWB", "1"),
                ("PMEM_NO_CLFLUSHOPT", "1"),
            ]),
        ),
        Features::select(cpu, true, env_of(&[("PMEM_NO_MOVNT", "1")])),
    ];
    out.dedup();
    let kernels: Vec<Movnt> = out.iter().map(|f| f.movnt()).collect();
    eprintln!("testing kernels {kernels:?} on {cpu:?}");
    out
}

fn pattern(buf: &mut [u8], seed: u8) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(seed) | 1;
    }
}

/// Runs `op(buf, start, len)` on a patterned buffer for every size and
/// offset, and compares with `model` applied to a copy.
fn exhaustive(
    name: &str,
    op: impl Fn(&Features, &mut [u8], usize, usize),
    model: impl Fn(&mut [u8], usize, usize),
) {
    let total = GUARD + 64 + MAX + MAX + GUARD;
    // 64-byte aligned storage, so that offsets mean cache-line positions.
    let mut storage = vec![0u128; total / 16 + 8];
    let skip = (64 - storage.as_ptr() as usize % 64) % 64;
    // SAFETY: u128 storage reinterpreted as bytes, all initialised.
    let all = unsafe {
        std::slice::from_raw_parts_mut(storage.as_mut_ptr().cast::<u8>(), storage.len() * 16)
    };
    let buf = &mut all[skip..skip + total];
    let mut expect = vec![0u8; total];
    // Patterns made once (byte loops are slow in debug builds), copied in.
    let templates: Vec<Vec<u8>> = (0..=255u8)
        .map(|seed| {
            let mut t = vec![0u8; total];
            pattern(&mut t, seed);
            t
        })
        .collect();
    for f in variants() {
        for &off in &OFFSETS {
            for len in 0..=MAX {
                let template = &templates[len % 256];
                buf.copy_from_slice(template);
                expect.copy_from_slice(template);
                let start = GUARD + off;
                op(&f, buf, start, len);
                model(&mut expect, start, len);
                if buf != &expect[..] {
                    let bad = buf
                        .iter()
                        .zip(&expect)
                        .position(|(a, b)| a != b)
                        .unwrap_or(0);
                    panic!(
                        "{name}: {:?}/{:?} offset {off} len {len}: first wrong byte at {} (range starts at {start})",
                        f.movnt(),
                        f.flush(),
                        bad
                    );
                }
            }
        }
    }
}

#[test]
fn memcpy_every_size_and_offset() {
    // Copies from the second half of the buffer into the first; the source
    // is misaligned differently from the destination.
    let src_at = |start: usize| GUARD + 64 + MAX + (start * 5 + 3) % 64;
    exhaustive(
        "memcpy",
        |f, buf, start, len| {
            let (lo, hi) = buf.split_at_mut(GUARD + 64 + MAX);
            let s = src_at(start) - lo.len();
            f.memcpy(
                &mut lo[start..start + len],
                &hi[s..s + len],
                MemFlags::PERSIST,
            );
        },
        |buf, start, len| buf.copy_within(src_at(start)..src_at(start) + len, start),
    );
}

#[test]
fn memmove_overlapping_forward() {
    // Destination below the source, overlapping: 40 bytes apart.
    exhaustive(
        "memmove dst<src",
        |f, buf, start, len| f.memmove(buf, start + 40..start + 40 + len, start, MemFlags::PERSIST),
        |buf, start, len| buf.copy_within(start + 40..start + 40 + len, start),
    );
}

#[test]
fn memmove_overlapping_backward() {
    // Destination above the source, overlapping: 72 bytes apart.
    exhaustive(
        "memmove dst>src",
        |f, buf, start, len| f.memmove(buf, start - 72..start - 72 + len, start, MemFlags::NODRAIN),
        |buf, start, len| buf.copy_within(start - 72..start - 72 + len, start),
    );
}

#[test]
fn memset_every_size_and_offset() {
    exhaustive(
        "memset",
        |f, buf, start, len| f.memset(&mut buf[start..start + len], 0x5a, MemFlags::PERSIST),
        |buf, start, len| buf[start..start + len].fill(0x5a),
    );
}

#[test]
fn flags_variants_copy_the_same_bytes() {
    let f = Features::select(CpuFeatures::detect(), false, |_| None);
    let src: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
    for flags in [
        MemFlags::PERSIST,
        MemFlags::NODRAIN,
        MemFlags::NOFLUSH,
        MemFlags::NONTEMPORAL,
        MemFlags::TEMPORAL,
        MemFlags::NONTEMPORAL | MemFlags::NODRAIN,
    ] {
        let mut dst = vec![0u8; 10_003];
        f.memcpy(&mut dst[3..], &src, flags);
        f.drain();
        assert_eq!(&dst[3..], &src[..], "{flags:?}");
        assert_eq!(&dst[..3], &[0, 0, 0], "{flags:?}");
    }
}

#[test]
fn free_functions_use_the_process_choice() {
    let mut buf = vec![0u8; 5000];
    pmem_dax::memset_persist(&mut buf[1..4999], 7);
    assert!(buf[1..4999].iter().all(|&b| b == 7) && buf[0] == 0 && buf[4999] == 0);
    pmem_dax::memcpy_persist(&mut buf[..100], &[9u8; 100]);
    pmem_dax::memmove_persist(&mut buf, 0..100, 50);
    assert!(buf[..150].iter().all(|&b| b == 9) && buf[150] == 7);
    pmem_dax::memcpy_nodrain(&mut buf[200..300], &[1u8; 100]);
    pmem_dax::memset_nodrain(&mut buf[300..400], 2);
    pmem_dax::memmove_nodrain(&mut buf, 200..400, 1000);
    pmem_dax::flush(&buf);
    pmem_dax::drain();
    pmem_dax::persist(&buf);
    assert!(buf[1000..1100].iter().all(|&b| b == 1) && buf[1100..1200].iter().all(|&b| b == 2));
}

#[test]
#[should_panic(expected = "lengths differ")]
fn memcpy_rejects_different_lengths() {
    pmem_dax::memcpy_persist(&mut [0u8; 4], &[0u8; 5]);
}

#[test]
#[should_panic(expected = "out of bounds")]
fn memmove_rejects_out_of_bounds() {
    pmem_dax::memmove_persist(&mut [0u8; 8], 0..4, 5);
}
