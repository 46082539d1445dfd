//! Volume operations: create (best fit over the VGs), delete (erase, then remove), grow, and capacity.

use crate::error::{Error, ErrorKind, Result};
use crate::groups::{device_path, lock, State, Volume, VolumeGroups};
use crate::names::VolumeName;
use crate::runner::LvmCommand;
use pmem_ndctl::Size;
use serde::Serialize;

/// Capacity of one VG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VgCapacity {
    /// The VG.
    pub vg: String,
    /// Size, bytes.
    pub size: u64,
    /// Free, bytes.
    pub free: u64,
    /// The largest volume that can be created in it now, bytes.
    pub largest: u64,
    /// Extent size, bytes.
    pub extent_size: u64,
}

/// Capacity of every VG and in total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Capacity {
    /// Per VG.
    pub vgs: Vec<VgCapacity>,
    /// Total size, bytes.
    pub size: u64,
    /// Total free, bytes.
    pub free: u64,
    /// The largest volume that can be created now, bytes (a volume lives in one VG).
    pub largest: u64,
}

fn round_up(size: u64, extent: u64) -> u64 {
    size.div_ceil(extent.max(1)).saturating_mul(extent.max(1))
}

impl VolumeGroups {
    /// Creates volume `name` of at least `size` bytes (rounded up to the
    /// extent size) in the VG where it fits most tightly, and returns it.
    ///
    /// Idempotent: if `name` exists with the same rounded size it is
    /// returned; with another size the answer is [`ErrorKind::AlreadyExists`].
    /// A request no VG can hold is refused ([`ErrorKind::NoSpace`]) without
    /// creating anything.
    pub fn create(&self, name: &VolumeName, size: u64) -> Result<Volume> {
        self.create_tagged(name, size, &[])
    }

    /// [`VolumeGroups::create`], with `tags` put on the LV in the same
    /// `lvcreate` (each checked with [`crate::names::check_tag`] first), so
    /// the volume carries its owner's record from the moment it exists.
    /// An existing volume is returned as it is, whatever its tags. In a
    /// dirty VG the volume also gets [`crate::zeroed::UNZEROED_TAG`].
    pub fn create_tagged(&self, name: &VolumeName, size: u64, tags: &[String]) -> Result<Volume> {
        let object = format!("volume {name}");
        tags.iter().try_for_each(|t| crate::names::check_tag(t))?;
        if size == 0 {
            return Err(Error::invalid(&object, "size must be more than 0 bytes"));
        }
        let _held = self.name_lock(name);
        match self.create_locked(name, size, tags) {
            Err(e) if matches!(e.kind(), ErrorKind::AlreadyExists | ErrorKind::NoSpace) => {
                // The index may be stale (another process used the VGs): reread once.
                self.refresh()?;
                self.create_locked(name, size, tags)
            }
            r => r,
        }
    }

    fn create_locked(&self, name: &VolumeName, size: u64, tags: &[String]) -> Result<Volume> {
        let object = format!("volume {name}");
        let (vg, rounded) = {
            let mut st = lock(&self.state);
            if let Some(v) = st.volumes.get(name) {
                let extent = st.vgs.get(&v.vg).map_or(1, |g| g.extent_size);
                return if round_up(size, extent) == v.size {
                    Ok(v.clone())
                } else {
                    Err(Error::AlreadyExists {
                        object,
                        detail: format!(
                            "it has {} in VG {}, not {}",
                            Size(v.size),
                            v.vg,
                            Size(round_up(size, extent))
                        ),
                    })
                };
            }
            let (vg, rounded) = place(&st, size).ok_or_else(|| no_space(&object, &st, size))?;
            reserve(&mut st, &vg, rounded, true);
            (vg, rounded)
        };
        let lv = name.lv_name();
        let vg_lock = self.vg_lock(&vg);
        let _vg_held = lock(&vg_lock);
        let mut tags = tags.to_vec();
        if lock(&self.state).vgs.get(&vg).is_some_and(|g| g.dirty) {
            // Its extents may hold old bytes: the owner zeroes it before handing it out.
            tags.push(crate::zeroed::UNZEROED_TAG.to_string());
        }
        let mut cmd = LvmCommand::new("lvcreate")
            .opt("--yes")
            .opt_value("--name", lv.as_str())
            .opt_value("--size", format!("{rounded}b"))
            .opt_value("--addtag", name.tag());
        for t in &tags {
            cmd = cmd.opt_value("--addtag", t.clone());
        }
        let cmd = cmd.operand(vg.as_str());
        if let Err(e) = self.runner.run(&object, &cmd) {
            reserve(&mut lock(&self.state), &vg, rounded, false);
            return Err(e);
        }
        let v = Volume {
            name: name.clone(),
            device: device_path(&vg, &lv),
            vg,
            lv,
            size: rounded,
            tags,
        };
        let mut st = lock(&self.state);
        settle(&mut st, &v.vg, rounded);
        if let Some(g) = st.vgs.get_mut(&v.vg) {
            g.volumes += 1;
        }
        st.volumes.insert(name.clone(), v.clone());
        Ok(v)
    }

    /// Deletes volume `name`: overwrites it with zeros, then removes the LV,
    /// so no later volume can read its bytes. Deleting a volume that does
    /// not exist succeeds. A mounted or open volume is refused
    /// ([`ErrorKind::InUse`]) and left intact.
    pub fn delete(&self, name: &VolumeName) -> Result<()> {
        self.remove(name, true)
    }

    /// Removes volume `name` WITHOUT overwriting it: its bytes stay in the
    /// freed extents (for owners that asked not to erase), and its VG is
    /// tagged dirty first (see [`crate::zeroed`]). Otherwise as
    /// [`VolumeGroups::delete`].
    pub fn delete_unerased(&self, name: &VolumeName) -> Result<()> {
        self.remove(name, false)
    }

    fn remove(&self, name: &VolumeName, erase: bool) -> Result<()> {
        let object = format!("volume {name}");
        let _held = self.name_lock(name);
        let Some(v) = self.lookup_or_refresh(name)? else {
            return Ok(());
        };
        let vg_lock = self.vg_lock(&v.vg);
        let _vg_held = lock(&vg_lock);
        let erased = erase
            && match pmem_ndctl::erase::zero_device(&v.device, &mut |_, _| {}) {
                // LV already gone or inactive: its extents keep what they hold.
                Err(e) if e.kind() == pmem_ndctl::ErrorKind::NotFound => false,
                r => r.map(|_| true).map_err(Error::ndctl(&object))?,
            };
        if !erased {
            // Before the extents are freed, so no crash leaves them free and the VG clean.
            self.mark_dirty(&v.vg)?;
        }
        let cmd = LvmCommand::new("lvremove")
            .opt("--yes")
            .operand(format!("{}/{}", v.vg, v.lv));
        match self.runner.run(&object, &cmd) {
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            r => r.map(drop)?,
        }
        let mut st = lock(&self.state);
        st.volumes.remove(name);
        if let Some(g) = st.vgs.get_mut(&v.vg) {
            g.free += v.size;
            g.volumes = g.volumes.saturating_sub(1);
        }
        Ok(())
    }

    /// Grows volume `name` to at least `size` bytes (rounded up to the
    /// extent size) within its VG. A volume already that large is returned
    /// unchanged; the filesystem on it is not resized. In a dirty VG (see
    /// [`crate::zeroed`]) the free extents are zeroed first, so the grown
    /// part reads zeros.
    pub fn grow(&self, name: &VolumeName, size: u64) -> Result<Volume> {
        self.grow_zeroing(name, size, &mut |_, _| {})
    }

    /// [`VolumeGroups::grow`], with `progress(done, total)` following the
    /// zeroing of a dirty VG's free extents.
    pub fn grow_zeroing(
        &self,
        name: &VolumeName,
        size: u64,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Volume> {
        let object = format!("volume {name}");
        let _held = self.name_lock(name);
        self.lookup_or_refresh(name)?;
        let (v, rounded) = {
            let mut st = lock(&self.state);
            let v = st
                .volumes
                .get(name)
                .cloned()
                .ok_or_else(|| Error::NotFound {
                    object: object.clone(),
                })?;
            let g = st.vgs.get(&v.vg).ok_or_else(|| Error::NotFound {
                object: format!("VG {}", v.vg),
            })?;
            let rounded = round_up(size, g.extent_size);
            if rounded <= v.size {
                return Ok(v);
            }
            if g.free < rounded - v.size {
                return Err(Error::NoSpace {
                    object,
                    detail: format!(
                        "growing from {} to {} needs {} more, VG {} has {} free",
                        Size(v.size),
                        Size(rounded),
                        Size(rounded - v.size),
                        v.vg,
                        Size(g.free)
                    ),
                });
            }
            reserve(&mut st, &v.vg, rounded - v.size, true);
            (v, rounded)
        };
        let vg_lock = self.vg_lock(&v.vg);
        let _vg_held = lock(&vg_lock);
        if let Err(e) = self.scrub_locked(&v.vg, progress) {
            reserve(&mut lock(&self.state), &v.vg, rounded - v.size, false);
            return Err(e);
        }
        let cmd = LvmCommand::new("lvextend")
            .opt("--yes")
            .opt_value("--size", format!("{rounded}b"))
            .operand(format!("{}/{}", v.vg, v.lv));
        if let Err(e) = self.runner.run(&object, &cmd) {
            reserve(&mut lock(&self.state), &v.vg, rounded - v.size, false);
            return Err(e);
        }
        let mut st = lock(&self.state);
        settle(&mut st, &v.vg, rounded - v.size);
        let grown = Volume { size: rounded, ..v };
        st.volumes.insert(name.clone(), grown.clone());
        Ok(grown)
    }

    /// Replaces tags of volume `name`: removes `remove` and adds `add` in one
    /// `lvchange` (one metadata commit, so a crash leaves either the old tags
    /// or the new ones). Each tag is checked with [`crate::names::check_tag`].
    pub fn retag(&self, name: &VolumeName, remove: &[String], add: &[String]) -> Result<Volume> {
        let object = format!("volume {name}");
        remove
            .iter()
            .chain(add)
            .try_for_each(|t| crate::names::check_tag(t))?;
        let _held = self.name_lock(name);
        let v = self
            .lookup_or_refresh(name)?
            .ok_or_else(|| Error::NotFound {
                object: object.clone(),
            })?;
        let vg_lock = self.vg_lock(&v.vg);
        let _vg_held = lock(&vg_lock);
        let mut cmd = LvmCommand::new("lvchange");
        for t in remove {
            cmd = cmd.opt_value("--deltag", t.clone());
        }
        for t in add {
            cmd = cmd.opt_value("--addtag", t.clone());
        }
        self.runner
            .run(&object, &cmd.operand(format!("{}/{}", v.vg, v.lv)))?;
        let mut tags: Vec<String> = v.tags.into_iter().filter(|t| !remove.contains(t)).collect();
        for t in add {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        let new = Volume { tags, ..v };
        lock(&self.state).volumes.insert(name.clone(), new.clone());
        Ok(new)
    }

    /// The volume from the index, or, when the index lacks it, from LVM
    /// (another process may have made it).
    fn lookup_or_refresh(&self, name: &VolumeName) -> Result<Option<Volume>> {
        if let Some(v) = self.lookup(name) {
            return Ok(Some(v));
        }
        self.refresh()?;
        Ok(self.lookup(name))
    }

    /// Capacity per VG and in total, reread from LVM with one `vgs` report
    /// (the PVs and volumes it does not need are left as last read).
    pub fn capacity(&self) -> Result<Capacity> {
        self.refresh_vgs()?;
        let st = lock(&self.state);
        let vgs: Vec<VgCapacity> = st
            .vgs
            .values()
            .map(|g| VgCapacity {
                vg: g.name.to_string(),
                size: g.size,
                free: g.free,
                largest: g.free,
                extent_size: g.extent_size,
            })
            .collect();
        Ok(Capacity {
            size: vgs.iter().map(|g| g.size).sum(),
            free: vgs.iter().map(|g| g.free).sum(),
            largest: vgs.iter().map(|g| g.largest).max().unwrap_or(0),
            vgs,
        })
    }
}

/// Best fit: the VG whose free space exceeds the rounded request least (ties: by name).
fn place(st: &State, size: u64) -> Option<(crate::names::VgName, u64)> {
    st.vgs
        .values()
        .filter_map(|g| {
            let r = round_up(size, g.extent_size);
            (g.free >= r).then(|| (g.free - r, g.name.clone(), r))
        })
        .min()
        .map(|(_, vg, r)| (vg, r))
}

/// Takes `bytes` out of (or gives them back to) `vg`'s free space.
/// Takes `bytes` of `vg`'s free space for a create in flight, or gives
/// them back when it failed.
fn reserve(st: &mut State, vg: &crate::names::VgName, bytes: u64, take: bool) {
    if let Some(g) = st.vgs.get_mut(vg) {
        g.free = if take {
            g.free.saturating_sub(bytes)
        } else {
            g.free + bytes
        };
    }
    let pending = st.pending.entry(vg.clone()).or_default();
    *pending = if take {
        *pending + bytes
    } else {
        pending.saturating_sub(bytes)
    };
}

/// A create in flight finished: LVM now counts its bytes itself.
fn settle(st: &mut State, vg: &crate::names::VgName, bytes: u64) {
    if let Some(p) = st.pending.get_mut(vg) {
        *p = p.saturating_sub(bytes);
    }
}

fn no_space(object: &str, st: &State, size: u64) -> Error {
    let largest = st.vgs.values().map(|g| g.free).max().unwrap_or(0);
    Error::NoSpace {
        object: object.to_string(),
        detail: if st.vgs.is_empty() {
            "there is no pmem-rs volume group (run setup first)".into()
        } else {
            format!(
                "{} requested, the largest volume that fits is {}",
                Size(size),
                Size(largest)
            )
        },
    }
}
