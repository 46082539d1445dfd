//! Zeroing space before volumes get it: progress in the log and in metrics, and the gate that holds creates off meanwhile.
//!
//! Every zeroing the driver does (new PVs in the background, a volume over
//! unknown space at creation) is followed by a [`Tracker`] ([`zero`] for a
//! device or range), which logs each 10% (and at least every 5 seconds)
//! and counts bytes in the process-wide
//! [`stats`] the metrics registry exports
//! (`pmem_csi_zeroed_bytes_total`, `pmem_csi_zeroing_pending_bytes`).
//! [`Gate`] tracks background zeroing that volumes must wait for.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// The process-wide zeroing counters (shared with the metrics registry).
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Bytes zeroed since the driver started.
    pub zeroed: Counter<u64, AtomicU64>,
    /// Bytes waiting to be zeroed or being zeroed now.
    pub pending: Gauge<u64, AtomicU64>,
}

/// The process-wide zeroing counters.
pub fn stats() -> &'static Stats {
    static STATS: OnceLock<Stats> = OnceLock::new();
    STATS.get_or_init(Stats::default)
}

/// How often progress is logged at least.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// One zeroing's progress: logged each 10% (and at least every 5 seconds)
/// and counted in [`stats`]; what was not done is taken off the pending
/// gauge when it drops.
#[derive(Debug)]
pub struct Tracker {
    what: String,
    total: u64,
    counted: u64,
    logged_tenth: u64,
    logged_at: Instant,
    start: Instant,
}

impl Tracker {
    /// Starts tracking the zeroing of `total` bytes of `what`.
    pub fn new(what: impl Into<String>, total: u64) -> Self {
        let what = what.into();
        stats().pending.inc_by(total);
        tracing::info!(what = %what, bytes = total, "zeroing");
        let now = Instant::now();
        Tracker {
            what,
            total,
            counted: 0,
            logged_tenth: 0,
            logged_at: now,
            start: now,
        }
    }

    /// `done` of `total` bytes are zeroed.
    pub fn step(&mut self, done: u64, total: u64) {
        let new = done.min(self.total).saturating_sub(self.counted);
        stats().zeroed.inc_by(new);
        stats().pending.dec_by(new);
        self.counted += new;
        let tenth = (done * 10).checked_div(total).unwrap_or(10);
        if tenth > self.logged_tenth || self.logged_at.elapsed() >= LOG_EVERY {
            self.logged_tenth = tenth;
            self.logged_at = Instant::now();
            tracing::info!(what = %self.what, done, total, percent = tenth * 10, "zeroing progress");
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        stats().pending.dec_by(self.total - self.counted);
        let secs = self.start.elapsed().as_secs_f64();
        if self.counted == self.total {
            tracing::info!(
                what = %self.what,
                bytes = self.total,
                seconds = secs,
                mib_per_s = self.total as f64 / (1u64 << 20) as f64 / secs.max(1e-9),
                "zeroed"
            );
        } else {
            tracing::warn!(what = %self.what, done = self.counted, total = self.total, "zeroing stopped early");
        }
    }
}

/// Zeroes `len` bytes at `offset` of `device` (the whole device when
/// `range` is `None`) with [`pmem_ndctl::erase`], tracked as `what`.
/// Returns the bytes zeroed.
pub fn zero(what: &str, device: &Path, range: Option<(u64, u64)>) -> pmem_ndctl::Result<u64> {
    let total = match range {
        Some((_, len)) => len,
        None => pmem_ndctl::erase::device_size(device)?,
    };
    let mut t = Tracker::new(what, total);
    let mut step = |done, total| t.step(done, total);
    match range {
        Some((offset, len)) => pmem_ndctl::erase::zero_range(device, offset, len, &mut step),
        None => pmem_ndctl::erase::zero_device(device, &mut step),
    }
}

/// Background zeroing that new volumes wait for: how much there is and how far it got.
#[derive(Debug, Default)]
pub struct Gate {
    state: Mutex<(u64, u64)>,
    changed: Condvar,
}

impl Gate {
    /// Adds `bytes` to the zeroing under way.
    pub fn add(&self, bytes: u64) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.1 += bytes;
    }

    /// Records `bytes` more zeroed, or given up on.
    pub fn advance(&self, bytes: u64) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.0 = (s.0 + bytes).min(s.1);
        if s.0 == s.1 {
            *s = (0, 0);
        }
        self.changed.notify_all();
    }

    /// Waits up to `patience` for the zeroing under way to finish; `Err`
    /// says how far it is when it has not.
    pub fn wait(&self, patience: Duration) -> Result<(), String> {
        let deadline = Instant::now() + patience;
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while s.1 > 0 {
            let now = Instant::now();
            if now >= deadline {
                let (done, total) = *s;
                return Err(format!(
                    "new PMEM space is being zeroed before volumes may use it: {} of {} MiB done ({}%); retry later",
                    done >> 20,
                    total >> 20,
                    done * 100 / total
                ));
            }
            s = self
                .changed
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn zeroing_is_counted_and_exported() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("not-a-device");
        std::fs::write(&f, [1u8; 4096]).unwrap();
        let before = stats().zeroed.get();
        // A regular file is refused by the erase: counted as given up, nothing zeroed.
        assert!(zero("test file", &f, Some((0, 4096))).is_err());
        let mut t = Tracker::new("test", 1000);
        t.step(600, 1000);
        t.step(1000, 1000);
        drop(t);
        assert!(stats().zeroed.get() >= before + 1000);
        let text = crate::metrics::Metrics::new().render();
        assert!(text.contains("pmem_csi_zeroed_bytes_total"), "{text}");
        assert!(text.contains("pmem_csi_zeroing_pending_bytes"), "{text}");
    }

    #[test]
    fn gate_says_how_far_zeroing_is_then_opens_when_done() {
        let g = Arc::new(Gate::default());
        assert_eq!(g.wait(Duration::ZERO), Ok(()), "nothing to zero: open");
        g.add(4 << 20);
        g.advance(1 << 20);
        let e = g.wait(Duration::from_millis(10)).unwrap_err();
        assert!(e.contains("1 of 4 MiB done (25%)"), "{e}");
        let g2 = g.clone();
        let t = std::thread::spawn(move || g2.wait(Duration::from_secs(30)));
        g.advance(3 << 20);
        assert_eq!(
            t.join().unwrap(),
            Ok(()),
            "a waiter is let through when zeroing ends"
        );
        assert_eq!(g.wait(Duration::ZERO), Ok(()));
    }
}
