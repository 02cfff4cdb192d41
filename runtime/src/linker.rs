//! Resolving a module's imports by name.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::engine::Module;
use crate::error::Error;
use crate::module_info::ImportKind;
use crate::types::{FuncType, Val};
use crate::vm::store::{Caller, Extern, HostFn, Instance, Store};

enum Definition<T> {
    Extern(Extern),
    Host(FuncType, HostFn<T>),
}

/// Named definitions (host functions and externs) that satisfy imports.
pub struct Linker<T> {
    defs: BTreeMap<(String, String), Definition<T>>,
}

impl<T> Default for Linker<T> {
    fn default() -> Self {
        Linker {
            defs: BTreeMap::new(),
        }
    }
}

impl<T> Linker<T> {
    /// An empty linker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Defines host function `module::name` of type `ty`.
    pub fn func_new(
        &mut self,
        module: &str,
        name: &str,
        ty: FuncType,
        func: impl Fn(&mut Caller<'_, T>, &[Val], &mut [Val]) -> Result<(), Error> + 'static,
    ) -> &mut Self {
        self.defs.insert(
            (module.to_string(), name.to_string()),
            Definition::Host(ty, Arc::new(func)),
        );
        self
    }

    /// Defines `module::name` as an existing extern of a store.
    pub fn define(&mut self, module: &str, name: &str, ext: Extern) -> &mut Self {
        self.defs.insert(
            (module.to_string(), name.to_string()),
            Definition::Extern(ext),
        );
        self
    }

    /// Defines every export of `instance` under module name `module`.
    pub fn instance(
        &mut self,
        store: &mut Store<T>,
        module: &str,
        instance: Instance,
    ) -> &mut Self {
        for name in instance.export_names(store) {
            if let Some(ext) = instance.get_export(store, &name) {
                self.define(module, &name, ext);
            }
        }
        self
    }

    /// Whether `module::name` is defined.
    pub fn contains(&self, module: &str, name: &str) -> bool {
        self.defs
            .contains_key(&(module.to_string(), name.to_string()))
    }

    /// Instantiates `module` in `store`, resolving its imports here and
    /// running its start function.
    pub fn instantiate(&self, store: &mut Store<T>, module: &Module) -> Result<Instance, Error> {
        let mut imports = Vec::with_capacity(module.info().imports.len());
        for import in &module.info().imports {
            let key = (import.module.clone(), import.name.clone());
            let ext = match self.defs.get(&key) {
                Some(Definition::Extern(e)) => *e,
                Some(Definition::Host(ty, f)) => {
                    if let ImportKind::Func(t) = import.kind {
                        let want = &module.info().types[t as usize];
                        if want != ty {
                            return Err(Error::Link {
                                module: import.module.clone(),
                                name: import.name.clone(),
                                reason: alloc::format!(
                                    "host function has type {ty}, the module wants {want}"
                                ),
                            });
                        }
                    }
                    Extern::Func(store.host_func(ty.clone(), f.clone()))
                }
                None => {
                    return Err(Error::Link {
                        module: import.module.clone(),
                        name: import.name.clone(),
                        reason: "not defined by the host".into(),
                    });
                }
            };
            imports.push(ext);
        }
        store.instantiate(module, &imports)
    }
}
