//! Every program of the embedded object goes through the running kernel's verifier.
//!
//! On this project's build machines the kernel loads kprobe-type programs but refuses tracing
//! programs (fentry/fexit) with EPERM under lockdown; the live-kernel test in the VM loads and
//! attaches those. Anything the verifier rejects fails here.
use std::path::Path;

use tracer::{
    btf::SYS_BTF,
    programs::Family,
    verify::{verify_all, verify_all_reads, VerifyStatus},
};
use tracer_common::Probe;

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
