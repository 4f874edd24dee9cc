//! Debiased contrastive learning (Chuang et al., "Debiased Contrastive Learning", NeurIPS 2020): uniform
//! negatives are partly false negatives, with prior τ⁺ that a random candidate is a positive of the
//! query. The loss corrects the negatives' mass for it: with N negatives,
//! g = max((mean e^{s⁻} − τ⁺ e^{s⁺}) / (1 − τ⁺), e^{−1/t}) replaces the plain mean in the softmax loss
//! (`train::loss::debiased`). The draw is uniform (known positives redrawn); the correction is in the loss.

use serde::{Deserialize, Serialize};

use super::{Batch, Negatives, Objective, SampleContext, Sampler, Uniform, UniformConfig};
use crate::data::Dataset;
use crate::error::SamplerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DebiasedConfig {
    /// Class prior τ⁺: the probability that a random candidate is a positive (the paper uses 0.1).
    pub tau_plus: f64,
    /// Scores are divided by t. The paper's 0.5 is for cosine similarities; MF dot products use 1.
    pub temperature: f64,
    pub exclude_positives: bool,
}

impl Default for DebiasedConfig {
    fn default() -> Self {
        DebiasedConfig {
            tau_plus: 0.1,
            temperature: 1.0,
            exclude_positives: true,
        }
    }
}

impl DebiasedConfig {
    pub fn tag(&self) -> String {
        format!("debiased-tau{}", self.tau_plus)
    }

    pub fn problems(&self) -> Vec<(&'static str, String)> {
        debiased_problems(self.tau_plus, self.temperature)
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
}

impl Debiased {
    pub fn new(c: &DebiasedConfig, data: &Dataset) -> Debiased {
        Debiased::with_objective(
            Objective::Debiased {
                tau_plus: c.tau_plus,
                beta: 0.0,
                temperature: c.temperature,
            },
            c.exclude_positives,
            data,
        )
    }

    pub(crate) fn with_objective(
        objective: Objective,
        exclude_positives: bool,
        data: &Dataset,
    ) -> Debiased {
        Debiased {
            objective,
            uniform: Uniform::new(&UniformConfig { exclude_positives }, data),
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
        let mut negatives = Negatives::ids(self.uniform.draw(batch, k, cx));
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
        // The loss itself is tested against hand-computed values in `train::loss`.
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
}
