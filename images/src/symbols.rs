//! The kernel's symbol table for backtraces: read from the kernel ELF on
//! the host, demangled, and shipped in the bundle as `kernel.syms`.

use std::fmt::Write as _;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The function symbols of a little-endian ELF64 file as
/// `ADDR_HEX SIZE_HEX NAME` lines sorted by address, or `None` when the
/// file is not such an ELF or has no symbol table.
pub fn kernel_syms(elf: &[u8]) -> Option<String> {
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let shoff = u64_at(elf, 0x28)? as usize;
    let shentsize = u16_at(elf, 0x3a)? as usize;
    let shnum = u16_at(elf, 0x3c)? as usize;
    let section = |i: usize| -> Option<(u32, usize, usize, u32)> {
        let at = shoff + i * shentsize;
        Some((
            u32_at(elf, at + 4)?,
            u64_at(elf, at + 0x18)? as usize,
            u64_at(elf, at + 0x20)? as usize,
            u32_at(elf, at + 0x28)?,
        ))
    };
    let (symoff, symsize, link) = (0..shnum).find_map(|i| {
        let (ty, off, size, link) = section(i)?;
        (ty == 2).then_some((off, size, link))
    })?;
    let (_, stroff, strsize, _) = section(link as usize)?;
    let strtab = elf.get(stroff..stroff + strsize)?;
    let mut syms = Vec::new();
    for at in (symoff..symoff + symsize).step_by(24) {
        let name = u32_at(elf, at)? as usize;
        let info = *elf.get(at + 4)?;
        let value = u64_at(elf, at + 8)?;
        let size = u64_at(elf, at + 16)?;
        if info & 0xf != 2 || value == 0 {
            continue;
        }
        let raw = strtab.get(name..)?;
        let end = raw.iter().position(|&b| b == 0)?;
        let raw = String::from_utf8_lossy(&raw[..end]);
        let name = format!("{:#}", rustc_demangle::demangle(&raw));
        syms.push((value, size, name));
    }
    syms.sort();
    let mut out = String::new();
    for (addr, size, name) in syms {
        let _ = writeln!(out, "{addr:x} {size:x} {name}");
    }
    Some(out)
}

/// A trap's wasm backtrace as `basalt` prints it under the trap message,
/// names demangled (`wasm backtrace:` then one `    N: func F - NAME`
/// line per frame, innermost first, as wasmtime lists them); empty for no
/// frames.
pub fn wasm_backtrace<'a>(frames: impl IntoIterator<Item = (u32, Option<&'a str>)>) -> String {
    let mut out = String::new();
    for (i, (func, name)) in frames.into_iter().enumerate() {
        if i == 0 {
            out.push_str("wasm backtrace:\n");
        }
        match name {
            Some(n) => out.push_str(&format!(
                "    {i}: func {func} - {:#}\n",
                rustc_demangle::demangle(n)
            )),
            None => out.push_str(&format!("    {i}: func {func} - <unnamed>\n")),
        }
    }
    out
}

/// The frames of a trap's wasm backtrace in a VM's kernel log (its
/// `wasm frame #N: func F NAME` lines, see `docs/guest-protocol.md`).
pub fn wasm_frames_in_log(log: &[String]) -> Vec<(u32, Option<String>)> {
    log.iter()
        .filter_map(|l| l.strip_prefix("wasm frame #"))
        .filter_map(|rest| {
            let (_, rest) = rest.split_once(": func ")?;
            let (func, name) = match rest.split_once(' ') {
                Some((f, n)) => (f, Some(n.to_string())),
                None => (rest, None),
            };
            Some((func.parse().ok()?, name))
        })
        .collect()
}
