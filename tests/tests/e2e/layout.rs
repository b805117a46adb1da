//! The layout's promises, read from the sources: inside every crate no module imports,
//! directly or through others, a module that imports it back; no source file outside the
//! tests is over 800 lines; no function is over 150; only `tollgate-stack` depends on
//! the service crates, and the bus on nothing of the pipeline.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use tollgate_e2e::workspace_root;

/// The most lines a source file outside the tests may have.
const MAX_FILE_LINES: usize = 800;
/// The most lines a function may have.
const MAX_FN_LINES: usize = 150;

/// Every crate's `src` directory.
fn crate_sources() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut out = vec![root.join("proto/src"), root.join("tests/src")];
    for group in ["crates", "services"] {
        for entry in std::fs::read_dir(root.join(group)).unwrap() {
            let src = entry.unwrap().path().join("src");
            if src.is_dir() {
                out.push(src);
            }
        }
    }
    out.sort();
    out
}

/// The non-test `.rs` files under `dir`, with their module paths (`validate::checks`).
fn modules(dir: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                if name != "tests" {
                    dirs.push(path);
                }
                continue;
            }
            if !name.ends_with(".rs") || name == "tests.rs" {
                continue;
            }
            let rel = path.strip_prefix(dir).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().to_string())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("lib" | "main" | "mod")
            ) {
                parts.pop();
            }
            out.insert(parts.join("::"), path);
        }
    }
    out
}

/// The code of a file without its comments and its inline test module.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => text[..at].to_string(),
        None => text,
    };
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module a path (`crate::a::b::Item`, `super::x`) names, as the longest module of
/// `mods` it starts with.
fn resolve(from: &str, path: &str, mods: &BTreeMap<String, PathBuf>) -> Option<String> {
    let mut segs: Vec<&str> = path.split("::").collect();
    let mut base: Vec<&str> = if from.is_empty() {
        Vec::new()
    } else {
        from.split("::").collect()
    };
    match segs.first().copied() {
        Some("crate") => {
            base.clear();
            segs.remove(0);
        }
        Some("super") => {
            while segs.first() == Some(&"super") {
                base.pop();
                segs.remove(0);
            }
        }
        Some("self") => {
            segs.remove(0);
        }
        _ => return None,
    }
    (0..=segs.len()).rev().find_map(|n| {
        let candidate = base
            .iter()
            .chain(&segs[..n])
            .copied()
            .collect::<Vec<_>>()
            .join("::");
        mods.contains_key(&candidate).then_some(candidate)
    })
}

/// Each module's imports of the crate's other modules (not of its own ancestors).
fn imports(mods: &BTreeMap<String, PathBuf>) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for (m, path) in mods {
        let text = code(path);
        let mut to = BTreeSet::new();
        let bytes: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < bytes.len() {
            let rest: String = bytes[i..bytes.len().min(i + 6)].iter().collect();
            let starts_word = i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_');
            if starts_word && (rest.starts_with("crate:") || rest.starts_with("super:")) {
                let mut j = i;
                while j < bytes.len()
                    && (bytes[j].is_alphanumeric() || bytes[j] == '_' || bytes[j] == ':')
                {
                    j += 1;
                }
                let path: String = bytes[i..j].iter().collect();
                if let Some(t) = resolve(m, path.trim_end_matches(':'), mods)
                    && t != *m
                    && !t.is_empty()
                    && !m.starts_with(&format!("{t}::"))
                {
                    to.insert(t);
                }
                i = j;
            } else {
                i += 1;
            }
        }
        // `use super::{a::X, b}` and `use self::{...}`: the modules inside the braces.
        for group in text.split("use ").skip(1) {
            let stmt = group.split(';').next().unwrap_or("");
            if let Some((prefix, inner)) = stmt.split_once('{')
                && (prefix.starts_with("super")
                    || prefix.starts_with("self")
                    || prefix.starts_with("crate"))
            {
                for item in inner.split(',') {
                    let item = item.trim().trim_end_matches('}').trim();
                    let item = item.split('{').next().unwrap_or("").trim_end_matches("::");
                    if item.is_empty() {
                        continue;
                    }
                    let full = format!("{}{item}", prefix.trim());
                    if let Some(t) = resolve(m, &full, mods)
                        && t != *m
                        && !t.is_empty()
                        && !m.starts_with(&format!("{t}::"))
                    {
                        to.insert(t);
                    }
                }
            }
        }
        graph.insert(m.clone(), to);
    }
    graph
}

/// A cycle in `graph`, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let at = path.iter().position(|p| p == next).unwrap_or(0);
                    let mut found = path[at..].to_vec();
                    found.push(next.clone());
                    return Some(found);
                }
                0 => {
                    if let Some(found) = visit(next, graph, state, path) {
                        return Some(found);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if state.get(node).copied().unwrap_or(0) == 0
            && let Some(found) = visit(node, graph, &mut state, &mut Vec::new())
        {
            return Some(found);
        }
    }
    None
}

#[test]
fn no_crate_has_an_import_circle() {
    for src in crate_sources() {
        let mods = modules(&src);
        if let Some(found) = cycle(&imports(&mods)) {
            panic!("{}: {}", src.display(), found.join(" → "));
        }
    }
}

#[test]
fn no_source_file_is_over_800_lines_and_no_function_over_150() {
    for src in crate_sources() {
        for path in modules(&src).values() {
            let text = std::fs::read_to_string(path).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert!(
                lines.len() <= MAX_FILE_LINES,
                "{} is {} lines",
                path.display(),
                lines.len()
            );
            for (i, line) in lines.iter().enumerate() {
                let trimmed = line.trim_start();
                let indent = line.len() - trimmed.len();
                let is_fn = [
                    "fn ",
                    "pub fn ",
                    "pub(crate) fn ",
                    "pub(super) fn ",
                    "async fn ",
                    "pub async fn ",
                    "pub(crate) async fn ",
                    "pub(super) async fn ",
                ]
                .iter()
                .any(|p| trimmed.starts_with(p));
                if !is_fn || trimmed.ends_with(';') {
                    continue;
                }
                let close = format!("{}}}", " ".repeat(indent));
                if let Some(end) = lines[i + 1..].iter().position(|l| *l == close) {
                    assert!(
                        end < MAX_FN_LINES,
                        "{}:{}: a function of {} lines",
                        path.display(),
                        i + 1,
                        end + 1
                    );
                }
            }
        }
    }
}

/// The `tollgate-*` crates a manifest depends on (any dependency section).
fn internal_dependencies(manifest: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(manifest)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_once('=').map(|(name, _)| name.trim()))
        .filter(|name| name.starts_with("tollgate-"))
        .map(str::to_string)
        .collect()
}

#[test]
fn only_the_stack_depends_on_the_service_crates_and_the_bus_on_no_pipeline_crate() {
    let root = workspace_root();
    let services: BTreeSet<String> = std::fs::read_dir(root.join("services"))
        .unwrap()
        .map(|e| format!("tollgate-{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    assert!(services.contains("tollgate-registry"), "{services:?}");
    let mut manifests = vec![root.join("tests/Cargo.toml"), root.join("proto/Cargo.toml")];
    for group in ["crates", "services"] {
        for entry in std::fs::read_dir(root.join(group)).unwrap() {
            manifests.push(entry.unwrap().path().join("Cargo.toml"));
        }
    }
    let mut offenders = Vec::new();
    for manifest in &manifests {
        if manifest.starts_with(root.join("crates/stack")) {
            continue;
        }
        let deps = internal_dependencies(manifest);
        for service in deps.intersection(&services) {
            offenders.push(format!("{} depends on {service}", manifest.display()));
        }
    }
    assert!(
        offenders.is_empty(),
        "only tollgate-stack may: {offenders:#?}"
    );
    let stack = internal_dependencies(&root.join("crates/stack/Cargo.toml"));
    assert!(stack.is_superset(&services), "{stack:?}");
    let bus = internal_dependencies(&root.join("crates/bus/Cargo.toml"));
    assert!(
        !bus.contains("tollgate-pipeline") && !bus.contains("tollgate-service"),
        "the bus is only transport: {bus:?}"
    );
}

#[test]
fn the_checker_finds_a_circle_when_there_is_one() {
    let mods: BTreeMap<String, PathBuf> = ["a", "b", "c"]
        .iter()
        .map(|m| (m.to_string(), PathBuf::new()))
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> =
        mods.keys().map(|m| (m.clone(), BTreeSet::new())).collect();
    graph.get_mut("a").unwrap().insert("b".into());
    graph.get_mut("b").unwrap().insert("c".into());
    assert_eq!(cycle(&graph), None);
    graph.get_mut("c").unwrap().insert("a".into());
    assert_eq!(cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
    assert_eq!(resolve("y", "super::a::Thing", &mods).as_deref(), Some("a"));
    assert_eq!(resolve("b", "crate::c::d", &mods).as_deref(), Some("c"));
    // It reads the real imports: the codec publishes through the connection, the judging
    // of results uses the duplicate scans.
    let bus = imports(&modules(&workspace_root().join("crates/bus/src")));
    assert!(bus["codec"].contains("error"), "{:?}", bus["codec"]);
    let ml = imports(&modules(&workspace_root().join("crates/ml/src")));
    assert!(
        ml["validate::judge"].contains("validate::duplicates"),
        "{:?}",
        ml["validate::judge"]
    );
}
