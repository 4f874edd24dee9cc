//! Sampler diagnostics, measured on what a sampler actually drew during an epoch:
//! - `fn_rate`: share of drawn negatives that are held-out positives of the query (validation or test);
//! - `fn_rate_true` (synthetic data only): share that the generating model deems relevant to the query
//!   but that are not training positives, i.e. exact false negatives;
//! - `hardness`: mean percentile of the drawn negatives in the current model's ranking of the whole pool
//!   for the query (0 = scored below everything, 1 = above everything), on the epoch's first batch (at
//!   most `HARDNESS_ROWS` rows) so it costs little;
//! - `coverage`: share of the pool drawn at least once in the epoch; `gini`: Gini coefficient of the draw
//!   counts (0 = every item drawn equally often, near 1 = a few items take every draw);
//! - `ns_per_negative`: sampler time per drawn negative.
//!
//! The time spent here is measured and kept out of the training time.

use tch::{Device, Kind, Tensor};

use crate::data::Dataset;
use crate::model::ContrastiveModel;

const HARDNESS_ROWS: i64 = 256;

/// Running counts over one epoch.
pub struct Diagnostics {
    draws: Vec<u32>,
    drawn: u64,
    held_out: u64,
    true_false: u64,
    hardness: Option<f64>,
}

impl Diagnostics {
    pub fn new(n_items: usize) -> Diagnostics {
        Diagnostics {
            draws: vec![0; n_items],
            drawn: 0,
            held_out: 0,
            true_false: 0,
            hardness: None,
        }
    }

    /// Counts one batch of negatives: `ids` (B, k) for `queries` (B).
    pub fn record(&mut self, data: &Dataset, queries: &[i64], ids: &Tensor) {
        let flat =
            Vec::<i64>::try_from(ids.reshape([-1]).to_device(Device::Cpu)).unwrap_or_default();
        let k = flat.len() / queries.len().max(1);
        for (row, &q) in queries.iter().enumerate() {
            let q = q as usize;
            for &i in &flat[row * k..(row + 1) * k] {
                let item = i as u32;
                self.draws[i as usize] += 1;
                if data.valid_by_user.contains(q, item) || data.test_by_user.contains(q, item) {
                    self.held_out += 1;
                }
                if let Some(rel) = &data.relevant {
                    if rel.contains(q, item) && !data.train_by_user.contains(q, item) {
                        self.true_false += 1;
                    }
                }
            }
        }
        self.drawn += flat.len() as u64;
    }

    /// Measures hardness once per epoch, on the first rows of a batch.
    pub fn record_hardness(
        &mut self,
        model: &dyn ContrastiveModel,
        queries: &Tensor,
        ids: &Tensor,
    ) {
        if self.hardness.is_some() {
            return;
        }
        let _no_grad = tch::no_grad_guard();
        let (k, pool) = (ids.size()[1], model.n_items());
        // Compare every drawn negative with the whole pool, on as many rows as keep that to 16M pairs.
        let rows = queries.size()[0]
            .min(HARDNESS_ROWS)
            .min((16_000_000 / (k * pool).max(1)).max(1));
        let (q, ids) = (queries.narrow(0, 0, rows), ids.narrow(0, 0, rows));
        let all = model.queries(&q).matmul(&model.all_items().tr()); // (r, N)
        let neg = all.gather(1, &ids, false); // (r, k)
        let below = all
            .unsqueeze(1)
            .lt_tensor(&neg.unsqueeze(2))
            .sum_dim_intlist(2, false, Kind::Float);
        let pool = (pool - 1).max(1) as f64;
        self.hardness = Some((below / pool).mean(Kind::Float).double_value(&[]));
    }

    /// The epoch's diagnostics as (metric, value), then counts reset for the next epoch.
    pub fn finish_epoch(
        &mut self,
        data: &Dataset,
        sampling_seconds: f64,
    ) -> Vec<(&'static str, f64)> {
        if self.drawn == 0 {
            // Nothing was drawn (the non-sampling `full` reference): no draw diagnostics to report.
            *self = Diagnostics::new(self.draws.len());
            return Vec::new();
        }
        let drawn = self.drawn as f64;
        let mut out = vec![
            ("fn_rate", self.held_out as f64 / drawn),
            (
                "coverage",
                self.draws.iter().filter(|&&c| c > 0).count() as f64
                    / self.draws.len().max(1) as f64,
            ),
            ("gini", gini(&self.draws)),
            ("ns_per_negative", sampling_seconds * 1e9 / drawn),
        ];
        if data.relevant.is_some() {
            out.push(("fn_rate_true", self.true_false as f64 / drawn));
        }
        if let Some(h) = self.hardness {
            out.push(("hardness", h));
        }
        *self = Diagnostics::new(self.draws.len());
        out
    }
}

/// Gini coefficient of non-negative counts: 0 when all are equal.
pub fn gini(counts: &[u32]) -> f64 {
    let total: f64 = counts.iter().map(|&c| c as f64).sum();
    let n = counts.len() as f64;
    if total == 0.0 || counts.len() < 2 {
        return 0.0;
    }
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    let weighted: f64 = sorted
        .iter()
        .enumerate()
        .map(|(i, &c)| (i as f64 + 1.0) * c as f64)
        .sum();
    2.0 * weighted / (n * total) - (n + 1.0) / n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Dataset, Interactions};

    #[test]
    fn gini_of_equal_and_concentrated_counts() {
        assert_eq!(gini(&[5, 5, 5, 5]), 0.0);
        assert!(
            (gini(&[0, 0, 0, 8]) - 0.75).abs() < 1e-12,
            "one of n items takes all: (n-1)/n"
        );
    }

    #[test]
    fn counts_held_out_positives_and_coverage() {
        let mut train = Interactions::default();
        train.push(0, 0);
        let mut test = Interactions::default();
        test.push(0, 1);
        let data = Dataset::new("t".into(), 1, 4, train, Interactions::default(), test, None);
        let mut d = Diagnostics::new(4);
        d.record(
            &data,
            &[0, 0],
            &Tensor::from_slice(&[1i64, 2, 1, 1]).view([2, 2]),
        );
        let m: std::collections::HashMap<_, _> = d.finish_epoch(&data, 4e-9).into_iter().collect();
        assert_eq!(m["fn_rate"], 0.75);
        assert_eq!(m["coverage"], 0.5);
        assert!((m["ns_per_negative"] - 1.0).abs() < 1e-9);
    }

    #[test]
    fn hardness_is_the_percentile_in_the_models_ranking() {
        use crate::model::{Mf, MfConfig};
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let model = Mf::new(
            &vs.root(),
            &MfConfig {
                dim: 8,
                init_std: 1.0,
            },
            2,
            50,
            1,
        );
        let queries = Tensor::from_slice(&[0i64, 1]);
        let scores = model.queries(&queries).matmul(&model.all_items().tr());
        let (best, worst) = (scores.argmax(1, true), scores.argmin(1, true));
        let hardness = |ids: &Tensor| {
            let mut d = Diagnostics::new(50);
            d.record_hardness(&model, &queries, ids);
            d.hardness.unwrap()
        };
        assert_eq!(
            hardness(&best),
            1.0,
            "the top-scored item is above all 49 others"
        );
        assert_eq!(hardness(&worst), 0.0);
    }
}
