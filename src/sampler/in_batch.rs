//! In-batch negatives (as in Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
//! Recommendations", RecSys 2019): the negatives of a positive are the positives of other rows of the same
//! batch, so they cost no sampling and follow the popularity of the training data. With `logq` the
//! negatives' scores are corrected by their log sampling probability, log q(c) ≈ log(count(c) / |train|),
//! as the paper does for its streaming frequency estimate. A drawn item that is the row's own positive, or
//! a known positive of the query when `exclude_positives` is set, is masked out (shapes stay rectangular).

use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::{Batch, KnownPositives, Negatives, SampleContext, Sampler};
use crate::data::Dataset;
use crate::error::SamplerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InBatchConfig {
    /// Correct the negatives' scores by −log q(c).
    pub logq: bool,
    pub exclude_positives: bool,
}

impl Default for InBatchConfig {
    fn default() -> Self {
        InBatchConfig {
            logq: false,
            exclude_positives: true,
        }
    }
}

impl InBatchConfig {
    pub fn tag(&self) -> String {
        if self.logq {
            "in-batch-logq".into()
        } else {
            "in-batch".into()
        }
    }
}

pub struct InBatch {
    log_q: Option<Vec<f32>>,
    known: Option<KnownPositives>,
}

impl InBatch {
    pub fn new(c: &InBatchConfig, data: &Dataset) -> InBatch {
        let total = data.train.len().max(1) as f64;
        let log_q = c.logq.then(|| {
            data.item_counts()
                .iter()
                .map(|&n| ((n.max(1) as f64) / total).ln() as f32)
                .collect()
        });
        InBatch {
            log_q,
            known: c.exclude_positives.then(|| KnownPositives::new(data)),
        }
    }
}

impl Sampler for InBatch {
    fn name(&self) -> &'static str {
        "in-batch"
    }

    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        let b = batch.len();
        let mut ids = Vec::with_capacity(b * k);
        let mut valid = Vec::with_capacity(b * k);
        for (row, (&q, &p)) in batch.queries.iter().zip(batch.positives).enumerate() {
            for _ in 0..k {
                // Another row of the batch, uniformly: draw from b − 1 rows and skip our own.
                let other = if b > 1 {
                    let j = cx.rng.random_range(0..b - 1);
                    j + usize::from(j >= row)
                } else {
                    row
                };
                let item = batch.positives[other];
                let known = self
                    .known
                    .as_ref()
                    .is_some_and(|kn| kn.contains(q as usize, item as u32));
                ids.push(item);
                valid.push(item != p && !known);
            }
        }
        let shape = [b as i64, k as i64];
        let log_q = self.log_q.as_ref().map(|lq| {
            let values: Vec<f32> = ids.iter().map(|&i| lq[i as usize]).collect();
            Tensor::from_slice(&values).view(shape).to_device(cx.device)
        });
        let ids = Tensor::from_slice(&ids).view(shape).to_device(cx.device);
        let valid = Tensor::from_slice(&valid)
            .view(shape)
            .to_kind(Kind::Bool)
            .to_device(cx.device);
        Ok(Negatives::ids(ids).with_log_q(log_q).with_valid(valid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::tests::{sample_with_model, tiny_data};
    use crate::sampler::NegativeItems;

    #[test]
    fn draws_only_the_batchs_positives_and_masks_the_rows_own() {
        let data = tiny_data();
        let mut s = InBatch::new(
            &InBatchConfig {
                logq: true,
                exclude_positives: false,
            },
            &data,
        );
        let (negatives, _) = sample_with_model(&mut s, &data, &[0, 1, 2], 20, 4);
        // The rows' positives are the users' last training items: 7, 1, 5.
        let NegativeItems::Ids(ids) = &negatives.items else {
            panic!()
        };
        let ids = Vec::<Vec<i64>>::try_from(ids).unwrap();
        let valid = Vec::<Vec<bool>>::try_from(negatives.valid.unwrap()).unwrap();
        let positives = [7i64, 1, 5];
        for (row, (r, v)) in ids.iter().zip(&valid).enumerate() {
            for (&i, &ok) in r.iter().zip(v) {
                assert!(positives.contains(&i));
                assert_eq!(ok, i != positives[row]);
            }
        }
        let log_q = Vec::<Vec<f32>>::try_from(negatives.log_q.unwrap()).unwrap();
        for (r, lq) in ids.iter().zip(&log_q) {
            for (&i, &l) in r.iter().zip(lq) {
                let count = data.item_counts()[i as usize].max(1) as f32;
                assert!((l - (count / 12.0).ln()).abs() < 1e-6);
            }
        }
    }
}
