//! The commands besides `serve`, one module each.

pub mod import;
pub mod spool;
pub mod traces;
pub mod translate;
pub mod ui;
