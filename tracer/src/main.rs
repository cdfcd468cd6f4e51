//! The `tracer` command. Its command line is the library's `cli` module (see there why).
fn main() {
    std::process::exit(tracer::cli::main());
}
