//! Symbolising kernel addresses with the bundle's `kernel.syms`
//! (`ADDR_HEX SIZE_HEX NAME` per line, sorted by address). Lookups scan the
//! text in place and allocate nothing, so fault reports can use them.
//!
//! `kernel.syms` holds link addresses, read from the ELF on the host; the
//! AArch64 kernel may run elsewhere (the loader chooses, the boot stub
//! relocates), so lookups subtract the load offset first.

static SYMS: spin::Once<&'static [u8]> = spin::Once::new();

/// Installs the symbol table text.
pub fn install(text: &'static [u8]) {
    SYMS.call_once(|| text);
}

fn hex(s: &[u8]) -> Option<usize> {
    let s = s.strip_prefix(b"0x").unwrap_or(s);
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    let mut v = 0usize;
    for c in s {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | usize::from(d);
    }
    Some(v)
}

/// The function containing the run-time address `addr` and the offset
/// into it. A symbol of size zero (an assembly label) extends to the next
/// symbol.
pub fn lookup(addr: usize) -> Option<(&'static str, usize)> {
    let text = *SYMS.get()?;
    let addr = addr.wrapping_sub(basalt_arch::boot::load_offset());
    let mut label: Option<(usize, &'static [u8])> = None;
    for line in text.split(|c| *c == b'\n') {
        let mut parts = line.splitn(3, |c| *c == b' ');
        let (Some(a), Some(s), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (Some(start), Some(size)) = (hex(a), hex(s)) else {
            continue;
        };
        if start > addr {
            break;
        }
        if size == 0 {
            label = Some((start, name));
        } else if addr < start + size {
            return Some((symbol_name(name)?, addr - start));
        } else {
            label = None;
        }
    }
    let (start, name) = label?;
    Some((symbol_name(name)?, addr - start))
}

fn symbol_name(name: &'static [u8]) -> Option<&'static str> {
    core::str::from_utf8(name.strip_suffix(b"\r").unwrap_or(name)).ok()
}
