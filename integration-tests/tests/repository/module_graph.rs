//! The architecture rule "no two modules import each other": in every crate of the workspace,
//! the graph of module dependencies has no cycle (directly or through other modules).
//!
//! A module depends on another when its code names it: `crate::a::…`, `super::…`,
//! `self::child::…`, or a child module by name. Names re-exported with `pub use` (a crate root's
//! or a module's facade) resolve to the module that defines them, and `pub use` lines themselves
//! are not dependencies (a facade re-exporting its children is how a module tree is published).
//! Comments, doc comments and `#[cfg(test)]` modules are left out: tests may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module: its path from the crate root (`[]` is the root) and its source.
struct Module {
    path: Vec<String>,
    code: String,
}

fn workspace_crates() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .expect("crates/")
        .filter_map(|e| e.ok().map(|e| e.path().join("src")))
        .filter(|p| p.is_dir())
        .collect();
    crates.push(root.join("integration-tests/src"));
    crates.sort();
    crates
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a source file, or `None` for files that are not library modules
/// (`main.rs`, test modules).
fn module_path(src: &Path, file: &Path) -> Option<Vec<String>> {
    let rel = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    if parts.is_empty() && last == "main.rs" {
        return None;
    }
    let stem = last.trim_end_matches(".rs");
    if stem == "tests" || parts.iter().any(|p| p == "tests") {
        return None;
    }
    if !(stem == "mod" || (parts.is_empty() && stem == "lib")) {
        parts.push(stem.to_owned());
    }
    Some(parts)
}

/// The code without comments and without a trailing `#[cfg(test)]` module.
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_start();
        if line.starts_with("#[cfg(test)]")
            && lines
                .get(i + 1)
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break;
        }
        if !line.starts_with("//") {
            let code = match line.find(" //") {
                Some(at) if !line[..at].contains('"') => &line[..at],
                _ => line,
            };
            out.push_str(code);
            out.push('\n');
        }
        i += 1;
    }
    out
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths named after `prefix` at position `at` of `code`: `a::b::C` or a `{…}` group.
fn paths_after(code: &str, at: usize) -> Vec<Vec<String>> {
    let rest = &code[at..];
    if let Some(group) = rest.strip_prefix('{') {
        let mut depth = 1;
        let mut end = group.len();
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let inner = &group[..end];
        let mut items = Vec::new();
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&inner[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        items.push(&inner[start..]);
        return items
            .into_iter()
            .flat_map(|item| {
                let item = item.trim();
                if item.is_empty() {
                    return Vec::new();
                }
                let offset = item.as_ptr() as usize - code.as_ptr() as usize;
                paths_after(code, offset)
            })
            .collect();
    }
    let mut segments = Vec::new();
    let mut pos = 0;
    loop {
        let ident: String = rest[pos..]
            .chars()
            .take_while(|c| is_ident_char(*c))
            .collect();
        if ident.is_empty() {
            if rest[pos..].starts_with('{') {
                let offset = at + pos;
                return paths_after(code, offset)
                    .into_iter()
                    .map(|tail| segments.iter().cloned().chain(tail).collect())
                    .collect();
            }
            break;
        }
        pos += ident.len();
        segments.push(ident);
        if rest[pos..].starts_with("::") {
            pos += 2;
        } else {
            break;
        }
    }
    vec![segments]
}

/// Every occurrence of `needle` not preceded by an identifier character or `::`.
fn occurrences<'a>(code: &'a str, needle: &'a str) -> impl Iterator<Item = usize> + 'a {
    code.match_indices(needle).filter_map(move |(i, _)| {
        let before = &code[..i];
        let standalone = !before.ends_with(|c: char| is_ident_char(c) || c == ':');
        standalone.then_some(i + needle.len())
    })
}

/// `pub use` lines are re-exports, not dependencies: (the code without them, the re-exports
/// as (name, path)).
fn split_reexports(code: &str) -> (String, Vec<(String, Vec<String>)>) {
    let mut rest = String::with_capacity(code.len());
    let mut exports = Vec::new();
    let mut in_export = String::new();
    for line in code.lines() {
        let t = line.trim_start();
        let starts = t.starts_with("pub use ") || t.starts_with("pub(crate) use ");
        if starts || !in_export.is_empty() {
            in_export.push_str(t);
            in_export.push(' ');
            if t.trim_end().ends_with(';') {
                let body = in_export
                    .trim()
                    .trim_start_matches("pub(crate) use ")
                    .trim_start_matches("pub use ")
                    .trim_end_matches(';')
                    .to_owned();
                for path in paths_after(&body, 0) {
                    if let Some(name) = path.last() {
                        exports.push((name.clone(), path.clone()));
                    }
                }
                // An alias (`X as Y`) is recorded under its original name, enough here.
                in_export.clear();
            }
            continue;
        }
        rest.push_str(line);
        rest.push('\n');
    }
    (rest, exports)
}

struct Crate {
    modules: Vec<Module>,
    /// Per module path: the names it re-exports, with the path they come from (relative to
    /// that module).
    exports: BTreeMap<Vec<String>, Vec<(String, Vec<String>)>>,
}

impl Crate {
    fn read(src: &Path) -> Crate {
        let mut files = Vec::new();
        rust_files(src, &mut files);
        files.sort();
        let mut modules = Vec::new();
        let mut exports = BTreeMap::new();
        for file in files {
            let Some(path) = module_path(src, &file) else {
                continue;
            };
            let text = std::fs::read_to_string(&file).expect("source file");
            let (code, reexports) = split_reexports(&code_of(&text));
            exports.insert(path.clone(), reexports);
            modules.push(Module { path, code });
        }
        Crate { modules, exports }
    }

    fn is_module(&self, path: &[String]) -> bool {
        self.modules.iter().any(|m| m.path == path)
    }

    /// The module an absolute path (from the crate root) lands in: the longest module prefix,
    /// followed through re-exports of the item named after it.
    fn resolve(&self, path: &[String], depth: usize) -> Option<Vec<String>> {
        let mut end = path.len();
        while end > 0 && !self.is_module(&path[..end]) {
            end -= 1;
        }
        let module = path[..end].to_vec();
        if depth < 8
            && let Some(item) = path.get(end)
            && let Some(exports) = self.exports.get(&module)
            && let Some((_, from)) = exports.iter().find(|(name, _)| name == item)
        {
            let absolute = self.absolute(&module, from)?;
            if absolute.len() > 1
                || absolute
                    .first()
                    .is_some_and(|s| self.is_module(std::slice::from_ref(s)))
            {
                return self.resolve(&absolute, depth + 1).or(Some(module));
            }
        }
        Some(module)
    }

    /// A path written in `module` as an absolute one; `None` for other crates' paths.
    fn absolute(&self, module: &[String], path: &[String]) -> Option<Vec<String>> {
        let mut base = module.to_vec();
        let mut rest = path;
        match rest.first().map(String::as_str) {
            Some("crate") => {
                base.clear();
                rest = &rest[1..];
            }
            Some("self") => rest = &rest[1..],
            Some("super") => {
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
            }
            Some(first) => {
                let mut child = base.clone();
                child.push(first.to_owned());
                if !self.is_module(&child) {
                    return None;
                }
            }
            None => return None,
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// Module → the modules its code depends on.
    fn edges(&self) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
        let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
        for module in &self.modules {
            let mut named: Vec<Vec<String>> = Vec::new();
            for prefix in ["crate::", "super::", "self::"] {
                for at in occurrences(&module.code, prefix) {
                    for tail in paths_after(&module.code, at) {
                        let head = prefix.trim_end_matches("::").to_owned();
                        named.push(std::iter::once(head).chain(tail).collect());
                    }
                }
            }
            let children: Vec<&Module> = self
                .modules
                .iter()
                .filter(|m| {
                    m.path.len() == module.path.len() + 1 && m.path.starts_with(&module.path)
                })
                .collect();
            for child in children {
                let name = child.path.last().cloned().unwrap_or_default();
                let needle = format!("{name}::");
                for at in occurrences(&module.code, &needle) {
                    for tail in paths_after(&module.code, at) {
                        named.push(std::iter::once(name.clone()).chain(tail).collect());
                    }
                }
            }
            for path in named {
                let Some(absolute) = self.absolute(&module.path, &path) else {
                    continue;
                };
                if let Some(target) = self.resolve(&absolute, 0)
                    && target != module.path
                {
                    edges.entry(module.path.clone()).or_default().insert(target);
                }
            }
        }
        edges
    }
}

fn show(path: &[String]) -> String {
    if path.is_empty() {
        "crate".to_owned()
    } else {
        path.join("::")
    }
}

/// The cycles of the graph, one per strongly connected component of more than one module.
fn cycles(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    let nodes: BTreeSet<Vec<String>> = edges
        .iter()
        .flat_map(|(from, to)| std::iter::once(from.clone()).chain(to.iter().cloned()))
        .collect();
    let reach = |start: &Vec<String>| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start.clone()];
        while let Some(n) = stack.pop() {
            for next in edges.get(&n).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> =
        nodes.iter().map(|n| (n.clone(), reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for n in &nodes {
        if done.contains(n) || !reachable[n].contains(n) {
            continue;
        }
        let component: Vec<Vec<String>> = nodes
            .iter()
            .filter(|m| reachable[n].contains(*m) && reachable[*m].contains(n))
            .cloned()
            .collect();
        done.extend(component.iter().cloned());
        out.push(component);
    }
    out
}

#[test]
fn no_crate_has_an_import_cycle() {
    let mut report = Vec::new();
    for src in workspace_crates() {
        let krate = Crate::read(&src);
        let edges = krate.edges();
        for component in cycles(&edges) {
            let lines: Vec<String> = component
                .iter()
                .flat_map(|from| {
                    edges[from]
                        .iter()
                        .filter(|to| component.contains(to))
                        .map(move |to| format!("    {} -> {}", show(from), show(to)))
                })
                .collect();
            report.push(format!("{}:\n{}", src.display(), lines.join("\n")));
        }
    }
    assert!(
        report.is_empty(),
        "modules that import each other:\n{}",
        report.join("\n")
    );
}

#[test]
fn the_checker_sees_a_cycle_and_resolves_reexports() {
    let krate = Crate {
        modules: vec![
            Module {
                path: vec![],
                code: "mod a;\nmod b;\n".into(),
            },
            Module {
                path: vec!["a".into()],
                code: "use crate::Thing;\nfn f() { super::b::g() }\n".into(),
            },
            Module {
                path: vec!["b".into()],
                code: "use crate::{a::{self, Other}, c};\n".into(),
            },
            Module {
                path: vec!["c".into()],
                code: String::new(),
            },
        ],
        exports: BTreeMap::from([(
            vec![],
            vec![("Thing".into(), vec!["c".into(), "Thing".into()])],
        )]),
    };
    let edges = krate.edges();
    let a = vec!["a".to_owned()];
    let b = vec!["b".to_owned()];
    let c = vec!["c".to_owned()];
    assert_eq!(edges[&a], BTreeSet::from([b.clone(), c.clone()]));
    assert_eq!(edges[&b], BTreeSet::from([a.clone(), c]));
    assert_eq!(cycles(&edges), vec![vec![a, b]]);
}
