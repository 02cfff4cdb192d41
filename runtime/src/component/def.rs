//! What a component is (the "environ" half of the component model): its
//! sections read into owned definitions, in order, each adding one entry to
//! an index space. Validation is wasmparser's; this only records. Running
//! the definitions is [`super::instance`]'s job.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use wasmparser::{
    CanonicalFunction, CanonicalOption, ComponentAlias, ComponentDefinedType,
    ComponentExternalKind, ComponentOuterAliasKind, ComponentType, ComponentTypeRef,
    ComponentValType, CoreType, ExternalKind, InstanceTypeDeclaration, Parser, Payload,
    PrimitiveValType, TypeBounds,
};

use crate::error::Error;

/// The component index spaces (sorts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    /// component functions
    Func,
    /// values (not supported at run time)
    Value,
    /// types
    Type,
    /// component instances
    Instance,
    /// components
    Component,
    /// core modules
    Module,
}

impl Sort {
    fn from_kind(k: ComponentExternalKind) -> Sort {
        match k {
            ComponentExternalKind::Module => Sort::Module,
            ComponentExternalKind::Func => Sort::Func,
            ComponentExternalKind::Value => Sort::Value,
            ComponentExternalKind::Type => Sort::Type,
            ComponentExternalKind::Instance => Sort::Instance,
            ComponentExternalKind::Component => Sort::Component,
        }
    }
}

/// The core index spaces a component has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoreSort {
    /// core functions
    Func,
    /// tables
    Table,
    /// memories
    Memory,
    /// globals
    Global,
    /// tags
    Tag,
}

impl CoreSort {
    fn from_kind(k: ExternalKind) -> CoreSort {
        match k {
            ExternalKind::Func | ExternalKind::FuncExact => CoreSort::Func,
            ExternalKind::Table => CoreSort::Table,
            ExternalKind::Memory => CoreSort::Memory,
            ExternalKind::Global => CoreSort::Global,
            ExternalKind::Tag => CoreSort::Tag,
        }
    }
}

/// A primitive value type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Primitive {
    Bool,
    S8,
    U8,
    S16,
    U16,
    S32,
    U32,
    S64,
    U64,
    F32,
    F64,
    Char,
    String,
    ErrorContext,
}

/// A value type as written: a primitive or a type index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValRef {
    /// a primitive
    Primitive(Primitive),
    /// an entry of the type index space
    Index(u32),
}

/// A defined value type, its parts by reference.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub enum DefinedType {
    Primitive(Primitive),
    Record(Vec<(String, ValRef)>),
    Variant(Vec<(String, Option<ValRef>)>),
    List(ValRef),
    FixedList(ValRef, u32),
    Map(ValRef, ValRef),
    Tuple(Vec<ValRef>),
    Flags(Vec<String>),
    Enum(Vec<String>),
    Option(ValRef),
    Result {
        ok: Option<ValRef>,
        err: Option<ValRef>,
    },
    Own(u32),
    Borrow(u32),
    /// `stream<T>` (component-model async)
    Stream(Option<ValRef>),
    /// `future<T>` (component-model async)
    Future(Option<ValRef>),
}

/// A type definition.
#[derive(Clone, Debug)]
pub enum TypeDef {
    /// a value type
    Defined(DefinedType),
    /// a function type
    Func {
        /// named parameters
        params: Vec<(String, ValRef)>,
        /// the result
        result: Option<ValRef>,
        /// `async` (WASI 0.3)
        is_async: bool,
    },
    /// a component type (its declarations)
    Component(Arc<Vec<Decl>>),
    /// an instance type (its declarations)
    Instance(Arc<Vec<Decl>>),
    /// a resource type: generative, with an optional destructor
    Resource {
        /// the core function index of the destructor
        dtor: Option<u32>,
    },
}

/// What an import or an export (in a type) is.
#[derive(Clone, Copy, Debug)]
pub enum ExternTy {
    /// a core module of a module type
    Module,
    /// a function of the given type index
    Func(u32),
    /// a value
    Value,
    /// a type equal to the given type index
    TypeEq(u32),
    /// a fresh abstract resource type
    SubResource,
    /// an instance of the given type index
    Instance(u32),
    /// a component of the given type index
    Component(u32),
}

impl ExternTy {
    fn from(t: ComponentTypeRef) -> ExternTy {
        match t {
            ComponentTypeRef::Module(_) => ExternTy::Module,
            ComponentTypeRef::Func(i) => ExternTy::Func(i),
            ComponentTypeRef::Value(_) => ExternTy::Value,
            ComponentTypeRef::Type(TypeBounds::Eq(i)) => ExternTy::TypeEq(i),
            ComponentTypeRef::Type(TypeBounds::SubResource) => ExternTy::SubResource,
            ComponentTypeRef::Instance(i) => ExternTy::Instance(i),
            ComponentTypeRef::Component(i) => ExternTy::Component(i),
        }
    }

    /// The index space the item lands in.
    pub fn sort(&self) -> Sort {
        match self {
            ExternTy::Module => Sort::Module,
            ExternTy::Func(_) => Sort::Func,
            ExternTy::Value => Sort::Value,
            ExternTy::TypeEq(_) | ExternTy::SubResource => Sort::Type,
            ExternTy::Instance(_) => Sort::Instance,
            ExternTy::Component(_) => Sort::Component,
        }
    }
}

/// One declaration inside a component or instance type.
#[derive(Clone, Debug)]
pub enum Decl {
    /// a core type (only counted)
    CoreType,
    /// a type definition
    Type(TypeDef),
    /// an alias
    Alias(Alias),
    /// an export of the instance (or component)
    Export(String, ExternTy),
    /// an import of the component
    Import(String, ExternTy),
}

/// An alias.
#[derive(Clone, Debug)]
pub enum Alias {
    /// an export of a component instance
    InstanceExport {
        /// the sort of the export
        sort: Sort,
        /// the instance index
        instance: u32,
        /// the export's name
        name: String,
    },
    /// an export of a core instance
    CoreInstanceExport {
        /// the sort of the export
        sort: CoreSort,
        /// the core instance index
        instance: u32,
        /// the export's name
        name: String,
    },
    /// an item of an enclosing component
    Outer {
        /// which space
        kind: OuterKind,
        /// how many components out
        count: u32,
        /// the index there
        index: u32,
    },
}

/// The index spaces an outer alias can reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OuterKind {
    /// core modules
    CoreModule,
    /// core types
    CoreType,
    /// types
    Type,
    /// components
    Component,
}

/// How strings cross the boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StringEncoding {
    /// UTF-8
    #[default]
    Utf8,
    /// UTF-16 (little endian)
    Utf16,
    /// Latin-1 where it fits, else UTF-16, tagged per string
    CompactUtf16,
}

/// The canonical options of one `canon lift` or `canon lower`.
#[derive(Clone, Debug, Default)]
pub struct CanonOpts {
    /// the string encoding
    pub encoding: StringEncoding,
    /// the core memory index
    pub memory: Option<u32>,
    /// the core function index of `realloc`
    pub realloc: Option<u32>,
    /// the core function index of `post-return`
    pub post_return: Option<u32>,
    /// an async option was given (WASI 0.3)
    pub is_async: bool,
}

impl CanonOpts {
    fn from(opts: &[CanonicalOption]) -> CanonOpts {
        let mut o = CanonOpts::default();
        for opt in opts {
            match *opt {
                CanonicalOption::UTF8 => o.encoding = StringEncoding::Utf8,
                CanonicalOption::UTF16 => o.encoding = StringEncoding::Utf16,
                CanonicalOption::CompactUTF16 => o.encoding = StringEncoding::CompactUtf16,
                CanonicalOption::Memory(m) => o.memory = Some(m),
                CanonicalOption::Realloc(f) => o.realloc = Some(f),
                CanonicalOption::PostReturn(f) => o.post_return = Some(f),
                CanonicalOption::Async | CanonicalOption::Callback(_) => o.is_async = true,
                CanonicalOption::CoreType(_) | CanonicalOption::Gc => {}
            }
        }
        o
    }
}

/// A `canon` definition.
#[derive(Clone, Debug)]
pub enum Canon {
    /// a component function from a core function
    Lift {
        /// the core function index
        core_func: u32,
        /// the function type index
        ty: u32,
        /// the options
        opts: CanonOpts,
    },
    /// a core function from a component function
    Lower {
        /// the component function index
        func: u32,
        /// the options
        opts: CanonOpts,
    },
    /// `resource.new` of a type index
    ResourceNew(u32),
    /// `resource.drop` of a type index
    ResourceDrop(u32),
    /// `resource.rep` of a type index
    ResourceRep(u32),
    /// `context.get` of a slot of the current task's storage
    ContextGet(u32),
    /// `context.set` of a slot of the current task's storage
    ContextSet(u32),
    /// `backpressure.inc`
    BackpressureInc,
    /// `backpressure.dec`
    BackpressureDec,
    /// a built-in of the async ABI or of threads, by name (not supported)
    Unsupported(&'static str),
}

/// One definition of a component, in binary order.
#[derive(Clone, Debug)]
pub enum Def {
    /// a core module: index into [`ComponentDef::modules`]
    CoreModule(usize),
    /// a core instance: `instantiate` a module with named instances
    CoreInstantiate {
        /// core module index
        module: u32,
        /// (import module name, core instance index)
        args: Vec<(String, u32)>,
    },
    /// a core instance made of exports
    CoreFromExports(Vec<(String, CoreSort, u32)>),
    /// a core type (only counted)
    CoreType,
    /// an alias (into whichever space its sort says)
    Alias(Alias),
    /// a type
    Type(TypeDef),
    /// a canonical function
    Canon(Canon),
    /// a nested component
    Component(Arc<ComponentDef>),
    /// a component instance: `instantiate` a component with named items
    Instantiate {
        /// component index
        component: u32,
        /// (import name, sort, index)
        args: Vec<(String, Sort, u32)>,
    },
    /// a component instance made of exports
    FromExports(Vec<(String, Sort, u32)>),
    /// an import
    Import(String, ExternTy),
    /// an export: adds the item to its index space again
    Export {
        /// the name
        name: String,
        /// the sort
        sort: Sort,
        /// the index
        index: u32,
    },
    /// a start function (value imports; not supported)
    Start,
}

/// A component's definitions, and the byte ranges of its core modules
/// (numbered for the whole binary, nested components included).
#[derive(Debug, Default)]
pub struct ComponentDef {
    /// the definitions, in order
    pub defs: Vec<Def>,
}

/// A parsed component binary: the outermost component's definitions and
/// every core module's bytes in the order they appear.
pub struct Parsed {
    /// the outermost component
    pub root: Arc<ComponentDef>,
    /// every core module's byte range in the binary, in order of appearance
    pub modules: Vec<core::ops::Range<usize>>,
}

/// Whether `bytes` start like a component rather than a core module.
pub fn is_component(bytes: &[u8]) -> bool {
    Parser::is_component(bytes)
}

fn err(e: wasmparser::BinaryReaderError) -> Error {
    Error::from_wasmparser(e)
}

/// Reads a (validated) component binary.
pub fn parse(bytes: &[u8]) -> Result<Parsed, Error> {
    let mut stack: Vec<ComponentDef> = Vec::new();
    let mut parsers: Vec<Parser> = Vec::new();
    let mut modules = Vec::new();
    let root;
    let mut parser = Parser::new(0);
    let mut offset = 0usize;
    loop {
        let rest = bytes.get(offset..).unwrap_or(&[]);
        let (consumed, payload) = match parser.parse(rest, true).map_err(err)? {
            wasmparser::Chunk::Parsed { consumed, payload } => (consumed, payload),
            wasmparser::Chunk::NeedMoreData(_) => {
                return Err(Error::Invalid {
                    offset,
                    message: "unexpected end of the component".into(),
                });
            }
        };
        offset += consumed;
        match payload {
            Payload::Version { encoding, .. } => {
                if encoding != wasmparser::Encoding::Component {
                    return Err(no_component());
                }
                stack.push(ComponentDef::default());
            }
            Payload::End(_) => {
                let done = Arc::new(stack.pop().ok_or_else(no_component)?);
                match (stack.last_mut(), parsers.pop()) {
                    (Some(parent), Some(outer)) => {
                        parent.defs.push(Def::Component(done));
                        parser = outer;
                    }
                    _ => {
                        root = done;
                        break;
                    }
                }
            }
            Payload::ModuleSection {
                unchecked_range, ..
            } => {
                // Core modules are compiled separately: skip the body; the
                // outer parser continues after it.
                let top = stack.last_mut().ok_or_else(no_component)?;
                top.defs.push(Def::CoreModule(modules.len()));
                let range = unchecked_range.start as usize..unchecked_range.end as usize;
                offset = range.end;
                modules.push(range);
            }
            Payload::ComponentSection { parser: nested, .. } => {
                parsers.push(core::mem::replace(&mut parser, nested));
            }
            Payload::InstanceSection(reader) => {
                let top = stack.last_mut().ok_or_else(no_component)?;
                for inst in reader {
                    top.defs.push(match inst.map_err(err)? {
                        wasmparser::Instance::Instantiate { module_index, args } => {
                            Def::CoreInstantiate {
                                module: module_index,
                                args: args.iter().map(|a| (a.name.to_string(), a.index)).collect(),
                            }
                        }
                        wasmparser::Instance::FromExports(exports) => Def::CoreFromExports(
                            exports
                                .iter()
                                .map(|e| (e.name.to_string(), CoreSort::from_kind(e.kind), e.index))
                                .collect(),
                        ),
                    });
                }
            }
            Payload::CoreTypeSection(reader) => {
                let top = stack.last_mut().ok_or_else(no_component)?;
                for t in reader {
                    // A recursion group defines one type per member.
                    match t.map_err(err)? {
                        CoreType::Rec(group) => {
                            for _ in group.types() {
                                top.defs.push(Def::CoreType);
                            }
                        }
                        CoreType::Module(_) => top.defs.push(Def::CoreType),
                    }
                }
            }
            Payload::ComponentInstanceSection(reader) => {
                let top = stack.last_mut().ok_or_else(no_component)?;
                for inst in reader {
                    top.defs.push(match inst.map_err(err)? {
                        wasmparser::ComponentInstance::Instantiate {
                            component_index,
                            args,
                        } => Def::Instantiate {
                            component: component_index,
                            args: args
                                .iter()
                                .map(|a| (a.name.to_string(), Sort::from_kind(a.kind), a.index))
                                .collect(),
                        },
                        wasmparser::ComponentInstance::FromExports(exports) => Def::FromExports(
                            exports
                                .iter()
                                .map(|e| {
                                    (e.name.name.to_string(), Sort::from_kind(e.kind), e.index)
                                })
                                .collect(),
                        ),
                    });
                }
            }
            Payload::ComponentAliasSection(reader) => {
                let top = stack.last_mut().ok_or_else(no_component)?;
                for a in reader {
                    top.defs.push(Def::Alias(alias(a.map_err(err)?)));
                }
            }
            Payload::ComponentTypeSection(reader) => {
                let top = stack.last_mut().ok_or_else(no_component)?;
                for t in reader {
                    top.defs.push(Def::Type(type_def(t.map_err(err)?)?));
                }
            }
            Payload::ComponentCanonicalSection(reader) => {
                let top = stack.last_mut().ok_or_else(no_component)?;
                for c in reader {
                    top.defs.push(Def::Canon(canon(c.map_err(err)?)));
                }
            }
            Payload::ComponentStartSection { .. } => {
                stack
                    .last_mut()
                    .ok_or_else(no_component)?
                    .defs
                    .push(Def::Start);
            }
            Payload::ComponentImportSection(reader) => {
                let top = stack.last_mut().ok_or_else(no_component)?;
                for i in reader {
                    let i = i.map_err(err)?;
                    top.defs
                        .push(Def::Import(i.name.name.to_string(), ExternTy::from(i.ty)));
                }
            }
            Payload::ComponentExportSection(reader) => {
                let top = stack.last_mut().ok_or_else(no_component)?;
                for e in reader {
                    let e = e.map_err(err)?;
                    top.defs.push(Def::Export {
                        name: e.name.name.to_string(),
                        sort: Sort::from_kind(e.kind),
                        index: e.index,
                    });
                }
            }
            Payload::CustomSection(_) => {}
            _ => {}
        }
    }
    Ok(Parsed { root, modules })
}

fn no_component() -> Error {
    Error::Invalid {
        offset: 0,
        message: "not a component".into(),
    }
}

fn alias(a: ComponentAlias<'_>) -> Alias {
    match a {
        ComponentAlias::InstanceExport {
            kind,
            instance_index,
            name,
        } => Alias::InstanceExport {
            sort: Sort::from_kind(kind),
            instance: instance_index,
            name: name.to_string(),
        },
        ComponentAlias::CoreInstanceExport {
            kind,
            instance_index,
            name,
        } => Alias::CoreInstanceExport {
            sort: CoreSort::from_kind(kind),
            instance: instance_index,
            name: name.to_string(),
        },
        ComponentAlias::Outer { kind, count, index } => Alias::Outer {
            kind: match kind {
                ComponentOuterAliasKind::CoreModule => OuterKind::CoreModule,
                ComponentOuterAliasKind::CoreType => OuterKind::CoreType,
                ComponentOuterAliasKind::Type => OuterKind::Type,
                ComponentOuterAliasKind::Component => OuterKind::Component,
            },
            count,
            index,
        },
    }
}

fn primitive(p: PrimitiveValType) -> Primitive {
    match p {
        PrimitiveValType::Bool => Primitive::Bool,
        PrimitiveValType::S8 => Primitive::S8,
        PrimitiveValType::U8 => Primitive::U8,
        PrimitiveValType::S16 => Primitive::S16,
        PrimitiveValType::U16 => Primitive::U16,
        PrimitiveValType::S32 => Primitive::S32,
        PrimitiveValType::U32 => Primitive::U32,
        PrimitiveValType::S64 => Primitive::S64,
        PrimitiveValType::U64 => Primitive::U64,
        PrimitiveValType::F32 => Primitive::F32,
        PrimitiveValType::F64 => Primitive::F64,
        PrimitiveValType::Char => Primitive::Char,
        PrimitiveValType::String => Primitive::String,
        PrimitiveValType::ErrorContext => Primitive::ErrorContext,
    }
}

fn val(v: ComponentValType) -> ValRef {
    match v {
        ComponentValType::Primitive(p) => ValRef::Primitive(primitive(p)),
        ComponentValType::Type(i) => ValRef::Index(i),
    }
}

fn type_def(t: ComponentType<'_>) -> Result<TypeDef, Error> {
    Ok(match t {
        ComponentType::Defined(d) => TypeDef::Defined(match d {
            ComponentDefinedType::Primitive(p) => DefinedType::Primitive(primitive(p)),
            ComponentDefinedType::Record(fields) => DefinedType::Record(
                fields
                    .iter()
                    .map(|(n, t)| (n.to_string(), val(*t)))
                    .collect(),
            ),
            ComponentDefinedType::Variant(cases) => DefinedType::Variant(
                cases
                    .iter()
                    .map(|c| (c.name.to_string(), c.ty.map(val)))
                    .collect(),
            ),
            ComponentDefinedType::List(t) => DefinedType::List(val(t)),
            ComponentDefinedType::FixedLengthList(t, n) => DefinedType::FixedList(val(t), n),
            ComponentDefinedType::Map(k, v) => DefinedType::Map(val(k), val(v)),
            ComponentDefinedType::Tuple(ts) => {
                DefinedType::Tuple(ts.iter().map(|t| val(*t)).collect())
            }
            ComponentDefinedType::Flags(names) => {
                DefinedType::Flags(names.iter().map(|n| n.to_string()).collect())
            }
            ComponentDefinedType::Enum(names) => {
                DefinedType::Enum(names.iter().map(|n| n.to_string()).collect())
            }
            ComponentDefinedType::Option(t) => DefinedType::Option(val(t)),
            ComponentDefinedType::Result { ok, err } => DefinedType::Result {
                ok: ok.map(val),
                err: err.map(val),
            },
            ComponentDefinedType::Own(i) => DefinedType::Own(i),
            ComponentDefinedType::Borrow(i) => DefinedType::Borrow(i),
            ComponentDefinedType::Future(t) => DefinedType::Future(t.map(val)),
            ComponentDefinedType::Stream(t) => DefinedType::Stream(t.map(val)),
        }),
        ComponentType::Func(f) => TypeDef::Func {
            params: f
                .params
                .iter()
                .map(|(n, t)| (n.to_string(), val(*t)))
                .collect(),
            result: f.result.map(val),
            is_async: f.async_,
        },
        ComponentType::Component(decls) => {
            let mut out = Vec::with_capacity(decls.len());
            for d in decls.into_vec() {
                out.push(match d {
                    wasmparser::ComponentTypeDeclaration::CoreType(_) => Decl::CoreType,
                    wasmparser::ComponentTypeDeclaration::Type(t) => Decl::Type(type_def(t)?),
                    wasmparser::ComponentTypeDeclaration::Alias(a) => Decl::Alias(alias(a)),
                    wasmparser::ComponentTypeDeclaration::Export { name, ty } => {
                        Decl::Export(name.name.to_string(), ExternTy::from(ty))
                    }
                    wasmparser::ComponentTypeDeclaration::Import(i) => {
                        Decl::Import(i.name.name.to_string(), ExternTy::from(i.ty))
                    }
                });
            }
            TypeDef::Component(Arc::new(out))
        }
        ComponentType::Instance(decls) => {
            let mut out = Vec::with_capacity(decls.len());
            for d in decls.into_vec() {
                out.push(match d {
                    InstanceTypeDeclaration::CoreType(_) => Decl::CoreType,
                    InstanceTypeDeclaration::Type(t) => Decl::Type(type_def(t)?),
                    InstanceTypeDeclaration::Alias(a) => Decl::Alias(alias(a)),
                    InstanceTypeDeclaration::Export { name, ty } => {
                        Decl::Export(name.name.to_string(), ExternTy::from(ty))
                    }
                });
            }
            TypeDef::Instance(Arc::new(out))
        }
        ComponentType::Resource { dtor, .. } => TypeDef::Resource { dtor },
    })
}

fn canon(c: CanonicalFunction) -> Canon {
    match c {
        CanonicalFunction::Lift {
            core_func_index,
            type_index,
            options,
        } => Canon::Lift {
            core_func: core_func_index,
            ty: type_index,
            opts: CanonOpts::from(&options),
        },
        CanonicalFunction::Lower {
            func_index,
            options,
        } => Canon::Lower {
            func: func_index,
            opts: CanonOpts::from(&options),
        },
        CanonicalFunction::ResourceNew { resource } => Canon::ResourceNew(resource),
        CanonicalFunction::ResourceDrop { resource } => Canon::ResourceDrop(resource),
        CanonicalFunction::ResourceRep { resource } => Canon::ResourceRep(resource),
        CanonicalFunction::ContextGet { slot, .. } => Canon::ContextGet(slot),
        CanonicalFunction::ContextSet { slot, .. } => Canon::ContextSet(slot),
        CanonicalFunction::BackpressureInc => Canon::BackpressureInc,
        CanonicalFunction::BackpressureDec => Canon::BackpressureDec,
        other => Canon::Unsupported(async_builtin_name(&other)),
    }
}

fn async_builtin_name(c: &CanonicalFunction) -> &'static str {
    match c {
        CanonicalFunction::ThreadSpawnRef { .. }
        | CanonicalFunction::ThreadSpawnIndirect { .. }
        | CanonicalFunction::ThreadAvailableParallelism => "shared-everything threads",
        CanonicalFunction::StreamNew { .. }
        | CanonicalFunction::StreamRead { .. }
        | CanonicalFunction::StreamWrite { .. } => "streams (component-model async, WASI 0.3)",
        CanonicalFunction::FutureNew { .. }
        | CanonicalFunction::FutureRead { .. }
        | CanonicalFunction::FutureWrite { .. } => "futures (component-model async, WASI 0.3)",
        _ => "component-model async built-ins (WASI 0.3)",
    }
}
