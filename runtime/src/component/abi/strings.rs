//! Strings across the boundary: UTF-8, UTF-16 and Latin-1+UTF-16, with
//! the spec's allocation sequence when transcoding.

use alloc::string::String;
use alloc::vec::Vec;

use super::{Content, Cx, trap};
use crate::component::def::StringEncoding;
use crate::error::Error;

/// The largest string, in bytes, the ABI lets cross.
pub const MAX_STRING_BYTE_LENGTH: u32 = (1 << 28) - 1;
/// The tag of a Latin-1+UTF-16 string that is UTF-16.
pub const UTF16_TAG: u32 = 1 << 31;

fn out_of_bounds<T>(cx: &Cx<'_, T>) -> Error {
    trap(if cx.adapter {
        "string content out-of-bounds"
    } else {
        "string pointer/length out of bounds of memory"
    })
}

/// `load_string_from_range`.
pub fn load_string_from_range<T>(
    cx: &mut Cx<'_, T>,
    ptr: u32,
    tagged: u32,
) -> Result<String, Error> {
    let (align, bytes, utf16) = match cx.opts.encoding {
        StringEncoding::Utf8 => (1, u64::from(tagged), false),
        StringEncoding::Utf16 => (2, 2 * u64::from(tagged), true),
        StringEncoding::CompactUtf16 => {
            if tagged & UTF16_TAG != 0 {
                (2, 2 * u64::from(tagged ^ UTF16_TAG), true)
            } else {
                (2, u64::from(tagged), false)
            }
        }
    };
    if bytes > u64::from(MAX_STRING_BYTE_LENGTH) {
        return Err(out_of_bounds(cx));
    }
    if !ptr.is_multiple_of(align) {
        return Err(trap("unaligned pointer"));
    }
    let adapter_msg = out_of_bounds(cx);
    let utf8 = cx.opts.encoding == StringEncoding::Utf8;
    let mem = cx.memory()?;
    let raw = mem
        .get(ptr as usize..(u64::from(ptr) + bytes) as usize)
        .ok_or(adapter_msg)?;
    if utf16 {
        let units = raw
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]));
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|_| trap("invalid utf-16"))
    } else if utf8 {
        match core::str::from_utf8(raw) {
            Ok(s) => Ok(String::from(s)),
            Err(e) if e.error_len().is_none() => Err(trap("incomplete utf-8 byte sequence")),
            Err(_) => Err(trap("invalid utf-8")),
        }
    } else {
        Ok(raw.iter().map(|b| char::from(*b)).collect())
    }
}

fn write<T>(cx: &mut Cx<'_, T>, ptr: u32, bytes: &[u8]) -> Result<(), Error> {
    cx.memory()?
        .get_mut(ptr as usize..ptr as usize + bytes.len())
        .ok_or_else(|| trap("realloc return: beyond end of memory"))?
        .copy_from_slice(bytes);
    Ok(())
}

fn utf16_bytes(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

/// `store_string_into_range` for a source string in UTF-8 (the host's,
/// or one lifted from any encoding): returns (pointer, tagged code units).
pub fn store_string_into_range<T>(cx: &mut Cx<'_, T>, s: &str) -> Result<(u32, u32), Error> {
    let units = u32::try_from(s.len())
        .ok()
        .filter(|n| *n <= MAX_STRING_BYTE_LENGTH);
    let units = units.ok_or_else(|| trap("string too long to lower"))?;
    match cx.opts.encoding {
        StringEncoding::Utf8 => {
            let ptr = cx.allocate(1, units, Content::String)?;
            write(cx, ptr, s.as_bytes())?;
            Ok((ptr, units))
        }
        StringEncoding::Utf16 => {
            let worst = 2 * units;
            let mut ptr = cx.allocate(2, worst, Content::String)?;
            let enc = utf16_bytes(s);
            write(cx, ptr, &enc)?;
            let len = enc.len() as u32;
            if len < worst {
                ptr = cx.realloc(ptr, worst, 2, len)?;
                cx.check_allocation(ptr, 2, len, Content::String)?;
            }
            Ok((ptr, len / 2))
        }
        StringEncoding::CompactUtf16 => {
            let mut ptr = cx.allocate(2, units, Content::String)?;
            if s.chars().all(|c| u32::from(c) < 256) {
                let latin1: Vec<u8> = s.chars().map(|c| u32::from(c) as u8).collect();
                write(cx, ptr, &latin1)?;
                let len = latin1.len() as u32;
                if len < units {
                    ptr = cx.realloc(ptr, units, 2, len)?;
                    cx.check_allocation(ptr, 2, len, Content::String)?;
                }
                return Ok((ptr, len));
            }
            let worst = 2 * units;
            ptr = cx.realloc(ptr, units, 2, worst)?;
            cx.check_allocation(ptr, 2, worst, Content::String)?;
            let enc = utf16_bytes(s);
            write(cx, ptr, &enc)?;
            let len = enc.len() as u32;
            if worst > len {
                ptr = cx.realloc(ptr, worst, 2, len)?;
                cx.check_allocation(ptr, 2, len, Content::String)?;
            }
            Ok((ptr, (len / 2) | UTF16_TAG))
        }
    }
}
