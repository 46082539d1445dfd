//! A mapping's source (a file on a DAX filesystem, or a device-dax device) and its media
//! health, read from sysfs: the bad blocks within it, and the unsafe-shutdown count of the
//! DIMMs behind it (what libpmem2 offers as `pmem2_badblock_*` and
//! `pmem2_source_device_usc`).

use std::fs::{self, File};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::devdax::DevDax;
use crate::domain::region_of;
use crate::error::{Error, Result};
use crate::sys::{self, Extent};

const SECTOR: u64 = 512;

/// A run of bad bytes within a source (a file, or a device-dax device), in bytes from
/// its start. Reading it fails (or raises `SIGBUS` through a mapping) until it is
/// rewritten or repaired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub struct BadRange {
    /// Offset of the first bad byte.
    pub offset: u64,
    /// Number of bad bytes (a multiple of 512).
    pub len: u64,
}

impl BadRange {
    /// `len` bad bytes at `offset`.
    pub fn new(offset: u64, len: u64) -> Self {
        BadRange { offset, len }
    }

    fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }
}

/// Where a mapping's bytes live: a regular file (on a block device, DAX-mounted for
/// persistent memory) or a device-dax character device.
///
/// An application that keeps a pool in persistent memory can refuse to trust it after an
/// unsafe shutdown: store the count with the pool, mark the pool in use while it is open,
/// and compare on the next open.
///
/// ```no_run
/// use pmem_dax::{ErrorKind, MapOptions, Source};
///
/// let path = "/mnt/pmem/pool";
/// // SAFETY: this process is the pool's only user (`lock`).
/// let mut pool = unsafe { MapOptions::new().create(64 << 20).lock(true).map(path) }?;
/// let usc = match Source::open(path)?.unsafe_shutdown_count() {
///     Ok(n) => Some(n),
///     Err(e) if e.kind() == ErrorKind::NotSupported => None, // DIMMs that do not count
///     Err(e) => return Err(e),
/// };
/// // Header: [unsafe-shutdown count when opened, 1 while open].
/// let [stored, in_use] = *pool.view::<[u64; 2]>(0)?;
/// if in_use == 1 && usc.is_some_and(|n| n != stored) {
///     panic!("{path}: an unsafe shutdown happened while the pool was open; recover it first");
/// }
/// *pool.view_mut::<[u64; 2]>(0)? = [usc.unwrap_or(0), 1];
/// pool.persist(0, 16)?;
/// // ... use the pool; on a clean close:
/// pool.view_mut::<[u64; 2]>(0)?[1] = 0;
/// pool.persist(0, 16)?;
/// # Ok::<(), pmem_dax::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    path: PathBuf,
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// A regular file; `sys` is the sysfs directory of the block device holding it.
    File { sys: PathBuf },
    /// A device-dax device; `sys` is its sysfs directory.
    DevDax { sys: PathBuf },
}

impl Source {
    /// Looks `path` up: a regular file, or a device-dax character device.
    pub fn open(path: impl AsRef<Path>) -> Result<Source> {
        let path = path.as_ref();
        let meta = fs::metadata(path).map_err(|e| Error::io(path, "stat", e))?;
        let kind = if meta.is_file() {
            let dev = meta.dev();
            Kind::File {
                sys: PathBuf::from(format!(
                    "/sys/dev/block/{}:{}",
                    libc::major(dev),
                    libc::minor(dev)
                )),
            }
        } else if meta.file_type().is_char_device() {
            Kind::DevDax {
                sys: DevDax::open(path)?.sys().to_owned(),
            }
        } else {
            return Err(Error::NotSupported {
                path: path.to_owned(),
                reason: "neither a regular file nor a device-dax device".into(),
            });
        };
        Ok(Source {
            path: path.to_owned(),
            kind,
        })
    }

    /// The path given to [`Source::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sys(&self) -> &Path {
        match &self.kind {
            Kind::File { sys } | Kind::DevDax { sys } => sys,
        }
    }

    /// The sum of the unsafe (dirty) shutdown counts of the DIMMs under the source's
    /// region (each DIMM's `nfit/dirty_shutdown`), as `pmem2_source_device_usc` gives it.
    ///
    /// The count only grows; a change between two opens of a pool means writes in flight
    /// may have been lost meanwhile. An error of kind
    /// [`NotSupported`](crate::ErrorKind::NotSupported) when the source is not on an
    /// NVDIMM region or a DIMM does not report the count (QEMU's emulated NVDIMMs do not).
    pub fn unsafe_shutdown_count(&self) -> Result<u64> {
        let region = self.region()?;
        let bus = region.parent().unwrap_or(Path::new("/"));
        let mut sum = 0u64;
        for dimm in region_dimms(&region)? {
            let attr = bus.join(&dimm).join("nfit").join("dirty_shutdown");
            if !attr.exists() {
                return Err(Error::NotSupported {
                    path: self.path.clone(),
                    reason: format!("{dimm} does not report its unsafe-shutdown count"),
                });
            }
            sum = sum.saturating_add(read_number(&attr)?);
        }
        Ok(sum)
    }

    /// The bad ranges of the source, in bytes from its start, sorted and merged: for a
    /// file, the parts of its extents (found with `FIEMAP`) that the block device lists
    /// as bad; for a device-dax device, its region's bad blocks that fall into it.
    ///
    /// An error of kind [`NotSupported`](crate::ErrorKind::NotSupported) when the
    /// device keeps no bad-block list (not persistent memory); reading a region's
    /// addresses needs root.
    pub fn badblocks(&self) -> Result<Vec<BadRange>> {
        match &self.kind {
            Kind::File { sys } => {
                let device = block_device_bad_ranges(sys).map_err(|e| self.unsupported(e))?;
                if device.is_empty() {
                    return Ok(Vec::new());
                }
                let file = File::open(&self.path).map_err(|e| Error::io(&self.path, "open", e))?;
                let extents =
                    sys::extents(&file).map_err(|e| Error::io(&self.path, "FIEMAP", e))?;
                Ok(file_ranges(&extents, &device))
            }
            Kind::DevDax { sys } => {
                devdax_bad_ranges(sys, &self.region()?).map_err(|e| self.unsupported(e))
            }
        }
    }

    /// The region holding the source; `NotSupported` when there is none.
    fn region(&self) -> Result<PathBuf> {
        region_of(self.sys()).map_err(|e| Error::NotSupported {
            path: self.path.clone(),
            reason: e.to_string(),
        })
    }

    /// Names this source in a `NotSupported` error about one of its sysfs directories.
    fn unsupported(&self, e: Error) -> Error {
        match e {
            Error::NotSupported { path, reason } => Error::NotSupported {
                path: self.path.clone(),
                reason: format!("{}: {reason}", path.display()),
            },
            other => other,
        }
    }
}

fn read_text(attr: &Path) -> Result<String> {
    fs::read_to_string(attr).map_err(|e| Error::Sysfs {
        path: attr.to_owned(),
        reason: format!("cannot read: {e}"),
    })
}

/// A decimal or `0x` hexadecimal number attribute.
fn read_number(attr: &Path) -> Result<u64> {
    let text = read_text(attr)?;
    let t = text.trim();
    let n = match t.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse(),
    };
    n.map_err(|_| Error::Sysfs {
        path: attr.to_owned(),
        reason: format!("not a number: {t:?}"),
    })
}

/// The DIMMs of a region, from its `mappingN` attributes (`nmem0,offset,length,position`).
fn region_dimms(region: &Path) -> Result<Vec<String>> {
    let count = read_number(&region.join("mappings"))?;
    (0..count)
        .map(|i| {
            let attr = region.join(format!("mapping{i}"));
            let text = read_text(&attr)?;
            match text.split(',').next().map(str::trim) {
                Some(d) if d.starts_with("nmem") && !d.contains('/') && !d.contains("..") => {
                    Ok(d.to_owned())
                }
                _ => Err(Error::Sysfs {
                    path: attr,
                    reason: format!("not a DIMM mapping: {:?}", text.trim()),
                }),
            }
        })
        .collect()
}

/// Parses a `badblocks` attribute (`sector count` per line) into byte ranges.
fn parse_badblocks(attr: &Path, text: &str) -> Result<Vec<BadRange>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut it = l.split_whitespace().map(str::parse::<u64>);
            match (it.next(), it.next(), it.next()) {
                (Some(Ok(s)), Some(Ok(n)), None) => Ok(BadRange::new(
                    s.saturating_mul(SECTOR),
                    n.saturating_mul(SECTOR),
                )),
                _ => Err(Error::Sysfs {
                    path: attr.to_owned(),
                    reason: format!("not a bad-block line: {l:?}"),
                }),
            }
        })
        .collect()
}

/// The `badblocks` list of the directory `dir`; `NotSupported` when it keeps none.
fn badblocks_of(dir: &Path) -> Result<Vec<BadRange>> {
    let attr = dir.join("badblocks");
    if !attr.exists() {
        return Err(Error::NotSupported {
            path: dir.to_owned(),
            reason: "the device keeps no bad-block list (not persistent memory)".into(),
        });
    }
    parse_badblocks(&attr, &read_text(&attr)?)
}

/// Bad byte ranges of a block device (`sys`, its sysfs directory), relative to its start;
/// for a partition, the disk's list shifted to the partition and cut to it.
fn block_device_bad_ranges(sys: &Path) -> Result<Vec<BadRange>> {
    if !sys.join("partition").exists() {
        return badblocks_of(sys);
    }
    let real = fs::canonicalize(sys).map_err(|e| Error::Sysfs {
        path: sys.to_owned(),
        reason: format!("cannot resolve: {e}"),
    })?;
    let disk = real.parent().unwrap_or(Path::new("/"));
    let start = read_number(&sys.join("start"))?.saturating_mul(SECTOR);
    let size = read_number(&sys.join("size"))?.saturating_mul(SECTOR);
    Ok(clip(&badblocks_of(disk)?, start, size))
}

/// Bad byte ranges of a device-dax device (`sys`, its sysfs directory, in `region`):
/// the region's bad blocks within the device's range.
fn devdax_bad_ranges(sys: &Path, region: &Path) -> Result<Vec<BadRange>> {
    let in_region = badblocks_of(region)?;
    if in_region.is_empty() {
        return Ok(Vec::new());
    }
    let region_start = read_number(&region.join("resource"))?;
    let start = read_number(&sys.join("resource"))?;
    let size = read_number(&sys.join("size"))?;
    let absolute: Vec<BadRange> = in_region
        .iter()
        .map(|b| BadRange::new(region_start.saturating_add(b.offset), b.len))
        .collect();
    Ok(clip(&absolute, start, size))
}

/// The parts of `ranges` inside `[start, start + size)`, relative to `start`.
fn clip(ranges: &[BadRange], start: u64, size: u64) -> Vec<BadRange> {
    let end = start.saturating_add(size);
    ranges
        .iter()
        .filter_map(|b| {
            let (lo, hi) = (b.offset.max(start), b.end().min(end));
            (lo < hi).then(|| BadRange::new(lo - start, hi - lo))
        })
        .collect()
}

/// Maps device bad ranges through a file's extents into file offsets, sorted and merged.
fn file_ranges(extents: &[Extent], device: &[BadRange]) -> Vec<BadRange> {
    let mut out: Vec<BadRange> = extents
        .iter()
        .flat_map(|e| {
            let phys_end = e.physical.saturating_add(e.len);
            device.iter().filter_map(move |b| {
                let (lo, hi) = (b.offset.max(e.physical), b.end().min(phys_end));
                (lo < hi).then(|| BadRange::new(e.logical + (lo - e.physical), hi - lo))
            })
        })
        .collect();
    out.sort();
    let mut merged: Vec<BadRange> = Vec::with_capacity(out.len());
    for r in out {
        match merged.last_mut() {
            Some(last) if r.offset <= last.end() => {
                last.len = last.len.max(r.end() - last.offset);
            }
            _ => merged.push(r),
        }
    }
    merged
}

#[cfg(test)]
#[path = "source_tests.rs"]
mod tests;
