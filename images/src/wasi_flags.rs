//! wasmtime's `-S` options (WASI settings) that Basalt knows: the socket
//! grants, `max-resources`, `max-random-size`, `hostcall-fuel` and `cwd`. `-S
//! inherit-network`, `-Sinherit-network,tcp=n` and `-S
//! allow-ip-name-lookup=yes` are all spelled as wasmtime spells them.

use crate::run::RunOptions;

/// `-S` settings of the program's WASI context beyond the socket grants
/// and `max-resources`, honoured hosted and in a VM (the bundle's manifest
/// carries them, see `docs/guest-protocol.md`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// `-S max-random-size=N`: the most bytes one request for random bytes
    /// may ask for (more traps); `None`: wasmtime's default, 64 MiB
    pub max_random_size: Option<u64>,
    /// `-S cwd=PATH`: what `wasi:cli/environment.initial-cwd` reports
    pub cwd: Option<String>,
    /// `-S hostcall-fuel=N`: the most bytes of guest memory one preview1
    /// call may touch (more fails with `ENOMEM`); `None`: no budget
    pub hostcall_fuel: Option<u64>,
}

impl Settings {
    /// Applies them to `ctx`.
    pub fn apply_to(&self, ctx: &mut basalt_wasi::WasiCtx) {
        if let Some(n) = self.max_random_size {
            ctx.set_max_random_size(n);
        }
        if let Some(cwd) = &self.cwd {
            ctx.set_initial_cwd(cwd.clone());
        }
        if let Some(n) = self.hostcall_fuel {
            ctx.set_hostcall_fuel(n);
        }
    }
}

/// A wasmtime boolean: no value is `true`; `y`, `yes`, `true`, `n`, `no`,
/// `false`.
fn boolean(key: &str, value: Option<&str>) -> Result<bool, String> {
    match value {
        None | Some("y" | "yes" | "true") => Ok(true),
        Some("n" | "no" | "false") => Ok(false),
        Some(other) => Err(format!(
            "-S {key} wants y, yes, true, n, no or false, got `{other}`"
        )),
    }
}

/// A number for `-S key=N`.
fn number<T: std::str::FromStr>(key: &str, value: Option<&str>) -> Result<T, String> {
    value
        .and_then(|v| v.parse::<T>().ok())
        .ok_or_else(|| format!("-S {key} wants a number, got {value:?}"))
}

/// Applies one `-S` argument (`KEY[=VALUE][,KEY[=VALUE]...]`) to `opts`:
/// the socket grants; `-S max-resources=N` (the most WASI 0.2 resources
/// the program may hold at once; more traps); `-S max-random-size=N` and
/// `-S cwd=PATH` ([`Settings`]).
pub fn apply(opts: &mut RunOptions, spec: &str) -> Result<(), String> {
    let grants = &mut opts.sockets;
    for item in spec.split(',').filter(|s| !s.is_empty()) {
        let (key, value) = match item.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (item, None),
        };
        let on = boolean(key, value);
        match key {
            "inherit-network" => grants.inherit_network = on?,
            "allow-ip-name-lookup" => grants.ip_name_lookup = on?,
            "tcp" => grants.tcp = on?,
            "udp" => grants.udp = on?,
            "max-resources" => opts.max_resources = Some(number(key, value)?),
            "max-random-size" => opts.wasi.max_random_size = Some(number(key, value)?),
            "hostcall-fuel" => opts.wasi.hostcall_fuel = Some(number(key, value)?),
            "cwd" => match value {
                Some(path) if !path.is_empty() => opts.wasi.cwd = Some(path.to_string()),
                _ => return Err("-S cwd wants a path, e.g. -S cwd=/sandbox".to_string()),
            },
            // wasmtime's switch for the preview1/0.2 network interfaces,
            // which Basalt always has.
            "network" | "cli" => {
                on?;
            }
            other => {
                return Err(format!(
                    "unknown -S option `{other}` (Basalt knows inherit-network, allow-ip-name-lookup, tcp, udp, max-resources, max-random-size, hostcall-fuel, cwd)"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spelled_as_wasmtime_spells_them() {
        let mut o = RunOptions::new("x.wasm");
        let g = &o.sockets;
        assert!(!g.inherit_network && !g.ip_name_lookup && g.tcp && g.udp);
        apply(&mut o, "inherit-network,tcp=no").unwrap();
        assert!(o.sockets.inherit_network && !o.sockets.tcp && o.sockets.udp);
        apply(&mut o, "allow-ip-name-lookup=y").unwrap();
        apply(&mut o, "udp=false").unwrap();
        assert!(o.sockets.ip_name_lookup && !o.sockets.udp);
        assert!(apply(&mut o, "tcp=maybe").is_err());
        assert!(apply(&mut o, "frobnicate").is_err());
    }

    #[test]
    fn limits_and_cwd() {
        let mut o = RunOptions::new("x.wasm");
        apply(&mut o, "max-resources=7,max-random-size=255").unwrap();
        assert_eq!(o.max_resources, Some(7));
        assert_eq!(o.wasi.max_random_size, Some(255));
        apply(&mut o, "cwd=/sandbox").unwrap();
        assert_eq!(o.wasi.cwd.as_deref(), Some("/sandbox"));
        assert!(apply(&mut o, "max-random-size=lots").is_err());
        assert!(apply(&mut o, "cwd").is_err());
    }
}
