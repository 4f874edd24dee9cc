//! End-to-end tests of the `nsbench` binary: real libtorch training on small suites, the files it writes
//! read back, resuming, and the errors bad input gets.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::{Path, PathBuf};

/// Rows per cell of a synthetic suite with two cut-offs: 13 effectiveness metrics (4 top-K metrics × 2
/// cut-offs + MRR, and the sampled protocol's recall and NDCG × 2 cut-offs), 11 sampler diagnostics, 8
/// efficiency metrics.
const ROWS_PER_CELL: usize = EFFECTIVENESS_PER_CELL + 11 + 8;
/// Effectiveness rows per cell of such a suite.
const EFFECTIVENESS_PER_CELL: usize = 13;

fn nsbench() -> Command {
    Command::cargo_bin("nsbench").unwrap()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A small, fast suite in `dir` training `epochs` epochs, with `extra_train` appended to its [train] table.
fn write_suite(dir: &Path, name: &str, epochs: u32, extra_train: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"
[suite]
name = "{name}"
seeds = [0, 1]
ratios = [1, 3]
[train]
epochs = {epochs}
batch_size = 128
lr = 0.01
eval_every = 1
{extra_train}
[[domain]]
kind = "rec"
data = {{ format = "synthetic", users = 60, items = 80, interactions_per_user = 12 }}
model = {{ kind = "mf", dim = 8 }}
[[sampler]]
kind = "uniform"
[[sampler]]
kind = "popularity"
"#
        ),
    )
    .unwrap();
    path
}

/// `nsbench run SUITE --out OUT --no-plots`, asserted to succeed.
fn run_ok(suite: &Path, out: &Path) -> assert_cmd::assert::Assert {
    nsbench()
        .arg("run")
        .arg(suite)
        .arg("--out")
        .arg(out)
        .arg("--no-plots")
        .assert()
        .success()
}

/// `nsbench run SUITE --out OUT ARGS…` started in the background, its output discarded.
fn spawn_run(suite: &Path, out: &Path, args: &[&str]) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("nsbench"))
        .arg("run")
        .arg(suite)
        .arg("--out")
        .arg(out)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn effectiveness(dir: &Path) -> Vec<(String, String, f64)> {
    let rows = nsbench::store::read_results(dir).unwrap();
    let mut out: Vec<_> = rows
        .into_iter()
        .filter(|r| r.category == "effectiveness")
        .map(|r| (r.run_id, r.metric, r.value))
        .collect();
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

#[test]
fn the_smoke_suite_runs_end_to_end_and_its_files_read_back() {
    let out = tempfile::tempdir().unwrap();
    nsbench()
        .args(["run", "suites/smoke.toml", "--out"])
        .arg(out.path())
        .current_dir(repo())
        .assert()
        .success()
        .stdout(predicate::str::contains("| uniform | 4 | 2 |"));

    let df = nsbench::store::read_parquet(&out.path().join("results.parquet")).unwrap();
    assert_eq!(df.height(), 8 * ROWS_PER_CELL);
    for col in [
        "suite",
        "run_id",
        "domain",
        "dataset",
        "model",
        "sampler",
        "sampler_params",
        "ratio",
        "seed",
        "category",
        "metric",
        "value",
        "git_rev",
        "nsbench_version",
        "libtorch_version",
        "threads",
        "device",
        "config_hash",
    ] {
        assert!(df.column(col).is_ok(), "results.parquet lacks column {col}");
    }
    let rows = nsbench::store::read_results(out.path()).unwrap();
    let ids: std::collections::BTreeSet<_> = rows.iter().map(|r| r.run_id.clone()).collect();
    assert_eq!(ids.len(), 8);
    for id in &ids {
        assert!(out
            .path()
            .join("runs")
            .join(format!("{id}.parquet"))
            .is_file());
    }
    for r in &rows {
        assert!(
            r.value.is_finite(),
            "{} {} = {}",
            r.run_id,
            r.metric,
            r.value
        );
        if r.category == "effectiveness" {
            assert!(
                (0.0..=1.0).contains(&r.value),
                "{} {} = {}",
                r.run_id,
                r.metric,
                r.value
            );
        }
    }
    // Diagnostics: shares in [0, 1]; popularity concentrates its draws more than uniform does, and
    // uniform is as spread as a uniform draw of its size, whatever the ratio.
    let value = |id: &str, m: &str| {
        rows.iter()
            .find(|r| r.run_id == id && r.metric == m)
            .unwrap()
            .value
    };
    for r in rows.iter().filter(|r| r.metric == "negatives_per_positive") {
        // Uniform and popularity train every one of their k negatives (exclusion resamples).
        let k = r
            .run_id
            .split("-r")
            .nth(1)
            .unwrap()
            .split('-')
            .next()
            .unwrap();
        assert_eq!(r.value, k.parse::<f64>().unwrap(), "{}", r.run_id);
    }
    for r in rows
        .iter()
        .filter(|r| r.category == "sampler" && r.metric != "ns_per_negative")
        .filter(|r| !r.metric.ends_with("_vs_uniform") && r.metric != "negatives_per_positive")
    {
        assert!(
            (0.0..=1.0).contains(&r.value),
            "{} {} = {}",
            r.run_id,
            r.metric,
            r.value
        );
    }
    assert!(
        value("rec-synthetic-popularity-r4-s0", "gini")
            > value("rec-synthetic-uniform-r4-s0", "gini") + 0.1
    );
    assert!(value("rec-synthetic-uniform-r4-s0", "coverage") > 0.9);
    for ratio in [1, 4] {
        let id = format!("rec-synthetic-uniform-r{ratio}-s0");
        let (coverage, gini) = (
            value(&id, "coverage_vs_uniform"),
            value(&id, "gini_vs_uniform"),
        );
        assert!((coverage - 1.0).abs() < 0.05, "{id}: {coverage}");
        assert!(gini.abs() < 0.05, "{id}: {gini}");
        let pop = format!("rec-synthetic-popularity-r{ratio}-s0");
        assert!(value(&pop, "gini_vs_uniform") > gini + 0.1, "{pop}");
    }
    let recall = |id: &str| {
        rows.iter()
            .find(|r| r.run_id == id && r.metric == "recall@10")
            .unwrap()
            .value
    };
    assert!(
        recall("rec-synthetic-uniform-r4-s0") > 0.05,
        "training learned something"
    );

    // Curves: loss every epoch for every cell, validation and test metrics at each evaluation.
    let curves = nsbench::store::read_curves(out.path()).unwrap();
    let losses = curves.iter().filter(|(_, c)| c.metric == "loss").count();
    assert_eq!(losses, 8 * 3);
    assert!(curves
        .iter()
        .any(|(_, c)| c.split == "valid" && c.metric == "ndcg@10"));
    let first_loss = curves.iter().find(|(r, c)| {
        r.run_id == "rec-synthetic-uniform-r1-s0" && c.metric == "loss" && c.epoch == 1
    });
    let last_loss = curves.iter().find(|(r, c)| {
        r.run_id == "rec-synthetic-uniform-r1-s0" && c.metric == "loss" && c.epoch == 3
    });
    assert!(
        last_loss.unwrap().1.value < first_loss.unwrap().1.value,
        "the loss falls"
    );

    for f in [
        "summary.md",
        "suite.resolved.toml",
        "plots/synthetic-recall_at_10-vs-ratio.png",
        "plots/synthetic-loss-convergence-epochs-k1.svg",
        "plots/synthetic-ndcg_at_10-convergence-seconds-k1.png",
    ] {
        let meta = std::fs::metadata(out.path().join(f)).unwrap_or_else(|_| panic!("{f} missing"));
        assert!(meta.len() > 300, "{f} is nearly empty");
    }
    // The resolved suite is a suite file that names the same grid.
    nsbench()
        .args(["list"])
        .arg(out.path().join("suite.resolved.toml"))
        .arg("--out")
        .arg(out.path())
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "rec-synthetic-popularity-r4-s1\tfinished",
        ));
}

#[test]
fn report_writes_statistics_tables_with_paired_comparisons() {
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), "stats", 2, "");
    let out = dir.path().join("out");
    run_ok(&suite, &out);
    let assert = nsbench()
        .arg("report")
        .arg(&out)
        .args(["--reference", "uniform"])
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    let written = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert_eq!(stdout, written);
    assert!(
        written.contains("| sampler | k | seeds | mean ± std | 95% t CI |")
            && written.contains("| p (Holm) | verdict |"),
        "{written}"
    );
    // Every comparison, machine-readable.
    let comparisons = nsbench::store::read_parquet(&out.join("comparisons.parquet")).unwrap();
    assert_eq!(
        comparisons.height(),
        2,
        "popularity at k = 1 and 3 against uniform"
    );
    for column in [
        "dataset",
        "metric",
        "reference",
        "sampler",
        "k",
        "n_seeds",
        "estimate",
        "ci_lower",
        "ci_upper",
        "p_raw",
        "p_adjusted",
        "verdict",
    ] {
        assert!(comparisons.column(column).is_ok(), "{column}");
    }
    // Two seeds of popularity at k = 1 and 3, each paired with uniform at the same k: in the seed table
    // and in the table paired by query.
    let seed_table = written
        .split("over seeds\n")
        .nth(1)
        .and_then(|t| t.split(": ndcg@20 paired by query (descriptive)").next())
        .unwrap();
    let popularity: Vec<&str> = seed_table
        .lines()
        .filter(|l| l.starts_with("| popularity |"))
        .collect();
    assert_eq!(popularity.len(), 2, "{written}");
    assert!(
        popularity.iter().all(|l| !l.contains("| – |")),
        "compared: {written}"
    );
    let by_query = written
        .split(": ndcg@20 paired by query (descriptive)")
        .nth(1)
        .unwrap();
    assert!(
        by_query.contains("| sampler | k | queries | uniform (ref.) |")
            && by_query
                .lines()
                .any(|l| l.starts_with("| popularity | 1 |")),
        "{written}"
    );
    for section in [
        ": stability",
        ": quality at an equal budget",
        "synthetic: audit",
    ] {
        assert!(written.contains(section), "{section}: {written}");
    }
    assert!(
        written.contains("Audit of the evaluation: passed"),
        "{written}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("id=\"audit-verdict\"><strong>Audit of the evaluation: passed"));
    // One per-query file per cell, with a row per evaluated test query.
    assert_eq!(std::fs::read_dir(out.join("per_query")).unwrap().count(), 8);
    let tex = std::fs::read_to_string(out.join("tables").join("rec.tex")).unwrap();
    assert!(
        tex.contains("\\toprule")
            && tex.contains("\\bottomrule")
            && tex.contains("only where it beats every other row"),
        "{tex}"
    );
    assert!(out.join("report.html").is_file());
    let statistics = nsbench::store::read_parquet(&out.join("statistics.parquet")).unwrap();
    // 2 samplers × 2 ratios, every metric of the results.
    let results = nsbench::store::read_parquet(&out.join("results.parquet")).unwrap();
    assert_eq!(
        statistics.height() * 2,
        results.height(),
        "one row per group of two seeds"
    );
    nsbench()
        .arg("report")
        .arg(&out)
        .args(["--level", "1.5"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--level"));
    nsbench()
        .arg("report")
        .arg(dir.path().join("nothing"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no results here"));
}

#[test]
fn a_report_over_two_suites_keeps_their_data_sets_of_one_name_apart() {
    // Two suites whose data set has one name (`synthetic`) but is another experiment in each (data,
    // split and streams derive from the suite): reported apart, never paired by seed or query.
    let dir = tempfile::tempdir().unwrap();
    for name in ["first", "second"] {
        run_ok(
            &write_suite(dir.path(), name, 1, ""),
            &dir.path().join(name),
        );
    }
    let out = dir.path().join("both");
    nsbench()
        .arg("report")
        .arg(dir.path().join("first"))
        .arg(dir.path().join("second"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let written = std::fs::read_to_string(out.join("report.md")).unwrap();
    for name in ["synthetic.first", "synthetic.second"] {
        assert!(
            written.contains(&format!("## Data set {name} (rec)")),
            "{name}: {written}"
        );
    }
    assert!(
        !written.contains("## Data set synthetic (rec)"),
        "{written}"
    );
    let statistics = nsbench::store::read_parquet(&out.join("statistics.parquet")).unwrap();
    let datasets = statistics
        .column("dataset")
        .unwrap()
        .as_materialized_series()
        .unique()
        .unwrap()
        .len();
    assert_eq!(datasets, 2);
    // One suite's directory alone keeps the plain name.
    nsbench()
        .arg("report")
        .arg(dir.path().join("first"))
        .assert()
        .success()
        .stdout(predicate::str::contains("## Data set synthetic (rec)"));
}

#[test]
fn the_audit_passes_on_every_embedded_data_set_and_on_a_suites_data() {
    let assert = nsbench().arg("audit").assert().success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    assert!(stdout.starts_with("# nsbench audit: passed"), "{stdout}");
    for domain in ["(rec)", "(kg)", "(graph)", "(text)", "(vision)"] {
        assert!(
            stdout.contains(&format!("{domain}: passed")),
            "{domain}: {stdout}"
        );
    }
    assert!(stdout.contains("| constant | mrr |") && stdout.contains("| oracle | ndcg@20 |"));
    let dir = tempfile::tempdir().unwrap();
    let written = dir.path().join("audit.md");
    nsbench()
        .args(["audit", "suites/rec.toml", "suites/kg.toml", "--out"])
        .arg(&written)
        .current_dir(repo())
        .assert()
        .success()
        .stdout(predicate::str::contains("synthetic-rotate (kg): passed"));
    assert!(std::fs::read_to_string(&written)
        .unwrap()
        .contains("a random ranker's expectation"));
    nsbench()
        .args(["audit", "no/such/suite.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no/such/suite.toml"));
}

#[test]
fn check_expect_holds_the_suites_published_values_as_bands() {
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), "published", 1, "");
    let band = |value: f64| {
        format!(
            "\n[[expect]]\ndataset = \"synthetic\"\nsampler = \"uniform\"\nk = 1\nmetric = \"ndcg@20\"\n\
             value = {value}\ntolerance = 0.01\nsource = \"a paper\"\n"
        )
    };
    let text = std::fs::read_to_string(&suite).unwrap();
    let out = dir.path().join("out");
    run_ok(&suite, &out);
    let got: f64 = {
        let rows = nsbench::store::read_results(&out).unwrap();
        let v: Vec<f64> = rows
            .iter()
            .filter(|r| r.run_id.contains("-uniform-r1-") && r.metric == "ndcg@20")
            .map(|r| r.value)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    for (value, code, verdict) in [(got, 0, "| inside |"), (got + 0.05, 1, "**OUTSIDE**")] {
        std::fs::write(&suite, format!("{text}{}", band(value))).unwrap();
        run_ok(&suite, &out);
        nsbench()
            .arg("check")
            .arg(&out)
            .arg("--expect")
            .assert()
            .code(code)
            .stdout(predicate::str::contains(verdict));
    }
    // A band needs exactly one width.
    std::fs::write(
        &suite,
        format!("{text}{}", band(got).replace("tolerance = 0.01", "")),
    )
    .unwrap();
    nsbench()
        .arg("run")
        .arg(&suite)
        .arg("--dry-run")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("[expect[0].tolerance]"));
}

#[test]
fn until_decided_adds_paired_seeds_to_undecided_comparisons_up_to_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("ud.toml");
    std::fs::write(
        &suite,
        r#"
[suite]
name = "ud"
seeds = [0, 1, 2]
ratios = [4]
until_decided = { max_seeds = 5, round = 2 }
[train]
epochs = 2
batch_size = 128
lr = 0.01
eval_every = 2
[[domain]]
kind = "rec"
data = { format = "synthetic", users = 60, items = 80, interactions_per_user = 12 }
model = { kind = "mf", dim = 8 }
[[sampler]]
kind = "uniform"
[[sampler]]
kind = "popularity"
alpha = 1e-9
"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    // An A/A pair at 3 seeds is undecided: 2 more seeds each for it and its reference, then the cap.
    let assert = run_ok(&suite, &out);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        stderr.contains("look 1:") && stderr.contains("look 2:"),
        "{stderr}"
    );
    assert!(stderr.contains("2 looks, 10 cells trained"), "{stderr}");
    let resolved = std::fs::read_to_string(out.join("suite.resolved.toml")).unwrap();
    assert!(resolved.contains("[[suite.extra_seeds]]"), "{resolved}");
    let rows = nsbench::store::read_results(&out).unwrap();
    for sampler in ["uniform", "popularity"] {
        let seeds: std::collections::BTreeSet<u64> = rows
            .iter()
            .filter(|r| r.sampler == sampler)
            .map(|r| r.seed)
            .collect();
        assert_eq!(
            seeds.into_iter().collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4],
            "{sampler}"
        );
    }
    // Again: every cell is there, nothing trains; merge and list plan the same cells.
    let again = run_ok(&suite, &out);
    assert!(String::from_utf8_lossy(&again.get_output().stderr).contains("0 cells trained"));
    nsbench()
        .arg("merge")
        .arg(&out)
        .arg("--no-plots")
        .assert()
        .success()
        .stderr(predicate::str::contains("merged 10 of 10 cells"));
}

#[test]
fn the_same_suite_twice_gives_identical_effectiveness_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), "repro", 3, "");
    for out in ["a", "b"] {
        nsbench()
            .arg("run")
            .arg(&suite)
            .arg("--out")
            .arg(dir.path().join(out))
            .arg("--no-plots")
            .assert()
            .success();
    }
    let (a, b) = (
        effectiveness(&dir.path().join("a")),
        effectiveness(&dir.path().join("b")),
    );
    assert_eq!(a.len(), 8 * EFFECTIVENESS_PER_CELL);
    assert_eq!(a, b);
}

#[test]
fn a_rerun_skips_finished_cells_and_reruns_changed_or_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let suite = write_suite(dir.path(), "resume", 3, "");
    run_ok(&suite, &out).stderr(predicate::str::contains("trained 8 cells, skipped 0"));
    let kept = out.join("runs/rec-synthetic-uniform-r1-s0.parquet");
    let before = std::fs::read(&kept).unwrap();
    std::fs::remove_file(out.join("runs/rec-synthetic-popularity-r3-s1.parquet")).unwrap();
    run_ok(&suite, &out).stderr(predicate::str::contains("trained 1 cells, skipped 7"));
    assert_eq!(
        std::fs::read(&kept).unwrap(),
        before,
        "a finished cell is left untouched"
    );
    assert_eq!(
        nsbench::store::read_results(&out).unwrap().len(),
        8 * ROWS_PER_CELL
    );
    // A changed configuration is not taken as finished.
    let suite = write_suite(dir.path(), "resume", 3, "l2 = 0.001");
    run_ok(&suite, &out).stderr(predicate::str::contains("trained 8 cells, skipped 0"));
}

#[test]
fn a_killed_run_loses_at_most_the_cells_in_flight_and_a_rerun_finishes_the_grid() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let suite = write_suite(dir.path(), "killed", 200, "");
    let mut child = spawn_run(&suite, &out, &["--jobs", "1", "--no-plots"]);
    let finished = || {
        std::fs::read_dir(out.join("runs")).map_or(0, |d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "parquet"))
                .count()
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while finished() < 2
        && std::time::Instant::now() < deadline
        && child.try_wait().unwrap().is_none()
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let done = finished();
    assert!((2..8).contains(&done), "killed after {done} cells");
    for entry in std::fs::read_dir(out.join("runs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "parquet") {
            nsbench::store::read_parquet(&path).expect("every finished cell file is complete");
        }
    }
    run_ok(&suite, &out).stderr(predicate::str::contains(format!(
        "trained {} cells, skipped {done}",
        8 - done
    )));
    assert_eq!(
        nsbench::store::read_results(&out).unwrap().len(),
        8 * ROWS_PER_CELL
    );
    let leftovers: Vec<_> = std::fs::read_dir(out.join("runs"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
}

#[test]
fn bad_suites_exit_2_naming_the_file_the_key_and_what_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(write_suite(dir.path(), "bad", 3, "")).unwrap();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "typo in a sampler key",
            "[[sampler]]\nkind = \"popularity\"\nalpah = 0.5\n",
            &["unknown field `alpah`", "alpha", "line"],
        ),
        (
            "unknown sampler",
            "[[sampler]]\nkind = \"fancy\"\n",
            &["unknown variant `fancy`", "uniform", "popularity"],
        ),
        (
            "unknown key in uniform",
            "[[sampler]]\nkind = \"uniform\"\nalpha = 0.5\n",
            &["unknown field `alpha`"],
        ),
    ];
    for (what, extra, expected) in cases {
        let path = dir.path().join("case.toml");
        std::fs::write(&path, format!("{base}{extra}")).unwrap();
        let assert = nsbench()
            .arg("run")
            .arg(&path)
            .arg("--dry-run")
            .assert()
            .code(2);
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
        assert!(stderr.contains("case.toml"), "{what}: {stderr}");
        for e in *expected {
            assert!(stderr.contains(e), "{what}: expected {e:?} in {stderr}");
        }
    }
    let replaced: &[(&str, &str, &str, &[&str])] = &[
        (
            "ratio 0",
            "ratios = [1, 3]",
            "ratios = [0, 3]",
            &["[suite.ratios]", "ratio must be >= 1"],
        ),
        (
            "no seeds",
            "seeds = [0, 1]",
            "seeds = []",
            &["[suite.seeds]", "at least one seed"],
        ),
        (
            "escaping name",
            "name = \"bad\"",
            "name = \"../../etc\"",
            &["[suite.name]", "cannot name a results directory"],
        ),
        (
            "missing data file",
            "format = \"synthetic\", users = 60, items = 80, interactions_per_user = 12",
            "format = \"movielens\", path = \"nowhere/u.data\"",
            &["[domain[0].data.path]", "does not exist", "nowhere/u.data"],
        ),
        (
            "negative ratio",
            "ratios = [1, 3]",
            "ratios = [-1]",
            &["ratios", "line"],
        ),
        (
            "bad device",
            "seeds = [0, 1]",
            "seeds = [0, 1]\ndevice = \"tpu\"",
            &["[suite.device]", "cuda:N"],
        ),
        (
            "bad split",
            "model = {",
            "split = { kind = \"random\", test = 1.5 }\nmodel = {",
            &["[domain[0].split]", "test + valid < 1"],
        ),
        (
            "unknown loss",
            "model = {",
            "loss = \"hinge\"\nmodel = {",
            &["unknown loss \"hinge\"", "bpr", "nssa", "line"],
        ),
        (
            "a kg model in a rec domain",
            "model = { kind = \"mf\", dim = 8 }",
            "model = { kind = \"transe\", dim = 8 }",
            &[
                "[domain[0].model.kind]",
                "not a model of a rec domain",
                "`mf`",
            ],
        ),
        (
            "a rec model in a kg domain",
            "kind = \"rec\"",
            "kind = \"kg\"",
            &[
                "[domain[0].model.kind]",
                "not a model of a kg domain",
                "transe",
            ],
        ),
        (
            "word2vec's update on a rec model",
            "eval_every = 1",
            "eval_every = 1\noptimizer = \"word2vec\"",
            &["[domain[0].model]", "word2vec", "`sgns`", "adam or sgd"],
        ),
        (
            "a kg-only sampler in a rec domain",
            "kind = \"popularity\"",
            "kind = \"bernoulli\"",
            &["[sampler[1]]", "runs in kg domains only"],
        ),
    ];
    for (what, from, to, expected) in replaced {
        let path = dir.path().join("case.toml");
        std::fs::write(&path, base.replacen(from, to, 1)).unwrap();
        let assert = nsbench().arg("run").arg(&path).assert().code(2);
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
        assert!(stderr.contains("case.toml"), "{what}: {stderr}");
        for e in *expected {
            assert!(stderr.contains(e), "{what}: expected {e:?} in {stderr}");
        }
    }
    // Combinations of sampler, loss and batch that would train something else than their method, or
    // nothing at all.
    type Edits<'a> = &'a [(&'a str, &'a str)];
    let edited: &[(&str, Edits, &[&str])] = &[
        (
            "logQ under BPR",
            &[("kind = \"popularity\"", "kind = \"in-batch\"\nlogq = true")],
            &[
                "[sampler[1].logq]",
                "under bpr",
                "s/τ − log q",
                "loss = \"softmax\"",
            ],
        ),
        (
            "in-batch negatives from a batch of one",
            &[
                ("kind = \"popularity\"", "kind = \"in-batch\""),
                ("batch_size = 128", "batch_size = 1"),
            ],
            &["[sampler[1].kind]", "batch_size = 1", "leaves none"],
        ),
        (
            "self-adversarial weights twice under RotatE's loss",
            &[
                ("kind = \"rec\"", "kind = \"kg\""),
                (
                    "format = \"synthetic\", users = 60, items = 80, interactions_per_user = 12",
                    "format = \"synthetic-kg\"",
                ),
                ("kind = \"mf\"", "kind = \"rotate\""),
                ("kind = \"popularity\"", "kind = \"self-adversarial\""),
            ],
            &["[sampler[1].kind]", "weight them twice", "RotatE's sampler"],
        ),
    ];
    for (what, edits, expected) in edited {
        let path = dir.path().join("case.toml");
        let text = edits
            .iter()
            .fold(base.clone(), |t, (from, to)| t.replacen(from, to, 1));
        std::fs::write(&path, text).unwrap();
        let assert = nsbench().arg("run").arg(&path).assert().code(2);
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
        for e in *expected {
            assert!(stderr.contains(e), "{what}: expected {e:?} in {stderr}");
        }
    }
    nsbench()
        .args(["run", "no/such/suite.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no/such/suite.toml"));
    for flag in ["--jobs", "--threads"] {
        nsbench()
            .arg("run")
            .arg(dir.path().join("case.toml"))
            .args([flag, "0"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(flag).and(predicate::str::contains("at least 1")));
    }
}

#[test]
fn a_bad_data_line_exits_2_with_file_and_line_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ratings.csv"),
        "u1,i1,5\nu1,i2,4\nu2,i1\nu2\n",
    )
    .unwrap();
    let suite = dir.path().join("csv.toml");
    std::fs::write(
        &suite,
        "[suite]\nname = \"csv\"\nseeds = [0]\nratios = [1]\n[[domain]]\nkind = \"rec\"\n\
         data = { format = \"delimited\", path = \"ratings.csv\" }\n[[sampler]]\nkind = \"uniform\"\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    nsbench()
        .arg("run")
        .arg(&suite)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("ratings.csv:3:")
                .and(predicate::str::contains("2 fields"))
                .and(predicate::str::contains("`user,item,rating`")),
        );
    assert!(!out.join("runs").exists());
}

#[test]
fn list_and_dry_run_print_the_grid_in_order_and_list_samplers_describes_them() {
    let assert = nsbench()
        .args(["list", "suites/rec.toml", "--out", "/nonexistent"])
        .current_dir(repo())
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    let ids: Vec<&str> = stdout
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(ids.len(), 120);
    assert_eq!(
        ids[..3],
        [
            "rec-synthetic-uniform-r1-s0",
            "rec-synthetic-uniform-r1-s1",
            "rec-synthetic-uniform-r1-s2",
        ]
    );
    assert_eq!(ids[20], "rec-synthetic-uniform-r4-s0");
    assert_eq!(ids[119], "rec-synthetic-popularity-r16-s19");
    nsbench()
        .args([
            "run",
            "suites/rec.toml",
            "--dry-run",
            "--out",
            "/nonexistent",
        ])
        .current_dir(repo())
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "120 cells (1 domains × 2 samplers × 3 ratios × 20 seeds): 120 to run",
        ));
    let listed = nsbench().args(["list", "samplers"]).assert().success();
    let stdout = String::from_utf8(listed.get_output().stdout.clone()).unwrap();
    for nsbench::sampler::SamplerInfo { kind: name, .. } in nsbench::sampler::REGISTRY {
        assert!(
            stdout.lines().any(
                |l| l.split_whitespace().next() == Some(name) && l.contains(" = ")
                    || l.starts_with(&format!("{name} ")) && l.contains("no parameters")
            ),
            "`list samplers` describes {name} with its parameters:\n{stdout}"
        );
    }
    // A rule of nsbench's own is named so where the sampler is shown; k = 1 twins are said.
    let line = |kind: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(kind))
            .unwrap()
            .to_string()
    };
    assert!(line("fn-filter").contains("nsbench's own"));
    assert!(line("mixed").contains("[at k = 1 this is uniform"));
    let losses = nsbench().args(["list", "losses"]).assert().success();
    let losses = String::from_utf8(losses.get_output().stdout.clone()).unwrap();
    assert!(losses.contains("`uniform` under it is RotatE's self-adversarial sampling"));
}

#[test]
fn word2vecs_update_trains_every_sampler_it_takes_reproducibly_and_refuses_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let suite = |samplers: &[&str], loss: &str| {
        let samplers: String = samplers
            .iter()
            .map(|s| format!("[[sampler]]\nkind = \"{s}\"\n"))
            .collect();
        format!(
            r#"
[suite]
name = "w2v"
seeds = [0]
ratios = [3]
[train]
epochs = 3
optimizer = "word2vec"
lr = 0.025
l2 = 0.0
batch_size = 64
eval_every = 1
loss = "{loss}"
[[domain]]
kind = "text"
data = {{ format = "synthetic-text", words = 200, topics = 5, documents = 60, doc_len = 30, min_count = 2 }}
model = {{ kind = "sgns", dim = 16 }}
{samplers}"#
        )
    };
    let path = dir.path().join("w2v.toml");
    // Every sampler word2vec takes but a Python one (which needs a file and the python build).
    let builtins: Vec<&str> = nsbench::train::word2vec::samplers()
        .into_iter()
        .filter(|s| *s != "python")
        .collect();
    std::fs::write(&path, suite(&builtins, "bce")).unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    run_ok(&path, &a);
    run_ok(&path, &b);
    let effectiveness = |out: &Path| -> Vec<(String, String, f64)> {
        let mut rows: Vec<_> = nsbench::store::read_results(out)
            .unwrap()
            .into_iter()
            .filter(|r| r.category == "effectiveness")
            .map(|r| (r.run_id, r.metric, r.value))
            .collect();
        rows.sort_by(|x, y| (&x.0, &x.1).cmp(&(&y.0, &y.1)));
        rows
    };
    let first = effectiveness(&a);
    for s in &builtins {
        let truth = first
            .iter()
            .find(|r| r.0.contains(&format!("-{s}-r3")) && r.1 == "truth-spearman")
            .unwrap_or_else(|| panic!("{s}: no truth-spearman"));
        assert!(truth.2.is_finite(), "{s}: truth-spearman {}", truth.2);
    }
    let words = nsbench::store::read_results(&a)
        .unwrap()
        .into_iter()
        .filter(|r| r.metric == "words_per_second")
        .count();
    assert_eq!(words, builtins.len(), "text cells report words/s");
    assert_eq!(first, effectiveness(&b), "the same suite, the same numbers");

    for (samplers, loss, expected) in [
        (
            &["queue"][..],
            "bce",
            &["[sampler[0]]", "sampler \"queue\"", "uniform, popularity"][..],
        ),
        (
            &["uniform"][..],
            "softmax",
            &["[domain[0].loss]", "`bce`"][..],
        ),
    ] {
        std::fs::write(&path, suite(samplers, loss)).unwrap();
        let assert = nsbench().arg("run").arg(&path).assert().code(2);
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
        for e in expected {
            assert!(stderr.contains(e), "expected {e:?} in {stderr}");
        }
    }
}

#[test]
fn every_registered_sampler_trains_end_to_end_with_finite_metrics_and_diagnostics() {
    // Every sampler in every domain it supports, one suite per domain: the same code, no per-domain copy.
    let domains = [
        (
            "rec",
            r#"data = { format = "synthetic", users = 40, items = 60, interactions_per_user = 10 }
model = { kind = "mf", dim = 8 }"#,
            "ndcg@20",
        ),
        (
            "kg",
            // RotatE's loss without its own adversarial weights, so self-adversarial can run under it.
            r#"data = { format = "synthetic-kg", entities = 40, relations = 3, triples = 300 }
model = { kind = "rotate", dim = 8 }
loss = { kind = "nssa", adversarial_temperature = 0.0 }"#,
            "mrr",
        ),
        (
            // LightGCN: the model-aware samplers score through propagated embeddings, MixGCF mixes hops.
            "graph",
            r#"data = { format = "synthetic-graph", nodes = 60, communities = 3, p_in = 0.3, p_out = 0.02, features = 12 }
model = { kind = "lightgcn", dim = 8, layers = 2 }"#,
            "auc",
        ),
        (
            // Skip-gram on the topic-model corpus; nearest-neighbour precision is above 0 from the start,
            // so the check is that every sampler trains to finite numbers.
            "text",
            r#"data = { format = "synthetic-text", words = 200, topics = 5, documents = 60, doc_len = 30, min_count = 2 }
model = { kind = "sgns", dim = 8 }"#,
            "nn-precision@10",
        ),
        (
            // Instance discrimination: every call draws fresh augmented views; alignment (the mean
            // distance of two views) is above 0 whatever was learnt.
            "vision",
            r#"data = { format = "synthetic-images", classes = 3, per_class = 10, size = 6 }
model = { kind = "image-encoder", hidden = 8, dim = 8, projection = 8 }"#,
            "alignment",
        ),
    ];
    for (kind, domain, headline) in domains {
        let dir = tempfile::tempdir().unwrap();
        // A Python sampler needs a file and the python build: examples/samplers and CI cover it.
        let supported: Vec<_> = nsbench::sampler::REGISTRY
            .iter()
            .filter(|s| s.domains.contains(&kind) && s.kind != "python")
            .collect();
        let samplers: String = supported
            .iter()
            .map(|s| format!("[[sampler]]\nkind = \"{}\"\n", s.kind))
            .collect();
        let suite = dir.path().join("all.toml");
        std::fs::write(
            &suite,
            format!(
                r#"
[suite]
name = "all"
seeds = [0]
ratios = [2]
[train]
epochs = 2
batch_size = 64
lr = 0.01
eval_every = 1
[[domain]]
kind = "{kind}"
{domain}
{samplers}"#
            ),
        )
        .unwrap();
        let out = dir.path().join("out");
        run_ok(&suite, &out);
        let rows = nsbench::store::read_results(&out).unwrap();
        for info in supported {
            let name = &info.kind;
            let of: Vec<_> = rows
                .iter()
                .filter(|r| {
                    r.run_id.contains(&format!("-{name}-r2"))
                        || r.run_id.contains(&format!("-{name}-rall"))
                        || r.run_id.contains(&format!("-{name}-nssa-a0-r"))
                })
                .collect();
            let metric = |m: &str| of.iter().find(|r| r.metric == m).map(|r| r.value);
            let value = metric(headline).unwrap_or_else(|| panic!("{kind} {name}: no {headline}"));
            assert!(
                value.is_finite() && value > 0.0,
                "{kind} {name}: {headline} = {value}"
            );
            assert!(
                of.iter().all(|r| r.value.is_finite()),
                "{kind} {name}: a non-finite metric"
            );
            // Every sampler that draws ids (or embeddings from ids) is diagnosed; the non-sampling
            // references draw nothing.
            if !info.ratio_free {
                let coverage =
                    metric("coverage").unwrap_or_else(|| panic!("{kind} {name}: no coverage"));
                assert!(
                    coverage > 0.0 && coverage <= 1.0,
                    "{kind} {name}: coverage {coverage}"
                );
                let known = metric("fn_rate_known").unwrap();
                assert!(
                    (0.0..=1.0).contains(&known),
                    "{kind} {name}: fn_rate_known {known}"
                );
            }
        }
        if kind == "text" || kind == "vision" {
            let report = dir.path().join("report");
            nsbench()
                .args(["report"])
                .arg(&out)
                .arg("--out")
                .arg(&report)
                .assert()
                .success();
            let text = std::fs::read_to_string(report.join("report.md")).unwrap();
            let headline = if kind == "text" {
                "truth-spearman"
            } else {
                "linear-accuracy"
            };
            assert!(text.contains(headline), "{text}");
        }
        if kind == "graph" {
            // Both protocols in every cell, and the report compares the orderings they give.
            assert!(rows.iter().any(|r| r.metric == "hits@10"));
            let report = dir.path().join("report");
            nsbench()
                .args(["report"])
                .arg(&out)
                .arg("--out")
                .arg(&report)
                .assert()
                .success();
            let text = std::fs::read_to_string(report.join("report.md")).unwrap();
            assert!(
                text.contains("sampled vs full-ranking protocol")
                    && text.contains("auc vs mrr: Kendall's τ-b"),
                "{text}"
            );
        }
    }
}

#[test]
fn a_corpus_trains_word_vectors_evaluated_on_similarity_and_analogy_files() {
    let dir = tempfile::tempdir().unwrap();
    // Two families of words that never share a line: similar within a family, not across.
    let mut corpus = String::new();
    for i in 0..200 {
        let line = if i % 2 == 0 {
            "king queen prince princess royal crown throne palace"
        } else {
            "apple banana cherry grape fruit juice sweet orchard"
        };
        let words: Vec<&str> = line.split(' ').collect();
        let rotated: Vec<&str> = (0..words.len())
            .map(|j| words[(i / 2 + j) % words.len()])
            .collect();
        corpus.push_str(&rotated.join(" "));
        corpus.push_str(". 42\n");
    }
    std::fs::write(dir.path().join("corpus.txt"), corpus).unwrap();
    std::fs::write(
        dir.path().join("pairs.tsv"),
        "# word1\tword2\tscore\nKing\tqueen\t9\nking\tapple\t1\nbanana\tcherry\t8\nqueen\tgrape\t2\nking\tunicorn\t5\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("questions.txt"),
        ": families\nking queen apple banana\nking queen unicorn dragon\n",
    )
    .unwrap();
    let suite = dir.path().join("text.toml");
    std::fs::write(
        &suite,
        r#"
[suite]
name = "words"
seeds = [0]
ratios = [3]
[train]
epochs = 10
batch_size = 256
lr = 0.02
eval_every = 5
[[domain]]
kind = "text"
data = { format = "corpus", path = "corpus.txt", min_count = 5, window = 3, sample = 0, similarity = ["pairs.tsv"], analogies = "questions.txt" }
model = { kind = "sgns", dim = 16 }
[[sampler]]
kind = "popularity"
"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    run_ok(&suite, &out).stderr(predicate::str::contains(
        "200 documents, 1600 tokens in a vocabulary of 16 words",
    ));
    let metrics: std::collections::BTreeMap<String, f64> = effectiveness(&out)
        .into_iter()
        .map(|(_, m, v)| (m, v))
        .collect();
    // 4 of the 5 pairs and 1 of the 2 questions are in the vocabulary ("unicorn", "dragon" are not).
    assert_eq!(metrics["pairs-coverage"], 0.8);
    assert_eq!(metrics["analogy-coverage"], 0.5);
    // The two within-family pairs must come out more similar than the two across.
    assert!(
        metrics["pairs-spearman"] > 0.5,
        "pairs-spearman {}",
        metrics["pairs-spearman"]
    );
    assert!((0.0..=1.0).contains(&metrics["analogy-accuracy"]));

    // Text has no validation split: early stopping is refused with the key named.
    let bad = dir.path().join("bad.toml");
    let with_stopping = std::fs::read_to_string(&suite).unwrap().replace(
        "eval_every = 5",
        "eval_every = 5\nearly_stopping = { patience = 2 }",
    );
    std::fs::write(&bad, with_stopping).unwrap();
    nsbench()
        .arg("run")
        .arg(&bad)
        .arg("--out")
        .arg(dir.path().join("bad-out"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("train.early_stopping"));
}

#[test]
fn every_suite_in_the_repo_parses_and_validates_where_its_data_is_present() {
    for entry in std::fs::read_dir(repo().join("suites")).unwrap() {
        let path = entry.unwrap().path();
        let file = nsbench::suite::SuiteFile::load(&path).unwrap_or_else(|e| panic!("{e}"));
        match file.check(&path) {
            Ok(suite) => assert!(!nsbench::suite::expand(&suite).is_empty()),
            Err(e) => assert!(
                e.to_string().contains("does not exist"),
                "{}: {e}",
                path.display()
            ),
        }
    }
}

/// The MovieLens-100K reference numbers (needs the shared data sets beside the repository; skipped
/// without them, since nsbench never requires them).
#[test]
fn movielens_100k_reaches_the_reference_quality() {
    let split = repo().join("../shared/datasets/ml-100k/split-80-20-seed0/train.tsv");
    if !split.is_file() {
        eprintln!("skipped: {} not found", split.display());
        return;
    }
    let out = tempfile::tempdir().unwrap();
    nsbench()
        .args(["run", "suites/ml100k.toml", "--no-plots", "--out"])
        .arg(out.path())
        .current_dir(repo())
        .assert()
        .success();
    let rows = nsbench::store::read_results(out.path()).unwrap();
    let get = |m: &str| rows.iter().find(|r| r.metric == m).unwrap().value;
    assert!(get("recall@20") >= 0.33, "recall@20 = {}", get("recall@20"));
    assert!(get("ndcg@20") >= 0.38, "ndcg@20 = {}", get("ndcg@20"));
}

/// TransE on Nations with PyKEEN's settings (dim 50, L1, margin 1, one uniform negative, Adam 1e-3,
/// batch 256, 100 epochs) lands where PyKEEN does: MRR 0.350 ± 0.008 and Hits@10 0.974 over 3 seeds
/// (`scripts/compare-pykeen.sh`). Needs the shared data sets; skipped without them.
#[test]
fn transe_on_nations_reaches_pykeens_quality() {
    let nations = repo().join("../shared/datasets/nations");
    if !nations.join("train.txt").is_file() {
        eprintln!("skipped: {} not found", nations.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("nations.toml");
    let file = |f: &str| nations.join(f).display().to_string();
    std::fs::write(
        &suite,
        format!(
            r#"
[suite]
name = "nations"
seeds = [0]
ratios = [1]
[train]
epochs = 100
batch_size = 256
lr = 0.001
l2 = 0
eval_every = 100
[[domain]]
kind = "kg"
data = {{ format = "triples", train = "{}", valid = "{}", test = "{}" }}
model = {{ kind = "transe", dim = 50, norm = 1 }}
[[sampler]]
kind = "uniform"
"#,
            file("train.txt"),
            file("valid.txt"),
            file("test.txt")
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    run_ok(&suite, &out);
    let rows = nsbench::store::read_results(&out).unwrap();
    let get = |m: &str| rows.iter().find(|r| r.metric == m).unwrap().value;
    let (mrr, hits10) = (get("mrr"), get("hits@10"));
    assert!((0.33..=0.39).contains(&mrr), "MRR {mrr}");
    assert!(hits10 >= 0.95, "Hits@10 {hits10}");
    assert_eq!(rows[0].run_id, "kg-nations-uniform-r1-s0");
}

#[test]
fn early_stopping_reports_the_test_metrics_of_the_best_validation_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(write_suite(
        dir.path(),
        "early",
        60,
        "early_stopping = { metric = \"ndcg@10\", patience = 2 }",
    ))
    .unwrap()
    .replace("lr = 0.01", "lr = 0.1")
    .replace(
        "model = {",
        "split = { kind = \"random\", test = 0.2, valid = 0.2 }\nmodel = {",
    );
    let suite = dir.path().join("early.toml");
    std::fs::write(&suite, text).unwrap();
    let out = dir.path().join("out");
    run_ok(&suite, &out);
    let df = nsbench::store::read_parquet(&out.join("results.parquet")).unwrap();
    let col_u32 = |name: &str| -> Vec<u32> {
        df.column(name)
            .unwrap()
            .u32()
            .unwrap()
            .into_no_null_iter()
            .collect()
    };
    let (trained, selected) = (col_u32("epochs_trained"), col_u32("selected_epoch"));
    let rows = nsbench::store::read_results(&out).unwrap();
    let curves = nsbench::store::read_curves(&out).unwrap();
    let curve = |run: &str, split: &str, epoch: u32| {
        curves
            .iter()
            .find(|(c, p)| {
                c.run_id == run && p.split == split && p.metric == "ndcg@10" && p.epoch == epoch
            })
            .map(|(_, p)| p.value)
            .unwrap()
    };
    let mut stopped_early = 0;
    for (i, r) in rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.metric == "ndcg@10")
    {
        let (trained, selected) = (trained[i], selected[i]);
        if trained < 60 {
            stopped_early += 1;
            assert_eq!(
                trained,
                selected + 2,
                "{}: stops `patience` evaluations after the best",
                r.run_id
            );
        }
        assert_eq!(
            r.value,
            curve(&r.run_id, "test", selected),
            "{}: reports the selected epoch",
            r.run_id
        );
        let best_valid = (1..=trained)
            .map(|e| curve(&r.run_id, "valid", e))
            .fold(f64::MIN, f64::max);
        assert_eq!(
            curve(&r.run_id, "valid", selected),
            best_valid,
            "{}: selects the best validation epoch",
            r.run_id
        );
    }
    assert!(
        stopped_early > 0,
        "overfitting at lr 0.1 stops some cells early"
    );
}

#[test]
fn merge_and_list_plan_the_device_the_run_used_and_never_empty_the_merged_tables() {
    // The suite file says cuda; the run trains on the CPU (`--device cpu`). The resolved suite records
    // the device used, so merge and list plan the very cells the run trained.
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), "dev", 1, "");
    let text = std::fs::read_to_string(&suite)
        .unwrap()
        .replace("ratios = [1, 3]", "ratios = [1, 3]\ndevice = \"cuda\"");
    std::fs::write(&suite, text).unwrap();
    let out = dir.path().join("out");
    nsbench()
        .arg("run")
        .arg(&suite)
        .args(["--device", "cpu", "--no-plots", "--out"])
        .arg(&out)
        .assert()
        .success();
    let before = effectiveness(&out);
    assert_eq!(before.len(), 8 * EFFECTIVENESS_PER_CELL);
    nsbench()
        .arg("merge")
        .arg(&out)
        .arg("--no-plots")
        .assert()
        .success();
    assert_eq!(effectiveness(&out), before);
    nsbench()
        .arg("list")
        .arg(out.join("suite.resolved.toml"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "rec-synthetic-popularity-r3-s1\tfinished",
        ));
    // The suite file itself, listed against the directory, plans the device the run used.
    nsbench()
        .arg("list")
        .arg(&suite)
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "rec-synthetic-popularity-r3-s1\tfinished",
        ));
    // A resolved suite edited to another device plans none of the stored cells: merge refuses and
    // the merged tables stay.
    let resolved = out.join("suite.resolved.toml");
    let edited = std::fs::read_to_string(&resolved)
        .unwrap()
        .replace("device = \"cpu\"", "device = \"cuda:1\"");
    std::fs::write(&resolved, edited).unwrap();
    nsbench()
        .arg("merge")
        .arg(&out)
        .arg("--no-plots")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "none of the 8 stored cells is of this plan",
        ));
    assert_eq!(effectiveness(&out), before);
    assert!(out.join("curves.parquet").is_file());
}

#[test]
fn asking_for_cuda_without_it_is_a_clear_error() {
    if tch::Cuda::is_available() {
        return;
    }
    nsbench()
        .args(["run", "suites/smoke.toml", "--device", "cuda", "--out"])
        .arg(tempfile::tempdir().unwrap().path())
        .current_dir(repo())
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("no usable CUDA").and(predicate::str::contains("LIBTORCH")),
        );
}

/// The shared real data sets load with the counts their READMEs give (skipped without them).
#[test]
fn the_shared_movielens_files_load_with_their_documented_counts() {
    use nsbench::data::{load, DataConfig, FileConfig, SplitConfig};
    let shared = repo().join("../shared/datasets");
    if !shared.is_dir() {
        eprintln!("skipped: {} not found", shared.display());
        return;
    }
    let u_data = FileConfig {
        path: Some(shared.join("ml-100k/u.data")),
        ..Default::default()
    };
    let d = load("ml100k", &DataConfig::Movielens(u_data.clone()), None, 0).unwrap();
    assert_eq!(
        (d.n_queries, d.n_items, d.train.len() + d.test.len()),
        (943, 1682, 100_000)
    );
    let llo: SplitConfig = toml::from_str("kind = \"leave-last-out\"\nvalid = true").unwrap();
    let d = load("ml100k", &DataConfig::Movielens(u_data), Some(&llo), 0).unwrap();
    assert_eq!(
        (d.test.len(), d.valid.len()),
        (943, 943),
        "one test and one validation item per user"
    );
    let four = FileConfig {
        path: Some(shared.join("ml-100k/u.data")),
        min_rating: Some(4.0),
        ..Default::default()
    };
    let d = load("ml100k", &DataConfig::Movielens(four), None, 0).unwrap();
    assert_eq!(
        d.train.len() + d.test.len(),
        34_174 + 21_201,
        "ratings 4 and 5"
    );

    let dir = shared.join("ml-1m-implicit");
    let adjacency = FileConfig {
        train: Some(dir.join("train.txt")),
        valid: Some(dir.join("valid.txt")),
        test: Some(dir.join("test.txt")),
        ..Default::default()
    };
    let d = load("ml1m", &DataConfig::Adjacency(adjacency), None, 0).unwrap();
    assert_eq!(
        (d.train.len(), d.valid.len(), d.test.len()),
        (590_733, 80_897, 164_848)
    );
    assert_eq!((d.n_queries, d.n_items), (6_039, 3_628));
}

/// The failed cells of a results directory, by run id: (stage, epoch, reason).
fn failures(dir: &Path) -> std::collections::BTreeMap<String, (String, u32, String)> {
    nsbench::store::read_failures(dir)
        .unwrap()
        .into_iter()
        .map(|f| (f.run_id, (f.stage, f.epoch, f.reason)))
        .collect()
}

/// A suite of two synthetic domains, `good` and `bad`; `bad_init` is the bad domain's init_std (1e20
/// makes its scores overflow: the model diverges in its first epoch).
fn two_domain_suite(dir: &Path, bad_init: &str) -> PathBuf {
    let path = dir.join("two.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[suite]
name = "two"
seeds = [0, 1]
ratios = [2]
[train]
epochs = 3
batch_size = 128
lr = 0.01
eval_every = 1
[[domain]]
kind = "rec"
name = "good"
data = {{ format = "synthetic", users = 50, items = 60, interactions_per_user = 10 }}
model = {{ kind = "mf", dim = 8 }}
[[domain]]
kind = "rec"
name = "bad"
data = {{ format = "synthetic", users = 50, items = 60, interactions_per_user = 10 }}
model = {{ kind = "mf", dim = 8, init_std = {bad_init} }}
[[sampler]]
kind = "uniform"
"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_diverging_cell_is_recorded_as_failed_the_grid_goes_on_and_old_configurations_are_not_merged() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // First every cell trains; then the `bad` domain's configuration changes and it diverges.
    run_ok(&two_domain_suite(dir.path(), "0.1"), &out);
    assert_eq!(
        nsbench::store::read_results(&out).unwrap().len(),
        4 * ROWS_PER_CELL
    );
    let suite = two_domain_suite(dir.path(), "1e20");
    let assert = nsbench()
        .arg("run")
        .arg(&suite)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        stderr.contains("2 of 4 cells failed") && stderr.contains("rec-bad-uniform-r2-s0"),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 stored cells belong to another configuration")
            && stderr.contains("--prune"),
        "{stderr}"
    );
    let failed = failures(&out);
    assert_eq!(failed.len(), 2, "{failed:?}");
    for (id, (stage, epoch, reason)) in &failed {
        assert!(id.starts_with("rec-bad-"), "{id}");
        assert_eq!((stage.as_str(), *epoch), ("diverged", 1), "{reason}");
        assert!(
            reason.contains("not finite") || reason.contains("loss"),
            "{reason}"
        );
    }
    // Only the good domain's cells are results: never the old bad cells, never a rank from NaN scores.
    let rows = nsbench::store::read_results(&out).unwrap();
    assert_eq!(rows.len(), 2 * ROWS_PER_CELL);
    assert!(rows.iter().all(|r| r.dataset == "good"));
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.contains("Failed cells (2)") && summary.contains("rec-bad-uniform-r2-s1"),
        "{summary}"
    );
    assert!(!summary.contains("## bad"), "{summary}");
    // `list` shows the failed cells; a rerun retries them; --prune removes the stale ones.
    nsbench()
        .arg("list")
        .arg(&suite)
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("rec-bad-uniform-r2-s0\tfailed"));
    nsbench()
        .arg("run")
        .arg(&suite)
        .arg("--out")
        .arg(&out)
        .args(["--prune", "--no-plots"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("pruned 2 stored cells")
                .and(predicate::str::contains("trained 2 cells, skipped 2")),
        );
    let runs: Vec<_> = std::fs::read_dir(out.join("runs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(runs.iter().all(|n| n.starts_with("rec-good-")), "{runs:?}");
}

#[test]
fn a_libtorch_panic_in_one_cell_is_recorded_and_the_other_cells_finish() {
    // A ratio whose negative ids alone need terabytes: libtorch's allocator refuses, tch panics. Only
    // where the kernel refuses such an allocation outright (heuristic or strict overcommit); with
    // overcommit always on, the allocation would succeed and the writes be killed instead.
    let policy = std::fs::read_to_string("/proc/sys/vm/overcommit_memory").unwrap_or_default();
    if policy.trim() == "1" {
        eprintln!("skipped: vm.overcommit_memory = 1 grants any allocation");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(write_suite(dir.path(), "boom", 2, ""))
        .unwrap()
        .replace("ratios = [1, 3]", "ratios = [1, 4000000000]")
        .replace("seeds = [0, 1]", "seeds = [0]");
    let suite = dir.path().join("boom.toml");
    std::fs::write(&suite, text).unwrap();
    let out = dir.path().join("out");
    // Without an override the estimate refuses the grid before anything trains.
    nsbench()
        .arg("run")
        .arg(&suite)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("needs about").and(predicate::str::contains("--max-memory")),
        );
    assert!(!out.join("runs").exists(), "nothing recorded");
    let assert = nsbench()
        .arg("run")
        .arg(&suite)
        .arg("--out")
        .arg(&out)
        .args(["--max-memory", "1000TiB", "--jobs", "1"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    let failed = failures(&out);
    assert_eq!(failed.len(), 2, "{stderr}");
    for (id, (stage, epoch, reason)) in &failed {
        assert!(id.contains("-r4000000000-"), "{id}");
        assert_eq!((stage.as_str(), *epoch), ("panic", 1), "{reason}");
        assert!(reason.contains("allocate"), "{reason}");
    }
    let rows = nsbench::store::read_results(&out).unwrap();
    assert_eq!(rows.len(), 2 * ROWS_PER_CELL, "the k = 1 cells finished");
    assert!(out
        .join("plots/synthetic-recall_at_20-vs-ratio.png")
        .is_file());
}

#[test]
fn impossible_sizes_are_refused_before_training_with_the_estimate() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(write_suite(dir.path(), "huge", 2, "")).unwrap();
    let cases = [
        (
            "ratios = [1, 3]",
            "ratios = [100000000]",
            "negatives per batch",
        ),
        (
            "users = 60, items = 80",
            "users = 100000000, items = 100000000",
            "generating its synthetic data needs about",
        ),
    ];
    for (from, to, expected) in cases {
        let suite = dir.path().join("huge.toml");
        std::fs::write(&suite, base.replacen(from, to, 1)).unwrap();
        let out = dir.path().join("out");
        let started = std::time::Instant::now();
        nsbench()
            .arg("run")
            .arg(&suite)
            .arg("--out")
            .arg(&out)
            .assert()
            .code(2)
            .stderr(
                predicate::str::contains(expected)
                    .and(predicate::str::contains("more than the"))
                    .and(predicate::str::contains("--max-memory")),
            );
        assert!(started.elapsed().as_secs() < 60, "refused before any work");
        assert!(!out.join("runs").exists());
    }
}

#[test]
fn a_second_run_on_one_directory_is_refused_and_the_first_finishes_intact() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let suite = write_suite(dir.path(), "busy", 40, "");
    let mut first = spawn_run(&suite, &out, &["--jobs", "1", "--no-plots"]);
    let lock = out.join(nsbench::store::LOCK_FILE);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // The holder has written its PID into the lock file (it re-executes itself once to set its
    // OpenMP policy, keeping the PID).
    while std::fs::read_to_string(&lock).map_or(true, |s| s.trim().is_empty())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let second = nsbench()
        .arg("run")
        .arg(&suite)
        .arg("--out")
        .arg(&out)
        .arg("--no-plots")
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&second.get_output().stderr).to_string();
    assert!(
        stderr.contains(&format!("in use by nsbench (PID {})", first.id()))
            && stderr.contains(&out.display().to_string()),
        "{stderr}"
    );
    assert!(first.wait().unwrap().success(), "the first run finishes");
    assert_eq!(
        nsbench::store::read_results(&out).unwrap().len(),
        8 * ROWS_PER_CELL
    );
    assert_eq!(effectiveness(&out).len(), 8 * EFFECTIVENESS_PER_CELL);
}

/// Files whose names mark them temporary, anywhere in a results directory.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if nsbench::store::atomic::is_temp_name(&e.file_name().to_string_lossy()) {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn sigkill_at_random_moments_then_resume_gives_the_uninterrupted_numbers() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), "kills", 20, "");
    let reference = dir.path().join("reference");
    let started = std::time::Instant::now();
    run_ok(&suite, &reference);
    let full_run = started.elapsed();
    let out = dir.path().join("out");
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(8);
    // Kill at a random moment of a run: the length of a run is that of the last one that ended by
    // itself (the whole grid at first; later runs have fewer cells left). Only kills that hit a live
    // process count.
    let (mut typical, mut kills, mut tries) = (full_run, 0, 0);
    while kills < 10 {
        tries += 1;
        assert!(tries < 80, "only {kills} kills hit a running process");
        let begun = std::time::Instant::now();
        let mut child = spawn_run(&suite, &out, &[]);
        let wait = rng.random_range(0.0..1.0) * typical.as_secs_f64();
        let deadline = begun + std::time::Duration::from_secs_f64(wait);
        let mut ended = None;
        while std::time::Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                ended = Some(begun.elapsed());
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        match ended {
            Some(took) => typical = took,
            None => {
                child.kill().unwrap(); // SIGKILL
                kills += 1;
            }
        }
        child.wait().unwrap();
        // Whatever the moment, every stored cell file is whole.
        for sub in ["runs", "curves", "failures"] {
            for e in std::fs::read_dir(out.join(sub))
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = e.file_name().to_string_lossy().into_owned();
                if !nsbench::store::atomic::is_temp_name(&name) {
                    nsbench::store::read_parquet(&e.path())
                        .unwrap_or_else(|err| panic!("{name} is damaged: {err}"));
                }
            }
        }
    }
    run_ok(&suite, &out);
    assert_eq!(effectiveness(&out), effectiveness(&reference));
    assert!(failures(&out).is_empty());
    assert_eq!(
        temp_files(&out),
        Vec::<PathBuf>::new(),
        "leftover temporary files"
    );
}

#[test]
fn the_same_data_under_another_path_spelling_is_the_same_cell() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let mut lines = String::new();
    for u in 0..30 {
        for i in 0..8 {
            lines.push_str(&format!("u{u},i{}\n", (u * 7 + i * 3) % 40));
        }
    }
    std::fs::write(dir.path().join("data/ratings.csv"), &lines).unwrap();
    let suite = |name: &str, path: &str| {
        let p = dir.path().join(name);
        std::fs::write(
            &p,
            format!(
                "[suite]\nname = \"paths\"\nseeds = [0]\nratios = [1]\n[train]\nepochs = 1\n\
                 [[domain]]\nkind = \"rec\"\ndata = {{ format = \"delimited\", path = \"{path}\" }}\n\
                 model = {{ kind = \"mf\", dim = 8 }}\n[[sampler]]\nkind = \"uniform\"\n"
            ),
        )
        .unwrap();
        p
    };
    let out = dir.path().join("out");
    let run = |suite: &Path| {
        nsbench()
            .arg("run")
            .arg(suite.file_name().unwrap())
            .arg("--out")
            .arg(&out)
            .arg("--no-plots")
            .current_dir(dir.path())
            .assert()
            .success()
    };
    run(&suite("a.toml", "data/ratings.csv")).stderr(predicate::str::contains("trained 1 cells"));
    run(&suite("b.toml", "./data/../data/ratings.csv"))
        .stderr(predicate::str::contains("trained 0 cells, skipped 1"));
    // Other bytes: another cell.
    std::fs::write(
        dir.path().join("data/ratings.csv"),
        lines.replace("u1,", "u2,"),
    )
    .unwrap();
    run(&suite("b.toml", "./data/ratings.csv")).stderr(predicate::str::contains("trained 1 cells"));
}

#[derive(serde::Deserialize)]
struct Corpus {
    case: Vec<CorpusCase>,
}

#[derive(serde::Deserialize)]
struct CorpusCase {
    file: Option<String>,
    train: Option<String>,
    valid: Option<String>,
    test: Option<String>,
    format: String,
    #[serde(default)]
    options: toml::Table,
    #[serde(default)]
    expect: Vec<String>,
    loads: Option<usize>,
    #[serde(default)]
    notes: Vec<String>,
}

#[test]
fn every_loader_refuses_the_malformed_corpus_with_file_line_and_reason() {
    let dir = repo().join("tests/malformed");
    let corpus: Corpus =
        toml::from_str(&std::fs::read_to_string(dir.join("cases.toml")).unwrap()).unwrap();
    let mut listed = std::collections::BTreeSet::new();
    for case in &corpus.case {
        let mut table = case.options.clone();
        table.insert("format".into(), case.format.clone().into());
        for (key, file) in [
            ("path", &case.file),
            ("train", &case.train),
            ("valid", &case.valid),
            ("test", &case.test),
        ] {
            if let Some(f) = file {
                listed.insert(f.clone());
                table.insert(key.into(), dir.join(f).display().to_string().into());
            }
        }
        let name = case.file.clone().or(case.test.clone()).unwrap();
        let config: nsbench::data::DataConfig = toml::Value::Table(table).try_into().unwrap();
        let loaded = nsbench::data::load("corpus", &config, None, 0);
        match (case.loads, loaded) {
            (Some(n), Ok(d)) => {
                assert_eq!(d.train.len() + d.valid.len() + d.test.len(), n, "{name}");
                for note in &case.notes {
                    assert!(
                        d.notes.iter().any(|x| x.contains(note)),
                        "{name}: {:?}",
                        d.notes
                    );
                }
            }
            (Some(_), Err(e)) => panic!("{name} should load: {e}"),
            (None, Ok(_)) => panic!("{name} loaded, but should be refused"),
            (None, Err(e)) => {
                let message = e.to_string();
                let shown_name =
                    if name.contains("a-directory") || message.contains("domain corpus") {
                        true
                    } else {
                        // A given split names whichever of its files is wrong.
                        message.contains(&name)
                            || case.train.as_ref().is_some_and(|t| message.contains(t))
                    };
                assert!(shown_name, "{name}: the message names the file: {message}");
                for x in &case.expect {
                    assert!(
                        message.contains(x.as_str()),
                        "{name}: expected {x:?} in {message}"
                    );
                }
            }
        }
    }
    // Every file of the corpus is a case.
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name != "cases.toml" {
            assert!(listed.contains(&name), "{name} is in no case of cases.toml");
        }
    }
}

/// A test that needs something this machine may lack runs only with it: without it the test says it
/// skipped and why, unless the environment variable `required` is set (CI sets it: there the test must
/// not skip).
fn skip_without(what: &str, required: &str, how: &str) {
    assert!(
        std::env::var_os(required).is_none(),
        "{required} is set but {what} is missing"
    );
    eprintln!("skipped: no {what} here ({how})");
}

/// A program on the PATH.
fn which(name: &str) -> Option<PathBuf> {
    std::process::Command::new("which")
        .arg(name)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
}

/// A small suite run into `dir/out` and reported there; returns `dir/out`.
fn reported_run(dir: &Path, name: &str, epochs: u32) -> PathBuf {
    let out = dir.join("out");
    run_ok(&write_suite(dir, name, epochs, ""), &out);
    nsbench().arg("report").arg(&out).assert().success();
    out
}

/// The headless browser of Debian's `chromium` package, if installed.
fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| which(name))
}

#[test]
fn the_html_report_renders_in_headless_chromium_with_every_figure() {
    let Some(browser) = chromium() else {
        return skip_without(
            "chromium",
            "NSBENCH_REQUIRE_CHROMIUM",
            "Debian: apt-get install chromium",
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let out = reported_run(dir.path(), "html", 3);
    let page = out.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing is fetched from elsewhere.
    for outside in ["src=\"http", "href=\"http", "src=\"plots/", "<link "] {
        assert!(!html.contains(outside), "{outside}");
    }
    let output = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let dom = String::from_utf8_lossy(&output.stdout);
    let images = dom.matches("<img ").count();
    assert!(images >= 8, "figures in the page: {images}");
    // The page's own script counts the images the browser decoded.
    assert!(
        dom.contains(&format!("data-figures-decoded=\"{images}\"")),
        "not every figure decoded: {}",
        dom.split("data-figures-decoded")
            .nth(1)
            .unwrap_or("no count")
            .chars()
            .take(20)
            .collect::<String>()
    );
    for heading in [
        "synthetic: ndcg@20 over seeds",
        "synthetic: ndcg@20 paired by query",
        "synthetic: stability",
        "synthetic: quality at an equal budget",
        "Paper tables",
        "Provenance and suites",
    ] {
        assert!(dom.contains(heading), "{heading}");
    }
    assert!(dom.matches("<table>").count() >= 6);
    // Two seeds of near-equal samplers: no winner to bold, a verdict for every comparison.
    assert!(dom.contains("verdict"), "the seed table's verdict column");
}

/// A small suite of uniform and dns whose dns draws `candidates` per negative: the same label `dns`
/// whatever the value, so a changed value stands for a changed dns.
fn gate_suite(dir: &Path, name: &str, candidates: u32) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"
[suite]
name = "gate"
seeds = [0, 1, 2]
ratios = [4]
[train]
epochs = 6
batch_size = 256
lr = 0.01
eval_every = 2
[[domain]]
kind = "rec"
data = {{ format = "synthetic", users = 200, items = 300, interactions_per_user = 15 }}
model = {{ kind = "mf", dim = 16 }}
[[sampler]]
kind = "uniform"
[[sampler]]
kind = "dns"
candidates = {candidates}
"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn the_regression_gate_catches_a_worse_and_a_slower_sampler_and_passes_unchanged_code() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    run_ok(&gate_suite(dir.path(), "base", 10), &base);
    nsbench()
        .args(["baseline", "save", "main"])
        .arg(&base)
        .assert()
        .success();
    let saved = base.join("baselines").join("main");
    assert!(saved.join("results.parquet").is_file() && saved.join("baseline.json").is_file());
    let check = |run: &Path, extra: &[&str]| {
        let summary = run.with_extension("summary.md");
        let output = nsbench()
            .arg("check")
            .arg(run)
            .arg("--baseline")
            .arg(&saved)
            .args(extra)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        if output.status.code() != Some(2) {
            assert_eq!(
                std::fs::read_to_string(&summary).unwrap(),
                stdout,
                "step summary"
            );
        }
        (output.status.code(), stdout)
    };
    let regressed = |text: &str, metric: &str| {
        text.lines()
            .filter(|l| l.starts_with("| **regressed** |"))
            .map(|l| l.split('|').map(str::trim).collect::<Vec<_>>())
            .filter(|cells| cells[5] == metric)
            .map(|cells| cells[3].to_string())
            .collect::<Vec<_>>()
    };

    // The same code again, into a fresh directory: nothing changes.
    let again = dir.path().join("again");
    run_ok(&gate_suite(dir.path(), "again", 10), &again);
    let (code, text) = check(&again, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("0 regressed") && text.contains("passed"),
        "{text}"
    );

    // dns made worse (the hardest of 60 candidates, a fifth of the pool: mostly false negatives; NDCG
    // −37% here), also a little slower (+0.01 s an epoch): checked with a 0.05 s time floor, so only
    // its effectiveness regresses (all 300 items would cost +0.05 s: right at that floor).
    let worse = dir.path().join("worse");
    run_ok(&gate_suite(dir.path(), "worse", 60), &worse);
    let (code, text) = check(&worse, &["--time-floor", "0.05"]);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(regressed(&text, "ndcg@20"), vec!["dns"], "{text}");
    assert!(regressed(&text, "epoch_seconds").is_empty(), "{text}");

    // dns made slower (thousands of candidates scored per negative).
    let slower = dir.path().join("slower");
    run_ok(&gate_suite(dir.path(), "slower", 4000), &slower);
    let (code, text) = check(&slower, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(regressed(&text, "epoch_seconds"), vec!["dns"], "{text}");

    // A missing baseline: an error in strict mode, a note in lenient mode.
    let missing = nsbench()
        .args(["check"])
        .arg(&again)
        .args(["--baseline", "nope"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&missing.get_output().stderr).to_string();
    assert!(stderr.contains("no baseline \"nope\""), "{stderr}");
    nsbench()
        .args(["check"])
        .arg(&again)
        .args(["--baseline", "nope", "--lenient"])
        .assert()
        .success()
        .stdout(predicate::str::contains("skipped"));
    nsbench()
        .args(["check"])
        .arg(&again)
        .args(["--baseline", "main", "--time-ratio", "0.5"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--time-ratio"));
}

#[test]
fn the_latex_tables_compile_with_booktabs() {
    let Some(pdflatex) = which("pdflatex") else {
        return skip_without(
            "pdflatex",
            "NSBENCH_REQUIRE_PDFLATEX",
            "Debian: apt-get install texlive-latex-recommended",
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let out = reported_run(dir.path(), "tex", 2);
    std::fs::write(
        dir.path().join("paper.tex"),
        format!(
            "\\documentclass[twocolumn]{{article}}\n\\usepackage{{booktabs}}\n\\begin{{document}}\n\\input{{{}}}\n\\end{{document}}\n",
            out.join("tables").join("rec.tex").display()
        ),
    )
    .unwrap();
    let output = std::process::Command::new(pdflatex)
        .args(["-interaction=nonstopmode", "-halt-on-error", "paper.tex"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{log}");
    assert!(dir.path().join("paper.pdf").is_file());
    assert!(
        !log.contains("Overfull \\hbox"),
        "a table overflows its column: {log}"
    );
}

/// Effectiveness values of a results directory by (run id, metric), asserting no cell appears twice.
fn effectiveness_by_cell(dir: &Path) -> std::collections::BTreeMap<(String, String), f64> {
    let mut out = std::collections::BTreeMap::new();
    for r in nsbench::store::read_results(dir).unwrap() {
        if r.category == "effectiveness" {
            let key = (r.run_id.clone(), r.metric.clone());
            assert!(out.insert(key, r.value).is_none(), "{} twice", r.run_id);
        }
    }
    out
}

#[test]
fn a_suite_sharded_as_a_slurm_array_merges_to_the_unsharded_results() {
    if !slurm_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), "slurm", 2, "");
    let whole = dir.path().join("whole");
    run_ok(&suite, &whole);
    let sharded = dir.path().join("sharded");
    slurm_array(&suite, &sharded, 4, &|_| {});
    // Four shard logs and one merge log; the merge job ran after them and merged everything.
    let logs: Vec<String> = std::fs::read_dir(sharded.join("slurm"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        logs.iter().filter(|l| l.starts_with("shard-")).count(),
        4,
        "{logs:?}"
    );
    let merge_log = logs
        .iter()
        .find(|l| l.starts_with("merge-"))
        .expect("a merge log");
    let merge_text = std::fs::read_to_string(sharded.join("slurm").join(merge_log)).unwrap();
    assert!(merge_text.contains("merged 8 of 8 cells"), "{merge_text}");
    // Cell for cell the same numbers as one machine's run.
    let (a, b) = (
        effectiveness_by_cell(&whole),
        effectiveness_by_cell(&sharded),
    );
    assert_eq!(a.len(), 8 * EFFECTIVENESS_PER_CELL);
    assert_eq!(a, b);
}

#[test]
fn shards_split_the_grid_and_the_last_one_merges_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), "shards", 2, "");
    let whole = dir.path().join("whole");
    run_ok(&suite, &whole);
    let sharded = dir.path().join("sharded");
    let shard = |spec: &str| {
        nsbench()
            .arg("run")
            .arg(&suite)
            .arg("--out")
            .arg(&sharded)
            .args(["--no-plots", "--shard", spec])
            .env_remove("SLURM_ARRAY_TASK_ID")
            .assert()
            .success()
    };
    let first = shard("0/2");
    let stderr = String::from_utf8_lossy(&first.get_output().stderr).to_string();
    assert!(
        stderr.contains("belong to other shards") && stderr.contains("cells settled"),
        "{stderr}"
    );
    // Half the grid: merging now says what is missing and exits 1.
    nsbench()
        .arg("merge")
        .arg(&sharded)
        .arg("--no-plots")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cells are missing"));
    let last = shard("1/2");
    let stderr = String::from_utf8_lossy(&last.get_output().stderr).to_string();
    assert!(stderr.contains("merged 8 of 8 cells"), "{stderr}");
    assert_eq!(
        effectiveness_by_cell(&whole),
        effectiveness_by_cell(&sharded)
    );
    // The environment names the shard inside a Slurm array task; a bad one is refused.
    nsbench()
        .arg("run")
        .arg(&suite)
        .arg("--out")
        .arg(&sharded)
        .env("SLURM_ARRAY_TASK_ID", "5")
        .env("SLURM_ARRAY_TASK_COUNT", "2")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("shard 5 of 2"));
    nsbench()
        .arg("run")
        .arg(&suite)
        .args(["--shard", "2/2"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("0 ≤ I < N"));
}

/// Ids of the cells stored as finished in `dir`, each file read back whole.
fn finished_cells(dir: &Path) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(dir.join("runs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if nsbench::store::atomic::is_temp_name(&name) {
            continue;
        }
        nsbench::store::read_parquet(&e.path())
            .unwrap_or_else(|err| panic!("{name} is damaged: {err}"));
        out.insert(name.trim_end_matches(".parquet").to_string());
    }
    out
}

#[test]
fn sigkill_of_shards_at_random_moments_loses_only_cells_in_flight() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), "shardkills", 20, "");
    let reference = dir.path().join("reference");
    let started = std::time::Instant::now();
    run_ok(&suite, &reference);
    let typical = started.elapsed().as_secs_f64();
    let out = dir.path().join("out");
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(11);
    let shard_args = ["--no-plots", "--jobs", "1", "--shard"];
    let (mut kills, mut rounds) = (0, 0);
    // Two shards at once; at a random moment one of them (at random) is SIGKILLed. 20 kills that hit a
    // live process.
    while kills < 20 {
        rounds += 1;
        assert!(rounds < 200, "only {kills} kills hit a running shard");
        let before = finished_cells(&out);
        let mut shards: Vec<std::process::Child> = ["0/2", "1/2"]
            .iter()
            .map(|s| {
                let mut args = shard_args.to_vec();
                args.push(s);
                spawn_run(&suite, &out, &args)
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_secs_f64(
            rng.random_range(0.05..1.0) * typical,
        ));
        let victim = rng.random_range(0..2);
        if shards[victim].try_wait().unwrap().is_none() {
            shards[victim].kill().unwrap(); // SIGKILL
            kills += 1;
        }
        for s in &mut shards {
            s.wait().unwrap();
        }
        // Nothing finished before is lost or damaged, whatever was in flight.
        let after = finished_cells(&out);
        assert!(
            before.is_subset(&after),
            "lost: {:?}",
            before.difference(&after)
        );
        if after.len() == 8 {
            // The grid finished between kills: start over so every kill meets live work.
            std::fs::remove_dir_all(&out).unwrap();
        }
    }
    for s in ["0/2", "1/2"] {
        let mut args = shard_args.to_vec();
        args.push(s);
        nsbench()
            .arg("run")
            .arg(&suite)
            .arg("--out")
            .arg(&out)
            .args(&args)
            .assert()
            .success();
    }
    assert_eq!(
        effectiveness_by_cell(&out),
        effectiveness_by_cell(&reference)
    );
    assert!(failures(&out).is_empty());
    assert_eq!(
        temp_files(&out),
        Vec::<PathBuf>::new(),
        "the merge cleans up"
    );
}

/// Submits `suite` as a Slurm array of `shards` plus its merge job into `out` and waits for both.
fn slurm_array(suite: &Path, out: &Path, shards: usize, on_submit: &dyn Fn(&str)) {
    let submitted = nsbench()
        .args(["slurm"])
        .arg(suite)
        .arg("--out")
        .arg(out)
        .args(["--shards", &shards.to_string(), "--submit"])
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&submitted.get_output().stdout).to_string();
    let ids: Vec<&str> = stdout
        .split_whitespace()
        .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert!(ids.len() >= 2, "{stdout}");
    on_submit(ids[0]);
    let jobs = format!("{},{}", ids[0], ids[ids.len() - 1]);
    let started = std::time::Instant::now();
    loop {
        let queue = std::process::Command::new("squeue")
            .args(["-h", "-j", &jobs])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&queue.stdout).trim().is_empty() {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 300,
            "the array and its merge job did not finish in 5 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

fn slurm_here() -> bool {
    if which("sbatch").is_some() && std::env::var_os("SLURM_CONF").is_some() {
        return true;
    }
    skip_without(
        "Slurm (sbatch and SLURM_CONF)",
        "NSBENCH_REQUIRE_SLURM",
        "scripts/slurm-local.sh start; eval \"$(scripts/slurm-local.sh env)\"",
    );
    false
}

#[test]
fn a_shard_cancelled_by_slurm_mid_cell_is_finished_by_submitting_the_array_again() {
    if !slurm_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("cancel.toml");
    std::fs::write(
        &suite,
        "[suite]\nname = \"cancel\"\nseeds = [0, 1]\nratios = [1, 4]\n[train]\nepochs = 40\nbatch_size = 256\n\
         lr = 0.01\neval_every = 10\n[[domain]]\nkind = \"rec\"\n\
         data = { format = \"synthetic\", users = 400, items = 500, interactions_per_user = 20 }\n\
         model = { kind = \"mf\", dim = 16 }\n[[sampler]]\nkind = \"uniform\"\n[[sampler]]\nkind = \"dns\"\n",
    )
    .unwrap();
    let whole = dir.path().join("whole");
    run_ok(&suite, &whole);
    let out = dir.path().join("out");
    // Cancel shard 0 as soon as it is training.
    slurm_array(&suite, &out, 4, &|array| {
        let log = out.join("slurm").join(format!("shard-{array}_0.out"));
        let started = std::time::Instant::now();
        while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains("shard 0/4")) {
            assert!(started.elapsed().as_secs() < 120, "shard 0 never started");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        let cancel = std::process::Command::new("scancel")
            .arg(format!("{array}_0"))
            .status()
            .unwrap();
        assert!(cancel.success());
    });
    let partial = finished_cells(&out);
    assert!(
        partial.len() < 8,
        "the cancelled shard left cells: {partial:?}"
    );
    // The merge job never ran (its afterok cannot be met): no merged results yet.
    assert!(!out.join("results.parquet").is_file());
    slurm_array(&suite, &out, 4, &|_| {});
    assert!(partial.is_subset(&finished_cells(&out)));
    assert_eq!(effectiveness_by_cell(&whole), effectiveness_by_cell(&out));
}

/// A small tmpfs mounted at a temporary directory, unmounted when dropped (root, or passwordless sudo).
struct Tmpfs {
    dir: tempfile::TempDir,
    sudo: bool,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        for sudo in [false, true] {
            let mut cmd = std::process::Command::new(if sudo { "sudo" } else { "mount" });
            if sudo {
                cmd.args(["-n", "mount"]);
            }
            let ok = cmd
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir.path())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Some(Tmpfs { dir, sudo });
            }
        }
        None
    }

    fn resize(&self, size: &str) {
        let mut cmd = std::process::Command::new(if self.sudo { "sudo" } else { "mount" });
        if self.sudo {
            cmd.args(["-n", "mount"]);
        }
        let status = cmd
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let mut cmd = std::process::Command::new(if self.sudo { "sudo" } else { "umount" });
        if self.sudo {
            cmd.args(["-n", "umount"]);
        }
        let _ = cmd.arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_stops_the_run_clearly_and_a_rerun_with_space_finishes() {
    let Some(disk) = Tmpfs::mount("120k") else {
        return skip_without(
            "tmpfs mount",
            "NSBENCH_REQUIRE_TMPFS",
            "needs root or passwordless sudo",
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), "full", 3, "");
    let reference = dir.path().join("reference");
    run_ok(&suite, &reference);
    let out = disk.dir.path().join("results");
    let full = nsbench()
        .arg("run")
        .arg(&suite)
        .arg("--out")
        .arg(&out)
        .arg("--no-plots")
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&full.get_output().stderr).to_string();
    assert!(
        stderr.contains("is full") && stderr.contains("run again"),
        "{stderr}"
    );
    // What was stored is whole; no cell is stored half.
    let stored = finished_cells(&out);
    assert!(stored.len() < 8, "{stored:?}");
    disk.resize("20m");
    run_ok(&suite, &out);
    assert!(stored.is_subset(&finished_cells(&out)));
    assert_eq!(
        effectiveness_by_cell(&out),
        effectiveness_by_cell(&reference)
    );
}

#[test]
fn a_damaged_cell_file_is_caught_at_resume_rerun_and_never_merged() {
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), "damaged", 2, "");
    let reference = dir.path().join("reference");
    run_ok(&suite, &reference);
    let out = dir.path().join("out");
    run_ok(&suite, &out);
    // One run file cut in half, one curve file overwritten with garbage.
    let truncated = out.join("runs").join("rec-synthetic-uniform-r1-s0.parquet");
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(
        out.join("curves")
            .join("rec-synthetic-popularity-r3-s1.parquet"),
        b"not a parquet file",
    )
    .unwrap();
    // Merging now leaves both out and says they are missing.
    nsbench()
        .arg("merge")
        .arg(&out)
        .arg("--no-plots")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("2 cells are missing"));
    let merged = effectiveness_by_cell(&out);
    assert!(!merged
        .keys()
        .any(|(id, _)| id == "rec-synthetic-uniform-r1-s0"));
    // A rerun reads every stored cell back, trains the two damaged ones again and merges all.
    let rerun = run_ok(&suite, &out);
    let stderr = String::from_utf8_lossy(&rerun.get_output().stderr).to_string();
    assert!(stderr.contains("trained 2 cells, skipped 6"), "{stderr}");
    assert_eq!(
        effectiveness_by_cell(&out),
        effectiveness_by_cell(&reference)
    );
}

#[test]
fn the_test_ranking_can_keep_validation_items_and_says_which_it_removed() {
    let dir = tempfile::tempdir().unwrap();
    let suite = |name: &str, extra: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "[suite]\nname = \"ranking\"\nseeds = [0]\nratios = [2]\n[train]\nepochs = 3\nbatch_size = 128\n\
                 lr = 0.01\neval_every = 1\n{extra}\n[[domain]]\nkind = \"rec\"\n\
                 data = {{ format = \"synthetic\", users = 60, items = 80, interactions_per_user = 15 }}\n\
                 split = {{ kind = \"random\", test = 0.2, valid = 0.2 }}\n\
                 model = {{ kind = \"mf\", dim = 8 }}\n[[sampler]]\nkind = \"uniform\"\n"
            ),
        )
        .unwrap();
        path
    };
    let (masked, kept) = (dir.path().join("masked"), dir.path().join("kept"));
    run_ok(&suite("masked", ""), &masked);
    run_ok(&suite("kept", "exclude_from_ranking = \"train\""), &kept);
    let column = |out: &Path| {
        let df = nsbench::store::read_parquet(&out.join("results.parquet")).unwrap();
        df.column("ranking_excludes")
            .unwrap()
            .str()
            .unwrap()
            .get(0)
            .unwrap()
            .to_string()
    };
    assert_eq!(column(&masked), "train-and-valid");
    assert_eq!(column(&kept), "train");
    // Same suite name, so the same random streams: the same training and test items; validation items
    // left in the ranking can only push the test items down.
    let (a, b) = (effectiveness_by_cell(&masked), effectiveness_by_cell(&kept));
    let mut lower = 0;
    for ((id, metric), with_valid_removed) in &a {
        let kept_value = b[&(id.clone(), metric.clone())];
        assert!(
            kept_value <= with_valid_removed + 1e-12,
            "{metric}: {kept_value} > {with_valid_removed}"
        );
        lower += usize::from(kept_value < *with_valid_removed);
    }
    assert!(
        lower > 0,
        "keeping validation items in the ranking changed nothing"
    );
    // A misspelt value names what is allowed.
    nsbench()
        .arg("run")
        .arg(suite("bad", "exclude_from_ranking = \"valid\""))
        .arg("--dry-run")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("exclude_from_ranking"));
}

#[test]
fn check_sampler_runs_the_contract_in_each_domain_of_the_sampler() {
    let out = nsbench()
        .args([
            "check-sampler",
            "{ kind = \"dns\", candidates = 4 }",
            "--k",
            "3",
        ])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    for domain in ["rec", "kg", "graph", "text", "vision"] {
        assert!(
            text.contains(&format!(
                "| {domain} | never a known positive of the query | kept |"
            )),
            "{text}"
        );
    }
    assert!(text.contains("every promise kept"), "{text}");
    // Bad input: exit 2 with what is wrong.
    nsbench()
        .args(["check-sampler", "bernoulli", "--domain", "rec"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("runs in kg only"));
    nsbench()
        .args(["check-sampler", "{ kind = \"dns\", candidates = 0 }"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("candidates"));
}
