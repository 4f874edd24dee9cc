//! The folders of `src/` form layers: no import cycle between them, so every import points down. The
//! check reads each file's `crate::…` paths (comments skipped, test modules included) and fails with
//! the cycle it finds. `cargo test --release --test layers -- --nocapture` prints the layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top-level module of every `crate::` path in `text`.
fn imports(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::{c, d}}`: the first identifier of each item at depth 1.
            for item in split_top(group) {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
        }
    }
    out
}

/// The items of a `{…}` group at depth 1 (`group` starts after the opening brace).
fn split_top(group: &str) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (1, 0, Vec::new());
    for (i, ch) in group.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' if depth == 1 => {
                items.push(&group[start..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 1 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// Module → the modules it imports, over the top-level modules of `src/`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = top.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let edges = graph.entry(module.clone()).or_default();
        edges.extend(imports(&text).into_iter().filter(|m| *m != module));
    }
    graph
}

/// Layers bottom up (each imports only those below it), or the modules left in a cycle.
fn layers(graph: &BTreeMap<String, BTreeSet<String>>) -> Result<Vec<Vec<String>>, Vec<String>> {
    let mut placed = BTreeSet::new();
    let mut layers = Vec::new();
    while placed.len() < graph.len() {
        let layer: Vec<String> = graph
            .iter()
            .filter(|(m, deps)| {
                !placed.contains(*m)
                    && deps
                        .iter()
                        .all(|d| placed.contains(d) || !graph.contains_key(d))
            })
            .map(|(m, _)| m.clone())
            .collect();
        if layer.is_empty() {
            return Err(graph
                .keys()
                .filter(|m| !placed.contains(*m))
                .cloned()
                .collect());
        }
        placed.extend(layer.iter().cloned());
        layers.push(layer);
    }
    Ok(layers)
}

#[test]
fn the_folders_of_src_import_in_layers_without_a_cycle() {
    let graph = graph();
    match layers(&graph) {
        Ok(layers) => {
            for (i, layer) in layers.iter().enumerate() {
                println!("layer {i}: {}", layer.join(", "));
            }
        }
        Err(stuck) => {
            let edges: Vec<String> = stuck
                .iter()
                .map(|m| {
                    let up: Vec<&str> = graph[m]
                        .iter()
                        .filter(|d| stuck.contains(d))
                        .map(String::as_str)
                        .collect();
                    format!("  {m} imports {}", up.join(", "))
                })
                .collect();
            panic!(
                "an import cycle between folders of src/:\n{}",
                edges.join("\n")
            );
        }
    }
}

#[test]
fn the_check_finds_a_cycle_and_reads_grouped_imports() {
    let found =
        imports("use crate::{data::{A, B}, model::C};\nlet x = crate::metrics::f(); // crate::no");
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["data", "metrics", "model"]
    );
    let mut cyclic = BTreeMap::new();
    cyclic.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    cyclic.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    cyclic.insert("c".to_string(), BTreeSet::new());
    assert_eq!(layers(&cyclic), Err(vec!["a".to_string(), "b".to_string()]));
}
