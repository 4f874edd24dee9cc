//! Self-adversarial negative sampling (Sun et al., "RotatE: Knowledge Graph Embedding by Relational
//! Rotation in Complex Space", ICLR 2019): draw k negatives uniformly, then weight each in the loss by
//! softmax(α · s(q, c)) over the k, computed without gradient, so harder negatives count more without
//! the cost of sampling from the model's distribution. α is the sampling temperature (RotatE: 0.5–1).

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape, ALL_DOMAINS};
use crate::loss::LossConfig;
use serde::{Deserialize, Serialize};
use tch::Kind;

use super::{Batch, Negatives, SampleContext, Sampler, Uniform, UniformConfig};
use crate::data::Dataset;
use crate::error::SamplerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelfAdversarialConfig {
    /// Temperature α of the weights softmax(α · s).
    pub alpha: f64,
    pub exclude_positives: bool,
}

impl Default for SelfAdversarialConfig {
    fn default() -> Self {
        SelfAdversarialConfig {
            alpha: 1.0,
            exclude_positives: true,
        }
    }
}

impl DeclaredSampler for SelfAdversarialConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "self-adversarial",
            family: "adversarial",
            needs: "model scores of the drawn negatives",
            description: "uniform negatives weighted by softmax(alpha · score) without gradient (RotatE), not under nssa \
             with adversarial_temperature > 0 (which already weights so); alpha = 1, exclude_positives = true",
            version: 1,
            same_at_k1: Some("uniform (one negative: its softmax weight is 1)"),
            ratio_free: false,
            domains: ALL_DOMAINS,
            own_loss: None,
            per_pair: true,
            cost: Cost {
                at_k1: 1.05,
                per_extra_negative: 0.2,
            },
    };

    fn tag(&self) -> String {
        format!("self-adversarial-a{}", self.alpha)
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        if !self.alpha.is_finite() {
            return vec![(
                "alpha",
                format!("must be a finite number (got {})", self.alpha),
            )];
        }
        Vec::new()
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(SelfAdversarial::new(self, data)))
    }

    /// Nothing beyond the per-batch part every sampler has: weights over the drawn negatives only.
    fn memory(&self, _: &Shape) -> Vec<(String, f64)> {
        Vec::new()
    }

    fn problem_under(&self, loss: &LossConfig) -> Option<(&'static str, String)> {
        loss.self_adversarial().map(|adversarial_temperature| {
            (
                "kind",
                format!(
                    "the nssa loss at adversarial_temperature = {adversarial_temperature} already weights every \
                     sampler's negatives by softmax(α · score) (RotatE's self-adversarial sampling: `uniform` under it \
                     is RotatE's sampler); self-adversarial would weight them twice. Compare `uniform` under nssa, or \
                     set the loss's adversarial_temperature = 0 to compare the two samplers"
                ),
            )
        })
    }
}

pub struct SelfAdversarial {
    alpha: f64,
    uniform: Uniform,
}

impl SelfAdversarial {
    pub fn new(c: &SelfAdversarialConfig, data: &Dataset) -> SelfAdversarial {
        let uniform = UniformConfig {
            exclude_positives: c.exclude_positives,
        };
        SelfAdversarial {
            alpha: c.alpha,
            uniform: Uniform::new(&uniform, data),
        }
    }
}

impl Sampler for SelfAdversarial {
    fn name(&self) -> &'static str {
        "self-adversarial"
    }

    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        let ids = self.uniform.draw(batch, k, cx);
        let _no_grad = tch::no_grad_guard();
        let scores = cx.model.score_candidates(batch.queries_t, &ids)?;
        // softmax over the k, in units of an ordinary negative (× k): the loss's mean over the k then
        // equals RotatE's Σ p_j · l_j. At k = 1 the weight is 1: self-adversarial is uniform there.
        let weights = (scores * self.alpha).softmax(1, Kind::Float).detach() * k as f64;
        Ok(Negatives::ids(ids).with_weights(weights))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::tests::{sample_with_model, tiny_data};
    use crate::sampler::NegativeItems;

    #[test]
    fn weights_are_the_softmax_of_alpha_times_the_scores() {
        let data = tiny_data();
        let mut s = SelfAdversarial::new(
            &SelfAdversarialConfig {
                alpha: 2.0,
                exclude_positives: true,
            },
            &data,
        );
        let (negatives, scores) = sample_with_model(&mut s, &data, &[1, 2], 4, 9);
        let NegativeItems::Ids(ids) = &negatives.items else {
            panic!()
        };
        let weights = Vec::<Vec<f32>>::try_from(negatives.weights.unwrap()).unwrap();
        let ids = Vec::<Vec<i64>>::try_from(ids).unwrap();
        for ((w, row), s) in weights.iter().zip(&ids).zip(&scores) {
            let z: f32 = row.iter().map(|&i| (2.0 * s[i as usize]).exp()).sum();
            for (wj, &i) in w.iter().zip(row) {
                assert!((wj / 4.0 - (2.0 * s[i as usize]).exp() / z).abs() < 1e-5);
            }
            assert!(
                (w.iter().sum::<f32>() - 4.0).abs() < 1e-4,
                "k times the softmax"
            );
        }
    }
}
