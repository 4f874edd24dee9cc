//! Sampled against full-ranking protocols: where a data set reports both a sampled metric (AUC / AP
//! against fixed non-edges on a graph; NDCG with 100 sampled negatives in recommendation) and its full
//! ranking counterpart, how far the two orderings of the samplers agree (Kendall's τ-b) and which
//! samplers move. Sampled metrics are known to mislead (Krichene & Rendle, KDD 2020); this shows when.

use super::table::Table;
use super::views::{DatasetView, Key};
use crate::stats;
use crate::suite::ratio_label;

/// (sampled, full) metric pairs a data set may report, in the order tried.
fn pairs(view: &DatasetView) -> Vec<(String, String)> {
    let has = |m: &str| view.other.keys().any(|(_, name)| name == m);
    let mut out = Vec::new();
    for (sampled, full) in [("auc", "mrr"), ("ap", "mrr"), ("auc", "hits@10")] {
        if has(sampled) && has(full) {
            out.push((sampled.to_string(), full.to_string()));
        }
    }
    // Recommendation: `sampled-ndcg@K` beside `ndcg@K`.
    let mut sampled: Vec<String> = view
        .other
        .keys()
        .filter_map(|(_, m)| m.strip_prefix("sampled-").map(String::from))
        .collect();
    sampled.sort();
    sampled.dedup();
    for full in sampled {
        if has(&full) {
            out.push((format!("sampled-{full}"), full));
        }
    }
    out
}

/// 1-based ranks of `values` (higher is better), ties averaged.
fn ranks(values: &[f64]) -> Vec<f64> {
    stats::rank_ascending(&values.iter().map(|v| -v).collect::<Vec<_>>())
}

/// The table, or None when the data set has no sampled metric beside a full one.
pub fn sampled_vs_full(view: &DatasetView) -> Option<Table> {
    let pairs = pairs(view);
    let (sampled, full) = pairs.first()?.clone();
    let a = view.means_of(&sampled);
    let b = view.means_of(&full);
    let keys: Vec<Key> = view
        .order
        .iter()
        .filter(|k| a.contains_key(*k) && b.contains_key(*k))
        .cloned()
        .collect();
    if keys.len() < 2 {
        return None;
    }
    let va: Vec<f64> = keys.iter().map(|k| a[k]).collect();
    let vb: Vec<f64> = keys.iter().map(|k| b[k]).collect();
    let (ra, rb) = (ranks(&va), ranks(&vb));
    let mut table = Table::new(
        format!("{}: sampled vs full-ranking protocol", view.name),
        format!(
            "Each (sampler, k) by the sampled protocol's {sampled} and by full ranking's {full} (seed means), \
             with its rank under each (1 = best) and how many places full ranking moves it (+: up). Kendall's τ-b \
             between the two orderings is below: 1 is the same ordering, 0 none in common."
        ),
        &["sampler", "k", &sampled, "rank", &full, "rank", "moves"],
    );
    for (i, key) in keys.iter().enumerate() {
        let moved = ra[i] - rb[i];
        table.rows.push(vec![
            key.0.as_str().into(),
            ratio_label(key.1).into(),
            format!("{:.4}", va[i]).into(),
            format!("{:.1}", ra[i]).into(),
            format!("{:.4}", vb[i]).into(),
            format!("{:.1}", rb[i]).into(),
            if moved == 0.0 {
                "–".to_string().into()
            } else {
                format!("{moved:+.1}").into()
            },
        ]);
    }
    for (s, f) in &pairs {
        let (a, b) = (view.means_of(s), view.means_of(f));
        let both: Vec<&Key> = keys
            .iter()
            .filter(|k| a.contains_key(*k) && b.contains_key(*k))
            .collect();
        let x: Vec<f64> = both.iter().map(|k| a[*k]).collect();
        let y: Vec<f64> = both.iter().map(|k| b[*k]).collect();
        let tau = stats::kendall_tau(&x, &y);
        let n = x.len();
        let mut discordant = 0usize;
        for i in 0..n {
            for j in i + 1..n {
                if (x[i] - x[j]) * (y[i] - y[j]) < 0.0 {
                    discordant += 1;
                }
            }
        }
        let best = |v: &[f64]| {
            let i = (0..v.len())
                .max_by(|&i, &j| v[i].total_cmp(&v[j]))
                .unwrap_or(0);
            format!("{} (k = {})", both[i].0, ratio_label(both[i].1))
        };
        table.footer.push(format!(
            "{s} vs {f}: Kendall's τ-b {tau:.3} over {n} entries; {discordant} of {} pairs ordered oppositely; best by {s}: {}, by {f}: {}.",
            n * (n - 1) / 2,
            best(&x),
            best(&y)
        ));
    }
    Some(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_put_the_largest_first_and_average_ties() {
        assert_eq!(ranks(&[0.1, 0.9, 0.5, 0.5]), [4.0, 1.0, 2.5, 2.5]);
    }
}
