//! Module-level metadata: everything about a module except function bodies.
//!
//! Filled by [`crate::module_info::parse`] from the module's sections, read by
//! the translator (types of functions, globals, tables, memories) and by
//! instantiation (imports, exports, initialisers, segments).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::exact::{
    CanonType, Composite, ExactFuncType, ExactHeap, ExactType, FieldType, RecGroup, StorageType,
    SubType,
};
use crate::types::{FuncType, GlobalType, MemoryType, RefType, TableType, ValType};

/// Index of a function in the module's function index space (imports first).
pub type FuncIndex = u32;
/// Index of a type in the module's type section.
pub type TypeIndex = u32;
/// Index of a global (imports first).
pub type GlobalIndex = u32;
/// Index of a table (imports first).
pub type TableIndex = u32;
/// Index of a linear memory (imports first).
pub type MemoryIndex = u32;
/// Index of an exception tag (imports first).
pub type TagIndex = u32;

/// A constant expression (global initialisers, segment offsets, element items).
#[derive(Clone, Debug, PartialEq)]
pub enum ConstExpr {
    /// `i32.const`
    I32(i32),
    /// `i64.const`
    I64(i64),
    /// `f32.const`, as bits
    F32(u32),
    /// `f64.const`, as bits
    F64(u64),
    /// `v128.const`
    V128(u128),
    /// `ref.null` of a heap type
    RefNull(RefType),
    /// `ref.func`
    RefFunc(FuncIndex),
    /// `global.get` of an (imported, immutable) global
    GlobalGet(GlobalIndex),
    /// Extended constant expressions: `i32.add` etc. over a small stack
    /// program, kept as the raw operator sequence.
    Extended(Box<[ConstOp]>),
}

/// One operator of an extended constant expression.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConstOp {
    /// push an i32
    I32(i32),
    /// push an i64
    I64(i64),
    /// push a global's value
    GlobalGet(GlobalIndex),
    /// push a function reference
    RefFunc(FuncIndex),
    /// push a null reference
    RefNull(RefType),
    /// pop two i32, push their sum (wrapping)
    I32Add,
    /// pop two i32, push the difference
    I32Sub,
    /// pop two i32, push the product
    I32Mul,
    /// pop two i64, push their sum (wrapping)
    I64Add,
    /// pop two i64, push the difference
    I64Sub,
    /// pop two i64, push the product
    I64Mul,
    /// pop an i32, push it as an `i31ref` (`ref.i31`)
    RefI31,
    /// pop the fields, push a new struct of this type
    StructNew(TypeIndex),
    /// push a new struct of this type, fields zero or null
    StructNewDefault(TypeIndex),
    /// pop a length and an element, push a new array of this type
    ArrayNew(TypeIndex),
    /// pop a length, push a new array of this type, elements zero or null
    ArrayNewDefault(TypeIndex),
    /// pop this many elements, push a new array of this type
    ArrayNewFixed(TypeIndex, u32),
}

/// What an import brings in.
#[derive(Clone, Debug, PartialEq)]
pub enum ImportKind {
    /// a function of the given type
    Func(TypeIndex),
    /// a table
    Table(TableType),
    /// a linear memory
    Memory(MemoryType),
    /// a global
    Global(GlobalType),
    /// an exception tag of the given (function) type
    Tag(TypeIndex),
}

/// One entry of the import section.
#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    /// module name
    pub module: String,
    /// field name
    pub name: String,
    /// what is imported
    pub kind: ImportKind,
}

/// What an export names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportKind {
    /// a function
    Func(FuncIndex),
    /// a table
    Table(TableIndex),
    /// a memory
    Memory(MemoryIndex),
    /// a global
    Global(GlobalIndex),
    /// an exception tag
    Tag(TagIndex),
}

/// One entry of the export section.
#[derive(Clone, Debug, PartialEq)]
pub struct Export {
    /// exported name
    pub name: String,
    /// what it names
    pub kind: ExportKind,
}

/// A defined (non-imported) global.
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalDef {
    /// its type
    pub ty: GlobalType,
    /// its initialiser
    pub init: ConstExpr,
}

/// Where an element segment goes.
#[derive(Clone, Debug, PartialEq)]
pub enum ElementMode {
    /// copied into a table at instantiation
    Active {
        /// target table
        table: TableIndex,
        /// offset expression
        offset: ConstExpr,
    },
    /// kept for `table.init`
    Passive,
    /// only declares functions as referencable; dropped at instantiation
    Declared,
}

/// An element segment.
#[derive(Clone, Debug, PartialEq)]
pub struct ElementSegment {
    /// the element type
    pub ty: RefType,
    /// active, passive or declared
    pub mode: ElementMode,
    /// the items, each a constant expression (`ref.func`, `ref.null`, …)
    pub items: Box<[ConstExpr]>,
}

/// Where a data segment goes.
#[derive(Clone, Debug, PartialEq)]
pub enum DataMode {
    /// copied into a memory at instantiation
    Active {
        /// target memory
        memory: MemoryIndex,
        /// offset expression
        offset: ConstExpr,
    },
    /// kept for `memory.init`
    Passive,
}

/// A data segment; its bytes stay in the module's wasm bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct DataSegment {
    /// active or passive
    pub mode: DataMode,
    /// byte range of the payload inside the wasm binary
    pub range: core::ops::Range<usize>,
}

/// Everything about a module except its code.
#[derive(Clone, Debug, Default)]
pub struct ModuleInfo {
    /// the type section (function types only for now)
    pub types: Vec<FuncType>,
    /// imports, in order
    pub imports: Vec<Import>,
    /// type index of every function, imported ones first
    pub functions: Vec<TypeIndex>,
    /// how many of `functions` are imported
    pub num_imported_funcs: u32,
    /// every table, imported ones first
    pub tables: Vec<TableType>,
    /// how many of `tables` are imported
    pub num_imported_tables: u32,
    /// initialiser of each defined table (`None`: null)
    pub table_inits: Vec<Option<ConstExpr>>,
    /// every memory, imported ones first
    pub memories: Vec<MemoryType>,
    /// how many of `memories` are imported
    pub num_imported_memories: u32,
    /// every global's type, imported ones first
    pub globals: Vec<GlobalType>,
    /// how many of `globals` are imported
    pub num_imported_globals: u32,
    /// initialisers of defined globals (index = global index - imported)
    pub global_inits: Vec<ConstExpr>,
    /// exports, in order
    pub exports: Vec<Export>,
    /// the start function
    pub start: Option<FuncIndex>,
    /// element segments
    pub elements: Vec<ElementSegment>,
    /// data segments
    pub data: Vec<DataSegment>,
    /// functions named by `ref.func` anywhere outside function bodies or
    /// declared; only these may be referenced in bodies
    pub declared_func_refs: Vec<FuncIndex>,
    /// function names from the `name` section, by function index
    pub func_names: Vec<(FuncIndex, String)>,
    /// the module's name from the `name` section
    pub name: Option<String>,
    /// each type of `types`, canonical: its recursion group, declared
    /// supertype and exact references (for linking and the engine-wide
    /// type ids `call_indirect` compares)
    pub exact_types: Vec<CanonType>,
    /// each table's exact element type, imported ones first
    pub exact_table_elements: Vec<ExactType>,
    /// each global's exact content type, imported ones first
    pub exact_globals: Vec<ExactType>,
    /// the function type of every exception tag, imported ones first
    /// (a tag's parameters are its exception's payload)
    pub tags: Vec<TypeIndex>,
    /// how many of `tags` are imported
    pub num_imported_tags: u32,
    /// whether each type of `types` is a function type (else a GC struct
    /// or array type, whose entry in `types` is an empty placeholder)
    pub type_is_func: Vec<bool>,
}

impl ModuleInfo {
    /// The signature of function `f`.
    pub fn func_type(&self, f: FuncIndex) -> &FuncType {
        &self.types[self.functions[f as usize] as usize]
    }

    /// Whether function `f` is imported.
    pub fn is_imported_func(&self, f: FuncIndex) -> bool {
        f < self.num_imported_funcs
    }

    /// Whether global `g` is imported.
    pub fn is_imported_global(&self, g: GlobalIndex) -> bool {
        g < self.num_imported_globals
    }

    /// Whether table `t` is imported.
    pub fn is_imported_table(&self, t: TableIndex) -> bool {
        t < self.num_imported_tables
    }

    /// Whether memory `m` is imported.
    pub fn is_imported_memory(&self, m: MemoryIndex) -> bool {
        m < self.num_imported_memories
    }

    /// The name of function `f` from the name section, if any.
    pub fn func_name(&self, f: FuncIndex) -> Option<&str> {
        self.func_names
            .binary_search_by_key(&f, |(i, _)| *i)
            .ok()
            .map(|i| self.func_names[i].1.as_str())
    }

    /// Value types of a function's parameters.
    pub fn params(&self, f: FuncIndex) -> &[ValType] {
        &self.func_type(f).params
    }

    /// The payload types of tag `t` (its function type's parameters).
    pub fn tag_params(&self, t: TagIndex) -> &[ValType] {
        &self.types[self.tags[t as usize] as usize].params
    }
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

use crate::error::Error;
use wasmparser::{
    ConstExpr as WpConstExpr, ElementItems, ElementKind, ExternalKind, FuncToValidate,
    FunctionBody, KnownCustom, Name, Operator, Parser, Payload, TypeRef, Validator,
    ValidatorResources, WasmFeatures,
};

/// The wasm features Basalt accepts: WebAssembly 2.0, 128-bit SIMD included,
/// plus these Wasm 3.0 proposals: tail calls, extended constant expressions
/// (`i32`/`i64` `add`, `sub`, `mul`; `global.get` of a defined global stays
/// refused, as wasmparser allows it only with GC), multiple memories
/// (every memory instruction carries its memory index) and 64-bit memories
/// and tables (memory64: i64 indices, explicitly bounds-checked) and
/// relaxed SIMD (each operator with one fixed, ISA-independent result; see
/// `translate::simd`), typed function references and exception handling
/// (tags, `throw`, `throw_ref`, `try_table`, `exnref`, and the legacy
/// `try`/`catch`/`catch_all`/`delegate`/`rethrow` of the spec's legacy
/// appendix, which older toolchains emit).
pub fn supported_features() -> WasmFeatures {
    WasmFeatures::WASM2
        | WasmFeatures::TAIL_CALL
        | WasmFeatures::EXTENDED_CONST
        | WasmFeatures::MULTI_MEMORY
        | WasmFeatures::MEMORY64
        | WasmFeatures::RELAXED_SIMD
        | WasmFeatures::FUNCTION_REFERENCES
        | WasmFeatures::EXCEPTIONS
        | WasmFeatures::LEGACY_EXCEPTIONS
        | WasmFeatures::GC
}

/// A function body still to be compiled, with the validator that checks it
/// while the translator walks it.
pub struct PendingFunction<'a> {
    /// index in the function index space
    pub index: FuncIndex,
    /// the body
    pub body: FunctionBody<'a>,
    /// its validator
    pub validator: FuncToValidate<ValidatorResources>,
}

/// Parses and validates the module-level parts of `wasm`; returns the
/// metadata and the function bodies still to be validated and compiled.
pub fn parse(wasm: &[u8]) -> Result<(ModuleInfo, Vec<PendingFunction<'_>>), Error> {
    let mut validator = Validator::new_with_features(supported_features());
    let mut info = ModuleInfo::default();
    let mut bodies = Vec::new();
    let mut next_defined_func = 0u32;
    let mut declared = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(Error::from_wasmparser)?;
        match validator
            .payload(&payload)
            .map_err(Error::from_wasmparser)?
        {
            wasmparser::ValidPayload::Func(func, body) => {
                let index = info.num_imported_funcs + next_defined_func;
                next_defined_func += 1;
                bodies.push(PendingFunction {
                    index,
                    body,
                    validator: func,
                });
                continue;
            }
            wasmparser::ValidPayload::Parser(_) => {
                return Err(Error::Unsupported {
                    feature: "component model",
                    offset: 0,
                });
            }
            _ => {}
        }
        match payload {
            Payload::TypeSection(reader) => {
                for rec in reader {
                    let rec = rec.map_err(Error::from_wasmparser)?;
                    let start = info.exact_types.len() as u32;
                    let subs = rec.into_types().collect::<Vec<_>>();
                    let end = start + subs.len() as u32;
                    // The kinds of the whole group first: its members may
                    // refer to each other.
                    for sub in &subs {
                        let is_func = matches!(
                            sub.composite_type.inner,
                            wasmparser::CompositeInnerType::Func(_)
                        );
                        info.type_is_func.push(is_func);
                    }
                    let mut group = Vec::with_capacity(subs.len());
                    for sub in &subs {
                        if sub.composite_type.shared || sub.composite_type.descriptor_idx.is_some()
                        {
                            return Err(Error::Unsupported {
                                feature: "gc (shared or described types)",
                                offset: 0,
                            });
                        }
                        let supertype = match sub.supertype_idxs.first() {
                            Some(p) => Some(type_ref(p.unpack(), start, end, &info.exact_types)?),
                            None => None,
                        };
                        let kinds = &info.type_is_func;
                        let composite = match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => {
                                info.types.push(func_type(f, kinds)?);
                                Composite::Func(exact_func_type(f, start, end, &info.exact_types)?)
                            }
                            wasmparser::CompositeInnerType::Struct(st) => {
                                info.types.push(FuncType::new(&[], &[]));
                                Composite::Struct(
                                    st.fields
                                        .iter()
                                        .map(|f| field_type(f, start, end, &info.exact_types))
                                        .collect::<Result<Vec<_>, _>>()?
                                        .into(),
                                )
                            }
                            wasmparser::CompositeInnerType::Array(at) => {
                                info.types.push(FuncType::new(&[], &[]));
                                Composite::Array(field_type(&at.0, start, end, &info.exact_types)?)
                            }
                            _ => {
                                return Err(Error::Unsupported {
                                    feature: "stack switching (continuation types)",
                                    offset: 0,
                                });
                            }
                        };
                        group.push(SubType {
                            is_final: sub.is_final,
                            supertype,
                            composite,
                        });
                    }
                    let group = Arc::new(RecGroup {
                        types: group.into(),
                    });
                    for index in 0..subs.len() as u32 {
                        info.exact_types.push(CanonType {
                            group: group.clone(),
                            index,
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(Error::from_wasmparser)?;
                    let kind = match import.ty {
                        TypeRef::Func(t) | TypeRef::FuncExact(t) => {
                            info.functions.push(t);
                            info.num_imported_funcs += 1;
                            ImportKind::Func(t)
                        }
                        TypeRef::Table(t) => {
                            info.exact_table_elements.push(exact_val_type(
                                wasmparser::ValType::Ref(t.element_type),
                                u32::MAX,
                                u32::MAX,
                                &info.exact_types,
                            )?);
                            let t = table_type(&t, &info.type_is_func)?;
                            info.tables.push(t);
                            info.num_imported_tables += 1;
                            ImportKind::Table(t)
                        }
                        TypeRef::Memory(m) => {
                            let m = memory_type(&m);
                            info.memories.push(m);
                            info.num_imported_memories += 1;
                            ImportKind::Memory(m)
                        }
                        TypeRef::Global(g) => {
                            info.exact_globals.push(exact_val_type(
                                g.content_type,
                                u32::MAX,
                                u32::MAX,
                                &info.exact_types,
                            )?);
                            let g = global_type(&g, &info.type_is_func)?;
                            info.globals.push(g);
                            info.num_imported_globals += 1;
                            ImportKind::Global(g)
                        }
                        TypeRef::Tag(t) => {
                            info.tags.push(t.func_type_idx);
                            info.num_imported_tags += 1;
                            ImportKind::Tag(t.func_type_idx)
                        }
                    };
                    info.imports.push(Import {
                        module: import.module.into(),
                        name: import.name.into(),
                        kind,
                    });
                }
            }
            Payload::FunctionSection(reader) => {
                for t in reader {
                    info.functions.push(t.map_err(Error::from_wasmparser)?);
                }
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    let table = table.map_err(Error::from_wasmparser)?;
                    info.exact_table_elements.push(exact_val_type(
                        wasmparser::ValType::Ref(table.ty.element_type),
                        u32::MAX,
                        u32::MAX,
                        &info.exact_types,
                    )?);
                    info.tables.push(table_type(&table.ty, &info.type_is_func)?);
                    info.table_inits.push(match table.init {
                        wasmparser::TableInit::RefNull => None,
                        wasmparser::TableInit::Expr(e) => {
                            Some(const_expr(&e, &mut declared, &info.type_is_func)?)
                        }
                    });
                }
            }
            Payload::MemorySection(reader) => {
                for m in reader {
                    info.memories
                        .push(memory_type(&m.map_err(Error::from_wasmparser)?));
                }
            }
            Payload::GlobalSection(reader) => {
                for g in reader {
                    let g = g.map_err(Error::from_wasmparser)?;
                    info.exact_globals.push(exact_val_type(
                        g.ty.content_type,
                        u32::MAX,
                        u32::MAX,
                        &info.exact_types,
                    )?);
                    info.globals.push(global_type(&g.ty, &info.type_is_func)?);
                    info.global_inits.push(const_expr(
                        &g.init_expr,
                        &mut declared,
                        &info.type_is_func,
                    )?);
                }
            }
            Payload::ExportSection(reader) => {
                for e in reader {
                    let e = e.map_err(Error::from_wasmparser)?;
                    let kind = match e.kind {
                        ExternalKind::Func | ExternalKind::FuncExact => ExportKind::Func(e.index),
                        ExternalKind::Table => ExportKind::Table(e.index),
                        ExternalKind::Memory => ExportKind::Memory(e.index),
                        ExternalKind::Global => ExportKind::Global(e.index),
                        ExternalKind::Tag => ExportKind::Tag(e.index),
                    };
                    if let ExportKind::Func(f) = kind {
                        declared.push(f);
                    }
                    info.exports.push(Export {
                        name: e.name.into(),
                        kind,
                    });
                }
            }
            Payload::StartSection { func, .. } => info.start = Some(func),
            Payload::ElementSection(reader) => {
                for element in reader {
                    let element = element.map_err(Error::from_wasmparser)?;
                    let (ty, items): (RefType, Vec<ConstExpr>) = match element.items {
                        ElementItems::Functions(funcs) => {
                            let mut items = Vec::new();
                            for f in funcs {
                                let f = f.map_err(Error::from_wasmparser)?;
                                declared.push(f);
                                items.push(ConstExpr::RefFunc(f));
                            }
                            (RefType::FuncRef, items)
                        }
                        ElementItems::Expressions(ty, exprs) => {
                            let mut items = Vec::new();
                            for e in exprs {
                                items.push(const_expr(
                                    &e.map_err(Error::from_wasmparser)?,
                                    &mut declared,
                                    &info.type_is_func,
                                )?);
                            }
                            (ref_type(ty, &info.type_is_func)?, items)
                        }
                    };
                    let mode = match element.kind {
                        ElementKind::Passive => ElementMode::Passive,
                        ElementKind::Declared => ElementMode::Declared,
                        ElementKind::Active {
                            table_index,
                            offset_expr,
                        } => ElementMode::Active {
                            table: table_index.unwrap_or(0),
                            offset: const_expr(&offset_expr, &mut declared, &info.type_is_func)?,
                        },
                    };
                    info.elements.push(ElementSegment {
                        ty,
                        mode,
                        items: items.into(),
                    });
                }
            }
            Payload::DataSection(reader) => {
                for data in reader {
                    let data = data.map_err(Error::from_wasmparser)?;
                    let mode = match data.kind {
                        wasmparser::DataKind::Passive => DataMode::Passive,
                        wasmparser::DataKind::Active {
                            memory_index,
                            offset_expr,
                        } => DataMode::Active {
                            memory: memory_index,
                            offset: const_expr(&offset_expr, &mut declared, &info.type_is_func)?,
                        },
                    };
                    let start = data.range.end as usize - data.data.len();
                    info.data.push(DataSegment {
                        mode,
                        range: start..data.range.end as usize,
                    });
                }
            }
            Payload::CustomSection(section) => {
                // A malformed name section is ignored, as the spec asks.
                if let KnownCustom::Name(reader) = section.as_known() {
                    let _ = read_names(reader, &mut info);
                }
            }
            Payload::TagSection(reader) => {
                for tag in reader {
                    let tag = tag.map_err(Error::from_wasmparser)?;
                    info.tags.push(tag.func_type_idx);
                }
            }
            _ => {}
        }
    }
    declared.sort_unstable();
    declared.dedup();
    info.declared_func_refs = declared;
    info.func_names.sort_by_key(|(i, _)| *i);
    info.func_names.dedup_by_key(|(i, _)| *i);
    Ok((info, bodies))
}

fn read_names(
    reader: wasmparser::NameSectionReader<'_>,
    info: &mut ModuleInfo,
) -> wasmparser::Result<()> {
    for name in reader {
        match name? {
            Name::Module { name, .. } => info.name = Some(name.into()),
            Name::Function(map) => {
                for naming in map {
                    let naming = naming?;
                    info.func_names.push((naming.index, naming.name.into()));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The representation of reference type `ty` ([`RefType`]); GC's heap
/// types are unsupported.
pub(crate) fn ref_type(ty: wasmparser::RefType, kinds: &[bool]) -> Result<RefType, Error> {
    heap_type(ty.heap_type(), kinds)
}

/// The representation of references to `hty`: function references (any
/// function, no function, or a function of one type) are `funcref`s,
/// external references `externref`s. Nullability and the exact function
/// type are validation's business.
pub(crate) fn heap_type(hty: wasmparser::HeapType, kinds: &[bool]) -> Result<RefType, Error> {
    use wasmparser::{AbstractHeapType as A, HeapType as H};
    match hty {
        H::Abstract {
            ty: A::Func | A::NoFunc,
            shared: false,
        } => Ok(RefType::FuncRef),
        H::Abstract {
            ty: A::Extern | A::NoExtern,
            shared: false,
        } => Ok(RefType::ExternRef),
        H::Abstract {
            ty: A::Exn | A::NoExn,
            shared: false,
        } => Ok(RefType::ExnRef),
        H::Abstract {
            ty: A::Any | A::Eq | A::I31 | A::Struct | A::Array | A::None,
            shared: false,
        } => Ok(RefType::AnyRef),
        H::Concrete(wasmparser::UnpackedIndex::Module(i)) => match kinds.get(i as usize) {
            Some(true) => Ok(RefType::FuncRef),
            Some(false) => Ok(RefType::AnyRef),
            None => Err(gc()),
        },
        _ => Err(Error::Unsupported {
            feature: "gc",
            offset: 0,
        }),
    }
}

/// Converts a wasmparser value type.
/// `kinds`: whether each module type is a function type
/// ([`ModuleInfo::type_is_func`]).
pub fn val_type(ty: wasmparser::ValType, kinds: &[bool]) -> Result<ValType, Error> {
    Ok(match ty {
        wasmparser::ValType::I32 => ValType::I32,
        wasmparser::ValType::I64 => ValType::I64,
        wasmparser::ValType::F32 => ValType::F32,
        wasmparser::ValType::F64 => ValType::F64,
        wasmparser::ValType::V128 => ValType::V128,
        wasmparser::ValType::Ref(r) => ValType::Ref(ref_type(r, kinds)?),
    })
}

/// The exact type of function type `f`, a member of the recursion group
/// of module types `start..end` (`earlier`: the module's types before it).
fn exact_func_type(
    f: &wasmparser::FuncType,
    start: u32,
    end: u32,
    earlier: &[CanonType],
) -> Result<ExactFuncType, Error> {
    let each = |list: &[wasmparser::ValType]| {
        list.iter()
            .map(|t| exact_val_type(*t, start, end, earlier))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(ExactFuncType {
        params: each(f.params())?.into(),
        results: each(f.results())?.into(),
    })
}

/// The exact type of `ty`. Its concrete references name module types:
/// those of the recursion group `start..end` being defined become
/// [`ExactHeap::Rec`], earlier ones (in `types`) their canonical type.
/// Outside a type definition, pass an empty group (`u32::MAX`).
fn exact_val_type(
    ty: wasmparser::ValType,
    start: u32,
    end: u32,
    types: &[CanonType],
) -> Result<ExactType, Error> {
    use wasmparser::{AbstractHeapType as A, HeapType as H};
    let wasmparser::ValType::Ref(r) = ty else {
        return Ok(ExactType::Plain(val_type(ty, &[])?));
    };
    let heap = match r.heap_type() {
        H::Abstract { shared: false, ty } => match ty {
            A::Func => ExactHeap::Func,
            A::NoFunc => ExactHeap::NoFunc,
            A::Extern => ExactHeap::Extern,
            A::NoExtern => ExactHeap::NoExtern,
            A::Exn => ExactHeap::Exn,
            A::NoExn => ExactHeap::NoExn,
            A::Any => ExactHeap::Any,
            A::Eq => ExactHeap::Eq,
            A::I31 => ExactHeap::I31,
            A::Struct => ExactHeap::Struct,
            A::Array => ExactHeap::Array,
            A::None => ExactHeap::None,
            _ => return Err(gc()),
        },
        H::Concrete(i) => type_ref(i, start, end, types)?,
        _ => return Err(gc()),
    };
    Ok(ExactType::Ref {
        nullable: r.is_nullable(),
        heap,
    })
}

/// A struct field or array element type (see [`exact_val_type`] for the
/// group `start..end`).
fn field_type(
    f: &wasmparser::FieldType,
    start: u32,
    end: u32,
    types: &[CanonType],
) -> Result<FieldType, Error> {
    let storage = match f.element_type {
        wasmparser::StorageType::I8 => StorageType::I8,
        wasmparser::StorageType::I16 => StorageType::I16,
        wasmparser::StorageType::Val(v) => StorageType::Val(exact_val_type(v, start, end, types)?),
    };
    Ok(FieldType {
        storage,
        mutable: f.mutable,
    })
}

/// A reference to a defined type: relative to the group `start..end`
/// being defined, or an earlier type's canonical type.
fn type_ref(
    i: wasmparser::UnpackedIndex,
    start: u32,
    end: u32,
    types: &[CanonType],
) -> Result<ExactHeap, Error> {
    use wasmparser::UnpackedIndex as U;
    match i {
        U::RecGroup(r) => Ok(ExactHeap::Rec(r)),
        U::Module(m) if (start..end).contains(&m) => Ok(ExactHeap::Rec(m - start)),
        U::Module(m) => types
            .get(m as usize)
            .cloned()
            .map(ExactHeap::Type)
            .ok_or_else(gc),
        U::Id(_) => Err(gc()),
    }
}

fn gc() -> Error {
    Error::Unsupported {
        feature: "gc",
        offset: 0,
    }
}

fn func_type(f: &wasmparser::FuncType, kinds: &[bool]) -> Result<FuncType, Error> {
    let params = f
        .params()
        .iter()
        .map(|t| val_type(*t, kinds))
        .collect::<Result<Vec<_>, _>>()?;
    let results = f
        .results()
        .iter()
        .map(|t| val_type(*t, kinds))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(FuncType {
        params: params.into(),
        results: results.into(),
    })
}

fn table_type(t: &wasmparser::TableType, kinds: &[bool]) -> Result<TableType, Error> {
    Ok(TableType {
        element: ref_type(t.element_type, kinds)?,
        minimum: t.initial,
        maximum: t.maximum,
        table64: t.table64,
    })
}

fn memory_type(m: &wasmparser::MemoryType) -> MemoryType {
    MemoryType {
        minimum: m.initial,
        maximum: m.maximum,
        memory64: m.memory64,
        shared: m.shared,
        page_size_log2: m.page_size_log2() as u8,
    }
}

fn global_type(g: &wasmparser::GlobalType, kinds: &[bool]) -> Result<GlobalType, Error> {
    Ok(GlobalType {
        content: val_type(g.content_type, kinds)?,
        mutable: g.mutable,
    })
}

fn const_expr(
    expr: &WpConstExpr<'_>,
    declared: &mut Vec<FuncIndex>,
    kinds: &[bool],
) -> Result<ConstExpr, Error> {
    let mut ops = Vec::new();
    let mut reader = expr.get_operators_reader();
    while !reader.eof() {
        let op = reader.read().map_err(Error::from_wasmparser)?;
        ops.push(match op {
            Operator::I32Const { value } => ConstOp::I32(value),
            Operator::I64Const { value } => ConstOp::I64(value),
            // Validation guarantees a float or vector constant stands alone.
            Operator::F32Const { value } => return Ok(ConstExpr::F32(value.bits())),
            // Validation guarantees a float or vector constant stands alone.
            Operator::F64Const { value } => return Ok(ConstExpr::F64(value.bits())),
            // Validation guarantees a float or vector constant stands alone.
            Operator::V128Const { value } => {
                return Ok(ConstExpr::V128(u128::from_le_bytes(*value.bytes())));
            }
            Operator::GlobalGet { global_index } => ConstOp::GlobalGet(global_index),
            Operator::RefFunc { function_index } => {
                declared.push(function_index);
                ConstOp::RefFunc(function_index)
            }
            Operator::RefNull { hty } => ConstOp::RefNull(heap_type(hty, kinds)?),
            Operator::StructNew { struct_type_index } => ConstOp::StructNew(struct_type_index),
            Operator::StructNewDefault { struct_type_index } => {
                ConstOp::StructNewDefault(struct_type_index)
            }
            Operator::ArrayNew { array_type_index } => ConstOp::ArrayNew(array_type_index),
            Operator::ArrayNewDefault { array_type_index } => {
                ConstOp::ArrayNewDefault(array_type_index)
            }
            Operator::ArrayNewFixed {
                array_type_index,
                array_size,
            } => ConstOp::ArrayNewFixed(array_type_index, array_size),
            Operator::I32Add => ConstOp::I32Add,
            Operator::I32Sub => ConstOp::I32Sub,
            Operator::I32Mul => ConstOp::I32Mul,
            Operator::I64Add => ConstOp::I64Add,
            Operator::I64Sub => ConstOp::I64Sub,
            Operator::I64Mul => ConstOp::I64Mul,
            Operator::RefI31 => ConstOp::RefI31,
            // `externref` and `anyref` share one representation.
            Operator::AnyConvertExtern | Operator::ExternConvertAny => continue,
            Operator::End => break,
            _ => {
                return Err(Error::Unsupported {
                    feature: "this constant expression",
                    offset: reader.original_position() as usize,
                });
            }
        });
    }
    Ok(match ops.as_slice() {
        [ConstOp::I32(v)] => ConstExpr::I32(*v),
        [ConstOp::I64(v)] => ConstExpr::I64(*v),
        [ConstOp::GlobalGet(g)] => ConstExpr::GlobalGet(*g),
        [ConstOp::RefFunc(f)] => ConstExpr::RefFunc(*f),
        [ConstOp::RefNull(t)] => ConstExpr::RefNull(*t),
        _ => ConstExpr::Extended(ops.into()),
    })
}
