//! The state of one WASI program: arguments, environment, descriptors.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::errno::Errno;
use crate::services::Services;

/// What a file descriptor refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Descriptor {
    /// The program's standard input.
    Stdin,
    /// The program's standard output.
    Stdout,
    /// The program's standard error.
    Stderr,
}

/// Everything a WASI program sees of the world.
pub struct WasiCtx {
    pub(crate) args: Vec<Vec<u8>>,
    pub(crate) env: Vec<Vec<u8>>,
    pub(crate) services: Services,
    pub(crate) fds: BTreeMap<u32, OpenFd>,
}

/// An entry of the descriptor table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpenFd {
    /// what it refers to
    pub(crate) desc: Descriptor,
    /// the rights it carries (`fd_fdstat_set_rights` may only drop some)
    pub(crate) rights_base: u64,
    /// the rights of descriptors opened through it
    pub(crate) rights_inheriting: u64,
}

impl WasiCtx {
    /// A context with arguments `args` (the first is the program name),
    /// environment entries `env` (each `NAME=VALUE`, exactly these — nothing
    /// is inherited) and standard streams on descriptors 0, 1 and 2.
    pub fn new(args: Vec<Vec<u8>>, env: Vec<Vec<u8>>, services: Services) -> WasiCtx {
        let mut fds = BTreeMap::new();
        for (fd, desc) in [
            (0, Descriptor::Stdin),
            (1, Descriptor::Stdout),
            (2, Descriptor::Stderr),
        ] {
            fds.insert(
                fd,
                OpenFd {
                    desc,
                    rights_base: crate::abi::stdio_rights(desc),
                    rights_inheriting: 0,
                },
            );
        }
        WasiCtx {
            args,
            env,
            services,
            fds,
        }
    }

    /// The services the program runs on.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// What descriptor `fd` refers to.
    pub(crate) fn fd(&self, fd: u32) -> Result<OpenFd, Errno> {
        self.fds.get(&fd).copied().ok_or(Errno::Badf)
    }
}
