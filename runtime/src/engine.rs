//! The engine (compiler + target + platform) and compiled modules.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use cranelift_codegen::isa::OwnedTargetIsa;
use spin::Mutex;

use crate::artifact;
use crate::compile::{self, CompiledCode, target::Target};
use crate::error::Error;
use crate::exact::CanonType;
use crate::module_info::{self, ModuleInfo};
use crate::platform::Platform;
use crate::types::FuncType;
use crate::vm::CodeMemory;

/// How an [`Engine`] compiles and runs code.
#[derive(Clone)]
pub struct Config {
    /// what code is generated for
    pub target: Target,
    /// where code and memories are mapped; `None` for an engine that only
    /// compiles (ahead of time, for another machine)
    pub platform: Option<&'static dyn Platform>,
    /// how much native stack wasm may use
    pub max_wasm_stack: usize,
    /// upper bound on any one linear memory, in bytes
    pub max_memory_bytes: usize,
    /// compiled code looks at the store's interrupt request at every
    /// function entry and loop header (`Store::interrupt_handle`,
    /// `Store::set_interrupt_check`); off, nothing can interrupt it, and
    /// it saves a load and a branch per loop iteration
    pub interruptible: bool,
    /// compiled code spends fuel (`Store::set_fuel`) as it runs and traps
    /// when it runs out: deterministic, and dearer than `interruptible`
    /// (a load, a subtraction and a store per block)
    pub consume_fuel: bool,
}

impl Config {
    /// Hosted on this machine: its real CPU features, mmap, signals.
    #[cfg(feature = "std")]
    pub fn hosted() -> Config {
        Config {
            target: Target::host(),
            platform: Some(&crate::platform::host::HOST_PLATFORM),
            max_wasm_stack: 1 << 20,
            max_memory_bytes: 4 << 30,
            interruptible: false,
            consume_fuel: false,
        }
    }
}

impl Config {
    /// What compiled code must contain besides the program for this
    /// configuration (interrupt checks, fuel metering).
    pub fn instrumentation(&self) -> Instrumentation {
        Instrumentation {
            interruptible: self.interruptible,
            consume_fuel: self.consume_fuel,
        }
    }
}

/// What compiled code contains besides the program: recorded in
/// artifacts, which load only into engines that want the same.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Instrumentation {
    /// interrupt checks at function entries and loop headers
    pub interruptible: bool,
    /// fuel metering
    pub consume_fuel: bool,
}

impl Instrumentation {
    /// The bits artifacts record.
    pub fn bits(self) -> u32 {
        u32::from(self.interruptible) | u32::from(self.consume_fuel) << 1
    }

    /// From [`Instrumentation::bits`]; `None` for unknown bits.
    pub fn from_bits(bits: u32) -> Option<Instrumentation> {
        (bits < 4).then_some(Instrumentation {
            interruptible: bits & 1 != 0,
            consume_fuel: bits & 2 != 0,
        })
    }
}

impl core::fmt::Display for Instrumentation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match (self.interruptible, self.consume_fuel) {
            (false, false) => f.write_str("no interrupt checks and no fuel metering"),
            (true, false) => f.write_str("interrupt checks"),
            (false, true) => f.write_str("fuel metering"),
            (true, true) => f.write_str("interrupt checks and fuel metering"),
        }
    }
}

struct EngineInner {
    config: Config,
    isa: OwnedTargetIsa,
    types: Mutex<TypeRegistry>,
}

/// The engine's defined types: each canonical type once, with the id of
/// its declared supertype.
#[derive(Default)]
struct TypeRegistry {
    types: Vec<CanonType>,
    supertypes: Vec<Option<u32>>,
}

impl TypeRegistry {
    fn intern(&mut self, ty: &CanonType) -> u32 {
        if let Some(i) = self.types.iter().position(|t| t == ty) {
            return i as u32;
        }
        let supertype = ty.supertype().map(|s| self.intern(&s));
        self.types.push(ty.clone());
        self.supertypes.push(supertype);
        (self.types.len() - 1) as u32
    }
}

/// A compiler for one target plus the engine-wide type registry.
#[derive(Clone)]
pub struct Engine(Arc<EngineInner>);

impl Engine {
    /// An engine for `config`.
    pub fn new(config: Config) -> Result<Engine, Error> {
        let isa = config.target.isa()?;
        #[cfg(feature = "std")]
        if config.platform.is_some() {
            crate::platform::host::install_trap_handlers();
        }
        Ok(Engine(Arc::new(EngineInner {
            config,
            isa,
            types: Mutex::new(TypeRegistry::default()),
        })))
    }

    /// The engine's configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The target code is generated for.
    pub fn target(&self) -> &Target {
        &self.0.config.target
    }

    pub(crate) fn platform(&self) -> Result<&'static dyn Platform, Error> {
        self.0
            .config
            .platform
            .ok_or_else(|| Error::Host("this engine only compiles; it cannot run code".into()))
    }

    /// The engine-wide id of a host-side function type (equal types, equal
    /// ids; its references are the nullable abstract ones).
    pub fn intern_type(&self, ty: &FuncType) -> u32 {
        self.intern_exact(&CanonType::of(ty))
    }

    /// The engine-wide id of a defined type: equivalent types (the spec's
    /// canonicalisation) get equal ids. `call_indirect` and function
    /// imports compare these.
    pub fn intern_exact(&self, ty: &CanonType) -> u32 {
        self.0.types.lock().intern(ty)
    }

    /// Whether type `sub` is type `sup` or declares it as a (transitive)
    /// supertype; both are ids from [`Engine::intern_exact`].
    pub fn is_subtype(&self, sub: u32, sup: u32) -> bool {
        let types = self.0.types.lock();
        let mut t = Some(sub);
        while let Some(id) = t {
            if id == sup {
                return true;
            }
            t = types.supertypes.get(id as usize).copied().flatten();
        }
        false
    }

    pub(crate) fn same(&self, other: &Engine) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

pub(crate) struct ModuleInner {
    pub(crate) engine: Engine,
    pub(crate) info: ModuleInfo,
    pub(crate) data: Vec<Box<[u8]>>,
    pub(crate) compiled: CompiledCode,
    pub(crate) code: CodeMemory,
    pub(crate) type_ids: Vec<u32>,
    pub(crate) names: BTreeMap<u32, String>,
}

/// A compiled module, loaded and ready to instantiate.
#[derive(Clone)]
pub struct Module(pub(crate) Arc<ModuleInner>);

impl Module {
    /// Validates and compiles `wasm` (the in-process JIT path).
    pub fn new(engine: &Engine, wasm: &[u8]) -> Result<Module, Error> {
        let (info, pending) = module_info::parse(wasm)?;
        let compiled = compile::compile_module(
            &*engine.0.isa,
            &info,
            pending,
            engine.config().instrumentation(),
        )?;
        Module::load(engine, wasm, info, compiled)
    }

    /// Compiles `wasm` for the engine's target without loading it, and
    /// returns an artifact for [`Module::from_artifact`] (ahead of time).
    pub fn compile_artifact(engine: &Engine, wasm: &[u8]) -> Result<Vec<u8>, Error> {
        let (info, pending) = module_info::parse(wasm)?;
        let compiled = compile::compile_module(
            &*engine.0.isa,
            &info,
            pending,
            engine.config().instrumentation(),
        )?;
        Ok(artifact::serialize(
            engine.target(),
            engine.config().instrumentation(),
            wasm,
            &compiled,
        ))
    }

    /// Loads code compiled ahead of time for `wasm`. Refuses an artifact
    /// made for another module, compiler or a CPU this engine's target lacks.
    pub fn from_artifact(engine: &Engine, wasm: &[u8], artifact: &[u8]) -> Result<Module, Error> {
        let mut validator =
            wasmparser::Validator::new_with_features(module_info::supported_features());
        validator
            .validate_all(wasm)
            .map_err(Error::from_wasmparser)?;
        let (info, _) = module_info::parse(wasm)?;
        let compiled = artifact::deserialize(
            engine.target(),
            engine.config().instrumentation(),
            wasm,
            &info,
            artifact,
        )?;
        Module::load(engine, wasm, info, compiled)
    }

    fn load(
        engine: &Engine,
        wasm: &[u8],
        info: ModuleInfo,
        compiled: CompiledCode,
    ) -> Result<Module, Error> {
        let platform = engine.platform()?;
        let data = info
            .data
            .iter()
            .map(|d| Box::<[u8]>::from(&wasm[d.range.clone()]))
            .collect();
        let functions = compiled
            .functions
            .iter()
            .enumerate()
            .map(|(i, (o, l))| (*o, *l, info.num_imported_funcs + i as u32))
            .collect();
        let tags_offset = crate::vm::offsets::VMOffsets::new(&info).tags_start();
        let code = CodeMemory::load(
            platform,
            &compiled.code,
            compiled.traps.clone(),
            functions,
            compiled.call_sites.clone(),
            tags_offset,
        )?;
        let type_ids = info
            .exact_types
            .iter()
            .map(|t| engine.intern_exact(t))
            .collect();
        let names = info.func_names.iter().cloned().collect();
        Ok(Module(Arc::new(ModuleInner {
            engine: engine.clone(),
            info,
            data,
            compiled,
            code,
            type_ids,
            names,
        })))
    }

    /// The module's metadata.
    pub fn info(&self) -> &ModuleInfo {
        &self.0.info
    }

    /// Size of the generated code in bytes.
    pub fn code_size(&self) -> usize {
        self.0.compiled.code.len()
    }
}
