//! `cfg(loom)` for this package's build of the model only: a RUSTFLAGS `--cfg loom` would reach
//! every crate of the build, the runnable model in the tracer included.
fn main() {
    println!("cargo::rustc-cfg=loom");
    println!("cargo::rerun-if-changed=build.rs");
}
