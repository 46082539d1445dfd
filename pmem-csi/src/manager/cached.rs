//! A device manager that remembers capacity: reports are reused until a create, delete or expand, or for a short time.

use super::{Capacity, Device, DeviceManager, Fill};
use crate::error::Result;
use crate::record::DeviceRecord;
use crate::volume::{Params, VolumeId};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long a capacity report is reused when nothing changed through the
/// driver (another program may change the PMEM under it).
pub const CAPACITY_TTL: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Cache {
    /// Bumped by every create, delete and expand, whether it succeeded or not.
    generation: u64,
    entries: Vec<(Params, Capacity, Instant)>,
}

/// Delegates everything to `inner`; [`DeviceManager::capacity`] is answered
/// from memory per parameter set until the next change or [`CAPACITY_TTL`].
///
/// A report read while a change runs is answered but not kept, so a stale
/// value is never served after the change finished.
pub struct CachedManager {
    inner: Arc<dyn DeviceManager>,
    ttl: Duration,
    cache: Mutex<Cache>,
}

impl CachedManager {
    /// Wraps `inner` with the default time to live.
    pub fn new(inner: Arc<dyn DeviceManager>) -> Self {
        Self::with_ttl(inner, CAPACITY_TTL)
    }

    /// Wraps `inner`, reusing capacity reports for at most `ttl`.
    pub fn with_ttl(inner: Arc<dyn DeviceManager>, ttl: Duration) -> Self {
        CachedManager {
            inner,
            ttl,
            cache: Mutex::new(Cache::default()),
        }
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a change and forgets every report, even when it failed (it may have changed something).
    fn changing<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let out = f();
        let mut c = self.cache();
        c.generation += 1;
        c.entries.clear();
        out
    }
}

impl DeviceManager for CachedManager {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn create(
        &self,
        id: &VolumeId,
        size: u64,
        params: &Params,
        record: &DeviceRecord,
    ) -> Result<Device> {
        self.changing(|| self.inner.create(id, size, params, record))
    }

    fn create_filled(
        &self,
        id: &VolumeId,
        size: u64,
        params: &Params,
        record: &DeviceRecord,
        fill: &Fill<'_>,
    ) -> Result<Device> {
        self.changing(|| self.inner.create_filled(id, size, params, record, fill))
    }

    fn fill(&self, id: &VolumeId, fill: &Fill<'_>) -> Result<()> {
        self.inner.fill(id, fill)
    }

    fn rescan(&self) -> Result<()> {
        self.inner.rescan()
    }

    fn can_update_record(&self) -> bool {
        self.inner.can_update_record()
    }

    fn update_record(&self, id: &VolumeId, record: &DeviceRecord) -> Result<()> {
        self.inner.update_record(id, record)
    }

    fn min_size(&self, params: &Params) -> Result<u64> {
        self.inner.min_size(params)
    }

    fn delete(&self, id: &VolumeId, erase: bool) -> Result<()> {
        self.changing(|| self.inner.delete(id, erase))
    }

    fn can_expand(&self) -> bool {
        self.inner.can_expand()
    }

    fn expand(&self, id: &VolumeId, size: u64) -> Result<u64> {
        self.changing(|| self.inner.expand(id, size))
    }

    fn list(&self) -> Result<Vec<Device>> {
        self.inner.list()
    }

    fn left_out(&self) -> Option<String> {
        self.inner.left_out()
    }

    fn media(&self, devices: &[Device]) -> Result<crate::media::MediaReport> {
        self.inner.media(devices)
    }

    fn capacity(&self, params: &Params) -> Result<Capacity> {
        let generation = {
            let c = self.cache();
            let fresh = c
                .entries
                .iter()
                .find(|(p, _, at)| p == params && at.elapsed() < self.ttl);
            if let Some((_, cap, _)) = fresh {
                return Ok(*cap);
            }
            c.generation
        };
        let cap = self.inner.capacity(params)?;
        let mut c = self.cache();
        if c.generation == generation {
            c.entries.retain(|(p, _, _)| p != params);
            c.entries.push((params.clone(), cap, Instant::now()));
        }
        Ok(cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manager::NamespaceManager;
    use crate::volume::VolumeName;

    fn sim(dir: &std::path::Path) -> Arc<dyn DeviceManager> {
        Arc::new(NamespaceManager::sim(&[1 << 30], dir.join("sim.json")).unwrap())
    }

    fn rec() -> DeviceRecord {
        DeviceRecord {
            phase: crate::state::Phase::Acknowledged,
            limit: 0,
            params: Params::default(),
            ephemeral: false,
            name: None,
            source: None,
        }
    }

    fn id(name: &str) -> VolumeId {
        VolumeId::for_name(&VolumeName::parse(name).unwrap())
    }

    #[test]
    fn capacity_is_reread_after_each_change_and_not_before() {
        let dir = tempfile::tempdir().unwrap();
        let inner = sim(dir.path());
        let m = CachedManager::new(inner.clone());
        let p = Params::default();
        let before = m.capacity(&p).unwrap();
        // A change behind the cache's back is not seen until the time to live ends...
        inner.create(&id("behind"), 64 << 20, &p, &rec()).unwrap();
        assert_eq!(m.capacity(&p).unwrap(), before);
        // ...a change through it is seen at once.
        m.create(&id("through"), 64 << 20, &p, &rec()).unwrap();
        let after = m.capacity(&p).unwrap();
        assert_eq!(after, inner.capacity(&p).unwrap());
        assert!(after.free < before.free);
        m.delete(&id("through"), true).unwrap();
        assert_eq!(m.capacity(&p).unwrap(), inner.capacity(&p).unwrap());
    }

    #[test]
    fn capacity_expires() {
        let dir = tempfile::tempdir().unwrap();
        let inner = sim(dir.path());
        let m = CachedManager::with_ttl(inner.clone(), Duration::from_millis(50));
        let p = Params::default();
        m.capacity(&p).unwrap();
        inner.create(&id("behind"), 64 << 20, &p, &rec()).unwrap();
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(m.capacity(&p).unwrap(), inner.capacity(&p).unwrap());
    }
}
