//! The component model: components made of core modules, instantiated
//! with imports bound by name (semver-compatibly), calling through the
//! Canonical ABI, with resources and their handle tables.
//!
//! Split as wasmtime splits it: [`def`] says what a component is (its
//! definitions, read from the binary); [`instance`] runs them;
//! [`func`] crosses the boundary; [`abi`] lays values out.

pub mod abi;
mod adapter;
pub mod def;
pub mod func;
pub mod handles;
pub mod instance;
pub mod script;
pub mod types;
pub mod values;

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

pub use func::{ComponentFunc, HostDestructor, HostFunc};
pub use instance::{Exports, Item, TypeSlot};
pub use types::{FuncType, ResourceType, Type};
pub use values::{Resource, Value};

use crate::engine::{Engine, Module};
use crate::error::Error;
use crate::vm::store::{Store, StoreMut};
use instance::ComponentClosure;
use types::{Destructor, Implementer};

/// The wasm features components are validated with: the engine's core
/// features and the component model's (async ones included, so binaries
/// that use them parse; instantiating them says they are not supported).
pub fn features() -> wasmparser::WasmFeatures {
    use wasmparser::WasmFeatures as F;
    crate::module_info::supported_features()
        | F::COMPONENT_MODEL
        | F::CM_ASYNC
        | F::CM_MORE_ASYNC_BUILTINS
        | F::CM_ASYNC_STACKFUL
        | F::CM_THREADING
        | F::CM_FIXED_LENGTH_LISTS
        | F::CM_MAP
        | F::CM_IMPLEMENTS
}

/// Validates `bytes` as a component.
pub fn validate(bytes: &[u8]) -> Result<(), Error> {
    let mut v = wasmparser::Validator::new_with_features(features());
    v.validate_all(bytes).map_err(Error::from_wasmparser)?;
    Ok(())
}

/// A compiled component: its definitions and its core modules.
#[derive(Clone)]
pub struct Component {
    root: Arc<def::ComponentDef>,
    modules: Arc<Vec<Module>>,
}

impl Component {
    /// Validates and compiles `bytes` (every core module with the JIT).
    pub fn new(engine: &Engine, bytes: &[u8]) -> Result<Component, Error> {
        validate(bytes)?;
        let parsed = def::parse(bytes)?;
        let mut modules = Vec::with_capacity(parsed.modules.len());
        for r in &parsed.modules {
            let wasm = bytes.get(r.clone()).ok_or_else(|| Error::Invalid {
                offset: r.start,
                message: "core module past the end of the component".into(),
            })?;
            modules.push(Module::new(engine, wasm)?);
        }
        Ok(Component::from_parts(parsed.root, modules))
    }

    /// A component whose core modules were loaded elsewhere (ahead of
    /// time): `modules` in the order [`def::parse`] lists them.
    pub fn from_parts(root: Arc<def::ComponentDef>, modules: Vec<Module>) -> Component {
        Component {
            root,
            modules: Arc::new(modules),
        }
    }

    /// The names the component imports, in order.
    pub fn import_names(&self) -> Vec<String> {
        self.root
            .defs
            .iter()
            .filter_map(|d| match d {
                def::Def::Import(n, _) => Some(n.clone()),
                _ => None,
            })
            .collect()
    }

    /// The names the component exports, in order.
    pub fn export_names(&self) -> Vec<String> {
        self.root
            .defs
            .iter()
            .filter_map(|d| match d {
                def::Def::Export { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect()
    }
}

/// What a [`Linker`] holds under a name.
enum Entry<T> {
    Item(Item<T>),
    Instance(BTreeMap<String, Entry<T>>),
}

impl<T> Entry<T> {
    fn to_item(&self) -> Item<T> {
        match self {
            Entry::Item(i) => i.clone(),
            Entry::Instance(m) => Item::Instance(Arc::new(Exports {
                items: m.iter().map(|(k, v)| (k.clone(), v.to_item())).collect(),
            })),
        }
    }
}

/// Host definitions that satisfy a component's imports, by name.
pub struct Linker<T> {
    root: BTreeMap<String, Entry<T>>,
}

impl<T> Default for Linker<T> {
    fn default() -> Self {
        Linker {
            root: BTreeMap::new(),
        }
    }
}

/// One instance (or the root) of a [`Linker`], to define items in.
pub struct LinkerInstance<'a, T> {
    map: &'a mut BTreeMap<String, Entry<T>>,
}

impl<T: 'static> LinkerInstance<'_, T> {
    /// Defines host function `name`. Its type is the one the importing
    /// component declares; `f` checks the values it is given.
    pub fn func_new(
        &mut self,
        name: &str,
        f: impl Fn(&mut dyn StoreMut<T>, &[Value]) -> Result<Vec<Value>, Error> + Send + Sync + 'static,
    ) -> &mut Self {
        self.map
            .insert(name.to_string(), Entry::Item(Item::HostFunc(Arc::new(f))));
        self
    }

    /// Defines resource type `name`, implemented by the host, whose owned
    /// handles run `dtor` with their representation when dropped.
    pub fn resource(
        &mut self,
        name: &str,
        dtor: impl Fn(&mut dyn StoreMut<T>, u32) -> Result<(), Error> + Send + Sync + 'static,
    ) -> ResourceType {
        let d: HostDestructor<T> = Arc::new(dtor);
        let rt = ResourceType::new(
            name.to_string(),
            Implementer::Host,
            Destructor::Host(Arc::new(d)),
        );
        self.define(name, Item::Type(TypeSlot::Resource(rt.clone())));
        rt
    }

    /// Defines `name` as `item`.
    pub fn define(&mut self, name: &str, item: Item<T>) -> &mut Self {
        self.map.insert(name.to_string(), Entry::Item(item));
        self
    }

    /// The nested instance `name`, created empty if new.
    pub fn instance(&mut self, name: &str) -> LinkerInstance<'_, T> {
        let e = self
            .map
            .entry(name.to_string())
            .or_insert_with(|| Entry::Instance(BTreeMap::new()));
        if !matches!(e, Entry::Instance(_)) {
            *e = Entry::Instance(BTreeMap::new());
        }
        match e {
            Entry::Instance(map) => LinkerInstance { map },
            Entry::Item(_) => unreachable_instance(),
        }
    }
}

#[allow(clippy::panic)]
fn unreachable_instance() -> ! {
    // `instance` just made the entry an instance.
    panic!("linker entry is not an instance")
}

/// A name's base and version: `wasi:cli/run@0.2.3` is (`wasi:cli/run`, 0.2.3).
fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once('@') {
        Some((base, v)) => (base, Some(v)),
        None => (name, None),
    }
}

/// The part of a semantic version that compatible versions share: the
/// major version, or for 0.x the minor one too (0.0.x: all of it).
fn compat_key(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some(match (major, minor) {
        (0, 0) => (0, 0, patch),
        (0, m) => (0, m, 0),
        (m, _) => (m, 0, 0),
    })
}

/// Finds `name` in `map`: exactly, or an entry of the same base name at a
/// semver-compatible version (as wasmtime links `@0.2.0` to `@0.2.12`).
pub fn lookup<'m, V>(map: &'m BTreeMap<String, V>, name: &str) -> Option<&'m V> {
    if let Some(v) = map.get(name) {
        return Some(v);
    }
    let (base, Some(version)) = split_version(name) else {
        return None;
    };
    let want = compat_key(version)?;
    map.iter()
        .filter(|(k, _)| {
            let (b, v) = split_version(k);
            b == base && v.and_then(compat_key) == Some(want)
        })
        .map(|(_, v)| v)
        .next_back()
}

impl<T: 'static> Linker<T> {
    /// An empty linker.
    pub fn new() -> Self {
        Self::default()
    }

    /// The top level, for functions imported by bare name.
    pub fn root(&mut self) -> LinkerInstance<'_, T> {
        LinkerInstance {
            map: &mut self.root,
        }
    }

    /// Instance `name` (e.g. `wasi:cli/stdout@0.2.12`), created if new.
    pub fn instance(&mut self, name: &str) -> LinkerInstance<'_, T> {
        let mut root = LinkerInstance {
            map: &mut self.root,
        };
        // Reborrow the entry with the linker's lifetime.
        let _ = root.instance(name);
        match self.root.get_mut(name) {
            Some(Entry::Instance(map)) => LinkerInstance { map },
            _ => unreachable_instance(),
        }
    }

    /// Defines `name` at the top level as `item` (an instance another
    /// component exported, say).
    pub fn define(&mut self, name: &str, item: Item<T>) -> &mut Self {
        self.root.insert(name.to_string(), Entry::Item(item));
        self
    }

    /// Instantiates `component` in `store`.
    pub fn instantiate(
        &self,
        store: &mut Store<T>,
        component: &Component,
    ) -> Result<ComponentInstance<T>, Error> {
        let closure = ComponentClosure::root(component.root.clone());
        let resolve = |name: &str| lookup(&self.root, name).map(Entry::to_item);
        let (exports, _state) =
            instance::instantiate(store, &component.modules, &closure, &resolve, None)?;
        Ok(ComponentInstance { exports })
    }
}

/// A component linked once for many instantiations (a server's instance
/// per request): its imports found in the linker once, and what binding
/// them and evaluating its types gives kept from the first instantiation
/// for the next ones. For linkers that hold host definitions (an item
/// another store's instance exports belongs to that store).
pub struct InstancePre<T> {
    component: Component,
    imports: BTreeMap<String, Item<T>>,
    cache: instance::DefCache<T>,
}

impl<T: 'static> Linker<T> {
    /// `component` linked with this linker's definitions, to instantiate
    /// many times.
    pub fn instantiate_pre(&self, component: &Component) -> InstancePre<T> {
        let imports = component
            .import_names()
            .into_iter()
            .filter_map(|n| {
                let item = lookup(&self.root, &n).map(Entry::to_item)?;
                Some((n, item))
            })
            .collect();
        InstancePre {
            component: component.clone(),
            imports,
            cache: Default::default(),
        }
    }
}

impl<T: 'static> InstancePre<T> {
    /// A new instance in `store`.
    pub fn instantiate(&self, store: &mut Store<T>) -> Result<ComponentInstance<T>, Error> {
        let closure = ComponentClosure::root(self.component.root.clone());
        let resolve = |name: &str| self.imports.get(name).cloned();
        let (exports, _state) = instance::instantiate_cached(
            store,
            &self.component.modules,
            &closure,
            &resolve,
            None,
            Some(&self.cache),
        )?;
        Ok(ComponentInstance { exports })
    }

    /// The component.
    pub fn component(&self) -> &Component {
        &self.component
    }
}

/// An instantiated component: its exports.
pub struct ComponentInstance<T> {
    exports: Arc<Exports<T>>,
}

impl<T: 'static> ComponentInstance<T> {
    /// Export `name` (semver-compatibly).
    pub fn get_export(&self, name: &str) -> Option<Item<T>> {
        lookup(&self.exports.items, name).cloned()
    }

    /// The function exported as `name`.
    pub fn get_func(&self, name: &str) -> Option<ComponentFunc<T>> {
        match self.get_export(name)? {
            Item::Func(f) => Some(f),
            _ => None,
        }
    }

    /// Function `func` of the instance exported as `instance`.
    pub fn get_instance_func(&self, instance: &str, func: &str) -> Option<ComponentFunc<T>> {
        match self.get_export(instance)? {
            Item::Instance(i) => match i.items.get(func)? {
                Item::Func(f) => Some(f.clone()),
                _ => None,
            },
            _ => None,
        }
    }

    /// All exports.
    pub fn exports(&self) -> &Arc<Exports<T>> {
        &self.exports
    }
}
