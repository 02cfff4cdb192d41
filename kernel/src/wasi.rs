//! TEMPORARY stand-in for `basalt_wasi` until that crate lands on `main`:
//! the same service traits and `run_command` signature, with a tiny test
//! import set (`basalt_test::write(ptr, len)`, `basalt_test::exit(code)`)
//! instead of WASI. Not part of the final kernel.

use alloc::boxed::Box;
use alloc::vec::Vec;

use basalt_runtime::{Engine, Error, Extern, FuncType, Linker, Module, Store, Trap, ValType};

/// Program stdio.
pub trait Stdio: Send + Sync {
    /// Writes to stdout.
    fn write_stdout(&self, b: &[u8]);
    /// Writes to stderr.
    fn write_stderr(&self, b: &[u8]);
    /// Blocks; 0 = EOF.
    fn read_stdin(&self, buf: &mut [u8]) -> usize;
}

/// Clocks.
pub trait Clocks: Send + Sync {
    /// Wall clock.
    fn realtime_ns(&self) -> u64;
    /// Monotonic clock.
    fn monotonic_ns(&self) -> u64;
    /// Resolution.
    fn resolution_ns(&self) -> u64;
    /// Sleep.
    fn sleep_until_monotonic_ns(&self, deadline: u64);
}

/// Random bytes.
pub trait Entropy: Send + Sync {
    /// Fills `buf`.
    fn fill(&self, buf: &mut [u8]);
}

/// The services a program gets.
pub struct Services {
    /// stdio
    pub stdio: Box<dyn Stdio>,
    /// clocks
    pub clocks: Box<dyn Clocks>,
    /// entropy
    pub entropy: Box<dyn Entropy>,
}

/// Per-program state.
pub struct WasiCtx {
    #[allow(dead_code)]
    args: Vec<Vec<u8>>,
    #[allow(dead_code)]
    env: Vec<Vec<u8>>,
    services: Services,
}

impl WasiCtx {
    /// A context.
    pub fn new(args: Vec<Vec<u8>>, env: Vec<Vec<u8>>, services: Services) -> WasiCtx {
        WasiCtx {
            args,
            env,
            services,
        }
    }
}

/// How a run ended.
pub enum Outcome {
    /// exit code
    Exit(i32),
    /// trap
    Trap(Trap),
    /// error
    Error(Error),
}

/// Runs `_start` with the test imports.
pub fn run_command(engine: &Engine, module: &Module, ctx: WasiCtx) -> Outcome {
    let mut store = Store::new(engine, ctx);
    let mut linker: Linker<WasiCtx> = Linker::new();
    linker.func_new(
        "basalt_test",
        "write",
        FuncType::new(&[ValType::I32, ValType::I32], &[]),
        |caller, args, _| {
            let ptr = args[0].i32().unwrap_or_default() as u32 as usize;
            let len = args[1].i32().unwrap_or_default() as u32 as usize;
            let Some(Extern::Memory(mem)) = caller.get_export("memory") else {
                return Err(Error::host_trap("no memory export"));
            };
            let bytes: Vec<u8> = mem
                .data(caller)
                .get(ptr..ptr.saturating_add(len))
                .ok_or_else(|| Error::host_trap("write out of bounds"))?
                .to_vec();
            caller.data().services.stdio.write_stdout(&bytes);
            Ok(())
        },
    );
    linker.func_new(
        "basalt_test",
        "random",
        FuncType::new(&[], &[ValType::I64]),
        |caller, _, results| {
            let mut b = [0u8; 8];
            caller.data().services.entropy.fill(&mut b);
            results[0] = basalt_runtime::Val::I64(i64::from_le_bytes(b));
            Ok(())
        },
    );
    linker.func_new(
        "basalt_test",
        "exit",
        FuncType::new(&[ValType::I32], &[]),
        |_, args, _| Err(Error::Exit(args[0].i32().unwrap_or_default())),
    );
    let instance = match linker.instantiate(&mut store, module) {
        Ok(i) => i,
        Err(Error::Trap(t)) => return Outcome::Trap(t),
        Err(e) => return Outcome::Error(e),
    };
    let Some(start) = instance.get_func(&mut store, "_start") else {
        return Outcome::Error(Error::Host("the module exports no `_start`".into()));
    };
    match start.call(&mut store, &[], &mut []) {
        Ok(()) => Outcome::Exit(0),
        Err(Error::Exit(c)) => Outcome::Exit(c),
        Err(Error::Trap(t)) => Outcome::Trap(t),
        Err(e) => Outcome::Error(e),
    }
}
