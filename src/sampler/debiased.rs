//! Debiased contrastive learning (Chuang et al., "Debiased Contrastive Learning", NeurIPS 2020): uniform
//! negatives are partly false negatives, with prior τ⁺ that a random candidate is a positive of the
//! query. The loss corrects the negatives' mass for it: with N negatives,
//! g = max((mean e^{s⁻} − τ⁺ e^{s⁺}) / (1 − τ⁺), e^{−1/t}) replaces the plain mean in the softmax loss
//! (`loss::debiased`). The draw is uniform (known positives redrawn), or with `negatives =
//! "in-batch"` the batch's other positives as in the paper's SimCLR code (every other view of the batch
//! on an image encoder: 2N − 2); the correction is in the loss.

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape, ALL_DOMAINS};
use crate::loss::LossConfig;
use serde::{Deserialize, Serialize};

use super::{
    Batch, InBatch, InBatchConfig, Negatives, Objective, SampleContext, Sampler, Uniform,
    UniformConfig,
};
use crate::data::Dataset;
use crate::error::SamplerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DebiasedConfig {
    /// Class prior τ⁺: the probability that a random candidate is a positive (the paper uses 0.1).
    pub tau_plus: f64,
    /// Scores are divided by t. The paper's 0.5 is for cosine similarities; MF dot products use 1.
    pub temperature: f64,
    /// Where the negatives come from: k uniform draws, or the whole batch (ratio-free).
    pub negatives: DebiasedNegatives,
    pub exclude_positives: bool,
}

/// The negatives a debiased loss corrects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DebiasedNegatives {
    /// k uniform draws per positive.
    #[default]
    Uniform,
    /// The batch's other positives (on an image encoder, every other view: SimCLR's 2N − 2), as the
    /// DCL and HCL papers train.
    InBatch,
}

impl Default for DebiasedConfig {
    fn default() -> Self {
        DebiasedConfig {
            tau_plus: 0.1,
            temperature: 1.0,
            negatives: DebiasedNegatives::Uniform,
            exclude_positives: true,
        }
    }
}

impl DeclaredSampler for DebiasedConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "debiased",
            family: "debiased",
            needs: "a class-prior guess τ⁺ (the loss, not the draw)",
            description: "uniform (or the batch's other) negatives with the debiased contrastive loss (DCL, Chuang et al. 2020); tau_plus = 0.1, temperature = 1, negatives = uniform|in-batch, exclude_positives = true",
            version: 1,
            same_at_k1: None,
            ratio_free: false,
            domains: ALL_DOMAINS,
            own_loss: Some("dcl"),
            per_pair: false,
            cost: Cost {
                at_k1: 1.5,
                per_extra_negative: 0.3,
            },
    };

    fn tag(&self) -> String {
        format!("debiased-tau{}{}", self.tau_plus, self.negatives.tag())
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        debiased_problems(self.tau_plus, self.temperature)
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(Debiased::new(self, data)))
    }

    /// Nothing beyond the negatives' ids and embeddings that every sampler has per batch.
    fn memory(&self, _: &Shape) -> Vec<(String, f64)> {
        Vec::new()
    }

    fn ratio_free_under(&self, _loss: &LossConfig) -> bool {
        self.negatives == DebiasedNegatives::InBatch
    }

    fn takes_batch_positives(&self) -> bool {
        self.negatives == DebiasedNegatives::InBatch
    }
}

impl DebiasedNegatives {
    /// The run-id suffix: none for the default.
    pub fn tag(self) -> &'static str {
        match self {
            DebiasedNegatives::Uniform => "",
            DebiasedNegatives::InBatch => "-inbatch",
        }
    }
}

/// τ⁺ in [0, 1) and t > 0, shared with `hard-debiased`.
pub(crate) fn debiased_problems(tau_plus: f64, temperature: f64) -> Vec<(&'static str, String)> {
    let mut p = Vec::new();
    if !(0.0..1.0).contains(&tau_plus) {
        p.push(("tau_plus", format!("must be in [0, 1) (got {tau_plus})")));
    }
    if !(temperature > 0.0 && temperature.is_finite()) {
        p.push(("temperature", format!("must be > 0 (got {temperature})")));
    }
    p
}

pub struct Debiased {
    objective: Objective,
    uniform: Uniform,
    /// `negatives = "in-batch"`: the batch's other positives instead of uniform draws.
    in_batch: Option<InBatch>,
}

impl Debiased {
    pub fn new(c: &DebiasedConfig, data: &Dataset) -> Debiased {
        Debiased::with_objective(
            Objective::Debiased {
                tau_plus: c.tau_plus,
                beta: 0.0,
                temperature: c.temperature,
            },
            c.negatives,
            c.exclude_positives,
            data,
        )
    }

    pub(crate) fn with_objective(
        objective: Objective,
        negatives: DebiasedNegatives,
        exclude_positives: bool,
        data: &Dataset,
    ) -> Debiased {
        let in_batch = (negatives == DebiasedNegatives::InBatch).then(|| {
            let c = InBatchConfig {
                exclude_positives,
                ..Default::default()
            };
            InBatch::new(&c, data)
        });
        Debiased {
            objective,
            uniform: Uniform::new(&UniformConfig { exclude_positives }, data),
            in_batch,
        }
    }
}

impl Sampler for Debiased {
    fn name(&self) -> &'static str {
        match self.objective {
            Objective::Debiased { beta, .. } if beta > 0.0 => "hard-debiased",
            _ => "debiased",
        }
    }

    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        let mut negatives = match &self.in_batch {
            Some(in_batch) => in_batch.whole_batch(batch, cx),
            None => Negatives::ids(self.uniform.draw(batch, k, cx)),
        };
        negatives.objective = self.objective;
        Ok(negatives)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::tests::{sample_with_model, tiny_data};

    #[test]
    fn draws_uniformly_and_asks_for_the_debiased_loss_with_its_prior() {
        // The loss itself is tested against hand-computed values in `crate::loss`.
        let data = tiny_data();
        let c = DebiasedConfig {
            tau_plus: 0.2,
            ..Default::default()
        };
        let (negatives, _) = sample_with_model(&mut Debiased::new(&c, &data), &data, &[1], 4, 0);
        let (plain, _) = sample_with_model(
            &mut Uniform::new(&UniformConfig::default(), &data),
            &data,
            &[1],
            4,
            0,
        );
        assert_eq!(
            negatives.objective,
            Objective::Debiased {
                tau_plus: 0.2,
                beta: 0.0,
                temperature: 1.0
            }
        );
        let ids = |n: &Negatives| Vec::<Vec<i64>>::try_from(n.drawn_ids().unwrap()).unwrap();
        assert_eq!(ids(&negatives), ids(&plain), "the same uniform stream");
        assert!(c.problems().is_empty());
        assert_eq!(debiased_problems(1.0, 0.0).len(), 2);
    }

    #[test]
    fn in_batch_mode_takes_the_batch_as_the_paper_does_whatever_the_ratio() {
        let data = tiny_data();
        let c = DebiasedConfig {
            negatives: DebiasedNegatives::InBatch,
            ..Default::default()
        };
        let (negatives, _) =
            sample_with_model(&mut Debiased::new(&c, &data), &data, &[0, 1, 2], 4, 0);
        assert!(matches!(
            negatives.items,
            crate::sampler::NegativeItems::Shared { .. }
        ));
        assert!(matches!(negatives.objective, Objective::Debiased { .. }));
        let config = crate::sampler::SamplerConfig::Debiased(c.clone());
        assert!(config.ratio_free_under(&crate::loss::LossConfig::Bpr));
        assert_eq!(c.tag(), "debiased-tau0.1-inbatch");
    }
}
