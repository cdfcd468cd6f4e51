//! The binary's subcommands that need more than a few lines: argument structs and handlers.
//! Library logic stays in the crate's modules; these only parse, orchestrate and print.
pub mod bench;
pub mod check;
pub mod export;
pub mod model;
pub mod record;
pub mod run_workload;
