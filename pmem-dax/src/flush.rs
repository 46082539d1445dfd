//! The cache-flush and fence instructions, written with `asm!` because
//! `std::arch` has no `clwb` intrinsic. Every `unsafe` here is one
//! instruction on an address the caller proved mapped.

use std::arch::asm;

use crate::config::Flush;

/// Size of a cache line on every x86_64 processor that has these flushes.
pub(crate) const LINE: usize = 64;

/// Writes back every cache line that overlaps `[ptr, ptr + len)`.
///
/// # Safety
///
/// `[ptr, ptr + len)` must lie in memory mapped in this process. Lines that
/// stick out of the range are then mapped too: a line never crosses a page.
#[inline(always)]
pub(crate) unsafe fn flush_range(how: Flush, ptr: *const u8, len: usize) {
    if len == 0 {
        return;
    }
    let end = ptr as usize + len;
    let mut line = ptr as usize & !(LINE - 1);
    match how {
        Flush::Clwb => {
            while line < end {
                // SAFETY: `line` is in the same page as a byte of the
                // caller's mapped range (it is that byte rounded down to its
                // line, or a later line start below `end`). clwb changes no
                // data; the CPU has it (Features::select masks on CPUID).
                unsafe { asm!("clwb [{}]", in(reg) line, options(nostack, preserves_flags)) };
                line += LINE;
            }
        }
        Flush::ClflushOpt => {
            while line < end {
                // SAFETY: as for clwb: mapped line, instruction present.
                unsafe { asm!("clflushopt [{}]", in(reg) line, options(nostack, preserves_flags)) };
                line += LINE;
            }
        }
        Flush::Clflush => {
            while line < end {
                // SAFETY: as for clwb: mapped line; clflush is in every x86_64.
                unsafe { asm!("clflush [{}]", in(reg) line, options(nostack, preserves_flags)) };
                line += LINE;
            }
        }
        Flush::Skip => {}
    }
}

/// Orders every earlier store and flush before every later store
/// (`sfence`). It is also a compiler barrier: no memory access moves across.
#[inline(always)]
pub(crate) fn sfence() {
    // SAFETY: sfence has no operands and only orders stores; SSE is part of
    // the x86_64 baseline.
    unsafe { asm!("sfence", options(nostack, preserves_flags)) };
}
