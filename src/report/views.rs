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

    /// Each sampler's best entry (highest seed mean over k), in order of first appearance.
    pub fn best_per_sampler(&self) -> Vec<(Key, f64)> {
        let mut out: Vec<(Key, f64)> = Vec::new();
        for key in &self.order {
            let Some(m) = self.mean(key) else { continue };
            match out.iter_mut().find(|(k, _)| k.0 == key.0) {
                Some(slot) if m > slot.1 => *slot = (key.clone(), m),
                Some(_) => {}
                None => out.push((key.clone(), m)),
            }
        }
        out
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
/// (`metrics::headline`), else the first of its metrics.
pub fn headline<'a>(domain: &str, metrics: impl Iterator<Item = &'a str> + Clone) -> String {
    crate::metrics::headline(domain, metrics.clone())
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
