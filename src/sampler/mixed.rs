//! Mixed negative sampling (Yang et al., "Mixed Negative Sampling for Learning Two-tower Neural Networks
//! in Recommendations", WWW 2020): in-batch negatives, which follow the popularity of the training data,
//! plus uniformly drawn items, which reach the long tail the batch never shows. Of the k negatives,
//! round(k · `uniform_share`) are uniform and the rest in-batch.

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape, ALL_DOMAINS};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::{
    Batch, InBatch, InBatchConfig, NegativeItems, Negatives, SampleContext, Sampler, Uniform,
    UniformConfig,
};
use crate::data::Dataset;
use crate::error::SamplerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MixedConfig {
    /// Share of the k negatives drawn uniformly from the pool.
    pub uniform_share: f64,
    pub exclude_positives: bool,
}

impl Default for MixedConfig {
    fn default() -> Self {
        MixedConfig {
            uniform_share: 0.5,
            exclude_positives: true,
        }
    }
}

impl DeclaredSampler for MixedConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "mixed",
            family: "efficient",
            needs: "the batch's other positives",
            description: "in-batch plus uniform negatives (Yang et al. 2020): round(k · uniform_share) uniform, the rest in-batch draws; uniform_share = 0.5, exclude_positives = true",
            version: 1,
            same_at_k1: Some("uniform (its one negative: round(0.5 · 1) = 1 uniform draw at the default uniform_share, none in-batch; below 0.5 it is in-batch draws)"),
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
        format!("mixed-u{}", self.uniform_share)
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        if !(0.0..=1.0).contains(&self.uniform_share) {
            return vec![(
                "uniform_share",
                format!("must be in [0, 1] (got {})", self.uniform_share),
            )];
        }
        Vec::new()
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(Mixed::new(self, data)))
    }

    /// Nothing beyond the negatives' ids and embeddings that every sampler has per batch.
    fn memory(&self, _: &Shape) -> Vec<(String, f64)> {
        Vec::new()
    }

    fn takes_batch_positives(&self) -> bool {
        self.uniform_share < 1.0
    }
}

pub struct Mixed {
    uniform_share: f64,
    in_batch: InBatch,
    uniform: Uniform,
}

impl Mixed {
    pub fn new(c: &MixedConfig, data: &Dataset) -> Mixed {
        Mixed {
            uniform_share: c.uniform_share,
            in_batch: InBatch::new(
                &InBatchConfig {
                    logq: false,
                    // Its in-batch share is k draws under every loss.
                    negatives: super::WholeOrDraws::Draws,
                    exclude_positives: c.exclude_positives,
                },
                data,
            ),
            uniform: Uniform::new(
                &UniformConfig {
                    exclude_positives: c.exclude_positives,
                },
                data,
            ),
        }
    }

    /// (uniform, in-batch) negatives per positive.
    pub fn split(&self, k: usize) -> (usize, usize) {
        let u = ((k as f64 * self.uniform_share).round() as usize).min(k);
        (u, k - u)
    }
}

fn ids_of(n: Negatives) -> (Tensor, Option<Tensor>) {
    match n.items {
        NegativeItems::Ids(ids) => (ids, n.valid),
        _ => unreachable!("uniform and in-batch return ids"),
    }
}

impl Sampler for Mixed {
    fn name(&self) -> &'static str {
        "mixed"
    }

    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        let (n_uniform, n_batch) = self.split(k);
        let (mut ids, mut valid) = (Vec::new(), Vec::new());
        let ones = |t: &Tensor| Tensor::ones(t.size(), (Kind::Bool, t.device()));
        for (count, sampler) in [
            (n_uniform, &mut self.uniform as &mut dyn Sampler),
            (n_batch, &mut self.in_batch),
        ] {
            if count > 0 {
                let (i, v) = ids_of(sampler.sample(batch, count, cx)?);
                valid.push(v.unwrap_or_else(|| ones(&i)));
                ids.push(i);
            }
        }
        Ok(Negatives::ids(Tensor::cat(&ids, 1)).with_valid(Tensor::cat(&valid, 1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::tests::{draw, tiny_data};

    #[test]
    fn at_one_negative_it_is_uniform_at_the_default_share_as_the_registry_says() {
        let data = tiny_data();
        let split = |share: f64| {
            Mixed::new(
                &MixedConfig {
                    uniform_share: share,
                    ..Default::default()
                },
                &data,
            )
            .split(1)
        };
        assert_eq!(split(0.5), (1, 0));
        assert_eq!(split(0.3), (0, 1));
        assert!(super::super::info("mixed")
            .and_then(|i| i.same_at_k1)
            .is_some_and(|s| s.starts_with("uniform")));
    }

    #[test]
    fn the_in_batch_part_draws_batch_positives_and_the_uniform_part_reaches_the_tail() {
        let data = tiny_data();
        let mut s = Mixed::new(
            &MixedConfig {
                uniform_share: 0.25,
                exclude_positives: false,
            },
            &data,
        );
        assert_eq!(s.split(8), (2, 6));
        let rows = draw(&mut s, &data, &[0, 1, 2], 400, 6);
        let batch_positives = [7i64, 1, 5];
        for row in &rows {
            assert!(
                row[100..].iter().all(|i| batch_positives.contains(i)),
                "in-batch part"
            );
            assert!(
                row[..100].iter().any(|i| !batch_positives.contains(i)),
                "uniform part"
            );
        }
    }
}
