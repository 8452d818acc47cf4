//! The only place raw pointers from C are turned into Rust references: tagged handles,
//! C strings in, text and arrays out. Every helper checks for NULL first.

use super::boundary::FfiError;
use crate::error::Error;
use std::ffi::{c_char, CStr};

/// An opaque object handed to C as a pointer. Its first field is a tag unique to the
/// type, checked on every entry so a freed, foreign or mistyped pointer is reported
/// instead of used.
pub(crate) trait Handle: Sized {
    /// The type's tag.
    const MAGIC: u64;
    /// The C type name, for messages.
    const NAME: &'static str;
    /// Reads the tag through a raw pointer without forming a reference.
    ///
    /// # Safety
    /// `ptr` must be non-NULL and readable for the tag field.
    unsafe fn read_magic(ptr: *const Self) -> u64;
    /// Overwrites the tag (done once, just before the object is dropped).
    fn clear_magic(&mut self);
}

/// Moves `value` to the heap and hands ownership to C through `out` (checked for NULL
/// before anything is allocated).
pub(crate) fn hand_out<T: Handle>(out: *mut *mut T, value: T) -> Result<(), FfiError> {
    if out.is_null() {
        return Err(FfiError::NullPointer("out"));
    }
    write_out(out, Box::into_raw(Box::new(value)), "out")
}

/// Checks that `ptr` is non-NULL and carries `T`'s tag, reading only the tag field
/// (no reference to the whole object exists until the tag matched).
fn check_tag<T: Handle>(ptr: *const T, argument: &'static str) -> Result<(), FfiError> {
    if ptr.is_null() {
        return Err(FfiError::NullPointer(argument));
    }
    // SAFETY: non-NULL pointers are assumed to come from `into_raw` of this library;
    // reading just the tag catches the common misuses (freed or mistyped handles).
    if unsafe { T::read_magic(ptr) } != T::MAGIC {
        return Err(FfiError::InvalidHandle {
            argument,
            expected: T::NAME,
        });
    }
    Ok(())
}

/// Borrows a handle for reading.
pub(crate) fn borrow<'a, T: Handle>(
    ptr: *const T,
    argument: &'static str,
) -> Result<&'a T, FfiError> {
    check_tag(ptr, argument)?;
    // SAFETY: tag checked; the object is live and owned by the C caller.
    Ok(unsafe { &*ptr })
}

/// Borrows a handle for writing.
pub(crate) fn borrow_mut<'a, T: Handle>(
    ptr: *mut T,
    argument: &'static str,
) -> Result<&'a mut T, FfiError> {
    check_tag(ptr, argument)?;
    // SAFETY: as in `borrow`; C does not use the handle concurrently for mutation.
    Ok(unsafe { &mut *ptr })
}

/// Takes ownership back from C and drops the object. NULL is a no-op; a pointer whose
/// tag does not match is reported and left alone.
pub(crate) fn free<T: Handle>(ptr: *mut T, argument: &'static str) -> Result<(), FfiError> {
    if ptr.is_null() {
        return Ok(());
    }
    borrow_mut(ptr, argument)?.clear_magic();
    // SAFETY: the pointer came from `into_raw` (tag checked) and C gives up ownership.
    drop(unsafe { Box::from_raw(ptr) });
    Ok(())
}

/// Implements [`Handle`] and a constructor for a C handle struct declared as
/// `pub struct name { magic: u64, pub(crate) inner: T }` (declared by hand so cbindgen
/// sees it and emits the opaque type).
macro_rules! impl_handle {
    ($name:ident wraps $inner:ty, magic $magic:literal) => {
        impl $name {
            pub(crate) fn new(inner: $inner) -> Self {
                $name {
                    magic: $magic,
                    inner,
                }
            }
        }

        impl $crate::ffi::handles::Handle for $name {
            const MAGIC: u64 = $magic;
            const NAME: &'static str = stringify!($name);
            unsafe fn read_magic(ptr: *const Self) -> u64 {
                std::ptr::addr_of!((*ptr).magic).read_unaligned()
            }
            fn clear_magic(&mut self) {
                self.magic = 0;
            }
        }
    };
}
pub(crate) use impl_handle;

/// Reads a NUL-terminated UTF-8 string argument.
pub(crate) fn text_arg<'a>(
    ptr: *const c_char,
    argument: &'static str,
) -> Result<&'a str, FfiError> {
    if ptr.is_null() {
        return Err(FfiError::NullPointer(argument));
    }
    // SAFETY: non-NULL, and C promises a NUL-terminated string.
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|_| Error::invalid(format!("argument '{argument}' is not valid UTF-8")).into())
}

/// Stores `value` through an out-pointer.
pub(crate) fn write_out<T>(ptr: *mut T, value: T, argument: &'static str) -> Result<(), FfiError> {
    // SAFETY: non-NULL is checked; C provides a writable, aligned T.
    unsafe { ptr.as_mut() }
        .map(|slot| *slot = value)
        .ok_or(FfiError::NullPointer(argument))
}

/// Copies `items` into a caller array of `capacity` elements and stores the count in
/// `count` (optional). With `out` NULL and `capacity` 0 it only stores the count, so a
/// caller can size its buffer first; a non-NULL buffer that is too small is an error
/// and receives nothing.
pub(crate) fn write_array<T: Copy>(
    items: &[T],
    out: *mut T,
    capacity: usize,
    count: *mut usize,
) -> Result<(), FfiError> {
    if out.is_null() && capacity != 0 {
        return Err(FfiError::NullPointer("out"));
    }
    if !out.is_null() {
        if capacity < items.len() {
            return Err(Error::BufferTooSmall {
                needed: items.len(),
                given: capacity,
            }
            .into());
        }
        // SAFETY: `out` holds `capacity >= items.len()` writable elements (caller contract).
        unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), out, items.len()) };
    }
    if !count.is_null() {
        write_out(count, items.len(), "count")?;
    }
    Ok(())
}

/// Copies `text` plus a terminating NUL into a caller buffer, like [`write_array`]:
/// `length` (optional) receives the text length without the NUL; the buffer needs one
/// byte more.
pub(crate) fn write_text(
    text: &str,
    out: *mut c_char,
    capacity: usize,
    length: *mut usize,
) -> Result<(), FfiError> {
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend(text.bytes().map(|b| b as c_char));
    bytes.push(0);
    write_array(&bytes, out, capacity, std::ptr::null_mut())?;
    if !length.is_null() {
        write_out(length, text.len(), "length")?;
    }
    Ok(())
}
