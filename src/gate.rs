//! The CI regression gate: `nsbench baseline save NAME [DIR]` keeps a run's merged results as a named
//! baseline (`DIR/baselines/NAME/`: `results.parquet`, the resolved suite, `baseline.json` with its
//! provenance), and `nsbench check DIR --baseline NAME` compares the run with it per cell group
//! (data set, sampler, k, metric):
//! - effectiveness (higher is better, or lower for mean rank, alignment, uniformity): the seed-mean
//!   difference and the paired t-test over seeds (the training run is the unit of replication,
//!   `stats::verdict`), its p Holm-corrected across every effectiveness group of the check, so the gate's
//!   family-wise false-alarm rate stays at 1 − level however many groups the suite has; `regressed` when
//!   the corrected p is below 1 − level *and* the drop exceeds the noise threshold (relative to the
//!   baseline), `improved` symmetrically, else `unchanged`. A group with one seed is not tested: it says
//!   so and never fails the gate.
//! - efficiency (seconds per epoch, lower is better): the ratio of seed medians (one seed that met a
//!   busy moment does not move it), judged against the median ratio of the data set's other groups in
//!   the same run, which a busier or slower machine moves as much: `regressed` when both the ratio and
//!   the ratio relative to the others exceed `time_ratio`, `improved` symmetrically, never for a
//!   difference under `time_floor` seconds (5 ms: a scheduler time slice). Unchanged reruns on a
//!   loaded machine measured 1.68× and 1.85× for every group together; the run-wide factor is reported,
//!   and judged only with `absolute_time` (a dedicated runner).
//!
//! Strict mode (criterion's naming): a missing baseline, or a baseline group the run lacks, fails the
//! gate; lenient mode notes them and passes.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::stats;
use crate::store::{self, FailureRecord, ResultRow};
use crate::suite::ratio_label;

pub const BASELINES_DIR: &str = "baselines";

pub fn baseline_dir(dir: &Path, name: &str) -> PathBuf {
    dir.join(BASELINES_DIR).join(name)
}

/// Copies `dir`'s merged results (and resolved suite) into `dir/baselines/<name>/` with a
/// `baseline.json` saying where and when they came from. Returns the baseline's directory.
pub fn save(dir: &Path, name: &str) -> Result<PathBuf> {
    let results = dir.join(store::RESULTS_FILE);
    let rows = store::read_results(dir)?;
    let to = baseline_dir(dir, name);
    std::fs::create_dir_all(&to).with_context(|| format!("creating {}", to.display()))?;
    for file in [
        store::RESULTS_FILE,
        "suite.resolved.toml",
        store::FAILURES_FILE,
    ] {
        let from = dir.join(file);
        if from.is_file() {
            store::atomic::write_bytes(&to.join(file), &std::fs::read(&from)?)?;
        } else {
            store::atomic::remove(&to.join(file))?;
        }
    }
    let provenance: BTreeMap<String, String> = store::read_provenance(dir)?
        .into_iter()
        .map(|(k, v)| (k, v.join(", ")))
        .collect();
    let cells = rows
        .iter()
        .map(|r| r.run_id.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let meta = serde_json::json!({
        "name": name,
        "saved_unix": crate::provenance::unix_now(),
        "from": results.display().to_string(),
        "cells": cells,
        "provenance": provenance,
    });
    store::atomic::write_bytes(
        &to.join("baseline.json"),
        serde_json::to_string_pretty(&meta)?.as_bytes(),
    )?;
    Ok(to)
}

/// How `check` judges.
#[derive(Debug, Clone)]
pub struct Thresholds {
    /// Relative change of an effectiveness mean below which it is noise (0.01 = 1%).
    pub noise: f64,
    /// Confidence level of the t intervals; 1 − level is the gate's family-wise false-alarm rate.
    pub level: f64,
    /// Slower by more than this ratio of seconds per epoch is a regression.
    pub time_ratio: f64,
    /// Seconds per epoch: differences below this never count.
    pub time_floor: f64,
    /// Judge each group's time ratio alone, not relative to the run's other groups.
    pub absolute_time: bool,
    /// A missing baseline or baseline group fails the gate.
    pub strict: bool,
    /// Effectiveness metrics compared (empty: each data set's headline metric).
    pub metrics: Vec<String>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            noise: 0.01,
            level: 0.95,
            time_ratio: 1.5,
            time_floor: 0.005,
            absolute_time: false,
            strict: true,
            metrics: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    Regressed,
    Missing,
    Improved,
    New,
    Unchanged,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Regressed => "regressed",
            Class::Missing => "missing",
            Class::Improved => "improved",
            Class::New => "new",
            Class::Unchanged => "unchanged",
        }
    }
}

/// One compared group.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub dataset: String,
    pub sampler: String,
    pub ratio: u32,
    pub metric: String,
    pub class: Class,
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    /// What decided: the difference and its interval, or the time ratio.
    pub evidence: String,
}

/// The outcome of a check.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub verdicts: Vec<Verdict>,
    pub strict: bool,
    /// Each data set's run-wide epoch-time factor: the median over its groups of current / baseline.
    pub speed: Vec<(String, f64)>,
}

impl Outcome {
    pub fn count(&self, class: Class) -> usize {
        self.verdicts.iter().filter(|v| v.class == class).count()
    }

    /// Whether the gate fails: a regression, or in strict mode a baseline group the run lacks.
    pub fn fails(&self) -> bool {
        self.count(Class::Regressed) > 0 || (self.strict && self.count(Class::Missing) > 0)
    }

    pub fn markdown(&self, baseline: &str, dir: &Path) -> String {
        let verdict = if self.fails() { "FAILED" } else { "passed" };
        let mut out = format!(
            "## nsbench regression check: {verdict}\n\n`{}` against baseline `{baseline}` ({} mode): {} regressed, \
             {} improved, {} unchanged, {} missing, {} new.\n\n",
            dir.display(),
            if self.strict { "strict" } else { "lenient" },
            self.count(Class::Regressed),
            self.count(Class::Improved),
            self.count(Class::Unchanged),
            self.count(Class::Missing),
            self.count(Class::New),
        );
        for (dataset, factor) in &self.speed {
            out.push_str(&format!(
                "Run-wide epoch time on {dataset}: {factor:.2}× the baseline's (the median over its groups: a \
                 busier or slower machine, or a step slower for every sampler; each group is judged against it).\n\n"
            ));
        }
        let shown: Vec<&Verdict> = self
            .verdicts
            .iter()
            .filter(|v| v.class != Class::Unchanged)
            .collect();
        if !shown.is_empty() {
            out.push_str(
                "| class | data set | sampler | k | metric | baseline | current | evidence |\n|---|---|---|---:|---|---:|---:|---|\n",
            );
            let fmt = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.4}"));
            for v in shown {
                out.push_str(&format!(
                    "| **{}** | {} | {} | {} | {} | {} | {} | {} |\n",
                    v.class.as_str(),
                    v.dataset,
                    v.sampler,
                    ratio_label(v.ratio),
                    v.metric,
                    fmt(v.baseline),
                    fmt(v.current),
                    v.evidence
                ));
            }
            out.push('\n');
        }
        out
    }
}

/// (dataset, sampler, ratio, metric) → seed → value.
type Groups = BTreeMap<(String, String, u32, String), BTreeMap<u64, f64>>;

fn groups(rows: &[ResultRow], metrics: &dyn Fn(&str, &ResultRow) -> bool) -> Groups {
    let mut out: Groups = BTreeMap::new();
    for r in rows.iter().filter(|r| metrics(&r.dataset, r)) {
        out.entry((
            r.dataset.clone(),
            r.sampler.clone(),
            r.ratio,
            r.metric.clone(),
        ))
        .or_default()
        .insert(r.seed, r.value);
    }
    out
}

const TIME_METRIC: &str = "epoch_seconds";

fn median(g: &BTreeMap<u64, f64>) -> f64 {
    median_of(g.values().copied().collect())
}

fn median_of(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Compares `current` with `baseline` rows; `failed_now` are the run's failed cells: one that the
/// baseline finished is a regression whatever its group's surviving seeds say.
pub fn compare(
    baseline: &[ResultRow],
    current: &[ResultRow],
    failed_now: &[FailureRecord],
    t: &Thresholds,
) -> Outcome {
    // Each data set's headline metric, from the baseline's metrics.
    let mut headline: BTreeMap<String, String> = BTreeMap::new();
    for rows in [baseline, current] {
        for r in rows {
            headline.entry(r.dataset.clone()).or_insert_with(|| {
                crate::report::headline(
                    r.domain(),
                    rows.iter()
                        .filter(|x| x.dataset == r.dataset && x.category == "effectiveness")
                        .map(|x| x.metric.as_str()),
                )
            });
        }
    }
    let wanted = |dataset: &str, r: &ResultRow| {
        r.metric == TIME_METRIC
            || (r.category == "effectiveness"
                && if t.metrics.is_empty() {
                    headline.get(dataset) == Some(&r.metric)
                } else {
                    t.metrics.contains(&r.metric)
                })
    };
    let (base, cur) = (groups(baseline, &wanted), groups(current, &wanted));
    let mut verdicts = Vec::new();
    let keys: std::collections::BTreeSet<_> = base.keys().chain(cur.keys()).cloned().collect();
    let tested = effectiveness_tests(&base, &cur, t);
    let time_ratios: BTreeMap<_, f64> = base
        .iter()
        .filter(|(k, _)| k.3 == TIME_METRIC)
        .filter_map(|(k, b)| Some((k.clone(), median(cur.get(k)?) / median(b).max(1e-12))))
        .collect();
    for key in keys {
        let mean = |g: &BTreeMap<u64, f64>| g.values().sum::<f64>() / g.len().max(1) as f64;
        let (b, c) = (base.get(&key), cur.get(&key));
        let (class, evidence) = match (b, c) {
            (Some(_), None) => (
                Class::Missing,
                "in the baseline, not in this run".to_string(),
            ),
            (None, Some(_)) => (Class::New, "not in the baseline".to_string()),
            (Some(b), Some(c)) if key.3 == TIME_METRIC => {
                time_verdict(median(b), median(c), others(&time_ratios, &key), t)
            }
            (Some(b), Some(c)) => effectiveness_verdict(b, c, t, tested.get(&key).copied(), &key.3),
            (None, None) => unreachable!("a key comes from one side"),
        };
        verdicts.push(Verdict {
            dataset: key.0,
            sampler: key.1,
            ratio: key.2,
            metric: key.3,
            class,
            baseline: b.map(mean),
            current: c.map(mean),
            evidence,
        });
    }
    verdicts.extend(failed_cells(baseline, failed_now));
    verdicts.sort_by_key(|v| v.class);
    let mut speed = Vec::new();
    for dataset in time_ratios
        .keys()
        .map(|k| &k.0)
        .collect::<std::collections::BTreeSet<_>>()
    {
        let ratios: Vec<f64> = time_ratios
            .iter()
            .filter(|(k, _)| &k.0 == dataset)
            .map(|(_, r)| *r)
            .collect();
        if ratios.len() > 1 {
            speed.push((dataset.clone(), median_of(ratios)));
        }
    }
    Outcome {
        verdicts,
        strict: t.strict,
        speed,
    }
}

/// A regression for every cell that failed now and finished in the baseline (its run id has rows
/// there).
fn failed_cells(baseline: &[ResultRow], failed_now: &[FailureRecord]) -> Vec<Verdict> {
    failed_now
        .iter()
        .filter_map(|f| {
            let finished = baseline.iter().find(|r| r.run_id == f.run_id)?;
            Some(Verdict {
                dataset: finished.dataset.clone(),
                sampler: finished.sampler.clone(),
                ratio: finished.ratio,
                metric: format!("cell (seed {})", f.seed),
                class: Class::Regressed,
                baseline: None,
                current: None,
                evidence: format!(
                    "finished in the baseline, {}",
                    crate::report::describe_failure(f)
                        .replace('|', "\\|")
                        .replace('\n', " ")
                ),
            })
        })
        .collect()
}

/// The median time ratio of the data set's other groups, when it has any.
fn others(
    ratios: &BTreeMap<(String, String, u32, String), f64>,
    key: &(String, String, u32, String),
) -> Option<f64> {
    let rest: Vec<f64> = ratios
        .iter()
        .filter(|(k, _)| k.0 == key.0 && *k != key)
        .map(|(_, r)| *r)
        .collect();
    (!rest.is_empty()).then(|| median_of(rest))
}

/// `others`: the median ratio of the data set's other groups (`None`: judged alone).
fn time_verdict(base: f64, cur: f64, others: Option<f64>, t: &Thresholds) -> (Class, String) {
    let ratio = cur / base.max(1e-12);
    let relative = match others {
        Some(o) if !t.absolute_time => ratio / o.max(1e-12),
        _ => ratio,
    };
    let mut evidence =
        format!("{ratio:.2}× the baseline's seconds per epoch ({base:.3} → {cur:.3} s)");
    if relative != ratio {
        evidence.push_str(&format!(
            ", {relative:.2}× relative to the run's other groups"
        ));
    }
    let class = if (cur - base).abs() < t.time_floor {
        Class::Unchanged
    } else if ratio > t.time_ratio && relative > t.time_ratio {
        Class::Regressed
    } else if ratio < 1.0 / t.time_ratio && relative < 1.0 / t.time_ratio {
        Class::Improved
    } else {
        Class::Unchanged
    };
    (class, evidence)
}

/// Every effectiveness group both sides have, with two or more paired seeds: its comparison (oriented
/// so that positive is better) and its p after Holm's correction across all of them.
fn effectiveness_tests(
    base: &Groups,
    cur: &Groups,
    t: &Thresholds,
) -> BTreeMap<(String, String, u32, String), (stats::Comparison, f64)> {
    let mut compared = Vec::new();
    for (key, b) in base {
        let Some(c) = cur.get(key).filter(|_| key.3 != TIME_METRIC) else {
            continue;
        };
        let sign = if crate::metrics::lower_is_better(&key.3) {
            -1.0
        } else {
            1.0
        };
        let diffs: Vec<f64> = c
            .iter()
            .filter_map(|(s, v)| b.get(s).map(|w| sign * (v - w)))
            .collect();
        if diffs.len() >= 2 {
            let margin = t.noise * (b.values().sum::<f64>() / b.len() as f64).abs();
            compared.push((
                key.clone(),
                stats::compare(&diffs, t.level, margin.max(f64::MIN_POSITIVE)),
            ));
        }
    }
    let adjusted = stats::holm(&compared.iter().map(|(_, c)| c.p).collect::<Vec<_>>());
    compared
        .into_iter()
        .zip(adjusted)
        .map(|((key, c), p)| (key, (c, p)))
        .collect()
}

/// One effectiveness group's class from its Holm-corrected test (None: fewer than two paired seeds).
fn effectiveness_verdict(
    base: &BTreeMap<u64, f64>,
    cur: &BTreeMap<u64, f64>,
    t: &Thresholds,
    tested: Option<(stats::Comparison, f64)>,
    metric: &str,
) -> (Class, String) {
    let mean = |g: &BTreeMap<u64, f64>| g.values().sum::<f64>() / g.len().max(1) as f64;
    let (b, c) = (mean(base), mean(cur));
    let raw = c - b;
    let relative = if b != 0.0 { raw / b.abs() * 100.0 } else { 0.0 };
    let direction = if crate::metrics::lower_is_better(metric) {
        "; lower is better, the interval is of the improvement"
    } else {
        ""
    };
    let Some((comparison, p)) = tested else {
        return (
            Class::Unchanged,
            format!("Δ {raw:+.4} ({relative:+.1}%); one paired seed: not tested (run 2 or more){direction}"),
        );
    };
    let alpha = 1.0 - t.level;
    let beyond_noise = comparison.estimate.abs() > t.noise * b.abs().max(1e-12);
    let class = if p < alpha && beyond_noise && comparison.estimate < 0.0 {
        Class::Regressed
    } else if p < alpha && beyond_noise && comparison.estimate > 0.0 {
        Class::Improved
    } else {
        Class::Unchanged
    };
    (
        class,
        format!(
            "Δ {raw:+.4} ({relative:+.1}%), {:.0}% t CI [{:+.4}, {:+.4}] over {} seeds, p {p:.3} (Holm){direction}",
            t.level * 100.0,
            comparison.ci.lower,
            comparison.ci.upper,
            comparison.n,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(sampler: &str, metric: &str, category: &str, values: &[f64]) -> Vec<ResultRow> {
        values
            .iter()
            .enumerate()
            .map(|(seed, &value)| ResultRow {
                run_id: format!("rec-d-{sampler}-r4-s{seed}"),
                dataset: "d".into(),
                sampler: sampler.into(),
                kind: sampler.into(),
                loss_suffix: String::new(),
                ratio: 4,
                seed: seed as u64,
                category: category.into(),
                metric: metric.into(),
                value,
            })
            .collect()
    }

    fn run(ndcg: &[f64], seconds: &[f64]) -> Vec<ResultRow> {
        let mut out = rows("dns", "ndcg@20", "effectiveness", ndcg);
        out.extend(rows("dns", "epoch_seconds", "efficiency", seconds));
        out
    }

    #[test]
    fn identical_runs_pass_and_planted_changes_are_classified() {
        let base = run(&[0.30, 0.31, 0.32], &[1.0, 1.1, 0.9]);
        let t = Thresholds::default();
        let same = compare(&base, &base, &[], &t);
        assert!(!same.fails());
        assert_eq!(same.count(Class::Unchanged), 2);

        let worse = compare(&base, &run(&[0.27, 0.28, 0.29], &[1.0, 1.1, 0.9]), &[], &t);
        assert!(worse.fails());
        assert_eq!(worse.verdicts[0].class, Class::Regressed);
        assert_eq!(worse.verdicts[0].metric, "ndcg@20");

        let better = compare(&base, &run(&[0.33, 0.34, 0.35], &[1.0, 1.1, 0.9]), &[], &t);
        assert!(!better.fails() && better.count(Class::Improved) == 1);

        let slower = compare(&base, &run(&[0.30, 0.31, 0.32], &[3.0, 3.3, 2.7]), &[], &t);
        assert!(slower.fails());
        assert_eq!(
            (slower.verdicts[0].metric.as_str(), slower.verdicts[0].class),
            ("epoch_seconds", Class::Regressed)
        );

        // A tiny change within the noise threshold, and a noisy one whose interval straddles zero.
        let tiny = compare(
            &base,
            &run(&[0.299, 0.309, 0.319], &[1.0, 1.1, 0.9]),
            &[],
            &t,
        );
        assert!(!tiny.fails());
        let noisy = compare(&base, &run(&[0.20, 0.40, 0.31], &[1.0, 1.1, 0.9]), &[], &t);
        assert!(!noisy.fails(), "{:?}", noisy.verdicts);
        // Scheduler noise below the floor never counts, nor one seed that met a busy moment; a
        // sampler twice as slow on 26 ms epochs (popularity at k = 16 in suites/rec.toml) does.
        let fast = compare(
            &run(&[0.3, 0.3, 0.3], &[0.0035, 0.0036, 0.0034]),
            &run(&[0.3, 0.3, 0.3], &[0.0065, 0.0070, 0.0060]),
            &[],
            &Thresholds::default(),
        );
        assert!(!fast.fails(), "{:?}", fast.verdicts);
        let spike = compare(
            &run(&[0.3, 0.3, 0.3], &[0.026, 0.027, 0.025]),
            &run(&[0.3, 0.3, 0.3], &[0.026, 0.080, 0.025]),
            &[],
            &Thresholds::default(),
        );
        assert!(!spike.fails(), "{:?}", spike.verdicts);
        let twice = compare(
            &run(&[0.3, 0.3, 0.3], &[0.026, 0.027, 0.025]),
            &run(&[0.3, 0.3, 0.3], &[0.052, 0.055, 0.050]),
            &[],
            &Thresholds::default(),
        );
        assert!(twice.fails(), "{:?}", twice.verdicts);
    }

    #[test]
    fn a_slowdown_of_every_group_is_the_machine_and_one_of_a_sampler_is_a_regression() {
        let times = |factors: &[(&str, f64)]| -> Vec<ResultRow> {
            factors
                .iter()
                .flat_map(|(sampler, f)| {
                    rows(
                        sampler,
                        "epoch_seconds",
                        "efficiency",
                        &[0.03 * f, 0.031 * f, 0.029 * f],
                    )
                })
                .collect()
        };
        let base = times(&[("uniform", 1.0), ("dns", 1.0), ("popularity", 1.0)]);
        let t = Thresholds::default();
        // Every group 1.8× (a loaded machine): reported, not judged; judged with absolute_time.
        let busy = times(&[("uniform", 1.8), ("dns", 1.8), ("popularity", 1.8)]);
        let loaded = compare(&base, &busy, &[], &t);
        assert!(!loaded.fails(), "{:?}", loaded.verdicts);
        assert!((loaded.speed[0].1 - 1.8).abs() < 1e-9);
        assert!(loaded
            .markdown("b", Path::new("r"))
            .contains("1.80× the baseline's"));
        let absolute = Thresholds {
            absolute_time: true,
            ..Thresholds::default()
        };
        assert!(compare(&base, &busy, &[], &absolute).fails());
        // One sampler twice as slow, on a machine 1.3× slower: caught, and only it.
        let one = times(&[("uniform", 1.3), ("dns", 2.6), ("popularity", 1.3)]);
        let caught = compare(&base, &one, &[], &t);
        let regressed: Vec<&str> = caught
            .verdicts
            .iter()
            .filter(|v| v.class == Class::Regressed)
            .map(|v| v.sampler.as_str())
            .collect();
        assert_eq!(regressed, ["dns"], "{:?}", caught.verdicts);
        // Two groups, one of them 90× slower: the other is not called faster.
        let base2 = times(&[("uniform", 1.0), ("dns", 1.0)]);
        let two = compare(&base2, &times(&[("uniform", 1.0), ("dns", 90.0)]), &[], &t);
        assert_eq!(two.count(Class::Regressed), 1);
        assert_eq!(two.count(Class::Improved), 0, "{:?}", two.verdicts);
    }

    #[test]
    fn a_lower_is_better_metric_regresses_when_it_rises() {
        let t = Thresholds {
            metrics: vec!["alignment".into()],
            ..Thresholds::default()
        };
        let of = |v: &[f64]| rows("hcl", "alignment", "effectiveness", v);
        let rose = compare(&of(&[0.40, 0.41, 0.42]), &of(&[0.50, 0.51, 0.52]), &[], &t);
        assert_eq!(rose.verdicts[0].class, Class::Regressed, "{rose:?}");
        let fell = compare(&of(&[0.40, 0.41, 0.42]), &of(&[0.30, 0.31, 0.32]), &[], &t);
        assert_eq!(fell.verdicts[0].class, Class::Improved);
        assert!(rose.verdicts[0].evidence.contains("lower is better"));
    }

    #[test]
    fn strict_mode_fails_on_a_group_the_run_lacks_and_lenient_does_not() {
        let base = run(&[0.30, 0.31], &[1.0, 1.0]);
        let mut current = run(&[0.30, 0.31], &[1.0, 1.0]);
        current.retain(|r| r.metric != "ndcg@20");
        let strict = compare(&base, &current, &[], &Thresholds::default());
        assert!(strict.fails() && strict.count(Class::Missing) == 1);
        let lenient = compare(
            &base,
            &current,
            &[],
            &Thresholds {
                strict: false,
                ..Thresholds::default()
            },
        );
        assert!(!lenient.fails());
        let text = strict.markdown("main", Path::new("results/x"));
        assert!(
            text.contains("FAILED") && text.contains("| **missing** |"),
            "{text}"
        );
    }

    #[test]
    fn a_cell_that_failed_now_and_finished_in_the_baseline_is_a_regression() {
        // Seed 2 diverges now: the two survivors alone match the baseline's first two seeds exactly.
        let base = run(&[0.30, 0.31, 0.20], &[1.0, 1.0, 1.0]);
        let current = run(&[0.30, 0.31], &[1.0, 1.0]);
        let failure = FailureRecord {
            run_id: "rec-d-dns-r4-s2".into(),
            domain: "rec".into(),
            sampler: "dns".into(),
            ratio: 4,
            seed: 2,
            stage: "diverged".into(),
            epoch: 3,
            reason: "the training loss is NaN".into(),
        };
        let t = Thresholds::default();
        assert!(
            !compare(&base, &current, &[], &t).fails(),
            "survivors alone pass"
        );
        let gate = compare(&base, &current, std::slice::from_ref(&failure), &t);
        assert!(gate.fails(), "{:?}", gate.verdicts);
        let v = &gate.verdicts[0];
        assert_eq!(
            (v.class, v.metric.as_str()),
            (Class::Regressed, "cell (seed 2)")
        );
        assert!(v.evidence.contains("NaN"), "{}", v.evidence);
        // A cell that failed in the baseline too is no news.
        let mut base_without = base.clone();
        base_without.retain(|r| r.seed != 2);
        assert!(!compare(&base_without, &current, &[failure], &t).fails());
    }

    /// A simulated suite: `groups` (sampler, k) groups of `seeds` seeds, each value the group's mean
    /// times (1 + seed effect + noise), both `sd` relative.
    fn simulated(groups: usize, seeds: u64, sd: f64, stream: u64, drop: f64) -> Vec<ResultRow> {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(stream);
        let noise = Normal::new(0.0, sd).unwrap();
        let mut out = Vec::new();
        for g in 0..groups {
            let mean = 0.1 + 0.02 * g as f64;
            let planted = if g == 0 { 1.0 - drop } else { 1.0 };
            let values: Vec<f64> = (0..seeds)
                .map(|_| mean * planted * (1.0 + noise.sample(&mut rng)))
                .collect();
            let mut rows = rows(&format!("s{g}"), "ndcg@20", "effectiveness", &values);
            for r in &mut rows {
                r.run_id = r.run_id.replace("-r4-", &format!("-{g}-r4-"));
            }
            out.extend(rows);
        }
        out
    }

    #[test]
    fn the_gate_keeps_its_false_alarms_at_alpha_per_check_and_catches_a_planted_drop() {
        // Reruns with other random streams (independent seeds, 2% seed noise), 12 groups of 5 seeds: the
        // family-wise false-alarm rate per check at most 5% (within binomial noise).
        let t = Thresholds::default();
        let checks = 1_000;
        let alarms = (0..checks)
            .filter(|&i| {
                compare(
                    &simulated(12, 5, 0.02, 2 * i, 0.0),
                    &simulated(12, 5, 0.02, 2 * i + 1, 0.0),
                    &[],
                    &t,
                )
                .fails()
            })
            .count() as f64
            / checks as f64;
        assert!(
            alarms < 0.05 + 4.0 * (0.05f64 * 0.95 / checks as f64).sqrt(),
            "false alarms {alarms}"
        );
        // One sampler 5% worse: at 5 seeds the gate misses it most of the time (power about a quarter:
        // differences of 2.8% sd, Holm over 12 groups); at 10 seeds it catches it at least 80% of the time.
        let caught = (0..400)
            .filter(|&i| {
                compare(
                    &simulated(12, 10, 0.02, 10_000 + 2 * i, 0.0),
                    &simulated(12, 10, 0.02, 10_001 + 2 * i, 0.05),
                    &[],
                    &t,
                )
                .fails()
            })
            .count() as f64
            / 400.0;
        assert!(caught >= 0.8, "power {caught}");
        eprintln!("gate simulation: false alarms {alarms}, power on a 5% drop {caught}");
    }
}
