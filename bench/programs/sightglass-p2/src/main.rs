//! Makes a sightglass benchmark program runnable by any WASI host, in the
//! two forms `bench/wasi_p2.py` sets side by side.
//!
//! `sightglass-p2 BENCHMARK.wasm ADAPTER.wasm P1_OUT.wasm P2_OUT.wasm`
//!
//! A sightglass program imports `bench.start` and `bench.end` (both
//! `func()`), which only sightglass's harness defines. This tool replaces
//! the two imports with functions of the module that do nothing (every
//! other function index shifts down accordingly; the `name` section is
//! dropped) and writes the result as `P1_OUT` — a plain `wasm32-wasip1`
//! command. It then turns that module into a WASI 0.2 component with
//! wasmtime's preview1 command adapter (`ADAPTER`,
//! `wasi_snapshot_preview1.command.wasm`), as `wasm-tools component new
//! P1_OUT --adapt ADAPTER` does (both use `wit-component`), and writes it as
//! `P2_OUT`. The program's code is the same in both forms; only the way to
//! WASI differs.

use std::process::ExitCode;

use wasm_encoder::reencode::{Error, Reencode, utils};
use wasmparser::{Parser, Payload, TypeRef};

/// The module an import must come from to be stubbed.
const STUBBED: &str = "bench";

/// A re-encoder that drops the `bench` imports and appends a function of
/// the same type, with an empty body, for each.
struct Stubber {
    /// for each imported function, in order: whether it is stubbed
    imported: Vec<bool>,
    /// the type index of each stubbed import, in order
    stub_types: Vec<u32>,
    /// the number of functions the input module defines
    defined: u32,
}

impl Stubber {
    /// Reads the input's imports and function count.
    fn new(wasm: &[u8]) -> Result<Self, String> {
        let mut s = Stubber {
            imported: Vec::new(),
            stub_types: Vec::new(),
            defined: 0,
        };
        for payload in Parser::new(0).parse_all(wasm) {
            match payload.map_err(|e| e.to_string())? {
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        let import = import.map_err(|e| e.to_string())?;
                        if let TypeRef::Func(ty) = import.ty {
                            let stub = import.module == STUBBED;
                            s.imported.push(stub);
                            if stub {
                                s.stub_types.push(ty);
                            }
                        } else if import.module == STUBBED {
                            return Err(format!("`{STUBBED}.{}` is not a function", import.name));
                        }
                    }
                }
                Payload::FunctionSection(reader) => s.defined = reader.count(),
                _ => {}
            }
        }
        Ok(s)
    }

    /// The number of imported functions that stay imports.
    fn kept_imports(&self) -> u32 {
        self.imported.iter().filter(|s| !**s).count() as u32
    }
}

impl Reencode for Stubber {
    type Error = String;

    fn function_index(&mut self, func: u32) -> Result<u32, Error<String>> {
        let kept = self.kept_imports();
        match self.imported.get(func as usize) {
            // An import: kept ones keep their order, stubbed ones become
            // the functions appended after the module's own.
            Some(false) => Ok(self.imported[..func as usize]
                .iter()
                .filter(|s| !**s)
                .count() as u32),
            Some(true) => {
                let nth = self.imported[..func as usize]
                    .iter()
                    .filter(|s| **s)
                    .count() as u32;
                Ok(kept + self.defined + nth)
            }
            None => Ok(func - self.imported.len() as u32 + kept),
        }
    }

    fn parse_import_section(
        &mut self,
        imports: &mut wasm_encoder::ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), Error<String>> {
        for import in section.into_imports() {
            let import = import?;
            if import.module != STUBBED {
                imports.import(import.module, import.name, self.entity_type(import.ty)?);
            }
        }
        Ok(())
    }

    fn parse_function_section(
        &mut self,
        functions: &mut wasm_encoder::FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), Error<String>> {
        utils::parse_function_section(self, functions, section)?;
        for ty in self.stub_types.clone() {
            functions.function(self.type_index(ty)?);
        }
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<(), Error<String>> {
        utils::parse_code_section(self, code, section)?;
        for _ in 0..self.stub_types.len() {
            let mut body = wasm_encoder::Function::new([]);
            body.instruction(&wasm_encoder::Instruction::End);
            code.function(&body);
        }
        Ok(())
    }

    fn parse_custom_section(
        &mut self,
        module: &mut wasm_encoder::Module,
        section: wasmparser::CustomSectionReader<'_>,
    ) -> Result<(), Error<String>> {
        // The name section's function map would no longer be in order.
        if section.name() != "name" {
            utils::parse_custom_section(self, module, section)?;
        }
        Ok(())
    }
}

/// The module with its `bench` imports stubbed out.
fn stub(wasm: &[u8]) -> Result<Vec<u8>, String> {
    let mut stubber = Stubber::new(wasm)?;
    if stubber.stub_types.is_empty() {
        return Ok(wasm.to_vec());
    }
    let mut module = wasm_encoder::Module::new();
    stubber
        .parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(|e| format!("{e:?}"))?;
    let out = module.finish();
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&out)
        .map_err(|e| format!("the stubbed module does not validate: {e}"))?;
    Ok(out)
}

/// The module as a WASI 0.2 component, through the preview1 adapter.
fn componentize(module: &[u8], adapter: &[u8]) -> Result<Vec<u8>, String> {
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)
        .and_then(|e| e.adapter("wasi_snapshot_preview1", adapter))
        .and_then(|mut e| e.encode())
        .map_err(|e| format!("{e:#}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, adapter, p1_out, p2_out] = args.as_slice() else {
        eprintln!("usage: sightglass-p2 BENCHMARK.wasm ADAPTER.wasm P1_OUT.wasm P2_OUT.wasm");
        return ExitCode::from(2);
    };
    let result = (|| -> Result<(), String> {
        let read = |p: &str| std::fs::read(p).map_err(|e| format!("{p}: {e}"));
        let module = stub(&read(input)?)?;
        let component = componentize(&module, &read(adapter)?)?;
        std::fs::write(p1_out, &module).map_err(|e| format!("{p1_out}: {e}"))?;
        std::fs::write(p2_out, &component).map_err(|e| format!("{p2_out}: {e}"))?;
        Ok(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sightglass-p2: {input}: {e}");
            ExitCode::FAILURE
        }
    }
}
