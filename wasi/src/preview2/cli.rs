//! `wasi:cli`: environment, exit, standard streams and terminals.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use basalt_runtime::Error;
use basalt_runtime::component::{Linker, Value};

use super::io::{InputStream, OutputStream};
use super::{Host, HostResource, Types, def, iface, one, trap, u32_arg};
use crate::WasiCtx;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn stream(h: &mut Host<'_>, res: HostResource, input: bool) -> Result<Vec<Value>, Error> {
    let r = h.cx.resources.push(res, None)?;
    let ty = if input { &h.ty.input } else { &h.ty.output };
    one(Types::own(ty, r))
}

fn terminal(h: &mut Host<'_>, which: usize) -> Result<Vec<Value>, Error> {
    if !h.cx.terminals[which] {
        return one(Value::Option(None));
    }
    let (res, ty) = if which == 0 {
        (HostResource::TerminalInput, &h.ty.terminal_input)
    } else {
        (HostResource::TerminalOutput, &h.ty.terminal_output)
    };
    let ty = ty.clone();
    let r = h.cx.resources.push(res, None)?;
    one(Value::some(Types::own(&ty, r)))
}

pub(super) fn add<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut WasiCtx,
    types: &Arc<Types>,
) {
    let mut i = linker.instance(&iface("cli", "environment"));
    def(&mut i, "get-environment", get, types, |h, _| {
        let vars =
            h.cx.env
                .iter()
                .map(|e| {
                    let (k, v) = match e.iter().position(|b| *b == b'=') {
                        Some(at) => (&e[..at], &e[at + 1..]),
                        None => (&e[..], &[][..]),
                    };
                    Value::Tuple(alloc::vec![Value::String(text(k)), Value::String(text(v))])
                })
                .collect();
        one(Value::List(vars))
    });
    def(&mut i, "get-arguments", get, types, |h, _| {
        one(Value::List(
            h.cx.args.iter().map(|a| Value::String(text(a))).collect(),
        ))
    });
    def(&mut i, "initial-cwd", get, types, |h, _| {
        one(match &h.cx.initial_cwd {
            Some(cwd) => Value::some(Value::String(cwd.clone())),
            None => Value::Option(None),
        })
    });

    let mut i = linker.instance(&iface("cli", "exit"));
    def(&mut i, "exit", get, types, |_, a| match a.first() {
        Some(Value::Result(Ok(_))) => Err(Error::Exit(0)),
        Some(Value::Result(Err(_))) => Err(Error::Exit(1)),
        _ => Err(trap("exit: argument of the wrong type")),
    });
    def(&mut i, "exit-with-code", get, types, |_, a| {
        Err(Error::Exit(u32_arg(a, 0)? as i32))
    });

    let mut i = linker.instance(&iface("cli", "stdin"));
    def(&mut i, "get-stdin", get, types, |h, _| {
        stream(h, HostResource::Input(InputStream::Stdin), true)
    });
    let mut i = linker.instance(&iface("cli", "stdout"));
    def(&mut i, "get-stdout", get, types, |h, _| {
        stream(h, HostResource::Output(OutputStream::Stdout), false)
    });
    let mut i = linker.instance(&iface("cli", "stderr"));
    def(&mut i, "get-stderr", get, types, |h, _| {
        stream(h, HostResource::Output(OutputStream::Stderr), false)
    });
    let mut i = linker.instance(&iface("cli", "terminal-stdin"));
    def(&mut i, "get-terminal-stdin", get, types, |h, _| {
        terminal(h, 0)
    });
    let mut i = linker.instance(&iface("cli", "terminal-stdout"));
    def(&mut i, "get-terminal-stdout", get, types, |h, _| {
        terminal(h, 1)
    });
    let mut i = linker.instance(&iface("cli", "terminal-stderr"));
    def(&mut i, "get-terminal-stderr", get, types, |h, _| {
        terminal(h, 2)
    });
}
