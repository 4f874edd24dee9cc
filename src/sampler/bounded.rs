//! Score-bounded hard negatives (after Qin et al., AAAI 2021, who bound a negative's hardness by the
//! positive's score): draw M uniform candidates per negative, drop those the model scores above
//! s(q, p) − margin (too hard: likely false negatives), and keep the hardest of the rest. A slot whose M
//! candidates are all too hard is masked out of the loss rather than filled with one.

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape, ALL_DOMAINS};
use serde::{Deserialize, Serialize};
use tch::Kind;

use super::{Batch, Negatives, SampleContext, Sampler, Uniform, UniformConfig};
use crate::data::Dataset;
use crate::error::SamplerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BoundedConfig {
    /// Candidates M scored per negative.
    pub candidates: usize,
    /// Keep candidates scored at most s(q, p) − margin.
    pub margin: f64,
    pub exclude_positives: bool,
}

impl Default for BoundedConfig {
    fn default() -> Self {
        BoundedConfig {
            candidates: 10,
            margin: 0.0,
            exclude_positives: true,
        }
    }
}

impl DeclaredSampler for BoundedConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "bounded",
            family: "hard",
            needs: "model scores of a candidate pool and of the positive",
            description: "hardest of M uniform candidates scored at most s(q, p) − margin (Qin et al. 2021); candidates = 10, \
             margin = 0, exclude_positives = true",
            version: 1,
            same_at_k1: None,
            ratio_free: false,
            domains: ALL_DOMAINS,
            own_loss: None,
            per_pair: true,
            cost: Cost {
                at_k1: 1.3,
                per_extra_negative: 0.4,
            },
    };

    fn tag(&self) -> String {
        format!("bounded-m{}-margin{}", self.candidates, self.margin)
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.candidates == 0 {
            p.push(("candidates", "must be >= 1".into()));
        }
        if !self.margin.is_finite() {
            p.push((
                "margin",
                format!("must be a finite number (got {})", self.margin),
            ));
        }
        p
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(Bounded::new(self, data)))
    }

    fn memory(&self, s: &Shape) -> Vec<(String, f64)> {
        vec![s.candidates(self.candidates)]
    }
}

pub struct Bounded {
    config: BoundedConfig,
    uniform: Uniform,
}

impl Bounded {
    pub fn new(c: &BoundedConfig, data: &Dataset) -> Bounded {
        let uniform = UniformConfig {
            exclude_positives: c.exclude_positives,
        };
        Bounded {
            config: c.clone(),
            uniform: Uniform::new(&uniform, data),
        }
    }
}

impl Sampler for Bounded {
    fn name(&self) -> &'static str {
        "bounded"
    }

    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        let m = self.config.candidates as i64;
        let candidates = self.uniform.draw(batch, k * m as usize, cx);
        let _no_grad = tch::no_grad_guard();
        let scores = cx.model.score_candidates(batch.queries_t, &candidates)?; // (B, k·M)
        let positive = cx
            .model
            .score_candidates(batch.queries_t, &batch.positives_t.unsqueeze(1))?; // (B, 1)
        let allowed = scores.le_tensor(&(positive - self.config.margin));
        let masked = scores.masked_fill(&allowed.logical_not(), f64::NEG_INFINITY);
        let shape = [batch.len() as i64, k as i64, m];
        let best = masked.view(shape).argmax(2, true);
        let ids = candidates
            .view(shape)
            .gather(2, &best, false)
            .squeeze_dim(2)
            .to_kind(Kind::Int64);
        let valid = allowed.view(shape).any_dim(2, false);
        Ok(Negatives::ids(ids).with_valid(valid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::tests::{sample_with_model, tiny_data};
    use crate::sampler::NegativeItems;

    #[test]
    fn never_returns_a_candidate_scored_above_the_positive_minus_the_margin() {
        let data = tiny_data();
        let config = BoundedConfig {
            candidates: 5,
            margin: 0.1,
            exclude_positives: false,
        };
        let queries = [0i64, 1, 2, 1];
        let positives = [7usize, 1, 5, 1]; // each query's last training item
        let (negatives, scores) =
            sample_with_model(&mut Bounded::new(&config, &data), &data, &queries, 30, 2);
        let NegativeItems::Ids(ids) = &negatives.items else {
            panic!()
        };
        let ids = Vec::<Vec<i64>>::try_from(ids).unwrap();
        let valid = Vec::<Vec<bool>>::try_from(negatives.valid.unwrap()).unwrap();
        let mut kept = 0;
        for row in 0..queries.len() {
            let bound = scores[row][positives[row]] - 0.1;
            for (&i, &ok) in ids[row].iter().zip(&valid[row]) {
                if ok {
                    kept += 1;
                    assert!(
                        scores[row][i as usize] <= bound + 1e-6,
                        "row {row}: item {i} above the bound"
                    );
                }
            }
        }
        assert!(kept > 0, "some candidates fall under the bound");
    }
}
