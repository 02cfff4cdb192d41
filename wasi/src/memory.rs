//! Bounds-checked access to the guest's linear memory.
//!
//! Every pointer a program passes is a 32-bit offset into its memory; any
//! access that does not fit returns [`Errno::Fault`] instead of touching
//! anything.

use alloc::vec::Vec;
use core::cell::Cell;

use crate::errno::Errno;

/// The most iovecs one call transfers (Linux's `IOV_MAX`); more make
/// the call short.
pub const MAX_IOVECS: usize = 1024;

/// A view of a guest's linear memory during one WASI call.
pub struct GuestMemory<'a> {
    bytes: &'a mut [u8],
    /// bytes the call may still touch (`-S hostcall-fuel`), if budgeted
    fuel: Option<Cell<u64>>,
}

impl<'a> GuestMemory<'a> {
    /// Wraps the memory's bytes.
    pub fn new(bytes: &'a mut [u8]) -> Self {
        GuestMemory { bytes, fuel: None }
    }

    /// Wraps the memory's bytes for a call that may touch at most `fuel`
    /// bytes of them (`None`: any number); past it, accesses fail with
    /// [`Errno::Nomem`].
    pub fn with_fuel(bytes: &'a mut [u8], fuel: Option<u64>) -> Self {
        GuestMemory {
            bytes,
            fuel: fuel.map(Cell::new),
        }
    }

    fn range(&self, ptr: u32, len: u32) -> Result<core::ops::Range<usize>, Errno> {
        let start = ptr as usize;
        let end = start.checked_add(len as usize).ok_or(Errno::Fault)?;
        if let Some(fuel) = &self.fuel {
            let left = fuel.get();
            if u64::from(len) > left {
                return Err(Errno::Nomem);
            }
            fuel.set(left - u64::from(len));
        }
        if end > self.bytes.len() {
            return Err(Errno::Fault);
        }
        Ok(start..end)
    }

    /// The `len` bytes at `ptr`.
    pub fn slice(&self, ptr: u32, len: u32) -> Result<&[u8], Errno> {
        let r = self.range(ptr, len)?;
        Ok(&self.bytes[r])
    }

    /// The `len` bytes at `ptr`, writable.
    pub fn slice_mut(&mut self, ptr: u32, len: u32) -> Result<&mut [u8], Errno> {
        let r = self.range(ptr, len)?;
        Ok(&mut self.bytes[r])
    }

    /// Copies `data` to `ptr`.
    pub fn write_bytes(&mut self, ptr: u32, data: &[u8]) -> Result<(), Errno> {
        let len = u32::try_from(data.len()).map_err(|_| Errno::Fault)?;
        self.slice_mut(ptr, len)?.copy_from_slice(data);
        Ok(())
    }

    /// Reads a little-endian `u8`.
    pub fn read_u8(&self, ptr: u32) -> Result<u8, Errno> {
        Ok(self.slice(ptr, 1)?[0])
    }

    /// Reads a little-endian `u16`.
    pub fn read_u16(&self, ptr: u32) -> Result<u16, Errno> {
        let mut b = [0; 2];
        b.copy_from_slice(self.slice(ptr, 2)?);
        Ok(u16::from_le_bytes(b))
    }

    /// Reads a little-endian `u32`.
    pub fn read_u32(&self, ptr: u32) -> Result<u32, Errno> {
        let mut b = [0; 4];
        b.copy_from_slice(self.slice(ptr, 4)?);
        Ok(u32::from_le_bytes(b))
    }

    /// Reads a little-endian `u64`.
    pub fn read_u64(&self, ptr: u32) -> Result<u64, Errno> {
        let mut b = [0; 8];
        b.copy_from_slice(self.slice(ptr, 8)?);
        Ok(u64::from_le_bytes(b))
    }

    /// Writes a `u8`.
    pub fn write_u8(&mut self, ptr: u32, v: u8) -> Result<(), Errno> {
        self.write_bytes(ptr, &[v])
    }

    /// Writes a little-endian `u16`.
    pub fn write_u16(&mut self, ptr: u32, v: u16) -> Result<(), Errno> {
        self.write_bytes(ptr, &v.to_le_bytes())
    }

    /// Writes a little-endian `u32`.
    pub fn write_u32(&mut self, ptr: u32, v: u32) -> Result<(), Errno> {
        self.write_bytes(ptr, &v.to_le_bytes())
    }

    /// Writes a little-endian `u64`.
    pub fn write_u64(&mut self, ptr: u32, v: u64) -> Result<(), Errno> {
        self.write_bytes(ptr, &v.to_le_bytes())
    }

    /// The non-empty `(buf, len)` pairs of an iovec array of `count`
    /// entries at `ptr`, each checked to lie inside memory, in order, up to
    /// a transfer of `limit` bytes: entries are taken whole while the total
    /// stays within `limit` (the first is always taken), and at most
    /// [`MAX_IOVECS`]. What is left out makes the call short, as POSIX
    /// allows; nothing here is sized by the program beyond those bounds.
    pub fn iovecs(&self, ptr: u32, count: u32, limit: u64) -> Result<Vec<(u32, u32)>, Errno> {
        let bytes = count.checked_mul(8).ok_or(Errno::Fault)?;
        self.range(ptr, bytes)?;
        let mut out = Vec::new();
        let mut total = 0u64;
        for i in 0..count {
            let buf = self.read_u32(ptr + i * 8)?;
            let len = self.read_u32(ptr + i * 8 + 4)?;
            self.range(buf, len)?;
            if len == 0 {
                continue;
            }
            if !out.is_empty() && (total + u64::from(len) > limit || out.len() == MAX_IOVECS) {
                break;
            }
            total += u64::from(len);
            out.push((buf, len));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_bounds_is_efault() {
        let mut bytes = [0u8; 16];
        let mut m = GuestMemory::new(&mut bytes);
        assert_eq!(m.read_u32(12), Ok(0));
        assert_eq!(m.read_u32(13), Err(Errno::Fault));
        assert_eq!(m.write_u64(u32::MAX, 1), Err(Errno::Fault));
        assert_eq!(m.iovecs(0, u32::MAX, u64::MAX), Err(Errno::Fault));
        m.write_u32(0, 8).unwrap();
        m.write_u32(4, 100).unwrap();
        assert_eq!(m.iovecs(0, 1, u64::MAX), Err(Errno::Fault));
    }

    #[test]
    fn a_call_past_its_fuel_gets_enomem() {
        let mut bytes = std::vec![0u8; 4096];
        let m = GuestMemory::with_fuel(&mut bytes, Some(1000));
        assert_eq!(m.slice(0, 600).map(<[u8]>::len), Ok(600));
        assert_eq!(m.slice(0, 600).map(<[u8]>::len), Err(Errno::Nomem));
        assert_eq!(m.read_u32(0), Ok(0));
        // Without a budget, any number of bytes.
        let mut m = GuestMemory::new(&mut bytes);
        for _ in 0..10 {
            assert!(m.slice(0, 4096).is_ok());
        }
        assert_eq!(m.write_u8(4096, 1), Err(Errno::Fault));
    }

    #[test]
    fn iovecs_are_bounded_by_the_limit_and_their_number() {
        let mut bytes = std::vec![0u8; 16 * 2000 + 64];
        let mut m = GuestMemory::new(&mut bytes);
        // (0, 10), (0, 0), (0, 10), (0, 10)
        for (i, len) in [10u32, 0, 10, 10].iter().enumerate() {
            m.write_u32(i as u32 * 8, 0).unwrap();
            m.write_u32(i as u32 * 8 + 4, *len).unwrap();
        }
        // Empty entries are left out; whole entries up to the limit.
        assert_eq!(m.iovecs(0, 4, 25), Ok(std::vec![(0, 10), (0, 10)]));
        // The first non-empty one is taken even past the limit.
        assert_eq!(m.iovecs(0, 4, 5), Ok(std::vec![(0, 10)]));
        // At most MAX_IOVECS.
        for i in 0..2000u32 {
            m.write_u32(i * 8, 0).unwrap();
            m.write_u32(i * 8 + 4, 1).unwrap();
        }
        assert_eq!(m.iovecs(0, 2000, u64::MAX).unwrap().len(), MAX_IOVECS);
    }
}
