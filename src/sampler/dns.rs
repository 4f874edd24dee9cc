//! Dynamic negative sampling (Zhang et al., "Optimizing Top-N Collaborative Filtering via Dynamic
//! Negative Item Sampling", SIGIR 2013): for each of the k negatives, draw M candidates uniformly
//! (known positives redrawn, as in BPR), score them all with the current model in one batched call, and
//! keep the best-scored. M = 1 is uniform sampling; larger M gives harder negatives.

use serde::{Deserialize, Serialize};
use tch::Kind;

use super::{Batch, Negatives, SampleContext, Sampler, Uniform, UniformConfig};
use crate::data::Dataset;
use crate::error::SamplerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Candidates M scored per negative.
    pub candidates: usize,
    pub exclude_positives: bool,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            candidates: 10,
            exclude_positives: true,
        }
    }
}

impl DnsConfig {
    pub fn tag(&self) -> String {
        format!("dns-m{}", self.candidates)
    }

    pub fn problems(&self) -> Vec<(&'static str, String)> {
        if self.candidates == 0 {
            return vec![("candidates", "must be >= 1".into())];
        }
        Vec::new()
    }
}

pub struct Dns {
    candidates: usize,
    uniform: Uniform,
}

impl Dns {
    pub fn new(c: &DnsConfig, data: &Dataset) -> Dns {
        let uniform = UniformConfig {
            exclude_positives: c.exclude_positives,
        };
        Dns {
            candidates: c.candidates,
            uniform: Uniform::new(&uniform, data),
        }
    }
}

impl Sampler for Dns {
    fn name(&self) -> &'static str {
        "dns"
    }

    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        let m = self.candidates;
        let candidates = self.uniform.draw(batch, k * m, cx);
        let _no_grad = tch::no_grad_guard();
        let scores = cx.model.score_candidates(batch.queries_t, &candidates); // (B, k·M)
        let b = batch.len() as i64;
        let best = scores.view([b, k as i64, m as i64]).argmax(2, true); // (B, k, 1)
        let ids = candidates
            .view([b, k as i64, m as i64])
            .gather(2, &best, false)
            .squeeze_dim(2);
        Ok(Negatives::ids(ids.to_kind(Kind::Int64)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::tests::{draw_with_model, tiny_data};

    #[test]
    fn returns_the_best_scored_of_its_candidates() {
        let data = tiny_data();
        // With as many candidates as draws of a uniform stream, DNS picks the maximum of each group: it is
        // never scored below a uniform draw from the same stream, and is the pool's best far more often.
        let mut dns = Dns::new(
            &DnsConfig {
                candidates: 64,
                exclude_positives: false,
            },
            &data,
        );
        let (rows, scores) = draw_with_model(&mut dns, &data, &[1, 2], 3, 5);
        for (row, s) in rows.iter().zip(&scores) {
            let best = s.iter().cloned().fold(f32::MIN, f32::max);
            for &i in row {
                assert_eq!(
                    s[i as usize], best,
                    "64 candidates over 10 items: the best item is among them"
                );
            }
        }
    }
}
