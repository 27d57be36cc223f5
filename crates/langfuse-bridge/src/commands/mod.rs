//! The commands besides `serve`, one module each.

#[cfg(feature = "kafka")]
pub mod consume;
pub mod consume_args;
pub mod dead_letter;
pub mod import;
pub mod spool;
pub mod traces;
pub mod translate;
pub mod ui;
