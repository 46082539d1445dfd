//! [`Mapping`]: an owned shared memory mapping with bounds-checked byte
//! slices, typed views and persistence that picks flushes or `msync`. The
//! crate's `mmap`, `munmap` and pointer-to-reference conversions live here.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::{io, mem, slice};

use crate::config::features;
use crate::domain;
use crate::error::{Error, Result};
use crate::persist::MemFlags;

/// Types that may be viewed in place in mapped memory.
///
/// # Safety
///
/// Implementors have no padding bytes and every bit pattern is a valid
/// value (integers, arrays of them, `#[repr(C)]` structs of them without
/// gaps). Views never outlive the mapping, so `'static` data only.
pub unsafe trait Plain: Copy + 'static {}

macro_rules! plain {
    ($($t:ty),*) => { $(
        // SAFETY: primitive integers have no padding and no invalid values.
        unsafe impl Plain for $t {}
    )* };
}
plain!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);
// SAFETY: an array of padding-free, all-bit-patterns-valid elements is too.
unsafe impl<T: Plain, const N: usize> Plain for [T; N] {}

/// How a mapping was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    /// A file on a DAX filesystem, mapped with `MAP_SYNC`.
    Sync,
    /// A file mapped shared without `MAP_SYNC` (the filesystem refused it):
    /// persistence goes through `msync`.
    Shared,
    /// A device-dax character device.
    DevDax,
    /// Anonymous memory (benchmarks, tests): persistence is a no-op beyond
    /// the flushes.
    Anonymous,
}

/// An owned shared memory mapping, unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    kind: MapKind,
    path: PathBuf,
    /// The device's sysfs directory (`/sys/dev/block/M:m`), for deep flush.
    sys_dev: Option<PathBuf>,
    /// The file, kept open while it holds a lock for this mapping.
    _file: Option<File>,
}

// SAFETY: a Mapping owns its memory like a Box<[u8]>: shared access hands
// out only `&[u8]`, mutation needs `&mut self`.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `file` at `offset`, shared and writable, with
    /// `MAP_SYNC` when `sync` is asked. Returns `Ok(None)` when `MAP_SYNC`
    /// was asked and refused (so the caller can fall back).
    pub(crate) fn map_file(
        file: &File,
        path: &Path,
        offset: u64,
        len: usize,
        kind: MapKind,
        sys_dev: Option<PathBuf>,
    ) -> Result<Option<Mapping>> {
        let flags = match kind {
            MapKind::Sync => libc::MAP_SHARED_VALIDATE | libc::MAP_SYNC,
            _ => libc::MAP_SHARED,
        };
        let off = libc::off_t::try_from(offset).map_err(|_| Error::InvalidSize {
            path: path.to_owned(),
            size: offset,
            reason: "offset beyond off_t".into(),
        })?;
        // SAFETY: a null hint lets the kernel pick unused addresses, so no
        // existing mapping is replaced; the fd is open for the call.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                file.as_raw_fd(),
                off,
            )
        };
        if p == libc::MAP_FAILED {
            let err = io::Error::last_os_error();
            let refused = matches!(err.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL));
            if kind == MapKind::Sync && refused {
                return Ok(None);
            }
            return Err(Error::io(path, "mmap", err));
        }
        Ok(Some(Mapping::from_raw(
            p,
            len,
            kind,
            path.to_owned(),
            sys_dev,
        )))
    }

    /// Maps `len` bytes of zeroed private memory. Not persistent memory
    /// (unless `PMEM_IS_PMEM_FORCE=1`); useful for tests and benchmarks.
    pub fn anonymous(len: usize) -> Result<Mapping> {
        let path = PathBuf::from("[anonymous]");
        if len == 0 {
            return Err(Error::InvalidSize {
                path,
                size: 0,
                reason: "a mapping needs at least one byte".into(),
            });
        }
        // SAFETY: a null hint never replaces an existing mapping; no fd.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Error::io(path, "mmap", io::Error::last_os_error()));
        }
        Ok(Mapping::from_raw(p, len, MapKind::Anonymous, path, None))
    }

    fn from_raw(
        p: *mut libc::c_void,
        len: usize,
        kind: MapKind,
        path: PathBuf,
        sys_dev: Option<PathBuf>,
    ) -> Mapping {
        let ptr =
            NonNull::new(p.cast::<u8>()).expect("mmap with a null hint never returns address 0");
        Mapping {
            ptr,
            len,
            kind,
            path,
            sys_dev,
            _file: None,
        }
    }

    /// Keeps `file` (and the lock it holds) open for the mapping's life.
    pub(crate) fn holding(mut self, file: File) -> Mapping {
        self._file = Some(file);
        self
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never, for a successful map).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How the mapping was made.
    pub fn kind(&self) -> MapKind {
        self.kind
    }

    /// The mapped file or device.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether stores here are made durable by cache flushes alone: a
    /// `MAP_SYNC` or device-dax mapping, unless `PMEM_IS_PMEM_FORCE` says
    /// otherwise. When false, [`Mapping::persist`] uses `msync`.
    pub fn is_pmem(&self) -> bool {
        features()
            .is_pmem_force()
            .unwrap_or(matches!(self.kind, MapKind::Sync | MapKind::DevDax))
    }

    /// The whole mapping as bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr..ptr+len is mapped readable for self's lifetime; the
        // constructors' contract rules out writers outside this process.
        unsafe { slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The whole mapping as mutable bytes.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in as_slice, and `&mut self` makes this the only view.
        unsafe { slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    fn check(&self, what: &'static str, offset: usize, len: usize) -> Result<()> {
        if offset.checked_add(len).is_some_and(|end| end <= self.len) {
            Ok(())
        } else {
            Err(self.out_of_range(what, offset, len))
        }
    }

    fn out_of_range(&self, what: &'static str, offset: usize, len: usize) -> Error {
        Error::OutOfRange {
            path: self.path.clone(),
            what,
            offset,
            len,
            size: self.len,
        }
    }

    /// `len` bytes at `offset`.
    pub fn bytes(&self, offset: usize, len: usize) -> Result<&[u8]> {
        self.check("bytes", offset, len)?;
        Ok(&self.as_slice()[offset..offset + len])
    }

    /// `len` mutable bytes at `offset`.
    pub fn bytes_mut(&mut self, offset: usize, len: usize) -> Result<&mut [u8]> {
        self.check("bytes", offset, len)?;
        Ok(&mut self.as_mut_slice()[offset..offset + len])
    }

    fn view_ptr<T: Plain>(&self, offset: usize) -> Result<*mut T> {
        let size = mem::size_of::<T>();
        self.check(std::any::type_name::<T>(), offset, size)?;
        let p = self.ptr.as_ptr().wrapping_add(offset);
        if !(p as usize).is_multiple_of(mem::align_of::<T>()) {
            return Err(self.out_of_range(std::any::type_name::<T>(), offset, size));
        }
        Ok(p.cast())
    }

    /// A `T` in place at `offset`; it must be inside and aligned.
    pub fn view<T: Plain>(&self, offset: usize) -> Result<&T> {
        let p = self.view_ptr::<T>(offset)?;
        // SAFETY: view_ptr checked bounds and alignment; T: Plain accepts
        // any bytes; the borrow of self keeps the mapping alive.
        Ok(unsafe { &*p })
    }

    /// A mutable `T` in place at `offset`; it must be inside and aligned.
    pub fn view_mut<T: Plain>(&mut self, offset: usize) -> Result<&mut T> {
        let p = self.view_ptr::<T>(offset)?;
        // SAFETY: as in view; `&mut self` makes this the only reference, and
        // T has no padding, so writes through it leave every byte initialised.
        Ok(unsafe { &mut *p })
    }

    /// Makes `len` bytes at `offset` durable: flushes and a fence on
    /// persistent memory, `msync` otherwise.
    pub fn persist(&self, offset: usize, len: usize) -> Result<()> {
        self.check("bytes", offset, len)?;
        if self.is_pmem() {
            features().persist(&self.as_slice()[offset..offset + len]);
            return Ok(());
        }
        self.msync(offset, len)
    }

    fn msync(&self, offset: usize, len: usize) -> Result<()> {
        if self.kind == MapKind::Anonymous || len == 0 {
            return Ok(());
        }
        let page = crate::sys::page_size();
        let start = (self.ptr.as_ptr() as usize + offset) & !(page - 1);
        let end = self.ptr.as_ptr() as usize + offset + len;
        // SAFETY: [start, end) lies in pages of this mapping (start is the
        // page of a mapped byte, end is checked by the caller); msync only
        // writes back, it changes no memory.
        let rc = unsafe { libc::msync(start as *mut libc::c_void, end - start, libc::MS_SYNC) };
        if rc != 0 {
            return Err(Error::io(&self.path, "msync", io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Copies `src` to `offset` and makes it durable (non-temporal stores
    /// for large copies on persistent memory; a copy and `msync` otherwise).
    pub fn write_persist(&mut self, offset: usize, src: &[u8]) -> Result<()> {
        self.check("bytes", offset, src.len())?;
        let pmem = self.is_pmem();
        let dst = &mut self.as_mut_slice()[offset..offset + src.len()];
        if pmem {
            features().memcpy(dst, src, MemFlags::PERSIST);
            return Ok(());
        }
        dst.copy_from_slice(src);
        self.msync(offset, src.len())
    }

    /// Fills `len` bytes at `offset` with `byte` and makes them durable.
    pub fn fill_persist(&mut self, offset: usize, len: usize, byte: u8) -> Result<()> {
        self.check("bytes", offset, len)?;
        let pmem = self.is_pmem();
        let dst = &mut self.as_mut_slice()[offset..offset + len];
        if pmem {
            features().memset(dst, byte, MemFlags::PERSIST);
            return Ok(());
        }
        dst.fill(byte);
        self.msync(offset, len)
    }

    /// Asks the NVDIMM region behind this mapping to flush its write-pending
    /// queues (`deep_flush` in sysfs), for data that must survive even a
    /// failure of ADR. Needs root and a region that offers it.
    pub fn deep_flush(&self) -> Result<()> {
        let dev = self.sys_dev.as_ref().ok_or_else(|| Error::Sysfs {
            path: self.path.clone(),
            reason: "the mapping is not backed by an NVDIMM device".into(),
        })?;
        domain::deep_flush_region(&domain::region_of(dev)?)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned, and no borrow of
        // the memory outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
