//! Every program of the embedded object goes through the running kernel's verifier.
//!
//! On this project's build machines the kernel loads kprobe-type programs but refuses tracing
//! programs (fentry/fexit) with EPERM under lockdown; the live-kernel test in the VM loads and
//! attaches those. Anything the verifier rejects fails here.
use std::path::Path;

use aya::Ebpf;
use tracer::{
    btf::{KernelBtf, SYS_BTF},
    programs::{self, Body, Family, Half},
    verify::{verify_all, verify_all_reads, VerifyStatus},
};
use tracer_common::{Config, Probe};

#[test]
fn every_program_loads_or_is_refused_by_policy() {
    let checks = verify_all(Path::new(SYS_BTF)).unwrap_or_else(|e| {
        panic!("cannot run the verifier test (it needs root and {SYS_BTF}): {e:#}")
    });
    let targets = Probe::KERNEL
        .iter()
        .filter(|p| p.is_attach_target())
        .count();
    assert_eq!(
        targets, 18,
        "every probe but __d_move's target has programs"
    );
    assert_eq!(
        checks.len(),
        targets * 2 * 2,
        "one check per probe, family and half"
    );

    let rejected: Vec<_> = checks
        .iter()
        .filter(|c| c.status == VerifyStatus::Rejected)
        .collect();
    assert!(rejected.is_empty(), "rejected by the kernel: {rejected:#?}");

    for c in checks.iter().filter(|c| c.family == Family::Kprobe) {
        assert_eq!(
            c.status,
            VerifyStatus::Loaded,
            "kprobe programs must load here: {c:?}"
        );
    }

    let mut left_to_vm = Vec::new();
    for c in checks.iter().filter(|c| c.family == Family::Fentry) {
        match c.status {
            VerifyStatus::Loaded => {}
            VerifyStatus::Refused => {
                assert_eq!(c.errno, Some(libc::EPERM), "{c:?}");
                left_to_vm.push(c.program.as_str());
            }
            // Global functions always keep an out-of-line body, hence a BTF FUNC; static
            // ones may be inlined into every caller, depending on the build.
            VerifyStatus::NoBtf => assert!(
                !Probe::KERNEL
                    .iter()
                    .any(|p| p.symbol() == c.target && p.is_global()),
                "a global function lacks BTF here: {c:?}"
            ),
            VerifyStatus::Rejected => unreachable!("checked above: {c:?}"),
        }
    }
    if !left_to_vm.is_empty() {
        eprintln!(
            "this kernel refuses tracing programs (EPERM); the VM test loads and attaches: {}",
            left_to_vm.join(", ")
        );
    }
}

/// The per-field read path (layouts that move the dentry's head) through the verifier too.
#[test]
fn kprobe_programs_load_with_per_field_reads() {
    let checks = verify_all_reads(Path::new(SYS_BTF), true).unwrap_or_else(|e| {
        panic!("cannot run the verifier test (it needs root and {SYS_BTF}): {e:#}")
    });
    let kprobes: Vec<_> = checks
        .iter()
        .filter(|c| c.family == Family::Kprobe)
        .collect();
    assert!(!kprobes.is_empty());
    for c in kprobes {
        assert_eq!(c.status, VerifyStatus::Loaded, "{c:?}");
    }
}

/// The loader made where the running kernel's BTF cannot be seen parses none (the parse
/// `open_with` spares), and the calling thread still sees the file.
#[test]
fn the_loader_made_apart_parses_no_btf() {
    let loader = programs::loader_without_sys_btf()
        .expect("a thread of root's can be given its own root directory");
    // aya's loader prints its BTF first: `None` here, the parsed types where it found them.
    let shown = format!("{loader:?}");
    assert!(
        shown.starts_with("EbpfLoader { btf: None,"),
        "{}",
        &shown[..shown.len().min(200)]
    );
    assert!(
        Path::new(SYS_BTF).exists(),
        "the caller's root directory moved"
    );
}

/// The object opened with the BTF the recorder parsed hands the kernel the same instructions
/// as [`programs::open`], whose loader parses the running kernel's BTF itself (the oracle):
/// every program this kernel loads (the kprobe ones) has the same tag, the kernel's hash of
/// the instructions it was given.
#[test]
fn the_object_opened_with_parsed_btf_loads_what_open_loads() {
    let path = Path::new(SYS_BTF);
    let kbtf = KernelBtf::from_file(path)
        .unwrap_or_else(|e| panic!("this test needs root and {SYS_BTF}: {e:#}"));
    let mut config = Config::ZERO;
    config.offsets = kbtf
        .offsets()
        .expect("offsets from the running kernel's BTF");
    let btf = aya::Btf::from_sys_fs().expect("aya parses the running kernel's BTF");
    let tags = |mut ebpf: Ebpf| {
        let mut tags = Vec::new();
        for probe in Probe::KERNEL.into_iter().filter(|p| p.is_attach_target()) {
            for half in [Half::Entry, Half::Exit] {
                programs::load(&mut ebpf, probe, Family::Kprobe, half, Body::Record, &btf)
                    .unwrap_or_else(|e| panic!("{probe:?} {half:?}: {e}"));
                let name = programs::program_name(probe, Family::Kprobe, half);
                let program = ebpf.program(&name).expect("the program just loaded");
                let info = program
                    .info()
                    .expect("the kernel describes a loaded program");
                tags.push((name, info.tag()));
            }
        }
        tags
    };
    let old = tags(programs::open(&config, 1 << 16).expect("open"));
    let new = tags(programs::open_with(&config, 1 << 16, &btf, path).expect("open_with"));
    assert_eq!(old.len(), 36);
    assert_eq!(old, new);
}
