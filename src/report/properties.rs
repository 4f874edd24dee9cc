//! The survey's other three properties, as tables: stability (seed CV, curve roughness, best-epoch
//! spread, failure rate, seed agreement), data independence (do sampler orderings and advantages over
//! the reference carry across data sets? what does each sampler need?) and budget-normalised
//! efficiency (quality at an equal budget of seconds and of negatives, time to a target).

use std::collections::BTreeMap;

use super::significance::Settings;
use super::table::{Cell, Table};
use super::views::{CellCurves, DatasetView, Key};
use crate::stats::{self, Summary};
use crate::suite::{ratio_label, ALL};

/// The seed-mean curve of an entry: (epoch, mean cumulative training seconds, mean value) at the
/// evaluations every seed has.
fn mean_curve(
    view: &DatasetView,
    key: &Key,
    curves: &BTreeMap<String, CellCurves>,
) -> Vec<(u32, f64, f64)> {
    let cells: Vec<&CellCurves> = view
        .run_ids
        .get(key)
        .into_iter()
        .flat_map(|ids| ids.values())
        .filter_map(|id| curves.get(id))
        .collect();
    let Some(first) = cells.first() else {
        return Vec::new();
    };
    let (curve, _) = first.selection();
    curve
        .iter()
        .filter_map(|&(epoch, _)| {
            let mut sum = (0.0, 0.0);
            for c in &cells {
                let value = c.selection().0.iter().find(|p| p.0 == epoch)?.1;
                sum = (sum.0 + c.seconds_at(epoch), sum.1 + value);
            }
            let n = cells.len() as f64;
            Some((epoch, sum.0 / n, sum.1 / n))
        })
        .collect()
}

/// The registry entry of a sampler label (its kind as recorded in the results).
fn kind_of(label: &str, views: &[DatasetView]) -> Option<&'static crate::sampler::SamplerInfo> {
    let kind = views.iter().find_map(|v| v.kinds.get(label))?;
    crate::sampler::REGISTRY
        .iter()
        .find(|info| info.kind == kind)
}

/// Stability per sampler, at its best k.
pub fn stability(view: &DatasetView, curves: &BTreeMap<String, CellCurves>) -> Table {
    let split = view
        .run_ids
        .values()
        .flat_map(|ids| ids.values())
        .find_map(|id| curves.get(id))
        .map_or("test", |c| c.selection().1);
    let mut table = Table::new(
        format!("{}: stability", view.name),
        format!(
            "Per sampler at its best k: the coefficient of variation of {} over seeds; the roughness of the {split} \
             curve after its peak (total variation after the best evaluation over the curve's range, mean over seeds: \
             0 is a curve that stays at its peak); the epoch of the best {split} evaluation (mean ± std over seeds); \
             and the cells of the sampler that failed (diverged or errored) out of all its cells on this data set.",
            view.metric
        ),
        &["sampler", "k", "seeds", "CV", "roughness", "best epoch", "failed"],
    );
    for (key, _) in view.best_per_sampler() {
        let seeds: Vec<f64> = view.values[&key].values().copied().collect();
        let sum = Summary::of(&seeds);
        let (mut rough, mut best_epochs) = (Vec::new(), Vec::new());
        for id in view.run_ids[&key].values() {
            let Some(c) = curves.get(id) else { continue };
            let (curve, _) = c.selection();
            let values: Vec<f64> = curve.iter().map(|p| p.1).collect();
            let r = stats::roughness_after_peak(&values);
            if r.is_finite() {
                rough.push(r.max(0.0));
            }
            // The first best evaluation, as early stopping selects it.
            if let Some(i) = crate::metrics::first_best(&view.metric, curve.iter().map(|p| p.1)) {
                best_epochs.push(curve[i].0 as f64);
            }
        }
        let finished: usize = view
            .run_ids
            .iter()
            .filter(|(k, _)| k.0 == key.0)
            .map(|(_, ids)| ids.len())
            .sum();
        let failed = view.failures.iter().filter(|f| f.sampler == key.0).count();
        let epochs = Summary::of(&best_epochs);
        table.rows.push(vec![
            key.0.as_str().into(),
            ratio_label(key.1).into(),
            sum.n.to_string().into(),
            format!("{:.3}", sum.cv).into(),
            if rough.is_empty() {
                "–".into()
            } else {
                format!("{:.3}", rough.iter().sum::<f64>() / rough.len() as f64).into()
            },
            if best_epochs.is_empty() {
                "–".into()
            } else {
                format!("{:.1} ± {:.1}", epochs.mean, epochs.std).into()
            },
            format!("{failed}/{}", failed + finished).into(),
        ]);
    }
    if let Some((w, n)) = super::significance::seed_agreement(view) {
        table.footer.push(format!(
            "Kendall's W of the {n} seeds' orderings of every (sampler, k): {w:.3} (1: every seed orders them alike)."
        ));
    }
    table
}

/// Data independence: rank correlation of the sampler orderings between every two data sets, and per
/// sampler the sign of its advantage over the reference on each data set, with what it needs.
pub fn independence(views: &[DatasetView], s: &Settings) -> Vec<Table> {
    let mut out = Vec::new();
    if views.len() >= 2 {
        let mut t = Table::new(
            "Data independence: do data sets order the samplers alike?",
            "For every two data sets, the rank correlation of the samplers' best seed-mean headline metric (over k), \
             over the samplers both have: 1 when both data sets order them identically, near 0 when the order on one \
             says nothing about the other.",
            &["data set", "data set", "samplers", "Spearman ρ", "Kendall τ"],
        );
        for (i, a) in views.iter().enumerate() {
            for b in &views[i + 1..] {
                let (ba, bb): (BTreeMap<String, f64>, BTreeMap<String, f64>) = (
                    a.best_per_sampler()
                        .into_iter()
                        .map(|(k, m)| (k.0, m))
                        .collect(),
                    b.best_per_sampler()
                        .into_iter()
                        .map(|(k, m)| (k.0, m))
                        .collect(),
                );
                let (xs, ys): (Vec<f64>, Vec<f64>) = ba
                    .iter()
                    .filter_map(|(sampler, x)| bb.get(sampler).map(|y| (*x, *y)))
                    .unzip();
                if xs.len() < 3 {
                    continue;
                }
                t.rows.push(vec![
                    a.name.as_str().into(),
                    b.name.as_str().into(),
                    xs.len().to_string().into(),
                    format!("{:.3}", stats::spearman(&xs, &ys)).into(),
                    format!("{:.3}", stats::kendall_tau(&xs, &ys)).into(),
                ]);
            }
        }
        if !t.rows.is_empty() {
            out.push(t);
        }
    }
    let header: Vec<String> = std::iter::once("sampler".to_string())
        .chain(views.iter().map(|v| format!("Δ {}", v.name)))
        .chain(["sign agreement".to_string(), "needs".to_string()])
        .collect();
    let mut t = Table::new(
        format!("Data independence: the advantage over {} on each data set", s.reference),
        format!(
            "Per sampler, its best seed mean minus {}'s best on each data set (both over k), how many data sets agree \
             with the majority sign, and what the sampler needs besides the training interactions.",
            s.reference
        ),
        &header.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    t.numeric = (0..t.header.len())
        .map(|i| i > 0 && i < t.header.len() - 1)
        .collect();
    let mut samplers: Vec<String> = Vec::new();
    for v in views {
        for x in v.samplers() {
            if !samplers.contains(&x) && !v.is_reference(&x, &s.reference) {
                samplers.push(x);
            }
        }
    }
    for sampler in samplers {
        let deltas: Vec<Option<f64>> = views
            .iter()
            .map(|v| {
                let best: BTreeMap<String, f64> = v
                    .best_per_sampler()
                    .into_iter()
                    .map(|(k, m)| (k.0, m))
                    .collect();
                Some(best.get(&sampler)? - best.get(&v.reference_for(&sampler, &s.reference))?)
            })
            .collect();
        let known: Vec<f64> = deltas.iter().flatten().copied().collect();
        if known.is_empty() {
            continue;
        }
        let up = known.iter().filter(|d| **d > 0.0).count();
        let down = known.iter().filter(|d| **d < 0.0).count();
        let agreement = if up > down {
            format!("{up}/{} +", known.len())
        } else if down > up {
            format!("{down}/{} −", known.len())
        } else {
            format!("split ({up} +, {down} −)")
        };
        let mut row: Vec<Cell> = vec![sampler.as_str().into()];
        row.extend(deltas.iter().map(|d| match d {
            Some(d) => Cell::new(format!("{d:+.4}")),
            None => Cell::new("–"),
        }));
        row.push(agreement.into());
        row.push(
            kind_of(&sampler, views)
                .map_or("?", |info| info.needs)
                .into(),
        );
        t.rows.push(row);
    }
    if !t.rows.is_empty() {
        out.push(t);
    }
    out
}

/// The negatives a row of `key`'s cells trained on, mean over seeds (`negatives_per_positive`); the
/// nominal k for results that predate it; `None` for a ratio-free sampler without the record.
fn negatives_per_row(view: &DatasetView, key: &Key) -> Option<f64> {
    match view
        .other
        .get(&(key.clone(), "negatives_per_positive".to_string()))
    {
        Some(seeds) if !seeds.is_empty() => Some(seeds.values().sum::<f64>() / seeds.len() as f64),
        _ => (key.1 != ALL).then_some(key.1 as f64),
    }
}

/// Budget-normalised quality: every (sampler, k) read off its seed-mean curve at the reference's
/// budget (seconds and negatives per positive of the reference at its smallest k), and the first epoch
/// and second at which it reaches `target` × the reference's best.
pub fn budget(
    view: &DatasetView,
    s: &Settings,
    curves: &BTreeMap<String, CellCurves>,
) -> Option<Table> {
    let mean_curves: BTreeMap<Key, Vec<(u32, f64, f64)>> = view
        .order
        .iter()
        .map(|k| (k.clone(), mean_curve(view, k, curves)))
        .filter(|(_, c)| !c.is_empty())
        .collect();
    let reference = mean_curves
        .iter()
        .filter(|(k, _)| view.is_reference(&k.0, &s.reference) && k.1 != ALL)
        .min_by_key(|(k, _)| k.1)?;
    let (ref_k, ref_curve) = (reference.0 .1, reference.1);
    let last = ref_curve.last()?;
    let ref_negatives = negatives_per_row(view, reference.0)?;
    let (time_budget, negative_budget) = (last.1, last.0 as f64 * ref_negatives);
    let ref_best = mean_curves
        .iter()
        .filter(|(k, _)| view.is_reference(&k.0, &s.reference))
        .flat_map(|(_, c)| c.iter().map(|p| p.2))
        .fold(f64::NEG_INFINITY, f64::max);
    let target = s.target * ref_best;
    let mut t = Table::new(
        format!("{}: quality at an equal budget", view.name),
        format!(
            "Read off each seed-mean {split} curve of {}: its best value; its value after {time_budget:.2} s of training \
             (the training time of {} at k = {ref_k}; a curve that ended sooner keeps its last value) and after \
             {negative_budget:.0} negatives per positive (the same run's; epochs × the negatives each row actually trained, \
             `negatives_per_positive`, which is k for most samplers but up to 2k for PinSage's curriculum and k plus the \
             mixes for MoCHi; – where the first evaluation came later); and \
             the first epoch and training second at which it reaches {:.0}% of {}'s best ({target:.4}). Separates \
             better negatives from more compute.",
            view.metric,
            s.reference,
            s.target * 100.0,
            s.reference,
            // This data set's own cells: another data set's may have a validation split.
            split = view
                .run_ids
                .values()
                .flat_map(|ids| ids.values())
                .find_map(|id| curves.get(id))
                .map_or("test", |c| c.selection().1),
        ),
        &[
            "sampler",
            "k",
            "best",
            "at equal seconds",
            "at equal negatives",
            "epochs to target",
            "seconds to target",
        ],
    );
    for (key, curve) in view
        .order
        .iter()
        .filter_map(|k| Some((k, mean_curves.get(k)?)))
    {
        let by_time: Vec<(f64, f64)> = curve.iter().map(|p| (p.1, p.2)).collect();
        let by_epoch: Vec<(f64, f64)> = curve.iter().map(|p| (p.0 as f64, p.2)).collect();
        let at = |points: &[(f64, f64)], budget: f64| {
            stats::value_at(points, budget)
                .or_else(|| points.last().filter(|p| p.0 < budget).map(|p| p.1))
        };
        let best = curve.iter().map(|p| p.2).fold(f64::NEG_INFINITY, f64::max);
        let at_negatives = negatives_per_row(view, key).map(|per_row| {
            let by_negatives: Vec<(f64, f64)> =
                curve.iter().map(|p| (p.0 as f64 * per_row, p.2)).collect();
            at(&by_negatives, negative_budget)
        });
        let fmt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.4}"));
        t.rows.push(vec![
            key.0.as_str().into(),
            ratio_label(key.1).into(),
            format!("{best:.4}").into(),
            fmt(at(&by_time, time_budget)).into(),
            fmt(at_negatives.flatten()).into(),
            stats::time_to_target(&by_epoch, target)
                .map_or("never".into(), |e| format!("{e:.1}"))
                .into(),
            stats::time_to_target(&by_time, target)
                .map_or("never".into(), |e| format!("{e:.2}"))
                .into(),
        ]);
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ResultRow;

    fn row(sampler: &str, seed: u64, metric: &str, value: f64) -> ResultRow {
        ResultRow {
            run_id: format!("rec-d-{sampler}-r2-s{seed}"),
            dataset: "d".into(),
            sampler: sampler.into(),
            kind: sampler.into(),
            loss_suffix: String::new(),
            ratio: 2,
            seed,
            category: if metric == "ndcg@20" {
                "effectiveness"
            } else {
                "sampler"
            }
            .into(),
            metric: metric.into(),
            value,
        }
    }

    #[test]
    fn equal_negatives_count_what_each_row_actually_trained() {
        // At k = 2 uniform trains 2 negatives a row, pagerank 4 (its curriculum's hard ones on top):
        // at uniform's budget after 4 epochs (8 negatives), pagerank is read at epoch 2, not 4.
        let mut rows = Vec::new();
        let mut curves = BTreeMap::new();
        for (sampler, per_row) in [("uniform", 2.0), ("pagerank", 4.0)] {
            for seed in 0..2 {
                rows.push(row(sampler, seed, "ndcg@20", 0.5));
                rows.push(row(sampler, seed, "negatives_per_positive", per_row));
                let test: Vec<(u32, f64)> = (1..=4).map(|e| (e, 0.1 * e as f64)).collect();
                curves.insert(
                    format!("rec-d-{sampler}-r2-s{seed}"),
                    CellCurves {
                        epoch_seconds: (1..=4).map(|e| (e, 1.0)).collect(),
                        valid: Vec::new(),
                        test,
                    },
                );
            }
        }
        let view = &super::super::views::dataset_views(&rows, &[])[0];
        let table = budget(view, &Settings::default(), &curves).unwrap();
        let at_negatives = |sampler: &str| {
            table.rows.iter().find(|r| r[0].text == sampler).unwrap()[4]
                .text
                .clone()
        };
        assert_eq!(at_negatives("uniform"), "0.4000");
        assert_eq!(at_negatives("pagerank"), "0.2000");
    }
}
