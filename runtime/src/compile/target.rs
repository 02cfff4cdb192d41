//! The machine code is generated for: ISA and CPU features.
//!
//! Features are Cranelift's ISA flag names (`has_sse41`, `has_lse`, …). A
//! precompiled artifact records the features it was compiled for; a machine
//! may run it only if it has all of them.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use cranelift_codegen::isa::{self, OwnedTargetIsa};
use cranelift_codegen::settings::{self, Configurable};

use crate::error::Error;

/// An instruction set architecture Basalt generates code for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    /// x86-64
    X86_64,
    /// AArch64
    Aarch64,
}

impl Arch {
    /// The ISA this build of the engine runs on.
    pub const fn native() -> Arch {
        #[cfg(target_arch = "x86_64")]
        {
            Arch::X86_64
        }
        #[cfg(target_arch = "aarch64")]
        {
            Arch::Aarch64
        }
    }

    /// The short name (`x86_64`, `aarch64`).
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// The ISA by its short name.
    pub fn from_name(name: &str) -> Option<Arch> {
        match name {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// The CPU feature flags Cranelift knows for this ISA and Basalt uses.
    pub fn known_features(self) -> &'static [&'static str] {
        match self {
            Arch::X86_64 => &[
                "has_sse3",
                "has_ssse3",
                "has_sse41",
                "has_sse42",
                "has_popcnt",
                "has_avx",
                "has_avx2",
                "has_fma",
                "has_bmi1",
                "has_bmi2",
                "has_lzcnt",
            ],
            Arch::Aarch64 => &["has_lse", "has_fp16", "has_dotprod", "has_i8mm"],
        }
    }

    /// Features code for this ISA cannot do without (x86-64: SSE4.1 for
    /// float rounding without library calls).
    pub fn required_features(self) -> &'static [&'static str] {
        match self {
            Arch::X86_64 => &["has_sse3", "has_ssse3", "has_sse41"],
            Arch::Aarch64 => &[],
        }
    }
}

/// What code is generated for: an ISA and a set of CPU features.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// the ISA
    pub arch: Arch,
    /// enabled feature flags (Cranelift names), a subset of [`Arch::known_features`]
    pub features: BTreeSet<&'static str>,
}

impl Target {
    /// A target with the given feature names; unknown names are an error.
    pub fn new(arch: Arch, features: &[&str]) -> Result<Target, Error> {
        let known = arch.known_features();
        let mut set = BTreeSet::new();
        for f in features {
            match known.iter().find(|k| *k == f) {
                Some(k) => {
                    set.insert(*k);
                }
                None => {
                    return Err(Error::Artifact(format!(
                        "unknown {} CPU feature `{f}`",
                        arch.name()
                    )));
                }
            }
        }
        Ok(Target {
            arch,
            features: set,
        })
    }

    /// The machine this process runs on, with the features it really has.
    #[cfg(feature = "std")]
    pub fn host() -> Target {
        let mut features = BTreeSet::new();
        #[cfg(target_arch = "x86_64")]
        {
            macro_rules! detect {
                ($($name:tt => $flag:literal),*) => {$(
                    if std::is_x86_feature_detected!($name) { features.insert($flag); }
                )*};
            }
            detect!("sse3" => "has_sse3", "ssse3" => "has_ssse3", "sse4.1" => "has_sse41",
                "sse4.2" => "has_sse42", "popcnt" => "has_popcnt", "avx" => "has_avx", "avx2" => "has_avx2",
                "fma" => "has_fma", "bmi1" => "has_bmi1", "bmi2" => "has_bmi2", "lzcnt" => "has_lzcnt");
        }
        #[cfg(target_arch = "aarch64")]
        {
            macro_rules! detect {
                ($($name:tt => $flag:literal),*) => {$(
                    if std::arch::is_aarch64_feature_detected!($name) { features.insert($flag); }
                )*};
            }
            detect!("lse" => "has_lse", "fp16" => "has_fp16", "dotprod" => "has_dotprod",
                "i8mm" => "has_i8mm");
        }
        Target {
            arch: Arch::native(),
            features,
        }
    }

    /// Whether code compiled for `self` can run on a machine described by `machine`.
    pub fn runs_on(&self, machine: &Target) -> bool {
        self.arch == machine.arch && self.features.is_subset(&machine.features)
    }

    /// Builds the Cranelift ISA for this target.
    pub fn isa(&self) -> Result<OwnedTargetIsa, Error> {
        for req in self.arch.required_features() {
            if !self.features.contains(req) {
                return Err(Error::Artifact(format!(
                    "the {} CPU lacks `{req}`, which Basalt's code generator requires",
                    self.arch.name()
                )));
            }
        }
        let mut shared = settings::builder();
        let set = |b: &mut settings::Builder, k: &str, v: &str| {
            b.set(k, v)
                .map_err(|e| Error::Artifact(format!("cranelift setting {k}={v}: {e}")))
        };
        set(&mut shared, "opt_level", "speed")?;
        set(
            &mut shared,
            "enable_verifier",
            if cfg!(debug_assertions) {
                "true"
            } else {
                "false"
            },
        )?;
        set(&mut shared, "preserve_frame_pointers", "true")?;
        set(&mut shared, "enable_probestack", "false")?;
        set(&mut shared, "enable_multi_ret_implicit_sret", "true")?;
        set(&mut shared, "unwind_info", "false")?;
        set(&mut shared, "is_pic", "false")?;
        let flags = settings::Flags::new(shared);
        let mut builder = isa::lookup_by_name(self.arch.name()).map_err(|e| {
            Error::Artifact(format!("no code generator for {}: {e}", self.arch.name()))
        })?;
        for f in &self.features {
            builder
                .enable(f)
                .map_err(|e| Error::Artifact(format!("cranelift ISA flag {f}: {e}")))?;
        }
        builder
            .finish(flags)
            .map_err(|e| Error::Artifact(format!("cranelift ISA: {e}")))
    }

    /// A string that identifies generated code: compiler versions, ISA, features.
    pub fn fingerprint(&self) -> String {
        let features: Vec<&str> = self.features.iter().copied().collect();
        format!(
            "basalt-runtime {} cranelift 0.135.8 {} [{}] opt=speed",
            env!("CARGO_PKG_VERSION"),
            self.arch.name(),
            features.join(",")
        )
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.arch.name())?;
        for feat in &self.features {
            write!(f, " +{}", feat.trim_start_matches("has_"))?;
        }
        Ok(())
    }
}
