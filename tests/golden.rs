//! The run ids and configuration hashes of every cell of the embedded suites, as literal files in
//! `tests/golden/`. A refactor keeps them byte-identical: a changed hash would rerun every stored cell,
//! a changed id would orphan it. Only a deliberate behaviour change (a bumped version) may change them;
//! then `NSBENCH_BLESS_GOLDEN=1 cargo test --release --test golden` rewrites the files, and the diff
//! shows which cells it touches.

use std::path::Path;

/// Suites on embedded or generated data, and suites on `../shared/datasets` (checked where it is).
const SUITES: &[&str] = &[
    "smoke",
    "rec",
    "samplers",
    "kg",
    "graph",
    "text",
    "vision",
    "all-domains",
];
const ON_SHARED_DATA: &[&str] = &["kg-small", "samplers-ml100k", "cora-gae"];

fn plan(suite: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("suites")
        .join(format!("{suite}.toml"));
    let suite = nsbench::suite::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    nsbench::runner::plan_hashes(&suite, "cpu")
        .unwrap()
        .into_iter()
        .map(|(id, hash)| format!("{id}\t{hash}\n"))
        .collect()
}

#[test]
fn every_cell_of_the_embedded_suites_keeps_its_run_id_and_configuration_hash() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var_os("NSBENCH_BLESS_GOLDEN").is_some();
    let mut changed = Vec::new();
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets");
    let optional = ON_SHARED_DATA.iter().filter(|_| shared.is_dir());
    for suite in SUITES.iter().chain(optional) {
        let now = plan(suite);
        let file = dir.join(format!("{suite}.tsv"));
        if bless {
            std::fs::write(&file, &now).unwrap();
            continue;
        }
        let golden =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let differ: Vec<String> = golden
            .lines()
            .zip(now.lines())
            .filter(|(g, n)| g != n)
            .map(|(g, n)| format!("  golden {g}\n  now    {n}"))
            .take(5)
            .collect();
        if golden != now {
            changed.push(format!(
                "{suite}: {} golden cells, {} now\n{}",
                golden.lines().count(),
                now.lines().count(),
                differ.join("\n")
            ));
        }
    }
    assert!(changed.is_empty(), "{}", changed.join("\n"));
}

#[test]
fn a_python_samplers_bytes_and_parameters_enter_its_cells_hash_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let suite = |params: &str| {
        let path = dir.path().join("suite.toml");
        std::fs::write(
            &path,
            format!(
                "[suite]\nname = \"py\"\nseeds = [0]\nratios = [2]\n[[domain]]\nkind = \"rec\"\n\
                 data = {{ format = \"synthetic\" }}\n[[sampler]]\nkind = \"uniform\"\n[[sampler]]\n\
                 kind = \"python\"\npath = \"s.py\"\nclass = \"S\"\nparams = {{ {params} }}\n"
            ),
        )
        .unwrap();
        let suite = nsbench::suite::load(&path).unwrap();
        nsbench::runner::plan_hashes(&suite, "cpu").unwrap()
    };
    let source = dir.path().join("s.py");
    std::fs::write(&source, "class S:\n    pass\n").unwrap();
    let first = suite("m = 1");
    std::fs::write(&source, "class S:\n    pass  # edited\n").unwrap();
    let edited = suite("m = 1");
    let other_params = suite("m = 2");
    let hash = |plan: &[(String, String)], kind: &str| {
        plan.iter()
            .find(|(id, _)| id.contains(kind))
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(hash(&first, "uniform"), hash(&edited, "uniform"));
    assert_ne!(
        hash(&first, "python"),
        hash(&edited, "python"),
        "the file's bytes"
    );
    assert_ne!(
        hash(&edited, "python"),
        hash(&other_params, "python"),
        "the parameters"
    );
    assert_eq!(hash(&edited, "uniform"), hash(&other_params, "uniform"));
}
