//! Component functions and calls across the boundary: `canon lift` (a
//! call into a component), `canon lower` (a core function that calls out),
//! and the resource built-ins. A call between two components goes
//! through a compiled fused adapter (`super::adapter`) where its types
//! allow, else it is a lower feeding a lift here: the values pass
//! through the host, lifted from the caller's memory and lowered into the
//! callee's.

use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::abi::layout::{self, Flat, MAX_FLAT_PARAMS, MAX_FLAT_RESULTS};
use super::abi::{Cx, Options, lift, lower, trap};
use super::handles::{BorrowScope, InstanceState};
use super::types::{Destructor, FuncType, Implementer, ResourceType};
use super::values::Value;
use crate::error::Error;
use crate::types::{FuncType as CoreFuncType, Val, ValType};
use crate::vm::store::{Caller, Func, Store, StoreMut};

/// A host function of the component model: takes the arguments, returns
/// the results (zero or one).
pub type HostFunc<T> =
    Arc<dyn Fn(&mut dyn StoreMut<T>, &[Value]) -> Result<Vec<Value>, Error> + Send + Sync>;

/// What the host runs when a guest drops the last owned handle of one of
/// its resources: given the representation.
pub type HostDestructor<T> =
    Arc<dyn Fn(&mut dyn StoreMut<T>, u32) -> Result<(), Error> + Send + Sync>;

enum FuncKind<T> {
    Lifted {
        core: Func,
        opts: Options,
        inst: Arc<InstanceState>,
    },
    Host(HostFunc<T>),
}

struct FuncInner<T> {
    ty: FuncType,
    kind: FuncKind<T>,
}

/// A component function: lifted from a core function of a component
/// instance, or the host's.
pub struct ComponentFunc<T>(Arc<FuncInner<T>>);

impl<T> Clone for ComponentFunc<T> {
    fn clone(&self) -> Self {
        ComponentFunc(self.0.clone())
    }
}

impl<T: 'static> ComponentFunc<T> {
    pub(crate) fn lifted(
        ty: FuncType,
        core: Func,
        opts: Options,
        inst: Arc<InstanceState>,
    ) -> Self {
        ComponentFunc(Arc::new(FuncInner {
            ty,
            kind: FuncKind::Lifted { core, opts, inst },
        }))
    }

    pub(crate) fn host(ty: FuncType, f: HostFunc<T>) -> Self {
        ComponentFunc(Arc::new(FuncInner {
            ty,
            kind: FuncKind::Host(f),
        }))
    }

    /// The function's type.
    pub fn ty(&self) -> &FuncType {
        &self.0.ty
    }

    /// A lifted function's core function, canonical options and
    /// instance (`None` for the host's functions).
    pub(crate) fn lifted_parts(&self) -> Option<(Func, &Options, &Arc<InstanceState>)> {
        match &self.0.kind {
            FuncKind::Lifted { core, opts, inst } => Some((*core, opts, inst)),
            FuncKind::Host(_) => None,
        }
    }

    /// Calls the function from the host.
    pub fn call(&self, store: &mut Store<T>, args: &[Value]) -> Result<Vec<Value>, Error> {
        for ((name, t), v) in self.0.ty.params.iter().zip(args) {
            if !v.has_type(t) {
                return Err(Error::Host(format!(
                    "argument `{name}` is a {} where a {t} is expected",
                    v.kind()
                )));
            }
        }
        if args.len() != self.0.ty.params.len() {
            return Err(Error::Host(format!(
                "{} arguments given to a function of type {}",
                args.len(),
                self.0.ty
            )));
        }
        self.call_from(store, None, args)
    }

    /// Calls the function from inside a host function (`store` is the
    /// host function's view of the store). Calling back into an instance
    /// that is itself in a call traps, as the component model requires.
    pub fn call_in(
        &self,
        store: &mut dyn StoreMut<T>,
        args: &[Value],
    ) -> Result<Vec<Value>, Error> {
        self.call_from(store, None, args)
    }

    /// Calls the function from `caller` (an instance calling through a
    /// lowered import), or from the host.
    pub(crate) fn call_from(
        &self,
        store: &mut dyn StoreMut<T>,
        caller: Option<&Arc<InstanceState>>,
        args: &[Value],
    ) -> Result<Vec<Value>, Error> {
        match &self.0.kind {
            FuncKind::Host(f) => f(store, args),
            FuncKind::Lifted { core, opts, inst } => {
                call_lifted(store, &self.0.ty, *core, opts, inst, caller, args)
            }
        }
    }
}

fn zeros(flat: &[Flat]) -> Vec<Val> {
    flat.iter()
        .map(|f| match f {
            Flat::I32 => Val::I32(0),
            Flat::I64 => Val::I64(0),
            Flat::F32 => Val::F32(0),
            Flat::F64 => Val::F64(0),
        })
        .collect()
}

/// `canon_lift`, synchronous.
fn call_lifted<T: 'static>(
    store: &mut dyn StoreMut<T>,
    ty: &FuncType,
    core: Func,
    opts: &Options,
    inst: &Arc<InstanceState>,
    caller: Option<&Arc<InstanceState>>,
    args: &[Value],
) -> Result<Vec<Value>, Error> {
    let entered = inst.enter_from(caller)?;
    inst.start_task();
    let adapters = super::adapter::depth();
    let result = (|| {
        let scope = Arc::new(BorrowScope::default());
        let params: Vec<_> = ty.param_types().collect();
        let results: Vec<_> = ty.result_types().iter().collect();
        let (_, flat_results) = layout::core_signature(ty.param_types(), ty.result_types(), false);
        let mut cx = Cx {
            store,
            opts,
            inst,
            scope: Some(&scope),
            lenders: Vec::new(),
            adapter: caller.is_some(),
        };
        let flat_args = lower::lower_values(&mut cx, MAX_FLAT_PARAMS, args, &params, None)?;
        let mut flat_out = zeros(&flat_results);
        cx.store.call(core, &flat_args, &mut flat_out)?;
        let values = lift::lift_values(&mut cx, MAX_FLAT_RESULTS, &flat_out, &results)?;
        if scope.outstanding() > 0 {
            return Err(trap("borrow handles still remain at the end of the call"));
        }
        if let Some(post) = opts.post_return {
            inst.set_may_leave(false);
            let r = cx.store.call(post, &flat_out, &mut []);
            inst.set_may_leave(true);
            r?;
        }
        Ok(values)
    })();
    // Compiled adapters a trap unwound past are left here.
    super::adapter::unwind_to(adapters);
    inst.end_task();
    InstanceState::leave(&entered);
    result
}

/// The core type of the function `canon lower` makes of `ty`.
pub(crate) fn lowered_core_type(ty: &FuncType) -> CoreFuncType {
    let (p, r) = layout::core_signature(ty.param_types(), ty.result_types(), true);
    let conv = |f: &Flat| match f {
        Flat::I32 => ValType::I32,
        Flat::I64 => ValType::I64,
        Flat::F32 => ValType::F32,
        Flat::F64 => ValType::F64,
    };
    CoreFuncType {
        params: p.iter().map(conv).collect(),
        results: r.iter().map(conv).collect(),
    }
}

/// `canon_lower`, synchronous: what the core function made for `callee`
/// does when instance `inst` calls it.
pub(crate) fn call_lowered<T: 'static>(
    caller: &mut Caller<'_, T>,
    callee: &ComponentFunc<T>,
    opts: &Options,
    inst: &Arc<InstanceState>,
    args: &[Val],
    results: &mut [Val],
) -> Result<(), Error> {
    if !inst.may_leave() {
        return Err(trap("cannot leave component instance"));
    }
    let ty = callee.ty();
    let params: Vec<_> = ty.param_types().collect();
    let result_types: Vec<_> = ty.result_types().iter().collect();
    let flat_results = layout::flatten_all(ty.result_types().iter());
    let adapter = matches!(callee.0.kind, FuncKind::Lifted { .. });
    let mut cx = Cx {
        store: caller,
        opts,
        inst,
        scope: None,
        lenders: Vec::new(),
        adapter,
    };
    let outcome = (|| {
        let values = lift::lift_values(&mut cx, MAX_FLAT_PARAMS, args, &params)?;
        let out = callee.call_from(cx.store, Some(inst), &values)?;
        let out_ptr = if flat_results.len() > MAX_FLAT_RESULTS {
            match args.last() {
                Some(Val::I32(p)) => Some(*p as u32),
                _ => return Err(trap("missing return pointer")),
            }
        } else {
            None
        };
        let flat = lower::lower_values(&mut cx, MAX_FLAT_RESULTS, &out, &result_types, out_ptr)?;
        for (slot, v) in results.iter_mut().zip(flat) {
            *slot = v;
        }
        Ok(())
    })();
    // The call is over: what was lent to it comes back.
    let mut table = inst.handles.lock();
    for i in cx.lenders.drain(..) {
        if let Ok(h) = table.get_mut(i) {
            h.lends = h.lends.saturating_sub(1);
        }
    }
    outcome
}

fn i32_arg(args: &[Val]) -> Result<u32, Error> {
    match args.first() {
        Some(Val::I32(i)) => Ok(*i as u32),
        _ => Err(trap("resource built-in called with a non-i32 argument")),
    }
}

/// `canon resource.new`.
pub(crate) fn resource_new(
    inst: &Arc<InstanceState>,
    rt: &ResourceType,
    args: &[Val],
) -> Result<Val, Error> {
    if !inst.may_leave() {
        return Err(trap("cannot leave component instance"));
    }
    let rep = i32_arg(args)?;
    let i = inst.handles.lock().add(super::handles::Handle {
        ty: rt.clone(),
        rep,
        own: true,
        scope: None,
        lends: 0,
    })?;
    Ok(Val::I32(i as i32))
}

/// `canon resource.rep`.
pub(crate) fn resource_rep(
    inst: &Arc<InstanceState>,
    rt: &ResourceType,
    args: &[Val],
) -> Result<Val, Error> {
    let i = i32_arg(args)?;
    let mut table = inst.handles.lock();
    let h = table.get_mut(i)?;
    if h.ty != *rt {
        return Err(wrong_type(i));
    }
    Ok(Val::I32(h.rep as i32))
}

fn wrong_type(i: u32) -> Error {
    trap(&format!(
        "handle index {i} used with the wrong type, expected guest-defined resource but found a different guest-defined resource"
    ))
}

/// `canon resource.drop`: removes the handle; an owned one runs the
/// type's destructor.
pub(crate) fn resource_drop<T: 'static>(
    store: &mut dyn StoreMut<T>,
    inst: &Arc<InstanceState>,
    rt: &ResourceType,
    args: &[Val],
) -> Result<(), Error> {
    if !inst.may_leave() {
        return Err(trap("cannot leave component instance"));
    }
    let i = i32_arg(args)?;
    let h = inst.handles.lock().remove(i)?;
    if h.ty != *rt {
        return Err(wrong_type(i));
    }
    if h.lends != 0 {
        return Err(trap("cannot remove owned resource while borrowed"));
    }
    if !h.own {
        if let Some(s) = &h.scope {
            s.returned();
        }
        return Ok(());
    }
    drop_own(store, Some(inst), &h.ty, h.rep)
}

/// Runs the destructor of resource type `rt` for `rep`, called from
/// `caller` (or the host).
pub(crate) fn drop_own<T: 'static>(
    store: &mut dyn StoreMut<T>,
    caller: Option<&Arc<InstanceState>>,
    rt: &ResourceType,
    rep: u32,
) -> Result<(), Error> {
    match &rt.0.destructor {
        Destructor::None => Ok(()),
        Destructor::Core(f) => {
            let Implementer::Instance(w) = &rt.0.implementer else {
                return Ok(());
            };
            let Some(owner) = w.upgrade() else {
                return Ok(());
            };
            let entered = owner.enter_from(caller)?;
            let r = store.call(*f, &[Val::I32(rep as i32)], &mut []);
            InstanceState::leave(&entered);
            r
        }
        Destructor::Host(any) => match any.downcast_ref::<HostDestructor<T>>() {
            Some(d) => d(store, rep),
            None => Err(Error::Host(
                "a host resource's destructor belongs to another kind of store".into(),
            )),
        },
    }
}
