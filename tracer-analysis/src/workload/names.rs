//! The builtin workloads' names, apart from their definitions: a tool that only lists them
//! (xtask's matrix) builds without the parser and the RNG (the crate's `engine` feature off).

/// Names of the builtin workloads, in listing order.
pub const BUILTIN_NAMES: [&str; 6] = [
    "unlink-stat",
    "prune-stat",
    "rename-stat",
    "negative",
    "rename-exchange",
    "rmdir",
];
