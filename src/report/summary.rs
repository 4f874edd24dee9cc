//! Aggregation over seeds: mean and sample standard deviation of every (domain, sampler, ratio, metric).

use std::collections::BTreeMap;

use crate::store::ResultRow;
use crate::suite::ratio_label;

/// The sampler a label's kind provably equals at k = 1 (its first word), if any.
fn same_at_k1(label: &str) -> Option<&'static str> {
    crate::sampler::REGISTRY
        .iter()
        .filter(|i| label == i.kind || label.starts_with(&format!("{}-", i.kind)))
        .max_by_key(|i| i.kind.len())
        .and_then(|i| i.same_at_k1)
        .map(|s| s.split(' ').next().unwrap_or(s))
}

#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    /// The domain kind (`rec`, `kg`, ...).
    pub domain: String,
    pub dataset: String,
    pub sampler: String,
    pub ratio: u32,
    pub category: String,
    pub metric: String,
    pub mean: f64,
    /// Sample standard deviation over seeds (0 with one seed).
    pub std: f64,
    pub n_seeds: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub rows: Vec<SummaryRow>,
    /// Each series label's sampler kind.
    pub kinds: std::collections::HashMap<String, String>,
}

/// Mean and std of `xs`.
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// (domain, sampler, ratio, metric).
type GroupKey = (String, String, u32, String);

/// Groups rows by (domain, sampler, ratio, metric) in order of first appearance.
pub fn summarize(rows: &[ResultRow]) -> Summary {
    let mut order = Vec::new();
    let mut groups: BTreeMap<GroupKey, (String, String, Vec<f64>)> = BTreeMap::new();
    let mut kinds = std::collections::HashMap::new();
    for r in rows {
        kinds
            .entry(r.sampler.clone())
            .or_insert_with(|| r.kind.clone());
        let key = (
            r.dataset.clone(),
            r.sampler.clone(),
            r.ratio,
            r.metric.clone(),
        );
        groups
            .entry(key.clone())
            .or_insert_with(|| {
                order.push(key);
                (r.domain().to_string(), r.category.clone(), Vec::new())
            })
            .2
            .push(r.value);
    }
    let rows = order
        .into_iter()
        .map(|key| {
            let (domain, category, values) = &groups[&key];
            let (mean, std) = mean_std(values);
            SummaryRow {
                domain: domain.clone(),
                dataset: key.0,
                sampler: key.1,
                ratio: key.2,
                category: category.clone(),
                metric: key.3,
                mean,
                std,
                n_seeds: values.len(),
            }
        })
        .collect();
    Summary { rows, kinds }
}

impl Summary {
    /// Distinct values in order of first appearance.
    pub fn distinct<T: PartialEq + Clone>(&self, f: impl Fn(&SummaryRow) -> T) -> Vec<T> {
        let mut out = Vec::new();
        for r in &self.rows {
            let v = f(r);
            if !out.contains(&v) {
                out.push(v);
            }
        }
        out
    }

    pub fn get(
        &self,
        domain: &str,
        sampler: &str,
        ratio: u32,
        metric: &str,
    ) -> Option<&SummaryRow> {
        self.rows.iter().find(|r| {
            r.dataset == domain && r.sampler == sampler && r.ratio == ratio && r.metric == metric
        })
    }

    /// One table per domain: sampler × ratio rows; the largest-K recall and NDCG, MRR, and time per epoch.
    pub fn markdown_table(&self) -> String {
        let mut out = String::new();
        for domain in self.distinct(|r| r.dataset.clone()) {
            let mut metrics: Vec<String> = Vec::new();
            for r in self.rows.iter().filter(|r| r.dataset == domain) {
                if !metrics.contains(&r.metric) {
                    metrics.push(r.metric.clone());
                }
            }
            let largest = |prefix: &str| {
                metrics
                    .iter()
                    .filter_map(|m| {
                        m.strip_prefix(prefix)
                            .and_then(|k| k.parse::<usize>().ok())
                            .map(|k| (k, m.clone()))
                    })
                    .max()
                    .map(|(_, m)| m)
            };
            let mut cols: Vec<String> = [largest("recall@"), largest("ndcg@")]
                .into_iter()
                .flatten()
                .collect();
            // Link prediction's sampled protocol (graph).
            cols.extend(
                ["auc", "ap"]
                    .map(String::from)
                    .into_iter()
                    .filter(|m| metrics.contains(m)),
            );
            if metrics.iter().any(|m| m == "mrr") {
                cols.push("mrr".into());
            }
            // Word embeddings (text): similarity, analogies, neighbours, not the coverages; image
            // representations (vision): kNN and linear-probe accuracy.
            cols.extend(
                metrics
                    .iter()
                    .filter(|m| {
                        m.ends_with("-spearman")
                            || m.as_str() == "analogy-accuracy"
                            || m.starts_with("nn-precision@")
                            || m.as_str() == "knn-accuracy"
                            || m.as_str() == "linear-accuracy"
                    })
                    .cloned(),
            );
            // Link prediction's hits (kg).
            cols.extend(
                ["hits@1", "hits@10"]
                    .map(String::from)
                    .into_iter()
                    .filter(|m| metrics.contains(m)),
            );
            cols.extend(["epoch_seconds", "sampler_share"].map(String::from));
            out.push_str(&format!(
                "## {domain}\n\n| sampler | k | seeds | {} |\n|---|---:|---:|",
                cols.join(" | ")
            ));
            out.push_str(&"---:|".repeat(cols.len()));
            out.push('\n');
            for sampler in self.distinct(|r| r.sampler.clone()) {
                for ratio in self.distinct(|r| r.ratio) {
                    let Some(first) = self
                        .rows
                        .iter()
                        .find(|r| r.dataset == domain && r.sampler == sampler && r.ratio == ratio)
                    else {
                        continue;
                    };
                    let note = same_at_k1(&sampler)
                        .filter(|_| ratio == 1)
                        .map(|other| format!(" (= {other} at k = 1)"))
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "| {sampler}{note} | {} | {} |",
                        ratio_label(ratio),
                        first.n_seeds
                    ));
                    for c in &cols {
                        match self.get(&domain, &sampler, ratio, c) {
                            Some(r) if c == "sampler_share" => {
                                out.push_str(&format!(" {:.1}% |", 100.0 * r.mean))
                            }
                            Some(r) if c == "epoch_seconds" => {
                                out.push_str(&format!(" {:.3} ± {:.3} |", r.mean, r.std))
                            }
                            Some(r) => out.push_str(&format!(" {:.4} ± {:.4} |", r.mean, r.std)),
                            None => out.push_str(" – |"),
                        }
                    }
                    out.push('\n');
                }
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(sampler: &str, seed: u64, value: f64) -> ResultRow {
        ResultRow {
            run_id: format!("{sampler}-{seed}"),
            dataset: "d".into(),
            sampler: sampler.into(),
            kind: sampler.into(),
            loss_suffix: String::new(),
            ratio: 4,
            seed,
            category: "effectiveness".into(),
            metric: "recall@20".into(),
            value,
        }
    }

    #[test]
    fn mean_and_sample_std_over_seeds() {
        let s = summarize(&[
            row("u", 0, 1.0),
            row("u", 1, 2.0),
            row("u", 2, 3.0),
            row("p", 0, 5.0),
        ]);
        let u = s.get("d", "u", 4, "recall@20").unwrap();
        assert_eq!((u.mean, u.std, u.n_seeds), (2.0, 1.0, 3));
        assert_eq!(s.get("d", "p", 4, "recall@20").unwrap().std, 0.0);
        assert_eq!(s.distinct(|r| r.sampler.clone()), vec!["u", "p"]);
        assert!(s
            .markdown_table()
            .contains("| u | 4 | 3 | 2.0000 ± 1.0000 |"));
    }

    #[test]
    fn tables_say_all_for_ratio_free_cells_and_name_k1_equivalences() {
        let mut a = row("full", 0, 0.5);
        a.ratio = crate::suite::ALL;
        let mut b = row("self-adversarial", 0, 0.4);
        b.ratio = 1;
        let table = summarize(&[a, b]).markdown_table();
        assert!(table.contains("| full | all | 1 |"), "{table}");
        assert!(
            table.contains("| self-adversarial (= uniform at k = 1) | 1 |"),
            "{table}"
        );
    }
}
