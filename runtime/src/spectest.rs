//! The `spectest` host module the WebAssembly spec-test scripts import:
//! print functions (which print nothing), the globals `666` / `666.6`, a
//! funcref table of 10..20 elements (32- and 64-bit indexed) and a memory of 1..2 pages. Shared by
//! the hosted runner (`basalt wast`) and the kernel's spec batches.

use crate::{
    Extern, FuncType, Global, GlobalType, Linker, Memory, MemoryType, RefType, Store, Table,
    TableType, Val, ValType,
};

/// Links the `spectest` module into `linker`, its objects made in `store`.
pub fn define<T: 'static>(store: &mut Store<T>, linker: &mut Linker<T>) {
    use ValType::{F32, F64, I32, I64};
    let prints: &[(&str, &[ValType])] = &[
        ("print", &[]),
        ("print_i32", &[I32]),
        ("print_i64", &[I64]),
        ("print_f32", &[F32]),
        ("print_f64", &[F64]),
        ("print_i32_f32", &[I32, F32]),
        ("print_f64_f64", &[F64, F64]),
    ];
    for (name, params) in prints {
        linker.func_new("spectest", name, FuncType::new(params, &[]), |_, _, _| {
            Ok(())
        });
    }
    let globals = [
        ("global_i32", I32, Val::I32(666)),
        ("global_i64", I64, Val::I64(666)),
        ("global_f32", F32, Val::F32(666.6f32.to_bits())),
        ("global_f64", F64, Val::F64(666.6f64.to_bits())),
    ];
    for (name, ty, val) in globals {
        let g = Global::new(
            store,
            GlobalType {
                content: ty,
                mutable: false,
            },
            val,
        )
        .expect("spectest global");
        linker.define("spectest", name, Extern::Global(g));
    }
    let table = Table::new(
        store,
        TableType {
            element: RefType::FuncRef,
            minimum: 10,
            maximum: Some(20),
            table64: false,
        },
        Val::FuncRef(None),
    )
    .expect("spectest table");
    linker.define("spectest", "table", Extern::Table(table));
    let table64 = Table::new(
        store,
        TableType {
            element: RefType::FuncRef,
            minimum: 10,
            maximum: Some(20),
            table64: true,
        },
        Val::FuncRef(None),
    )
    .expect("spectest table64");
    linker.define("spectest", "table64", Extern::Table(table64));
    let memory = Memory::new(
        store,
        MemoryType {
            minimum: 1,
            maximum: Some(2),
            memory64: false,
            shared: false,
            page_size_log2: 16,
        },
    )
    .expect("spectest memory");
    linker.define("spectest", "memory", Extern::Memory(memory));
}
