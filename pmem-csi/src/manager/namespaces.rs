//! One namespace per volume, placed by the allocator: the `direct` manager (libndctl) and `sim` (the simulator).
//!
//! A new namespace is carved over whatever earlier namespaces left, and a
//! region has no place to record which of its free space is zero; so in
//! `direct` mode every new volume's space is zeroed before the volume is
//! named: it is carved under a placeholder name (`<id>.zeroing`, never a
//! volume), zeroed without holding the allocator, destroyed and carved
//! again, with the same size and layout, under the volume's name (a crash
//! meanwhile leaves only a placeholder, removed at the next start). A
//! clone's copy is written the same way, in place of the zeros, so a
//! namespace named after a volume always holds all of its content. The
//! simulator has no bytes to zero or copy.

use super::{Capacity, Device, DeviceManager, Fill};
use crate::error::{Error, Result};
use crate::record::DeviceRecord;
use crate::state::write_atomic;
use crate::volume::{Params, VolumeId, VolumeMode};
use pmem_ndctl::alloc::{
    AllocatedNamespace, Allocator, Backend, BestFit, CreateRequest, Layout, NdctlBackend, Simulator,
};
use pmem_ndctl::{Context, Mode};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

type PathOf<B> = Box<dyn Fn(&B, &AllocatedNamespace) -> Result<String> + Send + Sync>;
type Save<B> = Box<dyn Fn(&mut B) -> Result<()> + Send + Sync>;
type Fresh<B> = Box<dyn Fn() -> Result<B> + Send + Sync>;

/// Volumes as namespaces named after their volume id and record (see
/// [`crate::record`]); namespaces with other names are never touched.
pub struct NamespaceManager<B> {
    kind: &'static str,
    alloc: Mutex<Allocator<B>>,
    path_of: PathOf<B>,
    /// Persists the backend after each change (the simulator's saved state);
    /// when that fails the backend is put back as last saved, so what is in
    /// memory is what a restart would find.
    save: Option<Save<B>>,
    /// Whether erasing writes to real devices.
    real_devices: bool,
    /// A backend that reads the machine anew (libndctl caches what it saw).
    fresh: Option<Fresh<B>>,
    /// Label-less regions left out (direct mode cannot carve them): see
    /// [`DeviceManager::left_out`].
    label_less: Vec<String>,
}

/// The regions namespaces cannot be carved from because they have no labels.
fn label_less_regions(ctx: &Context) -> Vec<String> {
    ctx.regions()
        .filter(|r| {
            r.is_enabled()
                && !r.is_labelled()
                && matches!(r.region_type(), Ok(pmem_ndctl::RegionType::Pmem))
        })
        .map(|r| r.name())
        .collect()
}

fn layout(params: &Params) -> Layout {
    Layout::new(match params.mode {
        VolumeMode::Fsdax => Mode::Fsdax,
        VolumeMode::Devdax => Mode::Devdax,
    })
}

impl NamespaceManager<Simulator> {
    /// The `sim` manager: regions of `sizes` bytes, its state kept in
    /// `state_file` (reloaded on restart, so volumes survive it).
    pub fn sim(sizes: &[u64], state_file: PathBuf) -> Result<Self> {
        let sim = match std::fs::read_to_string(&state_file) {
            Ok(text) => Simulator::from_json(&text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Simulator::from_sizes(sizes)?,
            Err(e) => return Err(Error::Internal(format!("{}: {e}", state_file.display()))),
        };
        let saved = Mutex::new(sim.to_json());
        Ok(NamespaceManager {
            kind: "sim",
            alloc: Mutex::new(Allocator::new(sim, Box::new(BestFit))),
            path_of: Box::new(|_, ns| Ok(format!("/dev/sim/{}", ns.dev))),
            save: Some(Box::new(move |sim: &mut Simulator| {
                let mut last = saved.lock().unwrap_or_else(PoisonError::into_inner);
                let now = sim.to_json();
                match write_atomic(&state_file, now.as_bytes()) {
                    Ok(()) => {
                        *last = now;
                        Ok(())
                    }
                    Err(e) => {
                        *sim = Simulator::from_json(&last)?;
                        Err(e)
                    }
                }
            })),
            real_devices: false,
            fresh: None,
            label_less: Vec::new(),
        })
    }
}

impl NamespaceManager<NdctlBackend> {
    /// The `direct` manager over the machine's labelled regions.
    pub fn direct() -> Result<Self> {
        let ctx = Context::new()?;
        let label_less = label_less_regions(&ctx);
        for r in &label_less {
            tracing::warn!(region = %r, fix = LABEL_FIX, "label-less region: direct mode cannot carve namespaces from it");
        }
        let backend = NdctlBackend::new(ctx).labelled_only();
        let mut alloc = Allocator::new(backend, Box::new(BestFit));
        // Placeholders a crash left while their space was zeroed: destroyed, the space is free again.
        let left: Vec<String> = alloc
            .backend()
            .regions()?
            .into_iter()
            .flat_map(|r| r.namespaces)
            .map(|ns| ns.name)
            .filter(|n| is_placeholder(n))
            .collect();
        for name in left {
            tracing::info!(namespace = %name, "removing a placeholder left while its space was being zeroed");
            alloc.destroy(&name)?;
        }
        Ok(NamespaceManager {
            kind: "direct",
            alloc: Mutex::new(alloc),
            path_of: Box::new(|b: &NdctlBackend, ns| {
                let info = b.context().namespace(&ns.dev)?.info()?;
                info.blockdev
                    .or(info.chardev)
                    .map(|d| format!("/dev/{d}"))
                    .ok_or_else(|| Error::Internal(format!("{}: no device node", ns.dev)))
            }),
            save: None,
            real_devices: true,
            fresh: Some(Box::new(|| {
                Ok(NdctlBackend::new(Context::new()?).labelled_only())
            })),
            label_less,
        })
    }
}

impl<B: Backend + Send> NamespaceManager<B> {
    fn lock(&self) -> MutexGuard<'_, Allocator<B>> {
        self.alloc.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A backend to read device nodes from, made afresh where the manager
    /// can: libndctl caches a dax personality's character device from its
    /// first use, which a namespace made since may outdate (and a stale
    /// node would name another volume's device).
    fn reader(&self) -> Result<Option<B>> {
        self.fresh.as_ref().map(|f| f()).transpose()
    }

    /// Volume `ns`'s device, its node read through `b` (see [`Self::reader`]).
    fn device(&self, b: &B, ns: &AllocatedNamespace) -> Result<Option<Device>> {
        let Some((id, record)) = DeviceRecord::parse_namespace_name(&ns.name) else {
            return Ok(None);
        };
        // A disabled namespace has no device node: its volume is missing until it is enabled.
        let path = (self.path_of)(b, ns)
            .map_err(|e| Error::Unavailable(format!("namespace {} of volume {id}: {e}", ns.dev)))?;
        Ok(Some(Device {
            id,
            size: ns.usable,
            path,
            record,
        }))
    }

    /// The namespace of volume `id`, if there is one.
    fn find(&self, a: &Allocator<B>, id: &VolumeId) -> Result<Option<AllocatedNamespace>> {
        for region in a.backend().regions()? {
            for ns in region.namespaces {
                if DeviceRecord::parse_namespace_name(&ns.name).is_some_and(|(i, _)| i == *id) {
                    return Ok(Some(ns));
                }
            }
        }
        Ok(None)
    }

    /// Creates namespace `name` with at least `size` usable bytes for `params`.
    fn carve(
        &self,
        a: &mut Allocator<B>,
        name: &str,
        size: u64,
        params: &Params,
    ) -> Result<AllocatedNamespace> {
        let layout = layout(params);
        let models = a.models()?;
        let first = models
            .first()
            .ok_or_else(|| Error::ResourceExhausted("no PMEM region to place volumes in".into()))?;
        let step = layout.size_align(first.geometry());
        let mut raw = layout
            .raw_for_usable(first.geometry(), 0, size)
            .unwrap_or(size);
        // The usable size depends on where the namespace lands; grow until it suffices.
        for _ in 0..8 {
            let ns = a.create(&CreateRequest {
                name: name.to_string(),
                size: raw,
                layout,
            })?;
            if ns.usable >= size {
                // Not saved: the namespace is gone again (the simulator is as last saved).
                self.persist(a)?;
                return Ok(ns);
            }
            a.destroy(name)?;
            raw += step;
        }
        Err(Error::Internal(format!(
            "{name}: no namespace size gives {size} usable bytes"
        )))
    }

    fn persist(&self, a: &mut Allocator<B>) -> Result<()> {
        self.save.as_ref().map_or(Ok(()), |s| s(a.backend_mut()))
    }
}

/// The name of the namespace that holds volume `id`'s space while it is
/// zeroed: not a volume name (never listed as one), and removed when found.
fn placeholder_name(id: &VolumeId) -> String {
    format!("{id}.{PLACEHOLDER}")
}

const PLACEHOLDER: &str = "zeroing";

/// What makes a label-less region usable by direct mode (or use lvm mode, which converts it).
const LABEL_FIX: &str = "give the DIMMs labels: `ndctl disable-region all && ndctl init-labels -f all && ndctl enable-region all` (this discards what the regions hold), or run the driver with --device-manager lvm, which uses label-less regions as they are";

/// How often a create writes a new place: once without the allocator held, then with it
/// held until the kernel puts the namespace where the allocator planned.
const PLACEMENT_ATTEMPTS: usize = 4;

/// Whether `name` is a placeholder this manager made.
fn is_placeholder(name: &str) -> bool {
    name.split_once('.')
        .is_some_and(|(id, rest)| rest == PLACEHOLDER && VolumeId::try_from(id.to_string()).is_ok())
}

fn device_of(d: Option<Device>, ns: &AllocatedNamespace) -> Result<Device> {
    d.ok_or_else(|| Error::Internal(format!("namespace {} lost its volume name", ns.dev)))
}

impl<B: Backend + Send> NamespaceManager<B> {
    /// Creates the namespace of volume `id`; on real devices its space is
    /// written under the placeholder name: zeroed, or by `fill` when given.
    fn create_with(
        &self,
        id: &VolumeId,
        size: u64,
        params: &Params,
        record: &DeviceRecord,
        fill: Option<&Fill<'_>>,
    ) -> Result<Device> {
        let name = record.namespace_name(id);
        if !self.real_devices {
            let mut a = self.lock();
            if let Some(ns) = self.find(&a, id)? {
                return device_of(self.device(a.backend(), &ns)?, &ns);
            }
            let ns = self.carve(&mut a, &name, size, params)?;
            return device_of(self.device(a.backend(), &ns)?, &ns);
        }
        // Real devices: the space is carved first under a placeholder name,
        // zeroed, then given the volume's name where the allocator will put
        // it. The first time the allocator is not held while the space is
        // written (other volumes come and go meanwhile); if that moved the
        // free space, the new place is written with the allocator held, as a
        // delete holds it while erasing, so it cannot move again.
        let placeholder = placeholder_name(id);
        for attempt in 0..PLACEMENT_ATTEMPTS {
            let (zone, request, path, held) = {
                let mut a = self.lock();
                if let Some(ns) = self.find(&a, id)? {
                    let fresh = self.reader()?;
                    return device_of(
                        self.device(fresh.as_ref().unwrap_or(a.backend()), &ns)?,
                        &ns,
                    );
                }
                if a.find(&placeholder)?.is_some() {
                    a.destroy(&placeholder)?; // Left by a crash: the space is unknown again.
                }
                let ns = self.carve(&mut a, &placeholder, size, params)?;
                let zone = a
                    .find(&placeholder)?
                    .map(|(region, ns)| (region, ns.offset))
                    .ok_or_else(|| {
                        Error::Internal(format!("{placeholder}: gone after creation"))
                    })?;
                let fresh = self.reader()?;
                let path = (self.path_of)(fresh.as_ref().unwrap_or(a.backend()), &ns)?;
                let request = CreateRequest {
                    name: name.clone(),
                    size: ns.size,
                    layout: ns.layout,
                };
                (zone, request, path, (attempt > 0).then_some(a))
            };
            let written = match fill {
                Some(f) => f(Path::new(&path), false),
                None => crate::zeroing::zero(&format!("new volume {id}"), Path::new(&path), None)
                    .map(|_| ())
                    .map_err(|e| Error::Internal(format!("{id}: space not zeroed: {e}"))),
            };
            let mut a = held.unwrap_or_else(|| self.lock());
            a.destroy(&placeholder)?;
            written?;
            let plan = a.plan(&request)?;
            if (plan.region_name.as_str(), plan.offset) != (zone.0.as_str(), zone.1) {
                tracing::info!(volume = %id, "free space moved while it was zeroed: zeroing where the volume goes now");
                continue;
            }
            let ns = a.create(&request)?;
            let landed = a.find(&name)?.map(|(region, ns)| (region, ns.offset));
            if landed.as_ref() == Some(&zone) {
                let fresh = self.reader()?;
                return device_of(
                    self.device(fresh.as_ref().unwrap_or(a.backend()), &ns)?,
                    &ns,
                );
            }
            // The kernel put it elsewhere than planned: not handed out, tried again.
            a.destroy(&name)?;
        }
        Err(Error::Unavailable(format!(
            "{id}: the namespace never landed where its space was written ({PLACEMENT_ATTEMPTS} times); retry"
        )))
    }
}

impl<B: Backend + Send> DeviceManager for NamespaceManager<B> {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn create(
        &self,
        id: &VolumeId,
        size: u64,
        params: &Params,
        record: &DeviceRecord,
    ) -> Result<Device> {
        self.create_with(id, size, params, record, None)
    }

    /// On real devices the content is written under the placeholder name,
    /// so a namespace named after a volume always holds all of it.
    fn create_filled(
        &self,
        id: &VolumeId,
        size: u64,
        params: &Params,
        record: &DeviceRecord,
        fill: &Fill<'_>,
    ) -> Result<Device> {
        self.create_with(id, size, params, record, Some(fill))
    }

    /// The simulator has no bytes to write.
    fn fill(&self, id: &VolumeId, fill: &Fill<'_>) -> Result<()> {
        if self.real_devices {
            super::fill_listed(self, id, fill)
        } else {
            Ok(())
        }
    }

    fn can_update_record(&self) -> bool {
        !self.real_devices
    }

    fn update_record(&self, id: &VolumeId, record: &DeviceRecord) -> Result<()> {
        let mut a = self.lock();
        let ns = self
            .find(&a, id)?
            .ok_or_else(|| Error::NotFound(format!("volume {id} has no device")))?;
        let name = record.namespace_name(id);
        if ns.name == name {
            return Ok(());
        }
        a.rename(&ns.name, &name)?;
        self.persist(&mut a)
    }

    fn min_size(&self, params: &Params) -> Result<u64> {
        let a = self.lock();
        let layout = layout(params);
        Ok(a.models()?
            .iter()
            .filter_map(|m| {
                let geo = m.geometry();
                layout.usable(geo, 0, layout.min_size(geo))
            })
            .min()
            .unwrap_or(0))
    }

    fn delete(&self, id: &VolumeId, erase: bool) -> Result<()> {
        let mut a = self.lock();
        let Some(ns) = self.find(&a, id)? else {
            return Ok(());
        };
        if erase && self.real_devices {
            let fresh = self.reader()?;
            let path = (self.path_of)(fresh.as_ref().unwrap_or(a.backend()), &ns)?;
            pmem_ndctl::erase::zero_device(std::path::Path::new(&path), &mut |_, _| {})?;
        }
        a.destroy(&ns.name)?;
        self.persist(&mut a)
    }

    fn can_expand(&self) -> bool {
        false
    }

    fn expand(&self, id: &VolumeId, size: u64) -> Result<u64> {
        let a = self.lock();
        match self.find(&a, id)? {
            Some(ns) if ns.usable >= size => Ok(ns.usable),
            Some(_) => Err(Error::OutOfRange(format!(
                "{id}: {} volumes are one namespace each and cannot grow",
                self.kind
            ))),
            None => Err(Error::NotFound(format!("volume {id} has no device"))),
        }
    }

    fn list(&self) -> Result<Vec<Device>> {
        let a = self.lock();
        let fresh = self.reader()?;
        let reading = fresh.as_ref().unwrap_or(a.backend());
        let mut out = Vec::new();
        for region in a.backend().regions()? {
            for ns in &region.namespaces {
                match self.device(reading, ns) {
                    Ok(d) => out.extend(d),
                    Err(Error::Unavailable(_)) => {} // Reported missing by the driver.
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }

    fn rescan(&self) -> Result<()> {
        if let Some(fresh) = &self.fresh {
            let backend = fresh()?;
            *self.lock().backend_mut() = backend;
        }
        Ok(())
    }

    fn left_out(&self) -> Option<String> {
        (!self.label_less.is_empty()).then(|| {
            format!(
                "label-less regions cannot be carved into namespaces: {} ({LABEL_FIX})",
                self.label_less.join(", ")
            )
        })
    }

    fn media(&self, devices: &[Device]) -> Result<crate::media::MediaReport> {
        if !self.real_devices {
            return Ok(crate::media::MediaReport::default());
        }
        let paths: Vec<String> = devices.iter().map(|d| d.path.clone()).collect();
        Ok(crate::media::read(&paths)?)
    }

    fn capacity(&self, params: &Params) -> Result<Capacity> {
        let a = self.lock();
        let layout = layout(params);
        let report = a.capacity()?;
        let max_possible = a
            .models()?
            .iter()
            .filter_map(|m| {
                let geo = m.geometry();
                let raw = geo.size - geo.size % layout.size_align(geo);
                layout.usable(geo, 0, raw)
            })
            .max()
            .unwrap_or(0);
        Ok(Capacity {
            total: report.total.size,
            free: report.total.free,
            max_volume: report.total.largest.get(layout.mode),
            max_possible,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Phase;
    use crate::volume::VolumeName;

    fn id(name: &str) -> VolumeId {
        VolumeId::for_name(&VolumeName::parse(name).unwrap())
    }

    fn rec(phase: Phase) -> DeviceRecord {
        DeviceRecord {
            phase,
            limit: 0,
            params: Params::default(),
            ephemeral: false,
            name: None,
            source: None,
        }
    }

    fn ids(m: &NamespaceManager<Simulator>) -> Vec<VolumeId> {
        let mut v: Vec<VolumeId> = m.list().unwrap().into_iter().map(|d| d.id).collect();
        v.sort();
        v
    }

    #[test]
    fn failed_save_keeps_every_acknowledged_volume() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sim-regions.json");
        let m = NamespaceManager::sim(&[1 << 30], file.clone()).unwrap();
        let p = Params::default();
        m.create(&id("a"), 64 << 20, &p, &rec(Phase::Pending))
            .unwrap();
        m.update_record(&id("a"), &rec(Phase::Acknowledged))
            .unwrap();
        // The state file cannot be replaced: every save fails from here on.
        std::fs::remove_file(&file).unwrap();
        std::fs::create_dir(&file).unwrap();
        std::fs::write(file.join("keep"), b"x").unwrap();
        assert!(m
            .create(&id("b"), 64 << 20, &p, &rec(Phase::Pending))
            .is_err());
        assert!(m.delete(&id("a"), true).is_err());
        assert_eq!(
            ids(&m),
            vec![id("a")],
            "memory is what a restart would find"
        );
        // Saving works again: the acknowledged volume is still there, whole.
        std::fs::remove_dir_all(&file).unwrap();
        m.create(&id("c"), 64 << 20, &p, &rec(Phase::Pending))
            .unwrap();
        let again = NamespaceManager::sim(&[1 << 30], file).unwrap();
        let mut want = vec![id("a"), id("c")];
        want.sort();
        assert_eq!(ids(&again), want);
        let a = again
            .list()
            .unwrap()
            .into_iter()
            .find(|d| d.id == id("a"))
            .unwrap();
        assert_eq!(a.record.unwrap().phase, Phase::Acknowledged);
    }

    /// Only a fake can move the free space at will while a new volume's space is written: the
    /// simulator, treated as real devices, with a fill that deletes a volume whenever it runs
    /// without the allocator held. Each delete frees a region tighter than the last place.
    #[test]
    fn fake_devices_free_space_moving_while_written_is_written_once_more_with_the_allocator_held() {
        const GIB: u64 = 1 << 30;
        let dir = tempfile::tempdir().unwrap();
        let sizes = [8 * GIB, 6 * GIB, 5 * GIB, 4 * GIB, 3 * GIB, 2 * GIB];
        let mut m = NamespaceManager::sim(&sizes, dir.path().join("sim.json")).unwrap();
        let p = Params::default();
        // Regions 1..5 full but for a hole smaller than the new volume.
        let fillers: Vec<VolumeId> = (1..sizes.len())
            .map(|i| id(&format!("filler-{i}")))
            .collect();
        for (f, size) in fillers.iter().zip(&sizes[1..]) {
            m.create(f, size - 256 * (1 << 20), &p, &rec(Phase::Acknowledged))
                .unwrap();
        }
        let (first_freed, _) = m
            .lock()
            .find(&rec(Phase::Acknowledged).namespace_name(&fillers[0]))
            .unwrap()
            .unwrap();
        m.real_devices = true;
        let m = m;
        let calls = std::sync::Mutex::new(Vec::new());
        let fill = |_: &Path, _| {
            let mut calls = calls.lock().unwrap();
            let held = m.alloc.try_lock().is_err();
            if !held {
                let next = &fillers[calls.len()];
                m.delete(next, false).unwrap();
            }
            calls.push(held);
            Ok(())
        };
        let new = id("new");
        m.create_filled(&new, GIB / 2, &p, &rec(Phase::Pending), &fill)
            .expect("created although the free space moved");
        assert_eq!(
            *calls.lock().unwrap(),
            vec![false, true],
            "written once without the allocator, once more with it held"
        );
        let a = m.lock();
        let (region, _) = a
            .find(&rec(Phase::Pending).namespace_name(&new))
            .unwrap()
            .unwrap();
        assert_eq!(
            region, first_freed,
            "the volume is where the first delete made room"
        );
        assert!(
            a.find(&placeholder_name(&new)).unwrap().is_none(),
            "no placeholder left"
        );
    }
}
