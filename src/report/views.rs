//! The report's view of a results directory: per data set, every (sampler, k) entry with its seeds'
//! headline metric and run ids, and per cell the curves the stability and budget sections read.

use std::collections::BTreeMap;

use crate::store::{CurveRow, FailureRecord, ResultRow};

/// (sampler label, ratio).
pub type Key = (String, u32);

/// One data set's headline metric for every (sampler, k) and seed.
#[derive(Debug, Clone)]
pub struct DatasetView {
    pub name: String,
    /// The domain's kind (`rec`, `kg`): the first word of the run ids.
    pub domain: String,
    pub metric: String,
    /// Entries in order of first appearance.
    pub order: Vec<Key>,
    pub values: BTreeMap<Key, BTreeMap<u64, f64>>,
    pub run_ids: BTreeMap<Key, BTreeMap<u64, String>>,
    /// Every value of every metric, for figures that need a second one (hardness, fn rate, seconds).
    pub other: BTreeMap<(Key, String), BTreeMap<u64, f64>>,
    /// Failed cells of this data set.
    pub failures: Vec<FailureRecord>,
    /// Each series label's sampler kind.
    pub kinds: std::collections::HashMap<String, String>,
    /// Each series label's loss suffix ("" when the run ids name no loss).
    pub loss_suffixes: std::collections::HashMap<String, String>,
    /// Each sampler's k as chosen on validation (`choose_k`); empty until chosen, or without a
    /// validation split (then the best test mean over k stands in, which favours samplers with more k).
    pub chosen_k: BTreeMap<String, u32>,
}

impl DatasetView {
    /// Seed means of `metric` per entry (the headline metric when `metric` is it).
    pub fn means_of(&self, metric: &str) -> BTreeMap<Key, f64> {
        self.other
            .iter()
            .filter(|((_, m), _)| m == metric)
            .map(|((key, _), seeds)| {
                (
                    key.clone(),
                    seeds.values().sum::<f64>() / seeds.len().max(1) as f64,
                )
            })
            .collect()
    }

    pub fn mean(&self, key: &Key) -> Option<f64> {
        let v = self.values.get(key)?;
        Some(v.values().sum::<f64>() / v.len().max(1) as f64)
    }

    /// Each sampler's entry and its test seed mean, in order of first appearance: at the k chosen on
    /// validation (`choose_k`), else its best test mean over k (in the metric's direction).
    pub fn best_per_sampler(&self) -> Vec<(Key, f64)> {
        let mut out: Vec<(Key, f64)> = Vec::new();
        for key in &self.order {
            let Some(m) = self.mean(key) else { continue };
            if self.chosen_k.get(&key.0).is_some_and(|&k| k != key.1) {
                continue;
            }
            match out.iter_mut().find(|(k, _)| k.0 == key.0) {
                Some(slot) if crate::metrics::better(&self.metric, m, slot.1) => {
                    *slot = (key.clone(), m)
                }
                Some(_) => {}
                None => out.push((key.clone(), m)),
            }
        }
        out
    }

    /// Chooses each sampler's k by its validation curves (the mean over seeds of each cell's first best
    /// validation value), when every cell of the data set has one; true when it did. Comparisons across
    /// data sets then do not reward a sampler for the maximum of several noisy test means.
    pub fn choose_k(&mut self, curves: &BTreeMap<String, CellCurves>) -> bool {
        let mut scores: BTreeMap<Key, f64> = BTreeMap::new();
        for (key, ids) in &self.run_ids {
            let mut values = Vec::new();
            for id in ids.values() {
                let Some(valid) = curves.get(id).map(|c| &c.valid).filter(|v| !v.is_empty()) else {
                    return false;
                };
                let best = crate::metrics::first_best(&self.metric, valid.iter().map(|p| p.1));
                values.push(valid[best.expect("a non-empty curve")].1);
            }
            scores.insert(
                key.clone(),
                values.iter().sum::<f64>() / values.len().max(1) as f64,
            );
        }
        let mut chosen: BTreeMap<String, (u32, f64)> = BTreeMap::new();
        for (key, &score) in &scores {
            let slot = chosen.entry(key.0.clone()).or_insert((key.1, score));
            if crate::metrics::better(&self.metric, score, slot.1) {
                *slot = (key.1, score);
            }
        }
        self.chosen_k = chosen.into_iter().map(|(s, (k, _))| (s, k)).collect();
        true
    }

    /// The reference's series for `label`: the reference under the same loss when the run ids name
    /// losses (`uniform-bce` for `dns-bce`) and it ran, else the reference itself.
    pub fn reference_for(&self, label: &str, reference: &str) -> String {
        match self.loss_suffixes.get(label).filter(|s| !s.is_empty()) {
            Some(suffix) => {
                let same_loss = format!("{reference}-{suffix}");
                if self.values.keys().any(|(s, _)| *s == same_loss) {
                    same_loss
                } else {
                    reference.to_string()
                }
            }
            None => reference.to_string(),
        }
    }

    /// Whether `label` is a series of the reference sampler (under any loss).
    pub fn is_reference(&self, label: &str, reference: &str) -> bool {
        self.reference_for(label, reference) == label
    }

    /// Samplers in order of first appearance.
    pub fn samplers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (s, _) in &self.order {
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
        out
    }
}

/// The metric a data set's tables, figures and regression gate report: its domain's headline metric
/// (`domain::headline`), else the first of its metrics.
pub fn headline<'a>(domain: &str, metrics: impl Iterator<Item = &'a str> + Clone) -> String {
    crate::domain::headline(domain, metrics.clone())
        .or_else(|| metrics.clone().next().map(String::from))
        .unwrap_or_default()
}

/// The views of every data set in `rows`, in order of first appearance.
pub fn dataset_views(rows: &[ResultRow], failures: &[FailureRecord]) -> Vec<DatasetView> {
    let mut names: Vec<&str> = Vec::new();
    for r in rows {
        if !names.contains(&r.dataset.as_str()) {
            names.push(&r.dataset);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let of: Vec<&ResultRow> = rows.iter().filter(|r| r.dataset == name).collect();
            let domain = of.first().map_or("", |r| r.domain()).to_string();
            let metric = headline(
                &domain,
                of.iter()
                    .filter(|r| r.category == "effectiveness")
                    .map(|r| r.metric.as_str()),
            );
            let mut view = DatasetView {
                name: name.to_string(),
                domain: domain.clone(),
                metric: metric.clone(),
                order: Vec::new(),
                values: BTreeMap::new(),
                run_ids: BTreeMap::new(),
                other: BTreeMap::new(),
                failures: failures
                    .iter()
                    .filter(|f| f.run_id.starts_with(&format!("{domain}-{name}-")))
                    .cloned()
                    .collect(),
                kinds: std::collections::HashMap::new(),
                loss_suffixes: std::collections::HashMap::new(),
                chosen_k: BTreeMap::new(),
            };
            for r in of {
                view.loss_suffixes
                    .entry(r.sampler.clone())
                    .or_insert_with(|| r.loss_suffix.clone());
                view.kinds
                    .entry(r.sampler.clone())
                    .or_insert_with(|| r.kind.clone());
                let key = (r.sampler.clone(), r.ratio);
                view.other
                    .entry((key.clone(), r.metric.clone()))
                    .or_default()
                    .insert(r.seed, r.value);
                if r.metric != metric {
                    continue;
                }
                if !view.values.contains_key(&key) {
                    view.order.push(key.clone());
                }
                view.values
                    .entry(key.clone())
                    .or_default()
                    .insert(r.seed, r.value);
                view.run_ids
                    .entry(key)
                    .or_default()
                    .insert(r.seed, r.run_id.clone());
            }
            view
        })
        .collect()
}

/// One cell's curves.
#[derive(Debug, Clone, Default)]
pub struct CellCurves {
    /// Training seconds of each epoch (evaluation excluded).
    pub epoch_seconds: BTreeMap<u32, f64>,
    /// The headline metric on the validation split at each evaluation (empty without one).
    pub valid: Vec<(u32, f64)>,
    /// The headline metric on the test split at each evaluation.
    pub test: Vec<(u32, f64)>,
}

impl CellCurves {
    /// The curve model selection reads: validation where there is one, else test.
    pub fn selection(&self) -> (&[(u32, f64)], &'static str) {
        if self.valid.is_empty() {
            (&self.test, "test")
        } else {
            (&self.valid, "valid")
        }
    }

    /// Cumulative training seconds at the end of `epoch`.
    pub fn seconds_at(&self, epoch: u32) -> f64 {
        self.epoch_seconds.range(..=epoch).map(|(_, s)| s).sum()
    }
}

/// Every cell's curves of `metric` (the headline metric of its data set), by run id.
pub fn cell_curves(
    curves: &[(ResultRow, CurveRow)],
    metric_of: &dyn Fn(&str) -> Option<String>,
) -> BTreeMap<String, CellCurves> {
    let mut out: BTreeMap<String, CellCurves> = BTreeMap::new();
    let mut metric_cache: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (r, c) in curves {
        let metric = metric_cache
            .entry(r.dataset.clone())
            .or_insert_with(|| metric_of(&r.dataset));
        let cell = out.entry(r.run_id.clone()).or_default();
        match (c.split.as_str(), c.metric.as_str()) {
            ("train", "epoch_seconds") => {
                cell.epoch_seconds.insert(c.epoch, c.value);
            }
            ("valid", m) if Some(m) == metric.as_deref() => cell.valid.push((c.epoch, c.value)),
            ("test", m) if Some(m) == metric.as_deref() => cell.test.push((c.epoch, c.value)),
            _ => {}
        }
    }
    for cell in out.values_mut() {
        cell.valid.sort_by_key(|p| p.0);
        cell.test.sort_by_key(|p| p.0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_samplers_k_is_chosen_on_validation_not_on_the_test_it_reports() {
        // dns: k = 1 has the better test mean, k = 4 the better validation: k = 4 is chosen.
        let row = |ratio: u32, seed: u64, value: f64| ResultRow {
            run_id: format!("rec-d-dns-r{ratio}-s{seed}"),
            dataset: "d".into(),
            sampler: "dns".into(),
            kind: "dns".into(),
            loss_suffix: String::new(),
            ratio,
            seed,
            category: "effectiveness".into(),
            metric: "ndcg@20".into(),
            value,
        };
        let rows = vec![
            row(1, 0, 0.30),
            row(1, 1, 0.31),
            row(4, 0, 0.28),
            row(4, 1, 0.29),
        ];
        let mut view = dataset_views(&rows, &[]).remove(0);
        assert_eq!(
            view.best_per_sampler()[0].0 .1,
            1,
            "by test: the larger test mean"
        );
        let mut curves = BTreeMap::new();
        for (ratio, valid) in [(1, 0.20), (4, 0.25)] {
            for seed in 0..2 {
                curves.insert(
                    format!("rec-d-dns-r{ratio}-s{seed}"),
                    CellCurves {
                        valid: vec![(1, valid - 0.05), (2, valid)],
                        ..Default::default()
                    },
                );
            }
        }
        assert!(view.choose_k(&curves));
        let chosen = view.best_per_sampler();
        assert_eq!(chosen[0].0, ("dns".to_string(), 4));
        assert!((chosen[0].1 - 0.285).abs() < 1e-12);
        // Without a validation split nothing is chosen.
        let mut plain = dataset_views(&rows, &[]).remove(0);
        assert!(!plain.choose_k(&BTreeMap::new()));
    }
}
