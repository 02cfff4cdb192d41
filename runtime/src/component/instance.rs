//! Instantiation: running a component's definitions in order, each adding
//! to an index space, with imports bound by name. Nested components are
//! closures over their enclosing scope (outer aliases reach it).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::abi::Options;
use super::def::{
    Alias, Canon, CanonOpts, ComponentDef, CoreSort, Decl, Def, DefinedType, ExternTy, OuterKind,
    Primitive, Sort, TypeDef, ValRef,
};
use super::func::{self, ComponentFunc, HostFunc};
use super::handles::InstanceState;
use super::types::{Destructor, FuncType, Implementer, ResourceType, Type};
use crate::engine::Module;
use crate::error::Error;
use crate::types::{FuncType as CoreFuncType, Val, ValType};
use crate::vm::store::{Extern, Instance, Store};

/// An entry of the type index space, resolved.
#[derive(Clone)]
pub enum TypeSlot {
    /// a value type
    Value(Type),
    /// a function type
    Func(FuncType),
    /// a resource type
    Resource(ResourceType),
    /// an instance type: its declarations and where its outer aliases look
    Instance(Arc<Vec<Decl>>, Arc<TypeEnv>),
    /// a component type
    Component(Arc<Vec<Decl>>, Arc<TypeEnv>),
}

/// The types an outer alias can reach: a scope's types and its parent's.
pub struct TypeEnv {
    types: Vec<TypeSlot>,
    parent: Option<Arc<TypeEnv>>,
}

impl TypeEnv {
    fn outer(self: &Arc<Self>, count: u32) -> Option<&Arc<TypeEnv>> {
        let mut env = self;
        for _ in 1..count {
            env = env.parent.as_ref()?;
        }
        Some(env)
    }
}

/// What an enclosing component offers a nested one's outer aliases.
pub struct ComponentEnv {
    types: Arc<TypeEnv>,
    modules: Vec<Module>,
    components: Vec<ComponentClosure>,
    parent: Option<Arc<ComponentEnv>>,
}

/// A component definition with the scope it was defined in.
pub struct ComponentClosure {
    def: Arc<ComponentDef>,
    env: Option<Arc<ComponentEnv>>,
}

impl Clone for ComponentClosure {
    fn clone(&self) -> Self {
        ComponentClosure {
            def: self.def.clone(),
            env: self.env.clone(),
        }
    }
}

/// An instance's exports, by name.
pub struct Exports<T> {
    /// the items
    pub items: BTreeMap<String, Item<T>>,
}

/// Anything a component can import, export or hold in an index space.
pub enum Item<T> {
    /// a component function
    Func(ComponentFunc<T>),
    /// a host function not yet given a type (in a linker: an import's
    /// declared type gives it one)
    HostFunc(HostFunc<T>),
    /// a component instance
    Instance(Arc<Exports<T>>),
    /// a type
    Type(TypeSlot),
    /// a core module
    Module(Module),
    /// a component
    Component(ComponentClosure),
}

impl<T> Clone for Item<T> {
    fn clone(&self) -> Self {
        match self {
            Item::Func(f) => Item::Func(f.clone()),
            Item::HostFunc(f) => Item::HostFunc(f.clone()),
            Item::Instance(i) => Item::Instance(i.clone()),
            Item::Type(t) => Item::Type(t.clone()),
            Item::Module(m) => Item::Module(m.clone()),
            Item::Component(c) => Item::Component(c.clone()),
        }
    }
}

impl<T> Item<T> {
    fn kind(&self) -> &'static str {
        match self {
            Item::Func(_) | Item::HostFunc(_) => "function",
            Item::Instance(_) => "instance",
            Item::Type(_) => "type",
            Item::Module(_) => "module",
            Item::Component(_) => "component",
        }
    }
}

/// An entry of a core index space: an extern of the store, or a built-in
/// Basalt does not implement, made into a trapping function of whatever
/// type the module importing it declares (so a component that only
/// mentions the async built-ins still instantiates and runs).
#[derive(Clone, Copy)]
enum CoreItem {
    Extern(Extern),
    Unsupported(&'static str),
}

enum CoreInstance {
    Real(Instance),
    Exports(BTreeMap<String, CoreItem>),
}

fn core_ty(params: &[ValType], results: &[ValType]) -> CoreFuncType {
    CoreFuncType {
        params: params.into(),
        results: results.into(),
    }
}

fn link_err(name: &str, reason: impl Into<String>) -> Error {
    Error::Link {
        module: String::from("component"),
        name: name.to_string(),
        reason: reason.into(),
    }
}

fn unsupported(feature: &'static str) -> Error {
    Error::Unsupported { feature, offset: 0 }
}

fn bad(what: &str) -> Error {
    Error::Instantiate(format!("malformed component index space: {what}"))
}

/// One component instance under construction.
/// What instantiating one component always gives for some of its
/// top-level definitions, kept across instantiations
/// ([`super::InstancePre`]): bound imports and evaluated types, by the
/// definition's index. Only those before the component defines a resource
/// of its own are kept (resource types are new in every instance, and
/// what is defined after one may name it).
pub(crate) struct DefCache<T>(
    spin::Mutex<BTreeMap<usize, Item<T>>>,
    /// the core type of each `canon lower` (it depends on the lowered
    /// function's type alone, whatever resources the component defines)
    spin::Mutex<BTreeMap<usize, CoreFuncType>>,
);

impl<T> Default for DefCache<T> {
    fn default() -> Self {
        DefCache(
            spin::Mutex::new(BTreeMap::new()),
            spin::Mutex::new(BTreeMap::new()),
        )
    }
}

struct Scope<'m, T> {
    modules_all: &'m [Module],
    /// the cache of the definitions at `at`, for the root of an
    /// [`super::InstancePre`]
    cache: Option<&'m DefCache<T>>,
    /// whether the cache's items still apply: until the component defines
    /// a resource of its own
    items_cached: bool,
    /// the index of the definition being run
    at: usize,
    state: Arc<InstanceState>,
    env: Option<Arc<ComponentEnv>>,
    types: Vec<TypeSlot>,
    modules: Vec<Module>,
    components: Vec<ComponentClosure>,
    core_instances: Vec<CoreInstance>,
    core: [Vec<CoreItem>; 5],
    funcs: Vec<ComponentFunc<T>>,
    instances: Vec<Arc<Exports<T>>>,
    exports: BTreeMap<String, Item<T>>,
}

fn core_index(s: CoreSort) -> usize {
    match s {
        CoreSort::Func => 0,
        CoreSort::Table => 1,
        CoreSort::Memory => 2,
        CoreSort::Global => 3,
        CoreSort::Tag => 4,
    }
}

fn primitive(p: Primitive) -> Result<Type, Error> {
    Ok(match p {
        Primitive::Bool => Type::Bool,
        Primitive::S8 => Type::S8,
        Primitive::U8 => Type::U8,
        Primitive::S16 => Type::S16,
        Primitive::U16 => Type::U16,
        Primitive::S32 => Type::S32,
        Primitive::U32 => Type::U32,
        Primitive::S64 => Type::S64,
        Primitive::U64 => Type::U64,
        Primitive::F32 => Type::F32,
        Primitive::F64 => Type::F64,
        Primitive::Char => Type::Char,
        Primitive::String => Type::String,
        Primitive::ErrorContext => Type::ErrorContext,
    })
}

fn value_type(types: &[TypeSlot], r: ValRef) -> Result<Type, Error> {
    match r {
        ValRef::Primitive(p) => primitive(p),
        ValRef::Index(i) => match types.get(i as usize) {
            Some(TypeSlot::Value(t)) => Ok(t.clone()),
            _ => Err(bad("a value type index names something else")),
        },
    }
}

fn resource_at(types: &[TypeSlot], i: u32) -> Result<ResourceType, Error> {
    match types.get(i as usize) {
        Some(TypeSlot::Resource(r)) => Ok(r.clone()),
        _ => Err(bad("a resource type index names something else")),
    }
}

/// Resolves a type definition that is not a resource.
fn eval_type(types: &[TypeSlot], env: &Arc<TypeEnv>, def: &TypeDef) -> Result<TypeSlot, Error> {
    let v = |r: &ValRef| value_type(types, *r);
    let opt = |r: &Option<ValRef>| r.as_ref().map(v).transpose();
    Ok(match def {
        TypeDef::Defined(d) => TypeSlot::Value(match d {
            DefinedType::Primitive(p) => primitive(*p)?,
            DefinedType::Record(fs) => Type::Record(
                fs.iter()
                    .map(|(n, t)| Ok((n.clone(), v(t)?)))
                    .collect::<Result<_, Error>>()?,
            ),
            DefinedType::Variant(cs) => Type::Variant(
                cs.iter()
                    .map(|(n, t)| Ok((n.clone(), opt(t)?)))
                    .collect::<Result<_, Error>>()?,
            ),
            DefinedType::List(t) => Type::List(v(t)?.into()),
            DefinedType::FixedList(t, n) => Type::FixedList(v(t)?.into(), *n),
            DefinedType::Map(k, x) => Type::List(Type::Tuple(alloc::vec![v(k)?, v(x)?]).into()),
            DefinedType::Tuple(ts) => Type::Tuple(ts.iter().map(v).collect::<Result<_, _>>()?),
            DefinedType::Flags(n) => Type::Flags(n.clone()),
            DefinedType::Enum(n) => Type::Enum(n.clone()),
            DefinedType::Option(t) => Type::Option(v(t)?.into()),
            DefinedType::Result { ok, err } => Type::Result {
                ok: opt(ok)?.map(Into::into),
                err: opt(err)?.map(Into::into),
            },
            DefinedType::Own(i) => Type::Own(resource_at(types, *i)?),
            DefinedType::Borrow(i) => Type::Borrow(resource_at(types, *i)?),
            DefinedType::Stream(t) => Type::Stream(opt(t)?.map(Into::into)),
            DefinedType::Future(t) => Type::Future(opt(t)?.map(Into::into)),
        }),
        TypeDef::Func { params, result, .. } => TypeSlot::Func(FuncType {
            params: params
                .iter()
                .map(|(n, t)| Ok((n.clone(), v(t)?)))
                .collect::<Result<_, Error>>()?,
            result: opt(result)?,
        }),
        TypeDef::Instance(decls) => TypeSlot::Instance(decls.clone(), snapshot(types, env)),
        TypeDef::Component(decls) => TypeSlot::Component(decls.clone(), snapshot(types, env)),
        TypeDef::Resource { .. } => return Err(bad("a resource type outside a component")),
    })
}

/// The current types as the environment of a type defined now: outer
/// aliases with count 1 see them, count 2 the parent's.
fn snapshot(types: &[TypeSlot], parent: &Arc<TypeEnv>) -> Arc<TypeEnv> {
    Arc::new(TypeEnv {
        types: types.to_vec(),
        parent: Some(parent.clone()),
    })
}

/// Gives an import (or an instance type's export) of declared type `ty`
/// the item provided for it: host functions get the declared type,
/// instances are bound export by export.
fn bind_item<T: 'static>(
    types: &[TypeSlot],
    ty: ExternTy,
    provided: Option<&Item<T>>,
    name: &str,
) -> Result<Item<T>, Error> {
    let missing = || link_err(name, "not provided by the host");
    match ty {
        ExternTy::Func(ti) => {
            let Some(TypeSlot::Func(ft)) = types.get(ti as usize) else {
                return Err(bad("a function import's type is not a function type"));
            };
            match provided.ok_or_else(missing)? {
                Item::HostFunc(f) => Ok(Item::Func(ComponentFunc::host(ft.clone(), f.clone()))),
                Item::Func(f) => Ok(Item::Func(f.clone())),
                other => Err(link_err(
                    name,
                    format!("a function is expected, found a {}", other.kind()),
                )),
            }
        }
        ExternTy::SubResource => match provided.ok_or_else(missing)? {
            Item::Type(TypeSlot::Resource(r)) => Ok(Item::Type(TypeSlot::Resource(r.clone()))),
            other => Err(link_err(
                name,
                format!("a resource type is expected, found a {}", other.kind()),
            )),
        },
        ExternTy::TypeEq(ti) => match provided {
            Some(Item::Type(t)) => Ok(Item::Type(t.clone())),
            _ => types
                .get(ti as usize)
                .cloned()
                .map(Item::Type)
                .ok_or_else(|| bad("a type import's bound is out of range")),
        },
        ExternTy::Instance(ti) => {
            let Some(TypeSlot::Instance(decls, env)) = types.get(ti as usize) else {
                return Err(bad("an instance import's type is not an instance type"));
            };
            let Item::Instance(exports) = provided.ok_or_else(missing)? else {
                return Err(link_err(name, "an instance is expected"));
            };
            bind_instance(decls, env, exports, name).map(Item::Instance)
        }
        ExternTy::Component(_) => match provided.ok_or_else(missing)? {
            Item::Component(c) => Ok(Item::Component(c.clone())),
            _ => Err(link_err(name, "a component is expected")),
        },
        ExternTy::Module => match provided.ok_or_else(missing)? {
            Item::Module(m) => Ok(Item::Module(m.clone())),
            _ => Err(link_err(name, "a core module is expected")),
        },
        ExternTy::Value => Err(unsupported("component value imports")),
    }
}

fn bind_instance<T: 'static>(
    decls: &[Decl],
    env: &Arc<TypeEnv>,
    provided: &Exports<T>,
    name: &str,
) -> Result<Arc<Exports<T>>, Error> {
    let mut types: Vec<TypeSlot> = Vec::new();
    let mut items = BTreeMap::new();
    for d in decls {
        match d {
            Decl::CoreType | Decl::Import(..) => {}
            Decl::Type(def) => {
                let t = eval_type(&types, env, def)?;
                types.push(t);
            }
            Decl::Alias(Alias::Outer {
                kind: OuterKind::Type,
                count,
                index,
            }) => {
                let e = env.outer(*count).ok_or_else(|| bad("outer alias count"))?;
                let t = e
                    .types
                    .get(*index as usize)
                    .cloned()
                    .ok_or_else(|| bad("outer alias index"))?;
                types.push(t);
            }
            Decl::Alias(Alias::InstanceExport { .. }) => {
                return Err(unsupported("instance-export aliases inside instance types"));
            }
            Decl::Alias(_) => {}
            Decl::Export(n, ty) => {
                let full = format!("{name}#{n}");
                let item = bind_item(&types, *ty, provided.items.get(n), &full)?;
                if let Item::Type(t) = &item {
                    types.push(t.clone());
                }
                items.insert(n.clone(), item);
            }
        }
    }
    Ok(Arc::new(Exports { items }))
}

/// Instantiates `closure` with imports found by `resolve`, inside
/// `parent`. Returns the instance's exports and state.
pub(crate) fn instantiate<T: 'static>(
    store: &mut Store<T>,
    modules_all: &[Module],
    closure: &ComponentClosure,
    resolve: &dyn Fn(&str) -> Option<Item<T>>,
    parent: Option<Arc<InstanceState>>,
) -> Result<(Arc<Exports<T>>, Arc<InstanceState>), Error> {
    instantiate_cached(store, modules_all, closure, resolve, parent, None)
}

/// [`instantiate`], taking what `cache` holds of earlier instantiations
/// of the same component with the same imports, and adding to it.
pub(crate) fn instantiate_cached<T: 'static>(
    store: &mut Store<T>,
    modules_all: &[Module],
    closure: &ComponentClosure,
    resolve: &dyn Fn(&str) -> Option<Item<T>>,
    parent: Option<Arc<InstanceState>>,
    cache: Option<&DefCache<T>>,
) -> Result<(Arc<Exports<T>>, Arc<InstanceState>), Error> {
    let mut s = Scope {
        modules_all,
        cache,
        items_cached: true,
        at: 0,
        state: InstanceState::new(parent),
        env: closure.env.clone(),
        types: Vec::new(),
        modules: Vec::new(),
        components: Vec::new(),
        core_instances: Vec::new(),
        core: Default::default(),
        funcs: Vec::new(),
        instances: Vec::new(),
        exports: BTreeMap::new(),
    };
    for (i, def) in closure.def.defs.iter().enumerate() {
        s.at = i;
        s.run(store, def, resolve)?;
    }
    let state = s.state.clone();
    Ok((Arc::new(Exports { items: s.exports }), state))
}

impl ComponentClosure {
    /// The outermost component of a binary.
    pub(crate) fn root(def: Arc<ComponentDef>) -> Self {
        ComponentClosure { def, env: None }
    }
}

impl<T: 'static> Scope<'_, T> {
    /// What an earlier instantiation gave for the current definition.
    fn cached(&self) -> Option<Item<T>> {
        if !self.items_cached {
            return None;
        }
        self.cache?.0.lock().get(&self.at).cloned()
    }

    /// Keeps `item` as what the current definition gives, for later
    /// instantiations.
    fn keep(&self, item: Item<T>) {
        if let Some(c) = self.cache
            && self.items_cached
        {
            c.0.lock().insert(self.at, item);
        }
    }

    /// The core type `canon lower` gives `callee` here (computed once per
    /// definition of a cached component).
    fn lowered_type(&self, callee: &ComponentFunc<T>) -> CoreFuncType {
        let Some(c) = self.cache else {
            return func::lowered_core_type(callee.ty());
        };
        if let Some(t) = c.1.lock().get(&self.at) {
            return t.clone();
        }
        let t = func::lowered_core_type(callee.ty());
        c.1.lock().insert(self.at, t.clone());
        t
    }

    fn type_env(&self) -> Arc<TypeEnv> {
        Arc::new(TypeEnv {
            types: self.types.clone(),
            parent: self.env.as_ref().map(|e| e.types.clone()),
        })
    }

    fn component_env(&self) -> Arc<ComponentEnv> {
        Arc::new(ComponentEnv {
            types: self.type_env(),
            modules: self.modules.clone(),
            components: self.components.clone(),
            parent: self.env.clone(),
        })
    }

    fn outer_env(&self, count: u32) -> Result<&Arc<ComponentEnv>, Error> {
        let mut env = self
            .env
            .as_ref()
            .ok_or_else(|| bad("outer alias past the root"))?;
        for _ in 1..count {
            env = env
                .parent
                .as_ref()
                .ok_or_else(|| bad("outer alias past the root"))?;
        }
        Ok(env)
    }

    fn item(&self, sort: Sort, i: u32) -> Result<Item<T>, Error> {
        let i = i as usize;
        let missing = || bad("index out of range");
        Ok(match sort {
            Sort::Func => Item::Func(self.funcs.get(i).cloned().ok_or_else(missing)?),
            Sort::Type => Item::Type(self.types.get(i).cloned().ok_or_else(missing)?),
            Sort::Instance => Item::Instance(self.instances.get(i).cloned().ok_or_else(missing)?),
            Sort::Component => {
                Item::Component(self.components.get(i).cloned().ok_or_else(missing)?)
            }
            Sort::Module => Item::Module(self.modules.get(i).cloned().ok_or_else(missing)?),
            Sort::Value => return Err(unsupported("component values")),
        })
    }

    fn push(&mut self, item: Item<T>) -> Result<(), Error> {
        match item {
            Item::Func(f) => self.funcs.push(f),
            Item::Type(t) => self.types.push(t),
            Item::Instance(i) => self.instances.push(i),
            Item::Component(c) => self.components.push(c),
            Item::Module(m) => self.modules.push(m),
            Item::HostFunc(_) => return Err(bad("an untyped host function")),
        }
        Ok(())
    }

    fn core_entry(&self, sort: CoreSort, i: u32) -> Result<CoreItem, Error> {
        self.core[core_index(sort)]
            .get(i as usize)
            .copied()
            .ok_or_else(|| bad("core index out of range"))
    }

    fn core_item(&self, sort: CoreSort, i: u32) -> Result<Extern, Error> {
        match self.core_entry(sort, i)? {
            CoreItem::Extern(e) => Ok(e),
            CoreItem::Unsupported(what) => Err(unsupported(what)),
        }
    }

    fn core_export(&self, store: &mut Store<T>, inst: u32, name: &str) -> Result<CoreItem, Error> {
        match self.core_instances.get(inst as usize) {
            Some(CoreInstance::Real(i)) => i.get_export(store, name).map(CoreItem::Extern),
            Some(CoreInstance::Exports(m)) => m.get(name).copied(),
            None => return Err(bad("core instance index out of range")),
        }
        .ok_or_else(|| link_err(name, "the core instance has no such export"))
    }

    /// A function of core type `ty` that traps: `what` is not supported.
    fn trapping_func(&self, store: &mut Store<T>, ty: CoreFuncType, what: &'static str) -> Extern {
        let state = self.state.clone();
        let f = store.host_func(
            ty,
            Arc::new(move |_, _, _| {
                if !state.may_leave() {
                    return Err(super::abi::trap("cannot leave component instance"));
                }
                Err(Error::host_trap(format!(
                    "{what} is not supported yet (component-model async arrives with WASI 0.3)"
                )))
            }),
        );
        Extern::Func(f)
    }

    fn options(&self, o: &CanonOpts) -> Result<Options, Error> {
        if o.is_async {
            return Err(unsupported("async lifts and lowers (WASI 0.3)"));
        }
        let func = |i: Option<u32>| -> Result<Option<crate::Func>, Error> {
            i.map(|i| match self.core_item(CoreSort::Func, i)? {
                Extern::Func(f) => Ok(f),
                _ => Err(bad("a canonical option names a non-function")),
            })
            .transpose()
        };
        Ok(Options {
            encoding: o.encoding,
            memory: o
                .memory
                .map(|m| match self.core_item(CoreSort::Memory, m)? {
                    Extern::Memory(m) => Ok(m),
                    _ => Err(bad("a canonical option names a non-memory")),
                })
                .transpose()?,
            realloc: func(o.realloc)?,
            post_return: func(o.post_return)?,
        })
    }

    fn run(
        &mut self,
        store: &mut Store<T>,
        def: &Def,
        resolve: &dyn Fn(&str) -> Option<Item<T>>,
    ) -> Result<(), Error> {
        match def {
            Def::CoreModule(i) => {
                let m = self
                    .modules_all
                    .get(*i)
                    .cloned()
                    .ok_or_else(|| bad("module"))?;
                self.modules.push(m);
            }
            Def::CoreInstantiate { module, args } => {
                let m = self
                    .modules
                    .get(*module as usize)
                    .cloned()
                    .ok_or_else(|| bad("module"))?;
                let mut imports = Vec::with_capacity(m.info().imports.len());
                for imp in &m.info().imports {
                    let inst = args
                        .iter()
                        .find(|(n, _)| *n == imp.module)
                        .map(|(_, i)| *i)
                        .ok_or_else(|| {
                            link_err(&imp.module, "no instance given for this import module")
                        })?;
                    let e = match self.core_export(store, inst, &imp.name)? {
                        CoreItem::Extern(e) => e,
                        CoreItem::Unsupported(what) => {
                            let crate::module_info::ImportKind::Func(t) = imp.kind else {
                                return Err(unsupported(what));
                            };
                            let ty = m.info().types[t as usize].clone();
                            self.trapping_func(store, ty, what)
                        }
                    };
                    imports.push(e);
                }
                let inst = store.instantiate(&m, &imports)?;
                self.core_instances.push(CoreInstance::Real(inst));
            }
            Def::CoreFromExports(exports) => {
                let mut map = BTreeMap::new();
                for (n, sort, i) in exports {
                    map.insert(n.clone(), self.core_entry(*sort, *i)?);
                }
                self.core_instances.push(CoreInstance::Exports(map));
            }
            Def::CoreType => {}
            Def::Alias(a) => self.alias(store, a)?,
            Def::Type(TypeDef::Resource { dtor }) => {
                let destructor = match dtor {
                    Some(i) => match self.core_item(CoreSort::Func, *i)? {
                        Extern::Func(f) => Destructor::Core(f),
                        _ => return Err(bad("a destructor that is not a function")),
                    },
                    None => Destructor::None,
                };
                let rt = ResourceType::new(
                    format!("resource{}", self.types.len()),
                    Implementer::Instance(Arc::downgrade(&self.state)),
                    destructor,
                );
                self.types.push(TypeSlot::Resource(rt));
                // From here on definitions may name a type of this
                // instance's own.
                self.items_cached = false;
            }
            Def::Type(_) if self.cached().is_some() => {
                if let Some(Item::Type(slot)) = self.cached() {
                    self.types.push(slot);
                }
            }
            Def::Type(t) => {
                let parent = match &self.env {
                    Some(e) => e.types.clone(),
                    None => Arc::new(TypeEnv {
                        types: Vec::new(),
                        parent: None,
                    }),
                };
                let slot = eval_type(&self.types, &parent, t)?;
                self.keep(Item::Type(slot.clone()));
                self.types.push(slot);
            }
            Def::Canon(c) => self.canon(store, c)?,
            Def::Component(d) => {
                let closure = ComponentClosure {
                    def: d.clone(),
                    env: Some(self.component_env()),
                };
                self.components.push(closure);
            }
            Def::Instantiate { component, args } => {
                let closure = self
                    .components
                    .get(*component as usize)
                    .cloned()
                    .ok_or_else(|| bad("component"))?;
                let mut given = BTreeMap::new();
                for (n, sort, i) in args {
                    given.insert(n.clone(), self.item(*sort, *i)?);
                }
                let (exports, _) = instantiate(
                    store,
                    self.modules_all,
                    &closure,
                    &|n: &str| given.get(n).cloned(),
                    Some(self.state.clone()),
                )?;
                self.instances.push(exports);
            }
            Def::FromExports(exports) => {
                let mut items = BTreeMap::new();
                for (n, sort, i) in exports {
                    items.insert(n.clone(), self.item(*sort, *i)?);
                }
                self.instances.push(Arc::new(Exports { items }));
            }
            Def::Import(name, ty) => {
                let item = match self.cached() {
                    Some(item) => item,
                    None => {
                        let provided = resolve(name);
                        let item = bind_item(&self.types, *ty, provided.as_ref(), name)?;
                        self.keep(item.clone());
                        item
                    }
                };
                self.push(item)?;
            }
            Def::Export { name, sort, index } => {
                let item = self.item(*sort, *index)?;
                self.exports.insert(name.clone(), item.clone());
                self.push(item)?;
            }
            Def::Start => return Err(unsupported("component start functions (values)")),
        }
        Ok(())
    }

    fn alias(&mut self, store: &mut Store<T>, a: &Alias) -> Result<(), Error> {
        match a {
            Alias::InstanceExport {
                sort,
                instance,
                name,
            } => {
                let inst = self
                    .instances
                    .get(*instance as usize)
                    .ok_or_else(|| bad("instance"))?;
                let item = inst
                    .items
                    .get(name)
                    .cloned()
                    .ok_or_else(|| link_err(name, "the instance has no such export"))?;
                if *sort == Sort::Value {
                    return Err(unsupported("component values"));
                }
                self.push(item)
            }
            Alias::CoreInstanceExport {
                sort,
                instance,
                name,
            } => {
                let e = self.core_export(store, *instance, name)?;
                self.core[core_index(*sort)].push(e);
                Ok(())
            }
            Alias::Outer { kind, count, index } => {
                let i = *index as usize;
                match kind {
                    OuterKind::CoreType => Ok(()),
                    OuterKind::Type => {
                        let t = if *count == 0 {
                            self.types.get(i).cloned()
                        } else {
                            self.outer_env(*count)?.types.types.get(i).cloned()
                        };
                        self.types.push(t.ok_or_else(|| bad("outer type"))?);
                        Ok(())
                    }
                    OuterKind::CoreModule => {
                        let m = if *count == 0 {
                            self.modules.get(i).cloned()
                        } else {
                            self.outer_env(*count)?.modules.get(i).cloned()
                        };
                        self.modules.push(m.ok_or_else(|| bad("outer module"))?);
                        Ok(())
                    }
                    OuterKind::Component => {
                        let c = if *count == 0 {
                            self.components.get(i).cloned()
                        } else {
                            self.outer_env(*count)?.components.get(i).cloned()
                        };
                        self.components
                            .push(c.ok_or_else(|| bad("outer component"))?);
                        Ok(())
                    }
                }
            }
        }
    }

    fn canon(&mut self, store: &mut Store<T>, c: &Canon) -> Result<(), Error> {
        match c {
            Canon::Lift {
                core_func,
                ty,
                opts,
            } => {
                let Some(TypeSlot::Func(ft)) = self.types.get(*ty as usize).cloned() else {
                    return Err(bad("canon lift of a non-function type"));
                };
                if opts.is_async {
                    let f: HostFunc<T> = Arc::new(|_, _| {
                        Err(Error::host_trap(
                            "calling an async-lifted function is not supported yet (component-model async arrives with WASI 0.3)",
                        ))
                    });
                    self.funcs.push(ComponentFunc::host(ft, f));
                    return Ok(());
                }
                let Extern::Func(core) = self.core_item(CoreSort::Func, *core_func)? else {
                    return Err(bad("canon lift of a non-function"));
                };
                let opts = self.options(opts)?;
                self.funcs
                    .push(ComponentFunc::lifted(ft, core, opts, self.state.clone()));
            }
            Canon::Lower { func, opts } => {
                if opts.is_async {
                    self.core[0].push(CoreItem::Unsupported("an async-lowered import"));
                    return Ok(());
                }
                let callee = self
                    .funcs
                    .get(*func as usize)
                    .cloned()
                    .ok_or_else(|| bad("func"))?;
                let opts = self.options(opts)?;
                if let Some(f) = super::adapter::fuse(store, &callee, &opts, &self.state)? {
                    self.core[0].push(CoreItem::Extern(Extern::Func(f)));
                    return Ok(());
                }
                let core_ty = self.lowered_type(&callee);
                let state = self.state.clone();
                let f = store.host_func(
                    core_ty,
                    Arc::new(move |caller, args, results| {
                        func::call_lowered(caller, &callee, &opts, &state, args, results)
                    }),
                );
                self.core[0].push(CoreItem::Extern(Extern::Func(f)));
            }
            Canon::ResourceNew(t) => {
                let rt = resource_at(&self.types, *t)?;
                let state = self.state.clone();
                let f = store.host_func(
                    core_ty(&[ValType::I32], &[ValType::I32]),
                    Arc::new(move |_, args, results| {
                        results[0] = func::resource_new(&state, &rt, args)?;
                        Ok(())
                    }),
                );
                self.core[0].push(CoreItem::Extern(Extern::Func(f)));
            }
            Canon::ResourceRep(t) => {
                let rt = resource_at(&self.types, *t)?;
                let state = self.state.clone();
                let f = store.host_func(
                    core_ty(&[ValType::I32], &[ValType::I32]),
                    Arc::new(move |_, args, results| {
                        results[0] = func::resource_rep(&state, &rt, args)?;
                        Ok(())
                    }),
                );
                self.core[0].push(CoreItem::Extern(Extern::Func(f)));
            }
            Canon::ResourceDrop(t) => {
                let rt = resource_at(&self.types, *t)?;
                let state = self.state.clone();
                let f = store.host_func(
                    core_ty(&[ValType::I32], &[]),
                    Arc::new(move |caller, args, _| func::resource_drop(caller, &state, &rt, args)),
                );
                self.core[0].push(CoreItem::Extern(Extern::Func(f)));
            }
            Canon::ContextGet(slot) => {
                let (state, slot) = (self.state.clone(), *slot);
                let ty = core_ty(&[], &[ValType::I32]);
                let f = store.host_func(
                    ty,
                    Arc::new(move |_, _, results| {
                        results[0] = Val::I32(state.context_get(slot)? as i32);
                        Ok(())
                    }),
                );
                self.core[0].push(CoreItem::Extern(Extern::Func(f)));
            }
            Canon::ContextSet(slot) => {
                let (state, slot) = (self.state.clone(), *slot);
                let ty = core_ty(&[ValType::I32], &[]);
                let f = store.host_func(
                    ty,
                    Arc::new(move |_, args, _| match args.first() {
                        Some(Val::I32(v)) => state.context_set(slot, *v as u32),
                        _ => Err(super::abi::trap("context.set of a non-i32")),
                    }),
                );
                self.core[0].push(CoreItem::Extern(Extern::Func(f)));
            }
            Canon::BackpressureInc | Canon::BackpressureDec => {
                let state = self.state.clone();
                let up = matches!(c, Canon::BackpressureInc);
                let f = store.host_func(
                    core_ty(&[], &[]),
                    Arc::new(move |_, _, _| state.backpressure(up)),
                );
                self.core[0].push(CoreItem::Extern(Extern::Func(f)));
            }
            Canon::Unsupported(what) => self.core[0].push(CoreItem::Unsupported(what)),
        }
        Ok(())
    }
}
