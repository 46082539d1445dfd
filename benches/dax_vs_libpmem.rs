//! pmem-dax against PMDK's libpmem on the same buffers, in one run.
//!
//! Both libraries copy into anonymous DRAM (libpmem with
//! `PMEM_IS_PMEM_FORCE=1`): `memcpy_persist` for 64 B to 64 MiB with the
//! destination aligned and at +8 bytes, `persist` of freshly written 64 B,
//! 4 KiB and 2 MiB, and the copy ceiling: the fastest plain loop of 64-byte
//! loads and non-temporal 64-byte stores with one `sfence`, over 1 MiB.
//! Each case interleaves the two libraries round by round (their order
//! swapped every round) and takes, per round, the ratio of libpmem's time
//! over ours: a burst of noise from another process hits both halves of one
//! round, not one library. Printed per case: each library's median time,
//! the median of the per-round ratios and their interquartile range; a case
//! is `slower` only when even the upper quartile is below 1. The last line
//! is `summary geomean_ratio=G min_ratio=M min_ratio_q1=Q min_ratio_q3=R
//! slower_cases=K ceiling_fraction_1MiB=F` (ratios are medians; above 1:
//! pmem-dax is faster).
//!
//! Run: `cargo bench --bench dax_vs_libpmem`.

use std::ffi::{c_int, c_void};
use std::hint::black_box;
use std::slice;
use std::time::{Duration, Instant};

use pmem::dax::{self, Mapping};

#[link(name = "pmem")]
extern "C" {
    fn pmem_memcpy_persist(dst: *mut c_void, src: *const c_void, len: usize) -> *mut c_void;
    fn pmem_persist(addr: *const c_void, len: usize);
    fn pmem_is_pmem(addr: *const c_void, len: usize) -> c_int;
}

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
/// Rounds per case; each round times both libraries once.
const ROUNDS: usize = 41;
/// Target duration of one timed batch.
const BATCH: Duration = Duration::from_millis(4);

/// Runs `f` in batches of `n` calls, `n` grown until a batch takes
/// [`BATCH`]; returns the batch size.
fn calibrate(f: &mut dyn FnMut()) -> usize {
    let mut n = 1;
    loop {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        if t.elapsed() >= BATCH || n >= 1 << 24 {
            return n;
        }
        n *= 2;
    }
}

fn time_batch(f: &mut dyn FnMut(), n: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() / n as f64
}

/// One case: each library's median time per call, and the median and
/// quartiles of the per-round ratios (libpmem's time over ours).
struct Race {
    ours: f64,
    theirs: f64,
    ratio: f64,
    q1: f64,
    q3: f64,
}

/// The `q` quantile (0 to 1) of `v`, by linear interpolation.
fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Times `ours` and `theirs` in [`ROUNDS`] interleaved rounds, the first of
/// each round alternating, and returns medians and the ratios' quartiles.
fn race(ours: &mut dyn FnMut(), theirs: &mut dyn FnMut()) -> Race {
    let n = calibrate(ours).max(calibrate(theirs));
    let (mut a, mut b, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (x, y) = if round % 2 == 0 {
            let x = time_batch(ours, n);
            (x, time_batch(theirs, n))
        } else {
            let y = time_batch(theirs, n);
            (time_batch(ours, n), y)
        };
        a.push(x);
        b.push(y);
        r.push(y / x);
    }
    Race {
        ours: quantile(&a, 0.5),
        theirs: quantile(&b, 0.5),
        ratio: quantile(&r, 0.5),
        q1: quantile(&r, 0.25),
        q3: quantile(&r, 0.75),
    }
}

fn human(bytes: usize) -> String {
    match bytes {
        b if b >= MIB => format!("{} MiB", b / MIB),
        b if b >= KIB => format!("{} KiB", b / KIB),
        b => format!("{b} B"),
    }
}

fn ns(secs: f64) -> String {
    match secs * 1e9 {
        t if t >= 1e6 => format!("{:.2} ms", t / 1e6),
        t if t >= 1e3 => format!("{:.2} us", t / 1e3),
        t => format!("{t:.1} ns"),
    }
}

/// Best time per call of `f` over `rounds` batches.
fn race_one(f: &mut dyn FnMut(), rounds: usize) -> f64 {
    let n = calibrate(f);
    (0..rounds)
        .map(|_| time_batch(f, n))
        .fold(f64::MAX, f64::min)
}

mod ceiling {
    //! The copy ceiling: plain loops of 64-byte loads and non-temporal 64-byte
    //! stores with one `sfence` at the end, unrolled 1, 2, 4 and 8 lines per
    //! iteration, in AVX-512 and in AVX2 (two 32-byte halves per line).

    use std::arch::x86_64::*;

    use super::{race_one, ROUNDS};

    /// The fastest loop and its time for one copy.
    pub struct Best {
        pub name: String,
        pub seconds: f64,
    }

    macro_rules! ceiling_loop {
        ($name:ident, $feature:literal, $lines:literal, $vec:ty, $width:literal, $load:ident, $stream:ident) => {
            /// # Safety
            ///
            /// The CPU has the feature; dst is 64-byte aligned; both slices are
            /// the same length, a multiple of 64 * lines.
            #[target_feature(enable = $feature)]
            unsafe fn $name(dst: &mut [u8], src: &[u8]) {
                const N: usize = $lines * 64 / $width;
                let (d, s) = (dst.as_mut_ptr(), src.as_ptr());
                let mut i = 0;
                while i < dst.len() {
                    // SAFETY: i + N * width <= len (len is a multiple of the
                    // step), dst aligned (caller).
                    unsafe {
                        let mut v = [std::mem::zeroed::<$vec>(); N];
                        for (k, v) in v.iter_mut().enumerate() {
                            *v = $load(s.add(i + k * $width).cast());
                        }
                        for (k, v) in v.iter().enumerate() {
                            $stream(d.add(i + k * $width).cast(), *v);
                        }
                    }
                    i += N * $width;
                }
                _mm_sfence();
            }
        };
    }

    ceiling_loop!(
        z1,
        "avx512f",
        1,
        __m512i,
        64,
        _mm512_loadu_si512,
        _mm512_stream_si512
    );
    ceiling_loop!(
        z2,
        "avx512f",
        2,
        __m512i,
        64,
        _mm512_loadu_si512,
        _mm512_stream_si512
    );
    ceiling_loop!(
        z4,
        "avx512f",
        4,
        __m512i,
        64,
        _mm512_loadu_si512,
        _mm512_stream_si512
    );
    ceiling_loop!(
        z8,
        "avx512f",
        8,
        __m512i,
        64,
        _mm512_loadu_si512,
        _mm512_stream_si512
    );
    ceiling_loop!(
        y1,
        "avx2",
        1,
        __m256i,
        32,
        _mm256_loadu_si256,
        _mm256_stream_si256
    );
    ceiling_loop!(
        y2,
        "avx2",
        2,
        __m256i,
        32,
        _mm256_loadu_si256,
        _mm256_stream_si256
    );
    ceiling_loop!(
        y4,
        "avx2",
        4,
        __m256i,
        32,
        _mm256_loadu_si256,
        _mm256_stream_si256
    );
    ceiling_loop!(
        y8,
        "avx2",
        8,
        __m256i,
        32,
        _mm256_loadu_si256,
        _mm256_stream_si256
    );

    type Loop = unsafe fn(&mut [u8], &[u8]);

    /// Times every loop the CPU can run over `dst` and `src` and returns the
    /// fastest.
    pub fn best(dst: &mut [u8], src: &[u8]) -> Best {
        assert!(
            (dst.as_ptr() as usize).is_multiple_of(64)
                && dst.len().is_multiple_of(512)
                && dst.len() == src.len()
        );
        let mut loops: Vec<(&str, Loop)> = Vec::new();
        if is_x86_feature_detected!("avx512f") {
            loops.extend([
                ("avx512 x1", z1 as Loop),
                ("avx512 x2", z2),
                ("avx512 x4", z4),
                ("avx512 x8", z8),
            ]);
        }
        if is_x86_feature_detected!("avx2") {
            loops.extend([
                ("avx2 x1", y1 as Loop),
                ("avx2 x2", y2),
                ("avx2 x4", y4),
                ("avx2 x8", y8),
            ]);
        }
        let mut best = Best {
            name: "none".into(),
            seconds: f64::MAX,
        };
        for (name, f) in loops {
            // SAFETY: the feature was detected above; alignment and lengths
            // asserted above.
            let t = race_one(&mut || unsafe { f(&mut *dst, src) }, ROUNDS);
            if t < best.seconds {
                best = Best {
                    name: name.into(),
                    seconds: t,
                };
            }
        }
        best
    }
}

fn main() {
    // libpmem reads PMEM_IS_PMEM_FORCE at its first pmem_is_pmem call; this
    // runs before any call, while the process has one thread.
    std::env::set_var("PMEM_IS_PMEM_FORCE", "1");
    let src_map = Mapping::anonymous(64 * MIB + 128).expect("map source buffer");
    let mut dst_map = Mapping::anonymous(64 * MIB + 128).expect("map destination buffer");
    let src = src_map.as_slice();
    let dst = dst_map.as_mut_slice();
    for (i, b) in dst.iter_mut().enumerate() {
        *b = i as u8; // fault every page in
    }
    // SAFETY: dst is mapped for its whole length.
    let forced = unsafe { pmem_is_pmem(dst.as_ptr().cast(), dst.len()) };
    println!("pmem-dax: {}", dax::features());
    println!("libpmem: pmem_is_pmem={forced} (PMEM_IS_PMEM_FORCE=1)");
    println!();
    println!(
        "{:<16} {:>8} {:>6} {:>11} {:>11} {:>7} {:>15}",
        "case", "size", "align", "pmem-dax", "libpmem", "ratio", "ratio q1..q3"
    );

    let mut results: Vec<Race> = Vec::new();
    let mut ours_1mib = 0.0;
    let mut report = |case: &str, size: usize, align: usize, t: Race| {
        let verdict = if t.q3 < 1.0 { "  slower" } else { "" };
        println!(
            "{case:<16} {:>8} {:>6} {:>11} {:>11} {:>7.3} {:>7.3}..{:<6.3}{verdict}",
            human(size),
            format!("+{align}"),
            ns(t.ours),
            ns(t.theirs),
            t.ratio,
            t.q1,
            t.q3
        );
        results.push(t);
    };

    let (dbase, sbase) = (dst.as_mut_ptr(), src.as_ptr());
    for size in [64, 256, 4 * KIB, 64 * KIB, MIB, 64 * MIB] {
        for align in [0, 8] {
            // SAFETY: 64 + 8 + 64 MiB fits in both mappings, which do not
            // overlap; the two closures run one at a time, so each slice
            // made below is the only live reference to those bytes.
            let (dp, sp) = unsafe { (dbase.add(64 + align), sbase.add(64)) };
            let t = race(
                &mut || {
                    // SAFETY: see above.
                    let (d, s) = unsafe {
                        (
                            slice::from_raw_parts_mut(dp, size),
                            slice::from_raw_parts(sp, size),
                        )
                    };
                    dax::memcpy_persist(black_box(d), black_box(s));
                },
                &mut || {
                    // SAFETY: see above.
                    unsafe { pmem_memcpy_persist(black_box(dp).cast(), sp.cast(), size) };
                },
            );
            if size == MIB && align == 0 {
                ours_1mib = t.ours;
            }
            report("memcpy_persist", size, align, t);
        }
    }

    for size in [64, 4 * KIB, 2 * MIB] {
        // SAFETY: as above.
        let p = unsafe { dbase.add(64) };
        let t = race(
            &mut || {
                // SAFETY: as above.
                let d = unsafe { slice::from_raw_parts_mut(p, size) };
                dirty(d);
                dax::persist(black_box(d));
            },
            &mut || {
                // SAFETY: as above.
                let d = unsafe { slice::from_raw_parts_mut(p, size) };
                dirty(d);
                // SAFETY: d is valid for size bytes.
                unsafe { pmem_persist(black_box(d.as_ptr()).cast(), size) };
            },
        );
        report("persist", size, 0, t);
    }

    let ceiling = ceiling::best(&mut dst[64..64 + MIB], &src[64..64 + MIB]);
    let fraction = ceiling.seconds / ours_1mib;
    println!(
        "{:<16} {:>8} {:>6} {:>11}   ({}, {:.1} GB/s; pmem-dax {:.1} GB/s)",
        "copy ceiling",
        human(MIB),
        "+0",
        ns(ceiling.seconds),
        ceiling.name,
        MIB as f64 / ceiling.seconds / 1e9,
        MIB as f64 / ours_1mib / 1e9
    );
    let geomean = (results.iter().map(|t| t.ratio.ln()).sum::<f64>() / results.len() as f64).exp();
    let worst = results
        .iter()
        .min_by(|x, y| x.ratio.total_cmp(&y.ratio))
        .expect("at least one case");
    let slower = results.iter().filter(|t| t.q3 < 1.0).count();
    println!();
    println!(
        "summary geomean_ratio={geomean:.3} min_ratio={:.3} min_ratio_q1={:.3} min_ratio_q3={:.3} \
         slower_cases={slower} ceiling_fraction_1MiB={fraction:.3}",
        worst.ratio, worst.q1, worst.q3
    );
}

/// Writes one byte in every cache line of `buf`, as an application does
/// before persisting what it wrote.
fn dirty(buf: &mut [u8]) {
    for line in buf.chunks_mut(64) {
        line[0] = line[0].wrapping_add(1);
    }
    black_box(buf);
}
