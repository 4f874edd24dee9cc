//! In-batch negatives (as in Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
//! Recommendations", RecSys 2019): the negatives of a positive are the positives of other rows of the same
//! batch, so they cost no sampling and follow the popularity of the training data. With `logq` the
//! scores are corrected by their log sampling probability, log q(c) ≈ log(count(c) / |train|), as the
//! paper does for its streaming frequency estimate.
//!
//! Under the `softmax` loss (the paper's batch softmax) every row takes *all* other B − 1 positives of the
//! batch, one shared (B, B) score matrix, and logQ corrects every logit, the positive's too
//! (`negatives = "auto"`, or `"batch"` under any loss). Otherwise (or with `negatives = "draws"`) each row
//! draws k of the other rows' positives uniformly. An item that is the row's own positive, or a known
//! positive of the query when `exclude_positives` is set, is masked out (shapes stay rectangular).

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape, ALL_DOMAINS};
use crate::loss::LossConfig;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::{shared_mask, Batch, KnownPositives, NegativeItems, Negatives, SampleContext, Sampler};
use crate::data::Dataset;
use crate::error::SamplerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InBatchConfig {
    /// Correct the scores by −log q(c).
    pub logq: bool,
    /// `auto`: the whole batch under `softmax`, k draws otherwise; `batch`: always the whole batch;
    /// `draws`: always k draws.
    pub negatives: WholeOrDraws,
    pub exclude_positives: bool,
}

/// Whether a batch- or queue-based sampler takes every entry or k draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WholeOrDraws {
    /// Every entry under `softmax` (as the papers do), k draws under other losses.
    Auto,
    /// Every entry, under any loss.
    #[serde(alias = "batch", alias = "queue")]
    All,
    /// k uniform draws, under any loss.
    Draws,
}

impl WholeOrDraws {
    pub fn takes_everything(self, loss: &crate::loss::LossConfig) -> bool {
        match self {
            WholeOrDraws::Auto => loss.is_softmax(),
            WholeOrDraws::All => true,
            WholeOrDraws::Draws => false,
        }
    }

    /// The suffix of a sampler label that names a non-default form.
    pub(crate) fn tag(self) -> &'static str {
        match self {
            WholeOrDraws::Auto => "",
            WholeOrDraws::All => "-all",
            WholeOrDraws::Draws => "-draws",
        }
    }
}

impl Default for InBatchConfig {
    fn default() -> Self {
        InBatchConfig {
            logq: false,
            negatives: WholeOrDraws::Auto,
            exclude_positives: true,
        }
    }
}

impl InBatchConfig {
    /// Takes the whole batch under `loss` (ratio-free).
    pub fn takes_everything(&self, loss: &crate::loss::LossConfig) -> bool {
        self.negatives.takes_everything(loss)
    }
}

impl DeclaredSampler for InBatchConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "in-batch",
            family: "efficient",
            needs: "the batch's other positives",
            description: "the other positives of the batch (Yi et al. 2019): under softmax all B − 1 of them, one shared score matrix, logQ on every logit; else k draws; logq = false (s/τ − log q under softmax only), negatives = auto|all|draws, exclude_positives = true (masked)",
            // 3: under softmax the shared negatives are the positives' own embeddings (the same gradient,
            // summed in another order; for an image encoder the very views). 5: logQ corrects s/τ − log q.
            version: 5,
            same_at_k1: None,
            ratio_free: false,
            domains: ALL_DOMAINS,
            own_loss: None,
            per_pair: true,
            cost: Cost {
                at_k1: 1.0,
                per_extra_negative: 0.15,
            },
    };

    fn tag(&self) -> String {
        let logq = if self.logq { "-logq" } else { "" };
        format!("in-batch{logq}{}", self.negatives.tag())
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(InBatch::new(self, data)))
    }

    fn memory(&self, s: &Shape) -> Vec<(String, f64)> {
        if s.whole {
            vec![(
                format!(
                    "{0} × {0} in-batch scores (mask, scores, gradients)",
                    s.batch
                ),
                s.batch * s.batch * 13.0,
            )]
        } else {
            Vec::new()
        }
    }

    fn ratio_free_under(&self, loss: &LossConfig) -> bool {
        self.takes_everything(loss)
    }

    fn takes_batch_positives(&self) -> bool {
        true
    }

    fn problem_under(&self, loss: &LossConfig) -> Option<(&'static str, String)> {
        (self.logq && !loss.is_softmax()).then(|| {
            (
                "logq",
                format!(
                    "the logQ correction (Yi et al. 2019) corrects a sampled softmax's logits, s/τ − log q; \
                     under {} it only shifts each negative's score by −log q (about +7) and turns the loss \
                     linear: set logq = false, or train under loss = \"softmax\"",
                    loss.kind()
                ),
            )
        })
    }
}

pub struct InBatch {
    log_q: Option<Vec<f32>>,
    known: Option<KnownPositives>,
    negatives: WholeOrDraws,
}

impl InBatch {
    pub fn new(c: &InBatchConfig, data: &Dataset) -> InBatch {
        let total = data.n_train_pairs().max(1) as f64;
        let log_q = c.logq.then(|| {
            data.item_counts()
                .iter()
                .map(|&n| ((n.max(1) as f64) / total).ln() as f32)
                .collect()
        });
        InBatch {
            log_q,
            known: c.exclude_positives.then(|| KnownPositives::new(data)),
            negatives: c.negatives,
        }
    }

    /// Every row against every other row's positive: shared candidates = the batch's positives, a
    /// (B, B) mask without the diagonal (and without equal items and known positives).
    pub(crate) fn whole_batch(&self, batch: &Batch, cx: &SampleContext) -> Negatives {
        let b = batch.len();
        // The diagonal is the row's own positive: masked with it.
        let valid = shared_mask(
            self.known.as_ref(),
            batch.queries,
            batch.positives,
            batch.positives,
        );
        let shape = [b as i64, b as i64];
        let (log_q, log_q_pos) = match &self.log_q {
            Some(lq) => {
                let of_positives: Vec<f32> =
                    batch.positives.iter().map(|&i| lq[i as usize]).collect();
                let pos = Tensor::from_slice(&of_positives).to_device(cx.device);
                (Some(pos.unsqueeze(0).expand(shape, false)), Some(pos))
            }
            None => (None, None),
        };
        let valid = Tensor::from_slice(&valid)
            .view(shape)
            .to_kind(Kind::Bool)
            .to_device(cx.device);
        Negatives {
            items: NegativeItems::Shared {
                ids: batch.positives_t.shallow_clone(),
                embeddings: None,
            },
            log_q,
            log_q_pos,
            ..Negatives::ids(Tensor::new()).with_valid(valid)
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
        if self.negatives.takes_everything(cx.loss) {
            return Ok(self.whole_batch(batch, cx));
        }
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
    use crate::sampler::tests::{sample_with_model, tiny_data, Harness};

    #[test]
    fn draws_only_the_batchs_positives_and_masks_the_rows_own() {
        let data = tiny_data();
        let mut s = InBatch::new(
            &InBatchConfig {
                logq: true,
                exclude_positives: false,
                ..Default::default()
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

    #[test]
    fn under_softmax_every_row_takes_every_other_positive_of_the_batch_with_logq_on_both_sides() {
        let data = tiny_data();
        let config = InBatchConfig {
            logq: true,
            exclude_positives: false,
            ..Default::default()
        };
        let mut s = InBatch::new(&config, &data);
        let mut h = Harness::new(&data, 1);
        h.loss = crate::loss::LossConfig::Softmax { temperature: 1.0 };
        // Positives 7, 1, 5, 7: rows 0 and 3 share item 7, so neither is the other's negative.
        let n = h.sample(&mut s, &data, &[0, 1, 2, 0], Some(&[7, 1, 5, 7]), 2);
        let NegativeItems::Shared { ids, embeddings } = &n.items else {
            panic!("the whole batch, shared")
        };
        assert!(embeddings.is_none(), "looked up with gradient");
        assert_eq!(Vec::<i64>::try_from(ids).unwrap(), vec![7, 1, 5, 7]);
        let valid = Vec::<Vec<bool>>::try_from(n.valid.as_ref().unwrap()).unwrap();
        assert_eq!(valid[0], vec![false, true, true, false]);
        assert_eq!(valid[1], vec![true, false, true, true]);
        assert_eq!(n.per_row(), 4, "B candidates per row, the own one masked");
        let lq_pos = Vec::<f32>::try_from(n.log_q_pos.as_ref().unwrap()).unwrap();
        let expected = |i: usize| (data.item_counts()[i].max(1) as f32 / 12.0).ln();
        assert!((lq_pos[1] - expected(1)).abs() < 1e-6);
        assert!(
            config.takes_everything(&h.loss)
                && !config.takes_everything(&crate::loss::LossConfig::Bpr)
        );
        // Under BPR it draws k.
        h.loss = crate::loss::LossConfig::Bpr;
        let n = h.sample(&mut s, &data, &[0, 1, 2, 0], Some(&[7, 1, 5, 7]), 2);
        assert!(matches!(n.items, NegativeItems::Ids(_)) && n.per_row() == 2);
    }
}
