//! What this processor offers for persistence: cache-flush instructions
//! (read from CPUID) and vector widths usable for non-temporal stores.

/// Instructions found on this CPU, before any environment switch applies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    /// `clflush` (CPUID.1:EDX bit 19).
    pub clflush: bool,
    /// `clflushopt` (CPUID.(7,0):EBX bit 23).
    pub clflushopt: bool,
    /// `clwb` (CPUID.(7,0):EBX bit 24).
    pub clwb: bool,
    /// SSE2 non-temporal 16-byte stores (always present on x86_64).
    pub sse2: bool,
    /// AVX2, with the OS saving the 256-bit registers.
    pub avx2: bool,
    /// AVX-512 Foundation, with the OS saving the 512-bit registers.
    pub avx512f: bool,
}

impl CpuFeatures {
    /// Reads the features of the CPU this code runs on.
    pub fn detect() -> Self {
        use std::arch::x86_64::{__cpuid, __cpuid_count};
        // SAFETY: the CPUID instruction exists on every x86_64 processor;
        // it only reads identification registers. (Newer toolchains mark
        // these intrinsics safe, hence the allow.)
        #[allow(unused_unsafe)]
        let (max_leaf, leaf1_edx) = unsafe { (__cpuid(0).eax, __cpuid(1).edx) };
        let leaf7_ebx = if max_leaf >= 7 {
            // SAFETY: as above; leaf 7 exists since max_leaf >= 7.
            #[allow(unused_unsafe)]
            unsafe {
                __cpuid_count(7, 0).ebx
            }
        } else {
            0
        };
        CpuFeatures {
            clflush: leaf1_edx & (1 << 19) != 0,
            clflushopt: leaf7_ebx & (1 << 23) != 0,
            clwb: leaf7_ebx & (1 << 24) != 0,
            sse2: std::arch::is_x86_feature_detected!("sse2"),
            // These also check, via XGETBV, that the OS saves the wide
            // registers on context switches.
            avx2: std::arch::is_x86_feature_detected!("avx2"),
            avx512f: std::arch::is_x86_feature_detected!("avx512f"),
        }
    }

    /// The features present in both.
    pub fn intersect(&self, other: &CpuFeatures) -> CpuFeatures {
        CpuFeatures {
            clflush: self.clflush && other.clflush,
            clflushopt: self.clflushopt && other.clflushopt,
            clwb: self.clwb && other.clwb,
            sse2: self.sse2 && other.sse2,
            avx2: self.avx2 && other.avx2,
            avx512f: self.avx512f && other.avx512f,
        }
    }
}
