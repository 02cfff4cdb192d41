//! Unit tests of `vm.rs`.
use super::*;

#[test]
fn markers() {
    assert_eq!(parse_marker("BASALT-EXIT 3"), Some(Status::Exit(3)));
    assert_eq!(
        parse_marker("BASALT-TRAP unreachable wasm trap: unreachable"),
        Some(Status::Trap {
            kind: "unreachable".into(),
            message: "wasm trap: unreachable".into()
        })
    );
    assert_eq!(parse_marker("boot: hello"), None);
}

fn virt_options() -> VmOptions {
    VmOptions {
        memory_mib: 256,
        ..VmOptions::new(GuestArch::Aarch64, PathBuf::from("k"))
    }
}

fn args(opts: &VmOptions) -> Vec<String> {
    let sockets = [PathBuf::from("a"), PathBuf::from("b"), PathBuf::from("c")];
    qemu_command(opts, Path::new("bundle"), &sockets)
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

fn has_pair(args: &[String], flag: &str, value: &str) -> bool {
    args.windows(2).any(|w| w[0] == flag && w[1] == value)
}

#[test]
fn a_network_gets_user_networking_with_its_forwards() {
    let mut opts = virt_options();
    assert!(!args(&opts).iter().any(|a| a == "-netdev"));
    opts.network = Some(UserNetwork {
        forwards: vec![(18080, 8080), (2222, 22)],
        tap: None,
        forward_listeners: false,
        forward_host: None,
    });
    let netdev = "user,id=net0,hostfwd=tcp:127.0.0.1:18080-:8080,hostfwd=tcp:127.0.0.1:2222-:22";
    let a = args(&opts);
    assert!(has_pair(&a, "-netdev", netdev), "{a:?}");
    assert!(has_pair(&a, "-device", "virtio-net-device,netdev=net0"));
    opts.arch = GuestArch::X86_64;
    opts.machine = Machine::Microvm;
    let a = args(&opts);
    assert!(has_pair(&a, "-netdev", netdev), "{a:?}");
    assert!(has_pair(&a, "-device", "virtio-net-device,netdev=net0"));
    opts.machine = Machine::Q35;
    assert!(has_pair(
        &args(&opts),
        "-device",
        "virtio-net-pci,netdev=net0"
    ));
}

#[test]
fn a_host_tap_replaces_user_networking() {
    let mut opts = virt_options();
    opts.network_tap = Some("tap,0".into());
    let a = args(&opts);
    assert!(has_pair(
        &a,
        "-netdev",
        "tap,id=net0,ifname=tap,,0,script=no,downscript=no"
    ));
    assert!(has_pair(&a, "-device", "virtio-net-device,netdev=net0"));
    opts.arch = GuestArch::X86_64;
    let a = args(&opts);
    assert!(
        has_pair(&a, "-device", "virtio-net-pci,netdev=net0"),
        "{a:?}"
    );
}

#[test]
fn a_tap_joins_the_card_through_a_hub() {
    let mut opts = virt_options();
    opts.network = Some(UserNetwork {
        forwards: vec![(18080, 8080)],
        tap: Some(FrameTap {
            inject_port: 40000,
            sink_port: 40001,
        }),
        forward_listeners: false,
        forward_host: None,
    });
    let a = args(&opts);
    assert!(has_pair(
        &a,
        "-netdev",
        "dgram,id=tap0,local.type=inet,local.host=127.0.0.1,local.port=40000,remote.type=inet,remote.host=127.0.0.1,remote.port=40001"
    ));
    assert!(has_pair(
        &a,
        "-netdev",
        "hubport,id=hub0,hubid=0,netdev=net0"
    ));
    assert!(has_pair(
        &a,
        "-netdev",
        "hubport,id=hub1,hubid=0,netdev=tap0"
    ));
    assert!(
        has_pair(&a, "-device", "virtio-net-device,netdev=hubcard"),
        "{a:?}"
    );
}

#[test]
fn live_shares_get_a_9p_device_each_on_every_machine() {
    let mut opts = virt_options();
    opts.shares = vec![
        HostShare {
            host: PathBuf::from("/srv/a,b"),
            tag: "basalt0".into(),
            read_only: false,
        },
        HostShare {
            host: PathBuf::from("/srv/c"),
            tag: "basalt1".into(),
            read_only: true,
        },
    ];
    let fsdev0 = "local,id=share0,path=/srv/a,,b,security_model=none,multidevs=remap";
    let fsdev1 = "local,id=share1,path=/srv/c,security_model=none,multidevs=remap,readonly=on";
    let a = args(&opts);
    assert!(has_pair(&a, "-fsdev", fsdev0), "{a:?}");
    assert!(has_pair(&a, "-fsdev", fsdev1), "{a:?}");
    assert!(has_pair(
        &a,
        "-device",
        "virtio-9p-device,fsdev=share1,mount_tag=basalt1"
    ));
    opts.arch = GuestArch::X86_64;
    let a = args(&opts);
    assert!(has_pair(&a, "-fsdev", fsdev0), "{a:?}");
    assert!(has_pair(
        &a,
        "-device",
        "virtio-9p-pci,fsdev=share0,mount_tag=basalt0"
    ));
    opts.machine = Machine::Microvm;
    let a = args(&opts);
    assert!(has_pair(
        &a,
        "-device",
        "virtio-9p-device,fsdev=share0,mount_tag=basalt0"
    ));
}

#[test]
fn every_machine_gets_a_virtio_rng_unless_told_not_and_the_chosen_cpu() {
    let mut opts = virt_options();
    let a = args(&opts);
    assert!(has_pair(&a, "-device", "virtio-rng-device"), "{a:?}");
    assert!(has_pair(&a, "-global", "virtio-mmio.force-legacy=false"));
    assert!(has_pair(&a, "-cpu", "max"));
    opts.cpu = Some("cortex-a57".into());
    opts.virtio_rng = false;
    let a = args(&opts);
    assert!(has_pair(&a, "-cpu", "cortex-a57"), "{a:?}");
    assert!(!a.iter().any(|x| x == "virtio-rng-device"));
    opts.arch = GuestArch::X86_64;
    opts.cpu = Some("Nehalem".into());
    let a = args(&opts);
    assert!(has_pair(&a, "-cpu", "Nehalem"));
    assert!(!a.iter().any(|x| x.contains("virtio")), "q35: {a:?}");
    opts.virtio_rng = true;
    for machine in [Machine::Q35, Machine::Pc] {
        opts.machine = machine;
        let a = args(&opts);
        assert!(has_pair(&a, "-device", "virtio-rng-pci"), "{a:?}");
        assert!(!a.iter().any(|x| x.contains("virtio-mmio")), "{a:?}");
    }
    opts.machine = Machine::Microvm;
    opts.virtio_rng = true;
    let a = args(&opts);
    assert!(has_pair(&a, "-device", "virtio-rng-device"), "{a:?}");
    assert!(has_pair(&a, "-global", "virtio-mmio.force-legacy=false"));
}

#[test]
fn extra_arguments_come_last_on_both_isas() {
    let mut opts = virt_options();
    opts.extra_qemu_args = vec!["-device".into(), "virtio-rng-pci".into()];
    for arch in [GuestArch::Aarch64, GuestArch::X86_64] {
        opts.arch = arch;
        let a = args(&opts);
        assert_eq!(a[a.len() - 2..], ["-device", "virtio-rng-pci"], "{a:?}");
    }
}

#[test]
fn a_moved_image_is_booted_from_the_run_directory() {
    let mut opts = virt_options();
    assert!(has_pair(&args(&opts), "-kernel", "k.Image"));
    opts.image_text_offset = Some(0x4020_0000);
    let bundle = Path::new("/run/bundle.tar");
    let sockets = [PathBuf::from("a"), PathBuf::from("b"), PathBuf::from("c")];
    let a: Vec<String> = qemu_command(&opts, bundle, &sockets)
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert!(has_pair(&a, "-kernel", "/run/kernel.Image"), "{a:?}");
}

#[test]
fn stdin_framing() {
    let mut out = Vec::new();
    frame_stdin(&[1, 0xff, 2], &mut out);
    assert_eq!(out, [1, 0xff, 0, 2]);
}

#[test]
fn run_directories_are_private_and_unpredictable() {
    use std::os::unix::fs::PermissionsExt;
    let (a, b) = (RunDir::new().unwrap(), RunDir::new().unwrap());
    assert_ne!(a.0, b.0);
    for d in [&a, &b] {
        let mode = std::fs::metadata(&d.0).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{}", d.0.display());
        let name = d.0.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("basalt-"), "{name}");
        assert!(!name.contains(&std::process::id().to_string()), "{name}");
    }
    let path = a.0.clone();
    drop(a);
    assert!(!path.exists());
}

#[test]
fn forwarded_listeners_give_qemu_a_qmp_socket() {
    for arch in [GuestArch::Aarch64, GuestArch::X86_64] {
        let mut opts = VmOptions::new(arch, PathBuf::from("k"));
        assert!(!args(&opts).iter().any(|a| a == "-qmp"));
        opts.network = Some(UserNetwork {
            forwards: Vec::new(),
            tap: None,
            forward_listeners: true,
            forward_host: None,
        });
        let a = args(&opts);
        assert!(has_pair(&a, "-qmp", "unix:qmp,server=on,wait=off"), "{a:?}");
    }
}
