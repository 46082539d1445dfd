//! One iterator over libndctl's C lists (`*_get_first` / `*_get_next`), borrowed from the context.

use std::iter::FusedIterator;
use std::marker::PhantomData;
use std::ptr::NonNull;

/// Walks a libndctl list from its first element with the list's `get_next`.
pub(crate) struct RawIter<'ctx, T> {
    next: Option<NonNull<T>>,
    step: unsafe extern "C" fn(*mut T) -> *mut T,
    _ctx: PhantomData<&'ctx ()>,
}

impl<'ctx, T> RawIter<'ctx, T> {
    /// `first` is what the list's `get_first` returned (null for an empty list);
    /// `step` is its `get_next`.
    pub(crate) fn new(first: *mut T, step: unsafe extern "C" fn(*mut T) -> *mut T) -> Self {
        RawIter {
            next: NonNull::new(first),
            step,
            _ctx: PhantomData,
        }
    }
}

impl<T> Iterator for RawIter<'_, T> {
    type Item = NonNull<T>;

    fn next(&mut self) -> Option<NonNull<T>> {
        let cur = self.next?;
        // SAFETY: `cur` came from libndctl's own list (get_first or a previous
        // get_next) and the list is alive for 'ctx; `step` is that list's
        // get_next, which accepts any element and returns the next or null.
        self.next = NonNull::new(unsafe { (self.step)(cur.as_ptr()) });
        Some(cur)
    }
}

impl<T> FusedIterator for RawIter<'_, T> {}

/// Copies a C string returned by libndctl; `None` for a null pointer.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string alive for this call.
pub(crate) unsafe fn string(p: *const std::os::raw::c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        // SAFETY: non-null and NUL-terminated, per this function's contract.
        Some(
            unsafe { std::ffi::CStr::from_ptr(p) }
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// Defines a borrowed wrapper over one libndctl object kind and its list iterator.
macro_rules! object {
    ($(#[$m:meta])* $name:ident, $iter:ident, $raw:ty) => {
        $(#[$m])*
        #[derive(Clone, Copy)]
        pub struct $name<'ctx> {
            pub(crate) raw: std::ptr::NonNull<$raw>,
            _ctx: std::marker::PhantomData<&'ctx crate::Context>,
        }

        impl<'ctx> $name<'ctx> {
            pub(crate) fn from_raw(raw: std::ptr::NonNull<$raw>) -> Self {
                $name { raw, _ctx: std::marker::PhantomData }
            }
            pub(crate) fn ptr(&self) -> *mut $raw {
                self.raw.as_ptr()
            }
        }

        /// Iterator over a libndctl list of this kind, borrowing the context.
        pub struct $iter<'ctx>(pub(crate) crate::iter::RawIter<'ctx, $raw>);

        impl<'ctx> Iterator for $iter<'ctx> {
            type Item = $name<'ctx>;
            fn next(&mut self) -> Option<$name<'ctx>> {
                self.0.next().map($name::from_raw)
            }
        }

        impl std::iter::FusedIterator for $iter<'_> {}
    };
}
pub(crate) use object;
