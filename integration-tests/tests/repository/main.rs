//! The repository as a whole: the conformance corpus against the translator, and the module graph (no import cycle in any crate).
//!
//! One test binary per area (link time); each former file is a module: run one with
//! `cargo test -p integration-tests --test repository <module>::`.

mod conformance;
mod module_graph;
