//! The report's statistics tables: per data set, every (sampler, k) on the headline metric with its seed
//! mean ± std, bootstrap CI and coefficient of variation, and its paired difference from a reference
//! sampler: paired by seed, with the bootstrap CI of the mean difference, Cohen's d_z and the paired-t
//! p-value after Holm's correction across the table; † marks a difference significant at the level.

use std::collections::BTreeMap;

use crate::stats::{self, Summary};
use crate::store::ResultRow;
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
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            reference: "uniform".into(),
            level: 0.95,
            resamples: 10_000,
            seed: 0,
        }
    }
}

/// The metric a data set's table reports: MRR for link prediction (its rows have `hits@10`), else the
/// NDCG at the largest cut-off, else MRR.
fn headline(rows: &[&ResultRow]) -> String {
    if rows.iter().any(|r| r.metric == "hits@10") {
        return "mrr".into();
    }
    rows.iter()
        .filter_map(|r| {
            r.metric
                .strip_prefix("ndcg@")
                .and_then(|k| k.parse::<usize>().ok())
        })
        .max()
        .map_or("mrr".into(), |k| format!("ndcg@{k}"))
}

/// The data sets of `rows`, in order of first appearance.
fn datasets(rows: &[ResultRow]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for r in rows {
        if !out.contains(&r.dataset.as_str()) {
            out.push(&r.dataset);
        }
    }
    out
}

/// Across data sets (Demšar 2006): each sampler's best seed-mean headline metric over k on every data
/// set, its average rank, the Friedman test and the Nemenyi critical difference at 1 − level. Only
/// samplers present on every data set take part; nothing is written for fewer than two data sets or
/// samplers.
pub fn across_datasets(rows: &[ResultRow], s: &Settings) -> String {
    let datasets = datasets(rows);
    // dataset → sampler → best mean over k.
    let mut best: Vec<BTreeMap<String, f64>> = Vec::new();
    let mut samplers: Vec<String> = Vec::new();
    for dataset in &datasets {
        let of: Vec<&ResultRow> = rows.iter().filter(|r| r.dataset == *dataset).collect();
        let metric = headline(&of);
        let mut sums: BTreeMap<(String, u32), (f64, usize)> = BTreeMap::new();
        for r in of.iter().filter(|r| r.metric == metric) {
            let e = sums.entry((r.sampler.clone(), r.ratio)).or_default();
            e.0 += r.value;
            e.1 += 1;
            if !samplers.contains(&r.sampler) {
                samplers.push(r.sampler.clone());
            }
        }
        let mut by_sampler: BTreeMap<String, f64> = BTreeMap::new();
        for ((sampler, _), (sum, n)) in sums {
            let mean = sum / n as f64;
            let slot = by_sampler.entry(sampler).or_insert(f64::NEG_INFINITY);
            *slot = slot.max(mean);
        }
        best.push(by_sampler);
    }
    samplers.retain(|x| best.iter().all(|b| b.contains_key(x)));
    if datasets.len() < 2 || samplers.len() < 2 {
        return String::new();
    }
    let scores: Vec<Vec<f64>> = best
        .iter()
        .map(|b| samplers.iter().map(|x| b[x]).collect())
        .collect();
    let ranks = stats::average_ranks(&scores);
    let f = stats::friedman(&ranks, datasets.len());
    let alpha = 1.0 - s.level;
    let cd = stats::nemenyi_cd(
        samplers.len(),
        datasets.len(),
        (alpha * 100.0).round() / 100.0,
    );
    let mut order: Vec<usize> = (0..samplers.len()).collect();
    order.sort_by(|&a, &b| ranks[a].total_cmp(&ranks[b]));
    let mut out = format!(
        "## Across data sets ({})\n\nEach sampler's best seed-mean headline metric over k on every data set, ranked per data \
         set (1 = best; ties share their mean rank). Friedman χ²_F = {:.2} (p = {:.3}), Iman–Davenport F_F = {:.2} \
         (p = {:.3}); {}.\n\n| sampler | average rank |\n|---|---:|\n",
        datasets.join(", "),
        f.chi2,
        f.p_chi2,
        f.f,
        f.p_f,
        match cd {
            Some(cd) => format!(
                "Nemenyi critical difference at {alpha:.2}: {cd:.3} (samplers whose average ranks differ by less are not \
                 distinguishable)"
            ),
            None => "no Nemenyi critical difference for this many samplers or this level".into(),
        }
    );
    for i in order {
        out.push_str(&format!("| {} | {:.3} |\n", samplers[i], ranks[i]));
    }
    out.push('\n');
    out
}

/// One Markdown section per data set.
pub fn tables(rows: &[ResultRow], s: &Settings) -> String {
    let datasets = datasets(rows);
    let mut out = String::new();
    for dataset in datasets {
        let of: Vec<&ResultRow> = rows.iter().filter(|r| r.dataset == dataset).collect();
        let metric = headline(&of);
        // (sampler, ratio) in order of appearance → seed → value.
        let mut order: Vec<(String, u32)> = Vec::new();
        let mut values: BTreeMap<(String, u32), BTreeMap<u64, f64>> = BTreeMap::new();
        for r in of.iter().filter(|r| r.metric == metric) {
            let key = (r.sampler.clone(), r.ratio);
            if !values.contains_key(&key) {
                order.push(key.clone());
            }
            values.entry(key).or_default().insert(r.seed, r.value);
        }
        let reference_at = |ratio: u32| {
            values.get(&(s.reference.clone(), ratio)).or_else(|| {
                values
                    .iter()
                    .filter(|((sampler, _), _)| *sampler == s.reference)
                    .max_by_key(|((_, r), _)| *r)
                    .map(|(_, v)| v)
            })
        };
        // The paired comparisons first, so Holm sees the whole table.
        let mut comparisons = Vec::new();
        for (i, key) in order.iter().enumerate() {
            let (Some(reference), true) = (reference_at(key.1), key.0 != s.reference) else {
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
        out.push_str(&format!(
            "## {dataset}: {metric}\n\nMean ± std over seeds, the {pct}% bootstrap interval of the mean, and the \
             difference from `{}` paired by seed (its {pct}% bootstrap interval, Cohen's d_z, the paired-t \
             p-value after Holm's correction across this table; † significant at {:.2}); a ratio-free sampler \
             (k = all) is compared with the reference's largest k.\n\n\
             | sampler | k | seeds | mean ± std | {pct}% CI | CV | Δ vs {} | {pct}% CI of Δ | d_z | p (Holm) |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
            s.reference,
            1.0 - s.level,
            s.reference
        ));
        for (i, key) in order.iter().enumerate() {
            let xs: Vec<f64> = values[key].values().copied().collect();
            let sum = Summary::of(&xs);
            let ci =
                stats::bootstrap_mean_ci(&xs, s.level, s.resamples, s.seed + 1_000_000 + i as u64);
            let compared = match &comparisons[i] {
                Some((t, dci)) => {
                    let p = adjusted.next().expect("one adjusted p per comparison");
                    let dagger = if p < 1.0 - s.level { " †" } else { "" };
                    format!(
                        "{:+.4}{dagger} | [{:+.4}, {:+.4}] | {:.2} | {:.3}",
                        t.mean_difference, dci.lower, dci.upper, t.effect_size, p
                    )
                }
                None => "– | – | – | –".into(),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {:.4} ± {:.4} | [{:.4}, {:.4}] | {:.3} | {compared} |\n",
                key.0,
                ratio_label(key.1),
                sum.n,
                sum.mean,
                sum.std,
                ci.lower,
                ci.upper,
                sum.cv
            ));
        }
        // Stability of the ordering: do the seeds rank the (sampler, k) entries alike?
        let common: Vec<u64> = values
            .values()
            .next()
            .map(|v| {
                v.keys()
                    .copied()
                    .filter(|k| values.values().all(|w| w.contains_key(k)))
                    .collect()
            })
            .unwrap_or_default();
        if common.len() >= 2 && order.len() >= 2 {
            let by_seed: Vec<Vec<f64>> = common
                .iter()
                .map(|seed| order.iter().map(|key| values[key][seed]).collect())
                .collect();
            out.push_str(&format!(
                "\nSeed agreement on the order of these {} rows: Kendall's W = {:.3} over {} seeds (1: every seed \
                 orders them alike).\n",
                order.len(),
                stats::kendalls_w(&by_seed),
                common.len()
            ));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(sampler: &str, ratio: u32, seed: u64, value: f64) -> ResultRow {
        ResultRow {
            run_id: format!("rec-d-{sampler}-r{ratio}-s{seed}"),
            dataset: "d".into(),
            sampler: sampler.into(),
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
        assert!(text.contains("## d: ndcg@20"));
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
        let text = across_datasets(&rows, &Settings::default());
        // dns's best (k = 1, 0.35) beats uniform's best (k = 4, 0.3) everywhere: ranks 1 and 2.
        assert!(
            text.contains("| dns | 1.000 |") && text.contains("| uniform | 2.000 |"),
            "{text}"
        );
        assert!(text.contains("Friedman χ²_F = 3.00"), "{text}");
        assert_eq!(
            across_datasets(&rows[..8], &Settings::default()),
            "",
            "one data set: nothing"
        );
    }
}
