//! The report's effectiveness tables: per data set, every (sampler, k) on the headline metric with its
//! seed mean ± std, bootstrap CI and coefficient of variation, and its difference from a reference
//! sampler paired by seed (bootstrap CI of the mean difference, Cohen's d_z, paired t) and paired by
//! query (paired t, Wilcoxon signed-rank, Fisher randomization over the per-query test metrics), each
//! Holm-corrected across its table; † marks a difference significant at the level. Across data sets:
//! average ranks, Friedman, Nemenyi and the critical-difference diagram's groups. And the paper table.

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
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            reference: "uniform".into(),
            level: 0.95,
            resamples: 10_000,
            seed: 0,
            target: 0.95,
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
}

/// Across data sets (Demšar 2006): each sampler's best seed-mean headline metric over k on every data
/// set, its average rank, the Friedman test and the Nemenyi critical difference at 1 − level. Only
/// samplers present on every data set take part; nothing for fewer than two data sets or samplers.
pub fn across_datasets(views: &[DatasetView], s: &Settings) -> Option<(Table, CdDiagram)> {
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
            "Each sampler's best seed-mean headline metric over k on every data set, ranked per data set (1 = best; \
             ties share their mean rank). Friedman χ²_F = {:.2} (p = {}), Iman–Davenport F_F = {:.2} (p = {}); {}.",
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
    Some((
        table,
        CdDiagram {
            ranks: sorted,
            cd,
            groups,
            alpha,
            n_datasets: views.len(),
        },
    ))
}

/// Per-query values of a cell (run id, metric) → (query, value) sorted by query.
pub type PerQueryReader<'a> = dyn Fn(&str, &str) -> Option<Vec<(u32, f32)>> + 'a;

/// One data set's effectiveness: the seed table, the query-paired table (when per-query files exist)
/// and, per entry, whether it differs significantly from the reference (query-paired where possible).
pub struct Effectiveness {
    pub seed_table: Table,
    pub query_table: Option<Table>,
    pub significant: BTreeMap<Key, bool>,
}

/// The reference's entry at `ratio`, else at its largest ratio (for a ratio-free sampler).
fn reference_key(view: &DatasetView, reference: &str, ratio: u32) -> Option<Key> {
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
    let mut significant = BTreeMap::new();
    let seed_table = seed_table(view, s, &mut significant);
    let query_table = query_table(view, s, per_query, &mut significant);
    Effectiveness {
        seed_table,
        query_table,
        significant,
    }
}

/// Mean ± std over seeds, bootstrap CI, CV, and the difference from the reference paired by seed.
fn seed_table(view: &DatasetView, s: &Settings, significant: &mut BTreeMap<Key, bool>) -> Table {
    let values = &view.values;
    // The paired comparisons first, so Holm sees the whole table.
    let mut comparisons = Vec::new();
    for (i, key) in view.order.iter().enumerate() {
        let reference = reference_key(view, &view.reference_for(&key.0, &s.reference), key.1)
            .filter(|_| !view.is_reference(&key.0, &s.reference));
        let Some(reference) = reference.map(|r| &values[&r]) else {
            comparisons.push(None);
            continue;
        };
        let seeds: Vec<u64> = values[key]
            .keys()
            .filter(|k| reference.contains_key(k))
            .copied()
            .collect();
        if seeds.len() < 2 {
            comparisons.push(None);
            continue;
        }
        let a: Vec<f64> = seeds.iter().map(|k| values[key][k]).collect();
        let b: Vec<f64> = seeds.iter().map(|k| reference[k]).collect();
        let diffs: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
        let ci = stats::bootstrap_mean_ci(&diffs, s.level, s.resamples, s.seed + i as u64);
        comparisons.push(Some((stats::paired_t(&a, &b), ci)));
    }
    let raw: Vec<f64> = comparisons.iter().flatten().map(|(t, _)| t.p).collect();
    let mut adjusted = stats::holm(&raw).into_iter();
    let pct = (s.level * 100.0).round();
    let mut table = Table::new(
        format!("{}: {} over seeds", view.name, view.metric),
        format!(
            "Mean ± std over seeds, the {pct}% bootstrap interval of the mean, the coefficient of variation, and the \
             difference from `{}` paired by seed (its {pct}% bootstrap interval, Cohen's d_z, the paired-t p-value \
             after Holm's correction across this table; † significant at {:.2}); a ratio-free sampler (k = all) is \
             compared with the reference's largest k.",
            s.reference,
            1.0 - s.level
        ),
        &[
            "sampler",
            "k",
            "seeds",
            "mean ± std",
            &format!("{pct}% CI"),
            "CV",
            &format!("Δ vs {}", s.reference),
            &format!("{pct}% CI of Δ"),
            "d_z",
            "p (Holm)",
        ],
    );
    for (i, key) in view.order.iter().enumerate() {
        let xs: Vec<f64> = values[key].values().copied().collect();
        let sum = Summary::of(&xs);
        let ci = stats::bootstrap_mean_ci(&xs, s.level, s.resamples, s.seed + 1_000_000 + i as u64);
        let mut row: Vec<Cell> = vec![
            key.0.as_str().into(),
            ratio_label(key.1).into(),
            sum.n.to_string().into(),
            format!("{:.4} ± {:.4}", sum.mean, sum.std).into(),
            format!("[{:.4}, {:.4}]", ci.lower, ci.upper).into(),
            format!("{:.3}", sum.cv).into(),
        ];
        match &comparisons[i] {
            Some((t, dci)) => {
                let p = adjusted.next().expect("one adjusted p per comparison");
                let yes = p < 1.0 - s.level;
                significant.insert(key.clone(), yes);
                row.push(Cell {
                    text: format!("{:+.4}", t.mean_difference),
                    dagger: yes,
                    ..Cell::default()
                });
                row.push(format!("[{:+.4}, {:+.4}]", dci.lower, dci.upper).into());
                row.push(format!("{:.2}", t.effect_size).into());
                row.push(format!("{p:.3}").into());
            }
            None => row.extend((0..4).map(|_| Cell::new("–"))),
        }
        table.rows.push(row);
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
fn query_table(
    view: &DatasetView,
    s: &Settings,
    per_query: &PerQueryReader,
    significant: &mut BTreeMap<Key, bool>,
) -> Option<Table> {
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
        format!("{}: {} paired by query", view.name, view.metric),
        format!(
            "Each test query's {} averaged over the seeds both cells have, then compared with `{}` query by query: \
             mean difference, Cohen's d_z over queries, and the p-values of the paired t, Wilcoxon signed-rank and \
             Fisher randomization ({} sign flips: its smallest p is 1/(flips + 1) before correction) tests, each after \
             Holm's correction across this table; † the paired t is significant at {alpha:.2}.",
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
        let yes = pt[i] < alpha;
        significant.insert(r.key.clone(), yes);
        table.rows.push(vec![
            r.key.0.as_str().into(),
            ratio_label(r.key.1).into(),
            r.queries.to_string().into(),
            format!("{:.4}", r.reference_mean).into(),
            format!("{:.4}", r.mean).into(),
            Cell {
                text: format!("{:+.4}", r.t.mean_difference),
                dagger: yes,
                ..Cell::default()
            },
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

/// The paper table of one data set: samplers × k, mean ± std over seeds, the best of each column in
/// bold, a dagger where the difference from the reference is significant after correction.
pub fn paper_table(view: &DatasetView, s: &Settings, significant: &BTreeMap<Key, bool>) -> Table {
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
            "{}; the best of each column in bold; † differs significantly from {} at the same k ({:.2}, Holm-corrected; \
             paired by query where per-query results exist, else by seed); k = all: ratio-free samplers, compared \
             with the reference's largest k.",
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
                        dagger: significant.get(&key).copied().unwrap_or(false),
                        ..Cell::default()
                    }
                }
                None => "–".into(),
            });
        }
        table.rows.push(row);
    }
    for col in 1..=ratios.len() {
        table.bold_max(col);
    }
    table
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
        across_datasets(&dataset_views(rows, &[]), s).map_or(String::new(), |(t, _)| t.markdown(2))
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
