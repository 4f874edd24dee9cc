//! Hard negatives with debiasing (Robinson et al., "Contrastive Learning with Hard Negative Samples",
//! ICLR 2021): the debiased loss of Chuang et al. (see `debiased`) with the negatives' mean reweighted by
//! softmax(β·s⁻), an importance-sampling view of drawing negatives ∝ e^{β s} from uniform ones. β = 0 is
//! `debiased`; larger β concentrates on harder negatives.

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
    pub fn tag(&self) -> String {
        format!(
            "hard-debiased-tau{}-beta{}{}",
            self.tau_plus,
            self.beta,
            self.negatives.tag()
        )
    }

    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = debiased_problems(self.tau_plus, self.temperature);
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            p.push(("beta", format!("must be >= 0 (got {})", self.beta)));
        }
        p
    }

    pub fn build(&self, data: &Dataset) -> Debiased {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::tests::{sample_with_model, tiny_data};
    use crate::sampler::Sampler;

    #[test]
    fn asks_for_the_reweighted_loss() {
        let data = tiny_data();
        let mut s = HardDebiasedConfig::default().build(&data);
        assert_eq!(s.name(), "hard-debiased");
        let (negatives, _) = sample_with_model(&mut s, &data, &[1], 4, 0);
        assert!(matches!(negatives.objective, Objective::Debiased { beta, .. } if beta == 1.0));
    }
}
