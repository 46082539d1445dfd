//! Choosing, once per process, how to flush and how to copy: from CPUID,
//! the platform's persistence domain and libpmem's environment switches.

use std::fmt;
use std::sync::OnceLock;

use crate::cpu::CpuFeatures;
use crate::domain;

/// Copies and fills of at least this many bytes use non-temporal stores,
/// unless `PMEM_MOVNT_THRESHOLD` says otherwise.
///
/// One cache line: every whole, aligned line of a copy is stored
/// non-temporally, unaligned heads and tails are stored and flushed.
/// Measured (`cargo bench --bench dax_vs_libpmem`): a non-temporal store
/// of one line followed by `sfence` becomes durable sooner than an ordinary
/// store followed by `clwb` and `sfence` (libpmem's threshold is 256 bytes).
pub const DEFAULT_MOVNT_THRESHOLD: usize = 64;

/// How cache lines are written back to the persistence domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flush {
    /// `clwb`: write back, keep the line cached; needs `sfence`.
    Clwb,
    /// `clflushopt`: write back and evict, weakly ordered; needs `sfence`.
    ClflushOpt,
    /// `clflush`: write back and evict, strongly ordered; needs no fence.
    Clflush,
    /// No flush: the CPU caches are inside the persistence domain (eADR),
    /// or `PMEM_NO_FLUSH=1`. Fences are kept.
    Skip,
}

/// Vector width used for non-temporal (cache-bypassing) stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Movnt {
    /// 64-byte `vmovntdq` with AVX-512F.
    Avx512f,
    /// 32-byte `vmovntdq` with AVX2.
    Avx2,
    /// 16-byte `movntdq` with SSE2.
    Sse2,
    /// Never: ordinary stores followed by flushes (`PMEM_NO_MOVNT=1`).
    None,
}

/// How persistence is done: the flush instruction, the non-temporal store
/// width and threshold, and the switches that were set. [`features`] gives
/// the process-wide choice; [`Features::select`] makes another one (for
/// tests, or to force a path). The persistence primitives are methods of
/// this type; the free functions of the crate use [`features`].
///
/// Fields are private so that a value can only name instructions the
/// running CPU has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Features {
    cpu: CpuFeatures,
    flush_instruction: Flush,
    flush: Flush,
    movnt: Movnt,
    movnt_threshold: usize,
    eadr: bool,
    is_pmem_force: Option<bool>,
}

impl Features {
    /// Applies libpmem's environment switches to `cpu`, looking variables up
    /// with `env` (the process environment for [`features`]). `eadr` says
    /// whether the CPU caches are inside the persistence domain.
    ///
    /// Features in `cpu` that the running processor lacks are dropped, so
    /// that the result is always safe to run.
    pub fn select(cpu: CpuFeatures, eadr: bool, env: impl Fn(&str) -> Option<String>) -> Self {
        let cpu = cpu.intersect(&host_cpu());
        let is = |name: &str, value: &str| env(name).is_some_and(|v| v == value);
        let flush_instruction = if cpu.clwb && !is("PMEM_NO_CLWB", "1") {
            Flush::Clwb
        } else if cpu.clflushopt && !is("PMEM_NO_CLFLUSHOPT", "1") {
            Flush::ClflushOpt
        } else {
            Flush::Clflush
        };
        let skip_flush = if is("PMEM_NO_FLUSH", "1") {
            true
        } else if is("PMEM_NO_FLUSH", "0") {
            false
        } else {
            eadr
        };
        let movnt = if is("PMEM_NO_MOVNT", "1") {
            Movnt::None
        } else if cpu.avx512f && !is("PMEM_AVX512F", "0") && !is("PMEM_AVX", "0") {
            Movnt::Avx512f
        } else if cpu.avx2 && !is("PMEM_AVX", "0") {
            Movnt::Avx2
        } else if cpu.sse2 {
            Movnt::Sse2
        } else {
            Movnt::None
        };
        let movnt_threshold = env("PMEM_MOVNT_THRESHOLD")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(DEFAULT_MOVNT_THRESHOLD);
        let is_pmem_force = match env("PMEM_IS_PMEM_FORCE").as_deref() {
            Some("1") => Some(true),
            Some("0") => Some(false),
            _ => None,
        };
        Features {
            cpu,
            flush_instruction,
            flush: if skip_flush {
                Flush::Skip
            } else {
                flush_instruction
            },
            movnt,
            movnt_threshold,
            eadr,
            is_pmem_force,
        }
    }

    /// What the CPU offers (after masking with the running processor).
    pub fn cpu(&self) -> CpuFeatures {
        self.cpu
    }

    /// The flush instruction the CPU and switches allow, used unless
    /// flushing is skipped.
    pub fn flush_instruction(&self) -> Flush {
        self.flush_instruction
    }

    /// What a flush does: an instruction, or [`Flush::Skip`] under eADR or
    /// `PMEM_NO_FLUSH=1`.
    pub fn flush(&self) -> Flush {
        self.flush
    }

    /// The non-temporal store width.
    pub fn movnt(&self) -> Movnt {
        self.movnt
    }

    /// Copies and fills of at least this many bytes use non-temporal stores.
    pub fn movnt_threshold(&self) -> usize {
        self.movnt_threshold
    }

    /// Whether every NVDIMM region reports `persistence_domain` `cpu_cache`.
    pub fn eadr(&self) -> bool {
        self.eadr
    }

    /// `PMEM_IS_PMEM_FORCE`: `Some(true)` makes every mapping report
    /// persistent memory, `Some(false)` none, `None` when unset.
    pub fn is_pmem_force(&self) -> Option<bool> {
        self.is_pmem_force
    }

    /// Whether a flush must be followed by `sfence` to be ordered.
    pub fn flush_needs_fence(&self) -> bool {
        !matches!(self.flush, Flush::Clflush)
    }
}

fn host_cpu() -> CpuFeatures {
    static HOST: OnceLock<CpuFeatures> = OnceLock::new();
    *HOST.get_or_init(CpuFeatures::detect)
}

impl fmt::Display for Flush {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flush::Clwb => "clwb",
            Flush::ClflushOpt => "clflushopt",
            Flush::Clflush => "clflush",
            Flush::Skip => "none",
        })
    }
}

impl fmt::Display for Movnt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Movnt::Avx512f => "avx512f",
            Movnt::Avx2 => "avx2",
            Movnt::Sse2 => "sse2",
            Movnt::None => "none",
        })
    }
}

impl fmt::Display for Features {
    /// One line, e.g. `flush=clwb fence=sfence movnt=avx512f
    /// movnt_threshold=256 eadr=false is_pmem_force=unset`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let force = match self.is_pmem_force {
            Some(true) => "1",
            Some(false) => "0",
            None => "unset",
        };
        write!(
            f,
            "flush={} fence=sfence movnt={} movnt_threshold={} eadr={} is_pmem_force={}",
            self.flush, self.movnt, self.movnt_threshold, self.eadr, force
        )?;
        if self.flush == Flush::Skip {
            write!(
                f,
                " (flush instruction available: {})",
                self.flush_instruction
            )?;
        }
        Ok(())
    }
}

static FEATURES: OnceLock<Features> = OnceLock::new();

/// What pmem-dax uses on this machine, chosen at first use from CPUID, the
/// NVDIMM regions' persistence domain (sysfs) and the environment switches
/// `PMEM_NO_CLWB`, `PMEM_NO_CLFLUSHOPT`, `PMEM_NO_FLUSH`, `PMEM_NO_MOVNT`,
/// `PMEM_MOVNT_THRESHOLD`, `PMEM_AVX512F`, `PMEM_AVX` and
/// `PMEM_IS_PMEM_FORCE`, which keep libpmem's names and meanings.
pub fn features() -> &'static Features {
    FEATURES.get_or_init(|| {
        Features::select(host_cpu(), domain::platform_is_eadr(), |name| {
            std::env::var(name).ok()
        })
    })
}
