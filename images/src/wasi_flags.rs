//! wasmtime's `-S` options (WASI settings) that Basalt knows: the socket
//! grants and `max-resources`. `-S inherit-network`, `-Sinherit-network,tcp=n` and
//! `-S allow-ip-name-lookup=yes` are all spelled as wasmtime spells them.

use basalt_wasi::preview2::SocketGrants;

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

/// Applies one `-S` argument (`KEY[=VALUE][,KEY[=VALUE]...]`) to `grants`
/// and `max_resources` (`-S max-resources=N`: the most WASI 0.2 resources
/// the program may hold at once; more traps).
pub fn apply(
    grants: &mut SocketGrants,
    max_resources: &mut Option<usize>,
    spec: &str,
) -> Result<(), String> {
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
            "max-resources" => {
                let n = value
                    .and_then(|v| v.parse::<usize>().ok())
                    .ok_or_else(|| format!("-S max-resources wants a number, got {value:?}"))?;
                *max_resources = Some(n);
            }
            // wasmtime's switch for the preview1/0.2 network interfaces,
            // which Basalt always has.
            "network" | "cli" => {
                on?;
            }
            other => {
                return Err(format!(
                    "unknown -S option `{other}` (Basalt knows inherit-network, allow-ip-name-lookup, tcp, udp, max-resources)"
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
        let mut g = SocketGrants::default();
        assert!(!g.inherit_network && !g.ip_name_lookup && g.tcp && g.udp);
        apply(&mut g, &mut None, "inherit-network,tcp=no").unwrap();
        assert!(g.inherit_network && !g.tcp && g.udp);
        apply(&mut g, &mut None, "allow-ip-name-lookup=y").unwrap();
        apply(&mut g, &mut None, "udp=false").unwrap();
        assert!(g.ip_name_lookup && !g.udp);
        assert!(apply(&mut g, &mut None, "tcp=maybe").is_err());
        assert!(apply(&mut g, &mut None, "frobnicate").is_err());
    }
}
