//! Precompiled code: the format the CLI writes into a bundle and the kernel
//! loads, so a module is compiled once on the host instead of in the guest.
//!
//! ```text
//! "BASALTCW" u32:version
//! str:compiler   str:arch   u32:n (str:feature)*n
//! u64:wasm length   u64:wasm FNV-1a hash
//! u32:len code-bytes
//! u32:n (u32:offset u32:length)*n             defined functions
//! u32:n (u32:offset u8:trap code)*n           trap sites
//! u32:n (u32:offset)*n                        array trampolines, per type
//! u32:n (u32:offset or 0xffffffff)*n          host trampolines, per type
//! u32:n (u32:return u32:frame offset u32:m handler*m)*n
//!                                             call sites with exception tables
//! handler: u8:kind (0 context, 1 tag, 2 catch-all) u32:a u32:b
//! ```
//! Integers are little-endian; `str` is u32 length + UTF-8.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::num::NonZeroU8;

use cranelift_codegen::ir::TrapCode;

use crate::compile::target::{Arch, Target};
use crate::compile::{CallSite, CompiledCode, Handler};
use crate::engine::Instrumentation;
use crate::error::Error;
use crate::module_info::ModuleInfo;

const MAGIC: &[u8; 8] = b"BASALTCW";
const VERSION: u32 = 3;

/// The compiler identity recorded in artifacts.
pub fn compiler_id() -> String {
    format!(
        "basalt-runtime {} cranelift 0.135.8",
        env!("CARGO_PKG_VERSION")
    )
}

/// FNV-1a, 64-bit: identifies the module an artifact belongs to.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Writes an artifact.
pub fn serialize(
    target: &Target,
    instrumentation: Instrumentation,
    wasm: &[u8],
    c: &CompiledCode,
) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(c.code.len() + 1024));
    w.0.extend_from_slice(MAGIC);
    w.u32(VERSION);
    w.str(&compiler_id());
    w.u32(instrumentation.bits());
    w.str(target.arch.name());
    w.u32(target.features.len() as u32);
    for f in &target.features {
        w.str(f);
    }
    w.u64(wasm.len() as u64);
    w.u64(fnv1a(wasm));
    w.u32(c.code.len() as u32);
    w.0.extend_from_slice(&c.code);
    w.u32(c.functions.len() as u32);
    for (o, l) in &c.functions {
        w.u32(*o);
        w.u32(*l);
    }
    w.u32(c.traps.len() as u32);
    for (o, t) in &c.traps {
        w.u32(*o);
        w.0.push(t.as_raw().get());
    }
    w.u32(c.array_trampolines.len() as u32);
    for o in &c.array_trampolines {
        w.u32(*o);
    }
    w.u32(c.host_trampolines.len() as u32);
    for o in &c.host_trampolines {
        w.u32(o.unwrap_or(u32::MAX));
    }
    w.u32(c.call_sites.len() as u32);
    for site in &c.call_sites {
        w.u32(site.ret);
        w.u32(site.frame_offset);
        w.u32(site.handlers.len() as u32);
        for h in &site.handlers {
            let (kind, a, b) = match *h {
                Handler::Context(o) => (0, o, 0),
                Handler::Tag { tag, at } => (1, tag, at),
                Handler::CatchAll(at) => (2, 0, at),
            };
            w.0.push(kind);
            w.u32(a);
            w.u32(b);
        }
    }
    w.0
}

/// Reads and checks an artifact for `wasm` (whose metadata is `info`) on a
/// machine described by `machine`, for an engine that wants code with
/// `instrumentation`.
pub fn deserialize(
    machine: &Target,
    instrumentation: Instrumentation,
    wasm: &[u8],
    info: &ModuleInfo,
    bytes: &[u8],
) -> Result<CompiledCode, Error> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(8)? != MAGIC {
        return Err(Error::Artifact("not a Basalt artifact (bad magic)".into()));
    }
    let version = r.u32()?;
    if version != VERSION {
        return Err(Error::Artifact(format!(
            "artifact format {version}, this kernel reads {VERSION}"
        )));
    }
    let compiler = r.str()?;
    if compiler != compiler_id() {
        return Err(Error::Artifact(format!(
            "compiled by `{compiler}`, this kernel runs `{}`; rebuild the bundle",
            compiler_id()
        )));
    }
    let bits = r.u32()?;
    let has = Instrumentation::from_bits(bits)
        .ok_or_else(|| Error::Artifact(format!("unknown instrumentation bits {bits:#x}")))?;
    if has != instrumentation {
        return Err(Error::Artifact(format!(
            "compiled with {has}, this engine wants {instrumentation}; compile it again with the same options"
        )));
    }
    let arch = r.str()?;
    let arch =
        Arch::from_name(&arch).ok_or_else(|| Error::Artifact(format!("unknown ISA `{arch}`")))?;
    let n = r.u32()?;
    let mut names = Vec::new();
    for _ in 0..n {
        names.push(r.str()?);
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let target = Target::new(arch, &refs)?;
    if !target.runs_on(machine) {
        return Err(Error::Artifact(format!(
            "compiled for `{target}`, but this machine is `{machine}`; compile for this CPU or use --jit"
        )));
    }
    let len = r.u64()?;
    let hash = r.u64()?;
    if len != wasm.len() as u64 || hash != fnv1a(wasm) {
        return Err(Error::Artifact("compiled from a different module".into()));
    }
    let code_len = r.u32()? as usize;
    let code = r.take(code_len)?.to_vec();
    let in_code = |o: u32, l: u32| -> Result<(), Error> {
        if (o as usize)
            .checked_add(l as usize)
            .is_some_and(|e| e <= code_len)
        {
            Ok(())
        } else {
            Err(Error::Artifact("offset outside the code".into()))
        }
    };
    let nf = r.u32()?;
    if nf as usize != info.functions.len() - info.num_imported_funcs as usize {
        return Err(Error::Artifact(
            "function count does not match the module".into(),
        ));
    }
    let mut functions = Vec::new();
    for _ in 0..nf {
        let (o, l) = (r.u32()?, r.u32()?);
        in_code(o, l)?;
        functions.push((o, l));
    }
    let nt = r.u32()?;
    let mut traps = Vec::new();
    for _ in 0..nt {
        let o = r.u32()?;
        in_code(o, 1)?;
        let c =
            NonZeroU8::new(r.take(1)?[0]).ok_or_else(|| Error::Artifact("bad trap code".into()))?;
        traps.push((o, TrapCode::from_raw(c)));
    }
    let na = r.u32()?;
    if na as usize != info.types.len() {
        return Err(Error::Artifact(
            "type count does not match the module".into(),
        ));
    }
    let mut array_trampolines = Vec::new();
    for _ in 0..na {
        let o = r.u32()?;
        in_code(o, 1)?;
        array_trampolines.push(o);
    }
    let nh = r.u32()?;
    if nh != na {
        return Err(Error::Artifact(
            "type count does not match the module".into(),
        ));
    }
    let mut host_trampolines = Vec::new();
    for _ in 0..nh {
        let o = r.u32()?;
        host_trampolines.push(if o == u32::MAX {
            None
        } else {
            in_code(o, 1)?;
            Some(o)
        });
    }
    let ns = r.u32()?;
    let mut call_sites = Vec::new();
    for _ in 0..ns {
        let (ret, frame_offset) = (r.u32()?, r.u32()?);
        in_code(ret, 0)?;
        let m = r.u32()?;
        let mut handlers = Vec::new();
        for _ in 0..m {
            let kind = r.take(1)?[0];
            let (a, b) = (r.u32()?, r.u32()?);
            handlers.push(match kind {
                0 => Handler::Context(a),
                1 => {
                    if a as usize >= info.tags.len() {
                        return Err(Error::Artifact("handler of an unknown tag".into()));
                    }
                    in_code(b, 1)?;
                    Handler::Tag { tag: a, at: b }
                }
                2 => {
                    in_code(b, 1)?;
                    Handler::CatchAll(b)
                }
                _ => return Err(Error::Artifact("bad exception handler kind".into())),
            });
        }
        call_sites.push(CallSite {
            ret,
            frame_offset,
            handlers: handlers.into(),
        });
    }
    if !call_sites.is_sorted_by_key(|c| c.ret) {
        return Err(Error::Artifact("call sites out of order".into()));
    }
    if r.at != bytes.len() {
        return Err(Error::Artifact("trailing bytes".into()));
    }
    Ok(CompiledCode {
        code,
        functions,
        traps,
        array_trampolines,
        host_trampolines,
        call_sites,
    })
}

struct Writer(Vec<u8>);

impl Writer {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or_else(|| Error::Artifact("truncated artifact".into()))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, Error> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn str(&mut self) -> Result<String, Error> {
        let n = self.u32()? as usize;
        let b = self.take(n)?;
        core::str::from_utf8(b)
            .map(String::from)
            .map_err(|_| Error::Artifact("bad string".into()))
    }
}
