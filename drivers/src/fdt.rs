//! A reader of flattened device trees (the DTB a loader passes in x0 on
//! AArch64), written for hostile input: every offset and length is
//! checked, nothing panics, malformed blobs give an [`FdtError`].
//!
//! It walks the structure block once per query; trees are small.

/// Why a blob is not a usable device tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdtError {
    /// shorter than its header, or than the header says
    Truncated,
    /// the magic number is not 0xd00dfeed
    BadMagic,
    /// a format version this reader does not understand
    UnsupportedVersion(u32),
    /// a block lies outside the blob
    BadBlock,
    /// an unknown token at this offset of the structure block
    BadToken(usize),
    /// a node or property name without its terminating NUL
    UnterminatedName,
    /// a property's name offset points outside the strings block
    BadNameOffset(u32),
    /// nodes nested deeper than this reader follows
    TooDeep,
    /// the structure block ends inside a node
    UnexpectedEnd,
}

impl core::fmt::Display for FdtError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FdtError::Truncated => f.write_str("device tree truncated"),
            FdtError::BadMagic => f.write_str("not a device tree (bad magic)"),
            FdtError::UnsupportedVersion(v) => write!(f, "unsupported device tree version {v}"),
            FdtError::BadBlock => f.write_str("device tree block outside the blob"),
            FdtError::BadToken(o) => write!(f, "bad device tree token at structure offset {o}"),
            FdtError::UnterminatedName => f.write_str("unterminated name in device tree"),
            FdtError::BadNameOffset(o) => write!(f, "bad property name offset {o}"),
            FdtError::TooDeep => f.write_str("device tree nested too deeply"),
            FdtError::UnexpectedEnd => f.write_str("device tree structure ends inside a node"),
        }
    }
}

const MAGIC: u32 = 0xd00d_feed;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;
/// Deepest nesting followed.
const MAX_DEPTH: usize = 16;

fn be32(data: &[u8], off: usize) -> Option<u32> {
    let b = data.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|v| v & !3)
}

/// A parsed header over the blob's bytes.
#[derive(Clone, Copy)]
pub struct Fdt<'a> {
    structs: &'a [u8],
    strings: &'a [u8],
    rsvmap: &'a [u8],
}

impl<'a> Fdt<'a> {
    /// Checks the header of the blob at the start of `data` (which may be
    /// longer than the blob).
    pub fn new(data: &'a [u8]) -> Result<Fdt<'a>, FdtError> {
        let h = |i: usize| be32(data, i * 4).ok_or(FdtError::Truncated);
        if h(0)? != MAGIC {
            return Err(FdtError::BadMagic);
        }
        let total = h(1)? as usize;
        let data = data.get(..total).ok_or(FdtError::Truncated)?;
        let last_compatible = h(6)?;
        if h(5)? < 16 || last_compatible > 17 {
            return Err(FdtError::UnsupportedVersion(h(5)?));
        }
        let block = |off: u32, len: usize| -> Result<&'a [u8], FdtError> {
            let off = off as usize;
            data.get(off..off.checked_add(len).ok_or(FdtError::BadBlock)?)
                .ok_or(FdtError::BadBlock)
        };
        let structs = block(h(2)?, h(9)? as usize)?;
        let strings = block(h(3)?, h(8)? as usize)?;
        let rsv_off = h(4)? as usize;
        let rsvmap = data.get(rsv_off..).ok_or(FdtError::BadBlock)?;
        Ok(Fdt {
            structs,
            strings,
            rsvmap,
        })
    }

    /// The total size a blob at the start of `header` claims, after a
    /// magic check: how many bytes to look at.
    pub fn total_size(header: &[u8]) -> Result<usize, FdtError> {
        if be32(header, 0).ok_or(FdtError::Truncated)? != MAGIC {
            return Err(FdtError::BadMagic);
        }
        Ok(be32(header, 4).ok_or(FdtError::Truncated)? as usize)
    }

    /// The memory reservation block: `(address, size)` pairs.
    pub fn reservations(&self) -> impl Iterator<Item = (u64, u64)> + 'a {
        let map = self.rsvmap;
        (0..)
            .map(move |i: usize| {
                let at = |o: usize| {
                    let b = map.get(i * 16 + o..i * 16 + o + 8)?;
                    Some(u64::from_be_bytes(b.try_into().ok()?))
                };
                Some((at(0)?, at(8)?))
            })
            .map_while(|e| e.filter(|&(a, s)| a != 0 || s != 0))
    }

    /// Every node in document order, with its depth (the root is 0).
    pub fn nodes(&self) -> Nodes<'a> {
        Nodes {
            fdt: *self,
            pos: 0,
            depth: 0,
            cells: [(2, 1); MAX_DEPTH + 1],
            props: [0; MAX_DEPTH],
            done: false,
        }
    }

    /// The first node whose `compatible` list holds `compatible`.
    pub fn find_compatible(&self, compatible: &str) -> Result<Option<Node<'a>>, FdtError> {
        for n in self.nodes() {
            let n = n?;
            if n.is_compatible(compatible) {
                return Ok(Some(n));
            }
        }
        Ok(None)
    }

    /// The node at the absolute `path` (`/soc/serial@7e201000`); a
    /// component without `@unit` matches a name up to its `@`.
    pub fn find_path(&self, path: &[u8]) -> Result<Option<Node<'a>>, FdtError> {
        let want = || path.split(|b| *b == b'/').filter(|c| !c.is_empty());
        let total = want().count();
        if total == 0 || path.first() != Some(&b'/') {
            return Ok(None);
        }
        // How many leading components the open ancestors match.
        let mut matched = 0;
        for n in self.nodes() {
            let n = n?;
            if n.depth == 0 || n.depth - 1 > matched {
                continue;
            }
            matched = n.depth - 1;
            let Some(c) = want().nth(matched) else {
                continue;
            };
            if n.name == c || (!c.contains(&b'@') && n.base_name() == c) {
                matched += 1;
                if matched == total {
                    return Ok(Some(n));
                }
            }
        }
        Ok(None)
    }

    /// The node `/chosen/stdout-path` names (through `/aliases` when it
    /// does not start with `/`; options after `:` ignored).
    pub fn stdout_node(&self) -> Result<Option<Node<'a>>, FdtError> {
        let Some(chosen) = self.find_top_level("chosen")? else {
            return Ok(None);
        };
        let Some(spec) = chosen
            .string("stdout-path")
            .or(chosen.string("linux,stdout-path"))
        else {
            return Ok(None);
        };
        let path = spec.split(|b| *b == b':').next().unwrap_or(&[]);
        if path.first() == Some(&b'/') {
            return self.find_path(path);
        }
        let Some(aliases) = self.find_top_level("aliases")? else {
            return Ok(None);
        };
        let Some(target) = aliases
            .properties()
            .find(|(n, _)| *n == path)
            .map(|(_, v)| v.strip_suffix(&[0]).unwrap_or(v))
        else {
            return Ok(None);
        };
        self.find_path(target)
    }

    /// The node at `path` below the root (`"chosen"`, `"psci"`); only
    /// top-level names, matched up to any `@unit`.
    pub fn find_top_level(&self, name: &str) -> Result<Option<Node<'a>>, FdtError> {
        for n in self.nodes() {
            let n = n?;
            if n.depth == 1 && n.base_name() == name.as_bytes() {
                return Ok(Some(n));
            }
        }
        Ok(None)
    }

    fn name_at(&self, off: u32) -> Result<&'a [u8], FdtError> {
        let rest = self
            .strings
            .get(off as usize..)
            .ok_or(FdtError::BadNameOffset(off))?;
        let len = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or(FdtError::BadNameOffset(off))?;
        Ok(&rest[..len])
    }

    /// Reads one token at `pos`: kind, and for a property its name offset,
    /// value and the position after it; for a node its name.
    fn token(&self, pos: usize) -> Result<Token<'a>, FdtError> {
        let s = self.structs;
        let tok = be32(s, pos).ok_or(FdtError::UnexpectedEnd)?;
        let body = pos + 4;
        match tok {
            BEGIN_NODE => {
                let rest = s.get(body..).ok_or(FdtError::UnexpectedEnd)?;
                let len = rest
                    .iter()
                    .position(|b| *b == 0)
                    .ok_or(FdtError::UnterminatedName)?;
                let next = align4(body + len + 1).ok_or(FdtError::UnexpectedEnd)?;
                Ok(Token::Begin(&rest[..len], next))
            }
            END_NODE => Ok(Token::End(body)),
            PROP => {
                let len = be32(s, body).ok_or(FdtError::UnexpectedEnd)? as usize;
                let name = be32(s, body + 4).ok_or(FdtError::UnexpectedEnd)?;
                let start = body + 8;
                let end = start.checked_add(len).ok_or(FdtError::UnexpectedEnd)?;
                let value = s.get(start..end).ok_or(FdtError::UnexpectedEnd)?;
                let next = align4(end).ok_or(FdtError::UnexpectedEnd)?;
                Ok(Token::Prop(name, value, next))
            }
            NOP => Ok(Token::Nop(body)),
            END => Ok(Token::Finish),
            _ => Err(FdtError::BadToken(pos)),
        }
    }
}

enum Token<'a> {
    Begin(&'a [u8], usize),
    End(usize),
    Prop(u32, &'a [u8], usize),
    Nop(usize),
    Finish,
}

/// One node of the tree.
#[derive(Clone, Copy)]
pub struct Node<'a> {
    fdt: Fdt<'a>,
    /// the node's name, `name@unit` (empty for the root)
    pub name: &'a [u8],
    /// nesting depth; the root is 0
    pub depth: usize,
    /// offset of its first property token
    props: usize,
    /// the parent's `#address-cells` and `#size-cells`
    parent_cells: (u32, u32),
    /// the first property offsets of the ancestors, the root first
    /// (`ancestors[..depth]`), for `ranges` translation
    ancestors: [usize; MAX_DEPTH],
    /// the `#address-cells`/`#size-cells` each ancestor declares
    /// (`ancestor_cells[..depth]`)
    ancestor_cells: [(u32, u32); MAX_DEPTH],
}

impl<'a> Node<'a> {
    /// The name without its `@unit` part.
    pub fn base_name(&self) -> &'a [u8] {
        let end = self
            .name
            .iter()
            .position(|b| *b == b'@')
            .unwrap_or(self.name.len());
        &self.name[..end]
    }

    /// The value of property `name`.
    pub fn property(&self, name: &str) -> Option<&'a [u8]> {
        self.properties()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, v)| v)
    }

    /// The node's properties, `(name, value)`; stops at the first
    /// malformed one.
    pub fn properties(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let fdt = self.fdt;
        let mut pos = self.props;
        core::iter::from_fn(move || {
            loop {
                match fdt.token(pos).ok()? {
                    Token::Prop(name, value, next) => {
                        pos = next;
                        return Some((fdt.name_at(name).ok()?, value));
                    }
                    Token::Nop(next) => pos = next,
                    _ => return None,
                }
            }
        })
    }

    /// Whether the `compatible` string list holds `what`.
    pub fn is_compatible(&self, what: &str) -> bool {
        self.property("compatible").is_some_and(|v| {
            v.split(|b| *b == 0)
                .any(|s| !s.is_empty() && s == what.as_bytes())
        })
    }

    /// Whether the node is available to us: no `status`, or `"okay"`
    /// (nodes for the secure world say `"disabled"` here).
    pub fn is_enabled(&self) -> bool {
        matches!(self.string("status"), None | Some(b"okay" | b"ok"))
    }

    /// A string property without its terminating NUL.
    pub fn string(&self, name: &str) -> Option<&'a [u8]> {
        let v = self.property(name)?;
        Some(v.strip_suffix(&[0]).unwrap_or(v))
    }

    /// A property of one or two cells as a number.
    pub fn number(&self, name: &str) -> Option<u64> {
        read_cells(self.property(name)?, 0, self.property(name)?.len() / 4)
    }

    /// The `reg` entries, `(address, size)`, read with the parent's cell
    /// counts and translated to CPU physical addresses through every
    /// ancestor's `ranges` (the Raspberry Pi's peripherals sit at bus
    /// addresses 0x7e... behind `/soc`); entries that do not fit 64 bits,
    /// or that an ancestor's `ranges` does not map, are skipped.
    pub fn reg(&self) -> impl Iterator<Item = (u64, u64)> + 'a {
        let node = *self;
        self.raw_reg()
            .filter_map(move |(addr, size)| Some((node.translate(addr, size)?, size)))
    }

    /// The `reg` entries as written, in the parent's address space.
    pub fn raw_reg(&self) -> impl Iterator<Item = (u64, u64)> + 'a {
        let (ac, sc) = (self.parent_cells.0 as usize, self.parent_cells.1 as usize);
        let value = self.property("reg").unwrap_or(&[]);
        let entry = ac
            .checked_add(sc)
            .and_then(|n| n.checked_mul(4))
            .unwrap_or(0);
        let count = value.len().checked_div(entry).unwrap_or(0);
        (0..count).filter_map(move |i| {
            let base = i * entry;
            let addr = read_cells(value, base, ac)?;
            let size = read_cells(value, base + ac * 4, sc)?;
            Some((addr, size))
        })
    }

    /// Translates `[addr, addr + size)` in this node's parent's address
    /// space up to the root's (CPU physical addresses): at each ancestor
    /// below the root, an empty `ranges` is the identity, entries
    /// `<child parent size>` (child cells from the ancestor, parent cells
    /// from its parent) map windows, and a missing `ranges` means the
    /// bus is not memory-mapped (`None`).
    pub fn translate(&self, mut addr: u64, size: u64) -> Option<u64> {
        for d in (1..self.depth).rev() {
            let bus = Node {
                fdt: self.fdt,
                name: &[],
                depth: d,
                props: self.ancestors[d],
                parent_cells: self.ancestor_cells[d - 1],
                ancestors: self.ancestors,
                ancestor_cells: self.ancestor_cells,
            };
            let ranges = bus.property("ranges")?;
            if ranges.is_empty() {
                continue;
            }
            let child_ac = self.ancestor_cells[d].0 as usize;
            let child_sc = self.ancestor_cells[d].1 as usize;
            let parent_ac = self.ancestor_cells[d - 1].0 as usize;
            let entry = child_ac
                .checked_add(parent_ac)?
                .checked_add(child_sc)?
                .checked_mul(4)?;
            let count = ranges.len().checked_div(entry)?;
            addr = (0..count).find_map(|i| {
                let base = i * entry;
                let child = read_cells(ranges, base, child_ac)?;
                let parent = read_cells(ranges, base + child_ac * 4, parent_ac)?;
                let len = read_cells(ranges, base + (child_ac + parent_ac) * 4, child_sc)?;
                let off = addr.checked_sub(child)?;
                (off < len && size <= len - off).then(|| parent.checked_add(off))?
            })?;
        }
        Some(addr)
    }
}

/// What a PCI address space a `ranges` entry of a PCI host bridge maps
/// (the space code in bits 24-25 of the entry's first PCI address cell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PciSpace {
    /// configuration space
    Config,
    /// I/O space
    Io,
    /// 32-bit memory space
    Memory32,
    /// 64-bit memory space
    Memory64,
}

/// One entry of a PCI host bridge's `ranges`: a window of PCI address
/// space and where the CPU reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciRange {
    /// which PCI address space
    pub space: PciSpace,
    /// prefetchable memory
    pub prefetchable: bool,
    /// the window's first PCI (bus) address
    pub pci_address: u64,
    /// the window's first CPU (physical) address
    pub cpu_address: u64,
    /// the window's length in bytes
    pub size: u64,
}

impl<'a> Node<'a> {
    /// A property as big-endian 32-bit cells (a trailing partial cell is
    /// dropped).
    pub fn cells(&self, name: &str) -> impl Iterator<Item = u32> + 'a {
        self.property(name)
            .unwrap_or(&[])
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// The `interrupts` of a node whose interrupt parent is a GIC (three
    /// cells each: type, number, flags) as GIC interrupt IDs: SPI `n` is
    /// ID `n + 32`, PPI `n` is ID `n + 16`. Other types are skipped.
    pub fn gic_interrupts(&self) -> impl Iterator<Item = u32> + 'a {
        let v = self.property("interrupts").unwrap_or(&[]);
        v.chunks_exact(12).filter_map(|c| {
            let kind = be32(c, 0)?;
            let number = be32(c, 4)?;
            match kind {
                0 => number.checked_add(32),
                1 => number.checked_add(16),
                _ => None,
            }
        })
    }

    /// The `ranges` of a PCI host bridge (`device_type = "pci"`): three
    /// cells of PCI address (space code, then a 64-bit address), the
    /// parent's `#address-cells` of CPU address, the node's own
    /// `#size-cells` (default 2) of size. Entries that do not fit 64 bits
    /// are skipped; a node whose own `#address-cells` is not 3 has none.
    pub fn pci_ranges(&self) -> impl Iterator<Item = PciRange> + 'a {
        let own_ac = self.number("#address-cells").unwrap_or(3) as usize;
        let own_sc = self.number("#size-cells").unwrap_or(2) as usize;
        let parent_ac = self.parent_cells.0 as usize;
        let value = if own_ac == 3 {
            self.property("ranges").unwrap_or(&[])
        } else {
            &[]
        };
        // Cell counts come from the tree: a hostile one must not overflow
        // (entries of more than two cells per number are skipped anyway).
        let entry = 3usize
            .checked_add(parent_ac)
            .and_then(|n| n.checked_add(own_sc))
            .and_then(|n| n.checked_mul(4))
            .unwrap_or(0);
        let count = value.len().checked_div(entry).unwrap_or(0);
        (0..count).filter_map(move |i| {
            let base = i * entry;
            let hi = be32(value, base)?;
            let space = match (hi >> 24) & 3 {
                0 => PciSpace::Config,
                1 => PciSpace::Io,
                2 => PciSpace::Memory32,
                _ => PciSpace::Memory64,
            };
            Some(PciRange {
                space,
                prefetchable: hi & (1 << 30) != 0,
                pci_address: read_cells(value, base + 4, 2)?,
                cpu_address: read_cells(value, base + 12, parent_ac)?,
                size: read_cells(value, base + 12 + parent_ac * 4, own_sc)?,
            })
        })
    }
}

/// `cells` big-endian 32-bit cells at byte `off` as one number (0..=2
/// cells; more do not fit).
fn read_cells(v: &[u8], off: usize, cells: usize) -> Option<u64> {
    if cells > 2 {
        return None;
    }
    let mut n = 0u64;
    for i in 0..cells {
        n = n << 32 | u64::from(be32(v, off + i * 4)?);
    }
    Some(n)
}

/// The iterator of [`Fdt::nodes`].
pub struct Nodes<'a> {
    fdt: Fdt<'a>,
    pos: usize,
    depth: usize,
    /// `#address-cells`/`#size-cells` declared by the open node at each depth
    cells: [(u32, u32); MAX_DEPTH + 1],
    /// the first property offset of the open node at each depth
    props: [usize; MAX_DEPTH],
    done: bool,
}

impl<'a> Iterator for Nodes<'a> {
    type Item = Result<Node<'a>, FdtError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.step();
        if !matches!(r, Some(Ok(_))) {
            self.done = true;
        }
        r
    }
}

impl<'a> Nodes<'a> {
    fn step(&mut self) -> Option<Result<Node<'a>, FdtError>> {
        loop {
            let tok = match self.fdt.token(self.pos) {
                Ok(t) => t,
                Err(e) => return Some(Err(e)),
            };
            match tok {
                Token::Begin(name, next) => {
                    if self.depth >= MAX_DEPTH {
                        return Some(Err(FdtError::TooDeep));
                    }
                    let parent_cells = if self.depth == 0 {
                        (2, 1)
                    } else {
                        self.cells[self.depth - 1]
                    };
                    let mut ancestor_cells = [(2, 1); MAX_DEPTH];
                    ancestor_cells.copy_from_slice(&self.cells[..MAX_DEPTH]);
                    let node = Node {
                        fdt: self.fdt,
                        name,
                        depth: self.depth,
                        props: next,
                        parent_cells,
                        ancestors: self.props,
                        ancestor_cells,
                    };
                    let ac = node.number("#address-cells").map_or(2, |v| v as u32);
                    let sc = node.number("#size-cells").map_or(1, |v| v as u32);
                    self.cells[self.depth] = (ac, sc);
                    self.props[self.depth] = next;
                    self.depth += 1;
                    self.pos = next;
                    return Some(Ok(node));
                }
                Token::End(next) => {
                    if self.depth == 0 {
                        return Some(Err(FdtError::BadToken(self.pos)));
                    }
                    self.depth -= 1;
                    self.pos = next;
                }
                Token::Prop(_, _, next) | Token::Nop(next) => self.pos = next,
                Token::Finish => {
                    return (self.depth != 0).then_some(Err(FdtError::UnexpectedEnd));
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "fdt_tests.rs"]
mod tests;
