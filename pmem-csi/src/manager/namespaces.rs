//! One namespace per volume, placed by the allocator: the `direct` manager (libndctl) and `sim` (the simulator).

use super::{erase, Capacity, Device, DeviceManager};
use crate::error::{Error, Result};
use crate::state::write_atomic;
use crate::volume::{Params, VolumeId, VolumeMode};
use pmem_ndctl::alloc::{
    AllocatedNamespace, Allocator, Backend, BestFit, CreateRequest, Layout, NdctlBackend, Simulator,
};
use pmem_ndctl::{Context, Mode};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

type PathOf<B> = Box<dyn Fn(&B, &AllocatedNamespace) -> Result<String> + Send + Sync>;
type Save<B> = Box<dyn Fn(&B) -> Result<()> + Send + Sync>;

/// Volumes as namespaces named after their volume id; namespaces with other
/// names are never touched.
pub struct NamespaceManager<B> {
    kind: &'static str,
    alloc: Mutex<Allocator<B>>,
    path_of: PathOf<B>,
    /// Persists the backend after each change (the simulator's saved state).
    save: Option<Save<B>>,
    /// Whether erasing writes to real devices.
    real_devices: bool,
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
        Ok(NamespaceManager {
            kind: "sim",
            alloc: Mutex::new(Allocator::new(sim, Box::new(BestFit))),
            path_of: Box::new(|_, ns| Ok(format!("/dev/sim/{}", ns.dev))),
            save: Some(Box::new(move |sim: &Simulator| {
                write_atomic(&state_file, sim.to_json().as_bytes())
            })),
            real_devices: false,
        })
    }
}

impl NamespaceManager<NdctlBackend> {
    /// The `direct` manager over the machine's labelled regions.
    pub fn direct() -> Result<Self> {
        let backend = NdctlBackend::new(Context::new()?).labelled_only();
        Ok(NamespaceManager {
            kind: "direct",
            alloc: Mutex::new(Allocator::new(backend, Box::new(BestFit))),
            path_of: Box::new(|b: &NdctlBackend, ns| {
                let info = b.context().namespace(&ns.dev)?.info()?;
                info.blockdev
                    .or(info.chardev)
                    .map(|d| format!("/dev/{d}"))
                    .ok_or_else(|| Error::Internal(format!("{}: no device node", ns.dev)))
            }),
            save: None,
            real_devices: true,
        })
    }
}

impl<B: Backend + Send> NamespaceManager<B> {
    fn lock(&self) -> MutexGuard<'_, Allocator<B>> {
        self.alloc.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn device(&self, a: &Allocator<B>, id: &VolumeId, ns: &AllocatedNamespace) -> Result<Device> {
        Ok(Device {
            id: id.clone(),
            size: ns.usable,
            path: (self.path_of)(a.backend(), ns)?,
        })
    }

    fn persist(&self, a: &Allocator<B>) -> Result<()> {
        self.save.as_ref().map_or(Ok(()), |s| s(a.backend()))
    }
}

impl<B: Backend + Send> DeviceManager for NamespaceManager<B> {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn create(&self, id: &VolumeId, size: u64, params: &Params) -> Result<Device> {
        let mut a = self.lock();
        if let Some((_, ns)) = a.find(id.as_str())? {
            return self.device(&a, id, &ns);
        }
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
                name: id.to_string(),
                size: raw,
                layout,
            })?;
            if ns.usable >= size {
                self.persist(&a)?;
                return self.device(&a, id, &ns);
            }
            a.destroy(id.as_str())?;
            raw += step;
        }
        Err(Error::Internal(format!(
            "{id}: no namespace size gives {size} usable bytes"
        )))
    }

    fn delete(&self, id: &VolumeId, erase: bool) -> Result<()> {
        let mut a = self.lock();
        let Some((_, ns)) = a.find(id.as_str())? else {
            return Ok(());
        };
        if erase && self.real_devices {
            let path = (self.path_of)(a.backend(), &ns)?;
            match ns.layout.mode {
                Mode::Devdax => erase::dax_device(&path, ns.usable)?,
                _ => erase::block_device(&path)?,
            }
        }
        a.destroy(id.as_str())?;
        self.persist(&a)
    }

    fn can_expand(&self) -> bool {
        false
    }

    fn expand(&self, id: &VolumeId, size: u64) -> Result<u64> {
        let a = self.lock();
        match a.find(id.as_str())? {
            Some((_, ns)) if ns.usable >= size => Ok(ns.usable),
            Some(_) => Err(Error::OutOfRange(format!(
                "{id}: {} volumes are one namespace each and cannot grow",
                self.kind
            ))),
            None => Err(Error::NotFound(format!("volume {id} has no device"))),
        }
    }

    fn list(&self) -> Result<Vec<Device>> {
        let a = self.lock();
        let mut out = Vec::new();
        for region in a.backend().regions()? {
            for ns in &region.namespaces {
                if let Ok(id) = VolumeId::try_from(ns.name.clone()) {
                    out.push(self.device(&a, &id, ns)?);
                }
            }
        }
        Ok(out)
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
