//! Booting an image file by hand under real UEFI firmware, as a user would
//! with QEMU and the file `basalt image` wrote: the console is one serial
//! port read as it is (plain mode, firmware text and all), and QEMU must
//! end by itself before a deadline.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use basalt::guest::GuestArch;

/// What one such boot printed and how QEMU ended.
pub struct ConsoleRun {
    /// everything on the serial console
    pub console: Vec<u8>,
    /// QEMU's exit status (`None`: killed at the deadline)
    pub qemu_exit: Option<i32>,
}

impl ConsoleRun {
    /// The console as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.console).into_owned()
    }

    /// The console after the kernel's `BASALT-START` line (what the
    /// program and kernel wrote), or `None` when the kernel never started.
    pub fn after_start(&self) -> Option<String> {
        let text = self.text();
        let at = text.find("BASALT-START\n")?;
        Some(text[at + "BASALT-START\n".len()..].to_string())
    }

    /// Everything known, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "QEMU exit: {:?}\n--- console ---\n{}",
            self.qemu_exit,
            self.text()
        )
    }
}

/// Boots the disk image `image` (raw) on `arch`'s firmware — OVMF on
/// `q35`, AAVMF on `virt` with ACPI only — on a virtio disk, with one
/// serial console and no network, and waits until QEMU ends (the machine
/// powered off) or `deadline` passes (then QEMU is killed).
pub fn boot_raw_image(arch: GuestArch, image: &Path, deadline: Duration) -> ConsoleRun {
    let dir = std::env::temp_dir().join(format!(
        "basalt-byhand-{}-{}",
        std::process::id(),
        image
            .file_name()
            .map_or("x".into(), |n| n.to_string_lossy().into_owned())
    ));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let (code, vars) = basalt::vm::uefi_firmware(arch);
    let vars_copy = dir.join("vars.fd");
    std::fs::copy(vars, &vars_copy)
        .unwrap_or_else(|e| panic!("{vars}: {e} (scripts/setup.sh installs the firmware)"));
    let console = dir.join("console.txt");
    let mut cmd = match arch {
        GuestArch::X86_64 => {
            let mut c = Command::new("qemu-system-x86_64");
            c.args(["-machine", "q35", "-cpu", "max"]);
            c
        }
        GuestArch::Aarch64 => {
            let mut c = Command::new("qemu-system-aarch64");
            c.args(["-machine", "virt,acpi=on", "-cpu", "max"]);
            c
        }
    };
    let disk = match arch {
        GuestArch::X86_64 => "virtio-blk-pci",
        GuestArch::Aarch64 => "virtio-blk-device",
    };
    cmd.args([
        "-accel",
        "tcg",
        "-m",
        "1024M",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
    ])
    .arg("-drive")
    .arg(format!(
        "if=pflash,format=raw,unit=0,readonly=on,file={code}"
    ))
    .arg("-drive")
    .arg(format!(
        "if=pflash,format=raw,unit=1,file={}",
        vars_copy.display()
    ))
    .arg("-drive")
    .arg(format!(
        "if=none,id=disk0,format=raw,snapshot=on,file={}",
        image.display()
    ))
    .arg("-device")
    .arg(format!("{disk},drive=disk0,bootindex=1"))
    .arg("-serial")
    .arg(format!("file:{}", console.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let mut child = cmd
        .spawn()
        .expect("QEMU starts (scripts/setup.sh installs it)");
    let start = Instant::now();
    let qemu_exit = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status.code();
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let console = std::fs::read(&console).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    ConsoleRun { console, qemu_exit }
}
