//! The report's effectiveness tables: per data set, every (sampler, k) on the headline metric with its
//! seed mean ± std, t interval and coefficient of variation, and its comparison with a reference sampler
//! paired by seed, the unit of replication (`stats::verdict`): the t interval of the mean difference,
//! Cohen's d_z, the paired-t p after Holm's correction across the table, and a verdict of four
//! (better, worse, equivalent within ±margin by TOST, undecided); † marks better or worse. Beside it a
//! descriptive table paired by query (paired t, Wilcoxon signed-rank, Fisher randomization over the
//! per-query test metrics): which queries differ *with these trained models*, not a verdict about the
//! samplers. Across data sets: average ranks, Friedman, Nemenyi and the critical-difference diagram's
//! groups. And the paper table, whose bold is a column's best only where it beats every other row.

use std::collections::BTreeMap;

use super::table::{Cell, Table};
use super::views::{DatasetView, Key};
use crate::stats::{self, Summary};
use crate::suite::ratio_label;

/// How the tables are computed.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The sampler every other one is compared with (a label of the results, e.g. `uniform`).
    pub reference: String,
    /// Confidence level of the intervals; 1 − level is the significance level.
    pub level: f64,
    pub resamples: usize,
    pub seed: u64,
    /// Time to target: the share of the reference's best value a curve must reach.
    pub target: f64,
    /// Equivalence margin, relative to the reference's mean: ±margin × |mean| (0.02: within 2%).
    pub margin: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            reference: "uniform".into(),
            level: 0.95,
            resamples: 10_000,
            seed: 0,
            target: 0.95,
            margin: 0.02,
        }
    }
}

/// A critical-difference diagram's content (Demšar 2006): samplers by average rank, the critical
/// difference and the bars joining samplers that do not differ significantly.
#[derive(Debug, Clone)]
pub struct CdDiagram {
    /// (sampler, average rank), best (lowest rank) first.
    pub ranks: Vec<(String, f64)>,
    pub cd: Option<f64>,
    /// Runs [first, last] of `ranks` joined by a bar.
    pub groups: Vec<(usize, usize)>,
    pub alpha: f64,
    pub n_datasets: usize,
    /// What joins the groups: `Nemenyi` (the critical difference) or `Wilcoxon–Holm` (pairwise
    /// signed-rank tests, Holm-corrected: Benavoli, Corani & Mangili 2016).
    pub test: &'static str,
}

/// Across data sets (Demšar 2006): each sampler's seed-mean headline metric on every data set at its k
/// chosen on validation (`DatasetView::choose_k`; data sets in `on_test` have no validation split and
/// take the best test mean, said in the caption), its average rank, the Friedman test and the Nemenyi
/// critical difference at 1 − level; beside them the pairwise Wilcoxon signed-rank tests over data sets,
/// Holm-corrected (Benavoli, Corani & Mangili 2016, who show the Nemenyi groups depend on which other
/// samplers are compared). Only samplers present on every data set take part; nothing for fewer than
/// two data sets or samplers. Returns the tables and the two diagrams.
pub fn across_datasets(
    views: &[DatasetView],
    s: &Settings,
    on_test: &[String],
) -> Option<(Vec<Table>, Vec<CdDiagram>)> {
    let best: Vec<BTreeMap<String, f64>> = views
        .iter()
        .map(|v| {
            v.best_per_sampler()
                .into_iter()
                .map(|((s, _), m)| (s, m))
                .collect()
        })
        .collect();
    let mut samplers: Vec<String> = views.iter().flat_map(|v| v.samplers()).collect();
    let mut seen = std::collections::HashSet::new();
    samplers.retain(|x| seen.insert(x.clone()) && best.iter().all(|b| b.contains_key(x)));
    if views.len() < 2 || samplers.len() < 2 {
        return None;
    }
    let scores: Vec<Vec<f64>> = best
        .iter()
        .map(|b| samplers.iter().map(|x| b[x]).collect())
        .collect();
    let ranks = stats::average_ranks(&scores);
    let f = stats::friedman(&ranks, views.len());
    let alpha = ((1.0 - s.level) * 100.0).round() / 100.0;
    let cd = stats::nemenyi_cd(samplers.len(), views.len(), alpha);
    let mut order: Vec<usize> = (0..samplers.len()).collect();
    order.sort_by(|&a, &b| ranks[a].total_cmp(&ranks[b]));
    let names: Vec<String> = views.iter().map(|v| v.name.clone()).collect();
    let mut table = Table::new(
        format!("Across data sets ({})", names.join(", ")),
        format!(
            "Each sampler's seed-mean headline metric on every data set at its k chosen on validation{}, ranked per \
             data set (1 = best; ties share their mean rank). Friedman χ²_F = {:.2} (p = {}), Iman–Davenport F_F = {:.2} (p = {}); {}.",
            if on_test.is_empty() {
                String::new()
            } else {
                format!(
                    " (no validation split on {}: there the best test mean over k, which favours samplers run at more k)",
                    on_test.join(", ")
                )
            },
            f.chi2,
            format_p(f.p_chi2),
            f.f,
            format_p(f.p_f),
            match cd {
                Some(cd) => format!(
                    "Nemenyi critical difference at {alpha:.2}: {cd:.3} (samplers whose average ranks differ by less \
                     are not distinguishable)"
                ),
                None => "no Nemenyi critical difference at this level".into(),
            }
        ) + if views.len() < 10 {
            " With fewer than 10 data sets these tests have little power and the χ² approximation is rough \
              (Demšar 2006 asks for more than 10 data sets and 5 samplers): read them as descriptive."
        } else {
            ""
        },
        &["sampler", "average rank"],
    );
    for &i in &order {
        table.rows.push(vec![
            samplers[i].as_str().into(),
            format!("{:.3}", ranks[i]).into(),
        ]);
    }
    let sorted: Vec<(String, f64)> = order
        .iter()
        .map(|&i| (samplers[i].clone(), ranks[i]))
        .collect();
    let sorted_ranks: Vec<f64> = sorted.iter().map(|p| p.1).collect();
    let groups = cd.map_or_else(Vec::new, |cd| stats::cd_groups(&sorted_ranks, cd));
    let (wilcoxon, wilcoxon_groups) = wilcoxon_holm(&samplers, &scores, &order, alpha);
    let nemenyi = CdDiagram {
        ranks: sorted.clone(),
        cd,
        groups,
        alpha,
        n_datasets: views.len(),
        test: "Nemenyi",
    };
    let pairwise = CdDiagram {
        ranks: sorted,
        cd: None,
        groups: wilcoxon_groups,
        alpha,
        n_datasets: views.len(),
        test: "Wilcoxon–Holm",
    };
    Some((vec![table, wilcoxon], vec![nemenyi, pairwise]))
}

/// Every pair of samplers compared over the data sets by Wilcoxon's signed-rank test, Holm-corrected
/// across the pairs: the table, and the maximal runs of the rank order (`order`) no pair of which
/// differs (the diagram's bars).
fn wilcoxon_holm(
    samplers: &[String],
    scores: &[Vec<f64>],
    order: &[usize],
    alpha: f64,
) -> (Table, Vec<(usize, usize)>) {
    let column = |i: usize| scores.iter().map(|row| row[i]).collect::<Vec<f64>>();
    let mut pairs = Vec::new();
    for a in 0..order.len() {
        for b in a + 1..order.len() {
            let (i, j) = (order[a], order[b]);
            pairs.push((a, b, stats::wilcoxon_signed_rank(&column(i), &column(j))));
        }
    }
    let adjusted = stats::holm(&pairs.iter().map(|p| p.2.p).collect::<Vec<_>>());
    let differ = |a: usize, b: usize| {
        pairs
            .iter()
            .zip(&adjusted)
            .any(|(p, &q)| (p.0, p.1) == (a.min(b), a.max(b)) && q < alpha)
    };
    let mut table = Table::new(
        "Across data sets: pairwise Wilcoxon–Holm",
        format!(
            "Every pair of samplers, their per-data-set seed means compared by Wilcoxon's signed-rank test over the \
             {} data sets, Holm-corrected across the pairs (Benavoli, Corani & Mangili 2016: unlike the Nemenyi \
             groups, a pair's verdict does not depend on which other samplers are compared). The smallest p a \
             signed-rank test over {0} data sets can give is 2/2^{0} = {1:.4}, before Holm's correction.",
            scores.len(),
            2.0 / 2f64.powi(scores.len() as i32),
        ),
        &["sampler", "vs", "mean Δ", "p (Holm)", "verdict"],
    );
    table.numeric = vec![false, false, true, true, false];
    for ((a, b, test), q) in pairs.iter().zip(&adjusted) {
        table.rows.push(vec![
            samplers[order[*a]].as_str().into(),
            samplers[order[*b]].as_str().into(),
            format!("{:+.4}", test.mean_difference).into(),
            format_p(*q).into(),
            if *q < alpha {
                "differ"
            } else {
                "indistinguishable"
            }
            .into(),
        ]);
    }
    // Maximal runs [first, last] of the order within which no pair differs.
    let mut groups: Vec<(usize, usize)> = Vec::new();
    for first in 0..order.len() {
        let mut last = first;
        while last + 1 < order.len() && (first..=last).all(|x| !differ(x, last + 1)) {
            last += 1;
        }
        if last > first && !groups.iter().any(|&(f, l)| f <= first && last <= l) {
            groups.push((first, last));
        }
    }
    (table, groups)
}

/// Per-query values of a cell (run id, metric) → (query, value) sorted by query.
pub type PerQueryReader<'a> = dyn Fn(&str, &str) -> Option<Vec<(u32, f32)>> + 'a;

/// One data set's effectiveness: the seed table, the query-paired (descriptive) table when per-query
/// files exist, and every comparison with the reference made over seeds.
pub struct Effectiveness {
    pub seed_table: Table,
    pub query_table: Option<Table>,
    pub verdicts: BTreeMap<Key, Decided>,
}

/// One comparison with the reference and what it concluded.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The reference entry compared with.
    pub reference: Key,
    pub comparison: stats::Comparison,
    /// The paired-t p after Holm's correction across the table.
    pub p_adjusted: f64,
    pub verdict: stats::Verdict,
}

impl Effectiveness {
    /// Whether `key` is better or worse than the reference (a dagger).
    pub fn decided(&self, key: &Key) -> bool {
        self.verdicts
            .get(key)
            .is_some_and(|d| matches!(d.verdict, stats::Verdict::Better | stats::Verdict::Worse))
    }
}

/// The reference's entry at `ratio`, else at its largest ratio (for a ratio-free sampler).
pub fn reference_key(view: &DatasetView, reference: &str, ratio: u32) -> Option<Key> {
    let exact = (reference.to_string(), ratio);
    if view.values.contains_key(&exact) {
        return Some(exact);
    }
    view.values
        .keys()
        .filter(|(sampler, r)| sampler == reference && *r != crate::suite::ALL)
        .max_by_key(|(_, r)| *r)
        .cloned()
}

pub fn effectiveness(
    view: &DatasetView,
    s: &Settings,
    per_query: &PerQueryReader,
) -> Effectiveness {
    let mut verdicts = BTreeMap::new();
    let seed_table = seed_table(view, s, &mut verdicts);
    let query_table = query_table(view, s, per_query);
    Effectiveness {
        seed_table,
        query_table,
        verdicts,
    }
}

/// +1 where a larger value of `metric` is better, −1 where a smaller one is (mean rank, alignment).
pub fn orientation(metric: &str) -> f64 {
    if crate::metrics::lower_is_better(metric) {
        -1.0
    } else {
        1.0
    }
}

/// The comparison of `key` with `reference` over the seeds both have (None below two), the
/// differences oriented so that positive is better, the margin relative to the reference's mean.
fn compare_entries(
    view: &DatasetView,
    key: &Key,
    reference: &Key,
    s: &Settings,
) -> Option<stats::Comparison> {
    let (a, b) = (&view.values[key], &view.values[reference]);
    let seeds: Vec<u64> = a.keys().filter(|k| b.contains_key(k)).copied().collect();
    if seeds.len() < 2 {
        return None;
    }
    let sign = orientation(&view.metric);
    let diffs: Vec<f64> = seeds.iter().map(|k| sign * (a[k] - b[k])).collect();
    let reference_mean = seeds.iter().map(|k| b[k]).sum::<f64>() / seeds.len() as f64;
    let margin = (s.margin * reference_mean.abs()).max(f64::MIN_POSITIVE);
    Some(stats::compare(&diffs, s.level, margin))
}

/// Mean ± std over seeds, the t interval, CV, and the comparison with the reference paired by seed.
fn seed_table(view: &DatasetView, s: &Settings, verdicts: &mut BTreeMap<Key, Decided>) -> Table {
    let values = &view.values;
    // The paired comparisons first, so Holm sees the whole table.
    let mut compared: Vec<(Key, Key, stats::Comparison)> = Vec::new();
    for key in &view.order {
        let reference = reference_key(view, &view.reference_for(&key.0, &s.reference), key.1)
            .filter(|_| !view.is_reference(&key.0, &s.reference));
        if let Some(reference) = reference {
            if let Some(c) = compare_entries(view, key, &reference, s) {
                compared.push((key.clone(), reference, c));
            }
        }
    }
    let family: Vec<stats::Comparison> = compared.iter().map(|c| c.2).collect();
    for ((key, reference, comparison), (p_adjusted, verdict)) in compared
        .into_iter()
        .zip(stats::decide(&family, 1.0 - s.level))
    {
        verdicts.insert(
            key,
            Decided {
                reference,
                comparison,
                p_adjusted,
                verdict,
            },
        );
    }
    let pct = (s.level * 100.0).round();
    let mut table = Table::new(
        format!("{}: {} over seeds", view.name, view.metric),
        format!(
            "Mean ± std over seeds (the training run is the unit of replication), the {pct}% t interval of the mean, \
             the coefficient of variation, and the comparison with `{}` paired by seed: the mean difference (positive \
             is better{}), its {pct}% t interval, Cohen's d_z, the paired-t p after Holm's correction across this table, \
             and the verdict: better or worse († significant at {:.2}), equivalent (a two one-sided test rejects a \
             difference beyond ±{}% of `{}`'s mean, Holm-corrected), else undecided (more seeds needed). A ratio-free \
             sampler (k = all) is compared with the reference's largest k.",
            s.reference,
            if orientation(&view.metric) < 0.0 { ": lower is better here" } else { "" },
            1.0 - s.level,
            s.margin * 100.0,
            s.reference,
        ),
        &[
            "sampler",
            "k",
            "seeds",
            "mean ± std",
            &format!("{pct}% t CI"),
            "CV",
            &format!("Δ vs {}", s.reference),
            &format!("{pct}% CI of Δ"),
            "d_z",
            "p (Holm)",
            "verdict",
        ],
    );
    table.numeric[10] = false;
    for key in &view.order {
        let xs: Vec<f64> = values[key].values().copied().collect();
        let sum = Summary::of(&xs);
        let ci = stats::t_interval(&xs, s.level);
        let mut row: Vec<Cell> = vec![
            key.0.as_str().into(),
            ratio_label(key.1).into(),
            sum.n.to_string().into(),
            format!("{:.4} ± {:.4}", sum.mean, sum.std).into(),
            if sum.n > 1 {
                format!("[{:.4}, {:.4}]", ci.lower, ci.upper)
            } else {
                "–".into()
            }
            .into(),
            format!("{:.3}", sum.cv).into(),
        ];
        match verdicts.get(key) {
            Some(d) => {
                let c = &d.comparison;
                row.push(Cell {
                    text: format!("{:+.4}", c.estimate),
                    dagger: matches!(d.verdict, stats::Verdict::Better | stats::Verdict::Worse),
                    ..Cell::default()
                });
                row.push(format!("[{:+.4}, {:+.4}]", c.ci.lower, c.ci.upper).into());
                row.push(format!("{:.2}", effect_size(view, key, &d.reference)).into());
                row.push(format!("{:.3}", d.p_adjusted).into());
                row.push(d.verdict.as_str().into());
            }
            None => row.extend((0..5).map(|_| Cell::new("–"))),
        }
        table.rows.push(row);
    }
    if !verdicts.is_empty() {
        let count = |v: stats::Verdict| verdicts.values().filter(|d| d.verdict == v).count();
        let (better, worse) = (count(stats::Verdict::Better), count(stats::Verdict::Worse));
        let rest = format!(
            "{} equivalent within ±{}%, {} undecided",
            count(stats::Verdict::Equivalent),
            s.margin * 100.0,
            count(stats::Verdict::Undecided)
        );
        table.footer.push(if better + worse == 0 {
            format!(
                "Verdict: every sampler is indistinguishable from `{}` at these seeds ({rest}); no row is ordered above another.",
                s.reference
            )
        } else {
            format!("Verdict: {better} better and {worse} worse than `{}`; {rest}.", s.reference)
        });
    }
    if let Some(line) = seeds_a_question_needs(view, verdicts, s) {
        table.footer.push(line);
    }
    // Stability of the ordering: do the seeds rank the (sampler, k) entries alike?
    if let Some(w) = seed_agreement(view) {
        table.footer.push(format!(
            "Seed agreement on the order of these {} rows: Kendall's W = {:.3} over {} seeds (1: every seed orders \
             them alike).",
            view.order.len(),
            w.0,
            w.1
        ));
    }
    table
}

/// What this suite can detect: from the pooled standard deviation of the seed differences of the
/// table's comparisons, the smallest difference a comparison detects at 80% power with the seeds it
/// has, and the seeds the equivalence margin would need (Cohen 1988, the paired t's power).
fn seeds_a_question_needs(
    view: &DatasetView,
    verdicts: &BTreeMap<Key, Decided>,
    s: &Settings,
) -> Option<String> {
    let (mut sum_sq, mut df, mut n_max, mut margin) = (0.0, 0usize, 0usize, 0.0f64);
    for d in verdicts.values() {
        let c = &d.comparison;
        if c.n < 2 {
            continue;
        }
        sum_sq += c.sd * c.sd * (c.n - 1) as f64;
        df += c.n - 1;
        n_max = n_max.max(c.n);
        margin = margin.max(c.margin);
    }
    if df == 0 {
        return None;
    }
    let sd = (sum_sq / df as f64).sqrt();
    let alpha = 1.0 - s.level;
    let detectable = stats::detectable_difference(sd, n_max, alpha, 0.8);
    let needed = stats::seeds_needed(sd, margin, alpha, 0.8, 1_000)
        .map_or("more than 1,000".to_string(), |n| n.to_string());
    Some(format!(
        "The seeds this question needs: the seed differences' pooled sd is {sd:.4} ({} on {}), so with {n_max} seeds \
         a comparison detects a difference of {detectable:.4} at 80% power (two-sided {alpha:.2}, before Holm); a \
         difference the size of the margin ({margin:.4}) needs {needed} seeds.",
        view.metric, view.name
    ))
}

/// Cohen's d_z of `key` against `reference` over their common seeds.
fn effect_size(view: &DatasetView, key: &Key, reference: &Key) -> f64 {
    let (a, b) = (&view.values[key], &view.values[reference]);
    let (xs, ys): (Vec<f64>, Vec<f64>) = a
        .iter()
        .filter_map(|(k, x)| b.get(k).map(|y| (*x, *y)))
        .unzip();
    orientation(&view.metric) * stats::paired_t(&xs, &ys).effect_size
}

/// Kendall's W of the seeds' orderings of the entries, and the number of seeds every entry has.
pub fn seed_agreement(view: &DatasetView) -> Option<(f64, usize)> {
    let common: Vec<u64> = view
        .values
        .values()
        .next()?
        .keys()
        .copied()
        .filter(|k| view.values.values().all(|w| w.contains_key(k)))
        .collect();
    if common.len() < 2 || view.order.len() < 2 {
        return None;
    }
    let by_seed: Vec<Vec<f64>> = common
        .iter()
        .map(|seed| {
            view.order
                .iter()
                .map(|key| view.values[key][seed])
                .collect()
        })
        .collect();
    Some((stats::kendalls_w(&by_seed), common.len()))
}

/// Per query, the mean over `seeds` of a cell's per-query value (queries every seed has).
fn per_query_means(
    view: &DatasetView,
    key: &Key,
    seeds: &[u64],
    per_query: &PerQueryReader,
) -> Option<BTreeMap<u32, f64>> {
    let mut sums: BTreeMap<u32, (f64, usize)> = BTreeMap::new();
    for seed in seeds {
        let run_id = view.run_ids.get(key)?.get(seed)?;
        for (q, v) in per_query(run_id, &view.metric)? {
            let e = sums.entry(q).or_default();
            e.0 += v as f64;
            e.1 += 1;
        }
    }
    Some(
        sums.into_iter()
            .filter(|(_, (_, n))| *n == seeds.len())
            .map(|(q, (s, n))| (q, s / n as f64))
            .collect(),
    )
}

/// The difference from the reference paired by query (IR style): each query's metric averaged over the
/// seeds both cells have, then a paired t, Wilcoxon signed-rank and Fisher randomization test over the
/// queries, each Holm-corrected across the table.
fn query_table(view: &DatasetView, s: &Settings, per_query: &PerQueryReader) -> Option<Table> {
    struct Row {
        key: Key,
        queries: usize,
        reference_mean: f64,
        mean: f64,
        t: stats::PairedTest,
        wilcoxon: stats::PairedTest,
        randomization: stats::PairedTest,
    }
    let mut rows = Vec::new();
    for (i, key) in view.order.iter().enumerate() {
        if view.is_reference(&key.0, &s.reference) {
            continue;
        }
        let Some(reference) = reference_key(view, &view.reference_for(&key.0, &s.reference), key.1)
        else {
            continue;
        };
        let seeds: Vec<u64> = view.values[key]
            .keys()
            .filter(|k| view.values[&reference].contains_key(k))
            .copied()
            .collect();
        let (Some(a), Some(b)) = (
            per_query_means(view, key, &seeds, per_query),
            per_query_means(view, &reference, &seeds, per_query),
        ) else {
            continue;
        };
        let (xs, ys): (Vec<f64>, Vec<f64>) = a
            .iter()
            .filter_map(|(q, x)| b.get(q).map(|y| (*x, *y)))
            .unzip();
        if xs.len() < 2 {
            continue;
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        rows.push(Row {
            key: key.clone(),
            queries: xs.len(),
            reference_mean: mean(&ys),
            mean: mean(&xs),
            t: stats::paired_t(&xs, &ys),
            wilcoxon: stats::wilcoxon_signed_rank(&xs, &ys),
            randomization: stats::fisher_randomization(
                &xs,
                &ys,
                s.resamples.min(5_000),
                s.seed + 2_000_000 + i as u64,
            ),
        });
    }
    if rows.is_empty() {
        return None;
    }
    let holm_of = |f: fn(&Row) -> f64| stats::holm(&rows.iter().map(f).collect::<Vec<_>>());
    let (pt, pw, pr) = (
        holm_of(|r| r.t.p),
        holm_of(|r| r.wilcoxon.p),
        holm_of(|r| r.randomization.p),
    );
    let alpha = 1.0 - s.level;
    let mut table = Table::new(
        format!("{}: {} paired by query (descriptive)", view.name, view.metric),
        format!(
            "Descriptive, not a verdict about the samplers: with these trained models, which queries differ. Queries \
             scored by one trained model are not independent replications of a method (a lucky seed lifts them all), \
             so these p-values ignore the seed-to-seed noise the verdicts above account for, and reject far more often \
             than their level between samplers that differ only in their random streams. Each test query's {} \
             averaged over the seeds both cells have, then compared with `{}` query by query: mean difference, \
             Cohen's d_z over queries, and the p-values of the paired t, Wilcoxon signed-rank and Fisher randomization \
             ({} sign flips: its smallest p is 1/(flips + 1) before correction) tests, each after Holm's correction \
             across this table; ° the paired t is below {alpha:.2}.",
            view.metric,
            s.reference,
            s.resamples.min(5_000)
        ),
        &[
            "sampler",
            "k",
            "queries",
            &format!("{} (ref.)", s.reference),
            "mean",
            "Δ",
            "d_z",
            "p t",
            "p Wilcoxon",
            "p rand.",
        ],
    );
    for (i, r) in rows.iter().enumerate() {
        let low = if pt[i] < alpha { " °" } else { "" };
        table.rows.push(vec![
            r.key.0.as_str().into(),
            ratio_label(r.key.1).into(),
            r.queries.to_string().into(),
            format!("{:.4}", r.reference_mean).into(),
            format!("{:.4}", r.mean).into(),
            format!("{:+.4}{low}", r.t.mean_difference).into(),
            format!("{:.3}", r.t.effect_size).into(),
            format_p(pt[i]).into(),
            format_p(pw[i]).into(),
            format_p(pr[i]).into(),
        ]);
    }
    Some(table)
}

fn format_p(p: f64) -> String {
    if p < 1e-15 {
        // Below what a double-precision tail probability resolves.
        "< 1e-15".into()
    } else if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

/// The paper table of one data set: samplers × k, mean ± std over seeds, a column's best in bold only
/// where it beats every other row of the column (paired by seed, Holm), a dagger where the comparison
/// with the reference is better or worse.
pub fn paper_table(view: &DatasetView, s: &Settings, e: &Effectiveness) -> Table {
    let mut ratios: Vec<u32> = view.order.iter().map(|k| k.1).collect();
    ratios.sort_unstable_by_key(|&r| if r == crate::suite::ALL { u32::MAX } else { r });
    ratios.dedup();
    let n_seeds = view.values.values().map(|v| v.len()).max().unwrap_or(0);
    let header: Vec<String> = std::iter::once("sampler".to_string())
        .chain(ratios.iter().map(|r| format!("k = {}", ratio_label(*r))))
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut table = Table::new(
        format!("{}: {}", view.name, view.metric),
        format!(
            "{}; bold: a column's best, only where it beats every other row of the column (paired by seed, \
             Holm-corrected at {2:.2}: no bold where the best is within noise of another); † better or worse than {} \
             at the same k (paired by seed, Holm-corrected at {2:.2}); k = all: ratio-free samplers, compared with \
             the reference's largest k.",
            if n_seeds == 1 {
                "One seed".to_string()
            } else {
                format!("Mean ± std over {n_seeds} seeds")
            },
            s.reference,
            1.0 - s.level
        ),
        &header,
    );
    for sampler in view.samplers() {
        let mut row: Vec<Cell> = vec![sampler.as_str().into()];
        for &r in &ratios {
            let key = (sampler.clone(), r);
            row.push(match view.values.get(&key) {
                Some(v) => {
                    let sum = Summary::of(&v.values().copied().collect::<Vec<_>>());
                    Cell {
                        text: if sum.n > 1 {
                            format!("{:.4} ± {:.4}", sum.mean, sum.std)
                        } else {
                            format!("{:.4}", sum.mean)
                        },
                        dagger: e.decided(&key),
                        ..Cell::default()
                    }
                }
                None => "–".into(),
            });
        }
        table.rows.push(row);
    }
    let samplers = view.samplers();
    for (col, &r) in ratios.iter().enumerate() {
        let keys: Vec<Key> = samplers
            .iter()
            .map(|x| (x.clone(), r))
            .filter(|k| view.values.contains_key(k))
            .collect();
        if let Some(best) = clear_winner(view, &keys, s) {
            let row = samplers.iter().position(|x| *x == best.0).expect("a row");
            table.rows[row][col + 1].bold = true;
        }
    }
    table
}

/// The entry of `keys` with the best seed mean, when it beats every other one paired by seed (Holm
/// across those comparisons at 1 − level); None when it is within noise of any.
fn clear_winner(view: &DatasetView, keys: &[Key], s: &Settings) -> Option<Key> {
    let sign = orientation(&view.metric);
    let mean = |k: &Key| sign * view.values[k].values().sum::<f64>() / view.values[k].len() as f64;
    let best = keys
        .iter()
        .max_by(|a, b| mean(a).total_cmp(&mean(b)))?
        .clone();
    let family: Vec<stats::Comparison> = keys
        .iter()
        .filter(|k| **k != best)
        .map(|k| compare_entries(view, &best, k, s))
        .collect::<Option<_>>()?;
    if family.is_empty() {
        return None;
    }
    stats::decide(&family, 1.0 - s.level)
        .iter()
        .all(|(_, v)| *v == stats::Verdict::Better)
        .then_some(best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::views::dataset_views;
    use crate::store::ResultRow;

    fn tables(rows: &[ResultRow], s: &Settings) -> String {
        dataset_views(rows, &[])
            .iter()
            .map(|v| {
                effectiveness(v, s, &|_: &str, _: &str| None)
                    .seed_table
                    .markdown(2)
            })
            .collect()
    }

    fn across(rows: &[ResultRow], s: &Settings) -> String {
        across_datasets(&dataset_views(rows, &[]), s, &[]).map_or(String::new(), |(t, _)| {
            t.iter().map(|t| t.markdown(2)).collect()
        })
    }

    fn row(sampler: &str, ratio: u32, seed: u64, value: f64) -> ResultRow {
        ResultRow {
            run_id: format!("rec-d-{sampler}-r{ratio}-s{seed}"),
            dataset: "d".into(),
            sampler: sampler.into(),
            kind: sampler.into(),
            loss_suffix: String::new(),
            ratio,
            seed,
            category: "effectiveness".into(),
            metric: "ndcg@20".into(),
            value,
        }
    }

    #[test]
    fn a_clearly_better_sampler_gets_a_dagger_and_the_reference_none() {
        let mut rows = Vec::new();
        for seed in 0..5u64 {
            let noise = seed as f64 * 0.001;
            rows.push(row("uniform", 4, seed, 0.20 + noise));
            rows.push(row("dns", 4, seed, 0.25 + noise * 1.1));
            rows.push(row(
                "popularity",
                4,
                seed,
                0.20 + noise + if seed % 2 == 0 { 0.002 } else { -0.002 },
            ));
        }
        let text = tables(
            &rows,
            &Settings {
                resamples: 2000,
                ..Default::default()
            },
        );
        let line = |s: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("| {s} |")))
                .unwrap()
                .to_string()
        };
        assert!(
            line("dns").contains("+0.05") && line("dns").contains('†'),
            "{text}"
        );
        assert!(!line("popularity").contains('†'), "{text}");
        assert!(line("uniform").contains("| – | – | – | – |"), "{text}");
        assert!(text.contains("## d: ndcg@20 over seeds"), "{text}");
        // The seeds agree on the order dns > popularity ≈ uniform only partly: W in (0, 1].
        let w: f64 = text
            .split("Kendall's W = ")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(w > 0.5 && w <= 1.0, "{w}");
        assert_eq!(
            text,
            tables(
                &rows,
                &Settings {
                    resamples: 2000,
                    ..Default::default()
                }
            ),
            "seeded"
        );
    }

    /// Seed values of an A/A design: every sampler the same method, its seeds' values sharing the seed
    /// effect (the data and initial model of a seed are shared) plus the sampler's own stream's noise.
    fn a_a_rows(samplers: &[&str], seeds: u64, stream: u64, lift: f64) -> Vec<ResultRow> {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(stream);
        let noise = Normal::new(0.0, 0.004).unwrap();
        let seed_effect: Vec<f64> = (0..seeds).map(|_| 5.0 * noise.sample(&mut rng)).collect();
        let mut rows = Vec::new();
        for (i, name) in samplers.iter().enumerate() {
            for seed in 0..seeds {
                let planted = if i == 1 { lift } else { 0.0 };
                let v = 0.2 + seed_effect[seed as usize] + noise.sample(&mut rng) + planted;
                rows.push(row(name, 4, seed, v));
            }
        }
        rows
    }

    #[test]
    fn an_a_a_design_reads_indistinguishable_everywhere_and_a_planted_effect_wins() {
        let names = ["uniform", "a", "b", "c", "d", "e"];
        let mut decided = 0;
        let mut bold = 0;
        let designs = 200;
        for stream in 0..designs {
            let rows = a_a_rows(&names, 5, stream, 0.0);
            let view = &dataset_views(&rows, &[])[0];
            let s = Settings::default();
            let e = effectiveness(view, &s, &|_: &str, _: &str| None);
            decided += e
                .verdicts
                .values()
                .filter(|d| matches!(d.verdict, stats::Verdict::Better | stats::Verdict::Worse))
                .count();
            let paper = paper_table(view, &s, &e);
            bold += paper.rows.iter().flatten().filter(|c| c.bold).count();
        }
        // Five comparisons a table at α = 0.05 with Holm: at most α of the tables decide any (A/A).
        eprintln!("A/A: {decided} decided comparisons, {bold} bold cells in {designs} tables");
        assert!(
            decided <= 20,
            "{decided} decided comparisons in {designs} A/A tables"
        );
        assert!(bold <= 20, "{bold} bold winners in {designs} A/A tables");
        // A planted lift of 0.02 (5 sd of the sampler noise) for `a` at 5 seeds: better, bold.
        let rows = a_a_rows(&names, 5, 7, 0.02);
        let view = &dataset_views(&rows, &[])[0];
        let s = Settings::default();
        let e = effectiveness(view, &s, &|_: &str, _: &str| None);
        assert_eq!(e.verdicts[&("a".into(), 4)].verdict, stats::Verdict::Better);
        let paper = paper_table(view, &s, &e);
        let a = paper.rows.iter().find(|r| r[0].text == "a").unwrap();
        assert!(a[1].bold && a[1].dagger, "{}", paper.markdown(2));
    }

    #[test]
    fn a_series_under_a_named_loss_is_compared_with_the_reference_under_that_loss() {
        let mut rows = Vec::new();
        for seed in 0..4u64 {
            let noise = seed as f64 * 0.001;
            for (label, loss, value) in [
                ("uniform-bpr", "bpr", 0.20),
                ("uniform-bce", "bce", 0.30),
                ("dns-bpr", "bpr", 0.25),
                ("dns-bce", "bce", 0.25),
            ] {
                let mut r = row(label, 4, seed, value + noise);
                r.kind = label.split('-').next().unwrap().into();
                r.loss_suffix = loss.into();
                rows.push(r);
            }
        }
        let text = tables(&rows, &Settings::default());
        let line = |s: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("| {s} |")))
                .unwrap()
        };
        assert!(line("dns-bpr").contains("| +0.0500"), "{text}");
        assert!(line("dns-bce").contains("| -0.0500"), "{text}");
        assert!(line("uniform-bce").contains("| – | – | – | – |"), "{text}");
    }

    #[test]
    fn across_data_sets_pairs_are_tested_by_wilcoxon_holm() {
        // Eight data sets, dns above uniform on every one, popularity level with uniform.
        let mut rows = Vec::new();
        for d in 0..8 {
            for seed in 0..2u64 {
                for (sampler, v) in [
                    ("uniform", 0.2),
                    ("dns", 0.3),
                    ("popularity", 0.2 + 0.001 * (d % 2) as f64),
                ] {
                    let mut r = row(sampler, 4, seed, v + 0.01 * d as f64);
                    r.dataset = format!("d{d}");
                    rows.push(r);
                }
            }
        }
        let views = dataset_views(&rows, &[]);
        let (tables, diagrams) = across_datasets(&views, &Settings::default(), &[]).unwrap();
        let text = tables[1].markdown(2);
        assert!(
            text.contains("| dns | uniform |") && text.contains("| indistinguishable |"),
            "{text}"
        );
        assert_eq!(diagrams[1].test, "Wilcoxon–Holm");
        // dns alone; uniform and popularity joined by a bar.
        assert_eq!(diagrams[1].groups, vec![(1, 2)], "{text}");
    }

    #[test]
    fn across_data_sets_ranks_each_samplers_best_k() {
        let mut rows = Vec::new();
        for (d, offset) in [("a", 0.0), ("b", 0.1), ("c", 0.2)] {
            for seed in 0..2u64 {
                for (sampler, ratio, v) in [
                    ("uniform", 1, 0.2),
                    ("uniform", 4, 0.3),
                    ("dns", 1, 0.35),
                    ("dns", 4, 0.1),
                ] {
                    let mut r = row(sampler, ratio, seed, v + offset);
                    r.dataset = d.into();
                    rows.push(r);
                }
            }
        }
        let text = across(&rows, &Settings::default());
        // dns's best (k = 1, 0.35) beats uniform's best (k = 4, 0.3) everywhere: ranks 1 and 2.
        assert!(
            text.contains("| dns | 1.000 |") && text.contains("| uniform | 2.000 |"),
            "{text}"
        );
        assert!(text.contains("Friedman χ²_F = 3.00"), "{text}");
        assert_eq!(
            across(&rows[..8], &Settings::default()),
            "",
            "one data set: nothing"
        );
    }
}
