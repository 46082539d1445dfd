//! Non-temporal (cache-bypassing) copy and fill kernels for AVX-512F, AVX2
//! and SSE2. They work on whole, 64-byte aligned cache lines only; the
//! callers in `persist` handle unaligned heads and tails.

use std::arch::x86_64::*;

use crate::config::Movnt;

/// Bytes moved per unrolled loop iteration: four cache lines.
const STEP: usize = 256;

macro_rules! kernels {
    ($module:ident, $feature:literal, $vec:ty, $width:literal,
     $load:ident, $stream:ident, $splat:ident) => {
        mod $module {
            use super::*;

            const N: usize = STEP / $width;
            const PER_LINE: usize = 64 / $width;

            /// Copies `len` bytes upwards, lowest line first.
            ///
            /// # Safety
            ///
            /// See [`super::copy_fwd`]; the CPU must have the feature.
            #[target_feature(enable = $feature)]
            pub(super) unsafe fn copy_fwd(dst: *mut u8, src: *const u8, len: usize) {
                let mut i = 0;
                while i + STEP <= len {
                    // SAFETY: [i, i + STEP) is inside both ranges (loop
                    // condition); dst + i is 64-byte aligned (caller), so
                    // every stream address is aligned to the vector width.
                    // All loads of the block precede its stores, so a
                    // forward overlap (dst < src) never reads clobbered bytes.
                    unsafe {
                        let mut v = [$splat(0); N];
                        for (k, v) in v.iter_mut().enumerate() {
                            *v = $load(src.add(i + k * $width).cast());
                        }
                        for (k, v) in v.iter().enumerate() {
                            $stream(dst.add(i + k * $width).cast(), *v);
                        }
                    }
                    i += STEP;
                }
                while i < len {
                    // SAFETY: len is a multiple of 64 (caller), so the line
                    // [i, i + 64) is inside both ranges; alignment as above.
                    unsafe {
                        let mut v = [$splat(0); PER_LINE];
                        for (k, v) in v.iter_mut().enumerate() {
                            *v = $load(src.add(i + k * $width).cast());
                        }
                        for (k, v) in v.iter().enumerate() {
                            $stream(dst.add(i + k * $width).cast(), *v);
                        }
                    }
                    i += 64;
                }
            }

            /// Copies `len` bytes downwards, highest line first.
            ///
            /// # Safety
            ///
            /// See [`super::copy_bwd`]; the CPU must have the feature.
            #[target_feature(enable = $feature)]
            pub(super) unsafe fn copy_bwd(dst: *mut u8, src: *const u8, len: usize) {
                let mut end = len;
                while end >= STEP {
                    let i = end - STEP;
                    // SAFETY: [i, end) is inside both ranges; alignment as
                    // in copy_fwd. Loads precede stores and blocks go
                    // downwards, so a backward overlap (dst > src) never
                    // reads clobbered bytes.
                    unsafe {
                        let mut v = [$splat(0); N];
                        for (k, v) in v.iter_mut().enumerate() {
                            *v = $load(src.add(i + k * $width).cast());
                        }
                        for (k, v) in v.iter().enumerate() {
                            $stream(dst.add(i + k * $width).cast(), *v);
                        }
                    }
                    end = i;
                }
                while end > 0 {
                    let i = end - 64;
                    // SAFETY: end is a positive multiple of 64, so the line
                    // [i, end) is inside both ranges; order as above.
                    unsafe {
                        let mut v = [$splat(0); PER_LINE];
                        for (k, v) in v.iter_mut().enumerate() {
                            *v = $load(src.add(i + k * $width).cast());
                        }
                        for (k, v) in v.iter().enumerate() {
                            $stream(dst.add(i + k * $width).cast(), *v);
                        }
                    }
                    end = i;
                }
            }

            /// Fills `len` bytes with `byte`.
            ///
            /// # Safety
            ///
            /// See [`super::fill`]; the CPU must have the feature.
            #[target_feature(enable = $feature)]
            pub(super) unsafe fn fill(dst: *mut u8, byte: u8, len: usize) {
                let v = $splat(byte as i8);
                let mut i = 0;
                while i < len {
                    for k in 0..PER_LINE {
                        // SAFETY: [i, i + 64) is inside the range (len is a
                        // multiple of 64); dst + i is 64-byte aligned.
                        unsafe { $stream(dst.add(i + k * $width).cast(), v) };
                    }
                    i += 64;
                }
            }
        }
    };
}

kernels!(
    avx512,
    "avx512f",
    __m512i,
    64,
    _mm512_loadu_si512,
    _mm512_stream_si512,
    _mm512_set1_epi8
);
kernels!(
    avx2,
    "avx2",
    __m256i,
    32,
    _mm256_loadu_si256,
    _mm256_stream_si256,
    _mm256_set1_epi8
);
kernels!(
    sse2,
    "sse2",
    __m128i,
    16,
    _mm_loadu_si128,
    _mm_stream_si128,
    _mm_set1_epi8
);

/// Copies `len` bytes from `src` to `dst` with non-temporal stores, lowest
/// line first. The stores are weakly ordered: an `sfence` must follow.
///
/// # Safety
///
/// `dst` is 64-byte aligned and valid for `len` bytes of writes, `src` for
/// `len` bytes of reads, `len` is a multiple of 64, and if the ranges
/// overlap then `dst <= src`. `how` comes from `Features::select`, which
/// keeps only vector widths the CPU has ([`Movnt::None`] runs SSE2, part of
/// the x86_64 baseline).
#[inline(always)]
pub(crate) unsafe fn copy_fwd(how: Movnt, dst: *mut u8, src: *const u8, len: usize) {
    // SAFETY: the caller's contract is the kernels' contract.
    unsafe {
        match how {
            Movnt::Avx512f => avx512::copy_fwd(dst, src, len),
            Movnt::Avx2 => avx2::copy_fwd(dst, src, len),
            Movnt::Sse2 | Movnt::None => sse2::copy_fwd(dst, src, len),
        }
    }
}

/// Like [`copy_fwd`], highest line first.
///
/// # Safety
///
/// As for [`copy_fwd`], except that overlapping ranges need `dst >= src`.
#[inline(always)]
pub(crate) unsafe fn copy_bwd(how: Movnt, dst: *mut u8, src: *const u8, len: usize) {
    // SAFETY: the caller's contract is the kernels' contract.
    unsafe {
        match how {
            Movnt::Avx512f => avx512::copy_bwd(dst, src, len),
            Movnt::Avx2 => avx2::copy_bwd(dst, src, len),
            Movnt::Sse2 | Movnt::None => sse2::copy_bwd(dst, src, len),
        }
    }
}

/// Fills `len` bytes at `dst` with `byte` using non-temporal stores.
///
/// # Safety
///
/// `dst` is 64-byte aligned and valid for `len` bytes of writes, `len` is a
/// multiple of 64; `how` as for [`copy_fwd`].
#[inline(always)]
pub(crate) unsafe fn fill(how: Movnt, dst: *mut u8, byte: u8, len: usize) {
    // SAFETY: the caller's contract is the kernels' contract.
    unsafe {
        match how {
            Movnt::Avx512f => avx512::fill(dst, byte, len),
            Movnt::Avx2 => avx2::fill(dst, byte, len),
            Movnt::Sse2 | Movnt::None => sse2::fill(dst, byte, len),
        }
    }
}
