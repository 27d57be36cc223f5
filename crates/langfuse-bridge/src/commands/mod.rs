//! The commands besides `serve`, one module each.

pub mod dead_letter;
pub mod import;
pub mod spool;
pub mod traces;
pub mod translate;
pub mod ui;
