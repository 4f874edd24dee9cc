//! Hard negatives with debiasing (Robinson et al., "Contrastive Learning with Hard Negative Samples",
//! ICLR 2021): the debiased loss of Chuang et al. (see `debiased`) with the negatives' mean reweighted by
//! softmax(β·s⁻), an importance-sampling view of drawing negatives ∝ e^{β s} from uniform ones. β = 0 is
//! `debiased`; larger β concentrates on harder negatives.

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape, ALL_DOMAINS};
use super::Sampler;
use crate::error::SamplerError;
use crate::loss::LossConfig;
use serde::{Deserialize, Serialize};

use super::debiased::{debiased_problems, Debiased, DebiasedNegatives};
use super::Objective;
use crate::data::Dataset;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HardDebiasedConfig {
    /// Class prior τ⁺ (the paper uses 0.1).
    pub tau_plus: f64,
    /// Concentration β on hard negatives (the paper's default 1.0).
    pub beta: f64,
    /// Scores are divided by t (1 for MF dot products; the paper's 0.5 is for cosine similarities).
    pub temperature: f64,
    /// k uniform draws, or the batch's other positives (`in-batch`, as the paper trains).
    pub negatives: DebiasedNegatives,
    pub exclude_positives: bool,
}

impl Default for HardDebiasedConfig {
    fn default() -> Self {
        HardDebiasedConfig {
            tau_plus: 0.1,
            beta: 1.0,
            temperature: 1.0,
            negatives: DebiasedNegatives::Uniform,
            exclude_positives: true,
        }
    }
}

impl HardDebiasedConfig {
    pub fn build_sampler(&self, data: &Dataset) -> Debiased {
        Debiased::with_objective(
            Objective::Debiased {
                tau_plus: self.tau_plus,
                beta: self.beta,
                temperature: self.temperature,
            },
            self.negatives,
            self.exclude_positives,
            data,
        )
    }
}

impl DeclaredSampler for HardDebiasedConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "hard-debiased",
            family: "debiased",
            needs: "a class-prior guess τ⁺ and model scores",
            description: "debiased loss with negatives reweighted by softmax(beta · score) (HCL, Robinson et al. 2021); tau_plus = 0.1, beta = 1, temperature = 1, negatives = uniform|in-batch, exclude_positives = true",
            version: 1,
            same_at_k1: Some("debiased (one negative: its softmax weight is 1)"),
            ratio_free: false,
            domains: ALL_DOMAINS,
            own_loss: Some("hcl"),
            per_pair: false,
            cost: Cost {
                at_k1: 1.5,
                per_extra_negative: 0.4,
            },
    };

    fn tag(&self) -> String {
        format!(
            "hard-debiased-tau{}-beta{}{}",
            self.tau_plus,
            self.beta,
            self.negatives.tag()
        )
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = debiased_problems(self.tau_plus, self.temperature);
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            p.push(("beta", format!("must be >= 0 (got {})", self.beta)));
        }
        p
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(self.build_sampler(data)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::tests::{sample_with_model, tiny_data};
    use crate::sampler::Sampler;

    #[test]
    fn asks_for_the_reweighted_loss() {
        let data = tiny_data();
        let mut s = HardDebiasedConfig::default().build_sampler(&data);
        assert_eq!(s.name(), "hard-debiased");
        let (negatives, _) = sample_with_model(&mut s, &data, &[1], 4, 0);
        assert!(matches!(negatives.objective, Objective::Debiased { beta, .. } if beta == 1.0));
    }
}
