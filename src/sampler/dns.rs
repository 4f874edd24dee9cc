//! Dynamic negative sampling (Zhang et al., "Optimizing Top-N Collaborative Filtering via Dynamic
//! Negative Item Sampling", SIGIR 2013): for each of the k negatives, draw M candidates uniformly
//! (known positives redrawn, as in BPR), score them all with the current model in one batched call, and
//! keep the best-scored. M = 1 is uniform sampling; larger M gives harder negatives.

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape, ALL_DOMAINS};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

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

impl DeclaredSampler for DnsConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "dns",
            family: "hard",
            needs: "model scores of a candidate pool",
            description: "dynamic negative sampling (Zhang et al. 2013): best-scored of M uniform candidates per negative; \
             candidates = 10, exclude_positives = true",
            version: 1,
            same_at_k1: None,
            ratio_free: false,
            domains: ALL_DOMAINS,
            own_loss: None,
            per_pair: true,
            cost: Cost {
                at_k1: 1.1,
                per_extra_negative: 0.3,
            },
    };

    fn tag(&self) -> String {
        format!("dns-m{}", self.candidates)
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        if self.candidates == 0 {
            return vec![("candidates", "must be >= 1".into())];
        }
        Vec::new()
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(Dns::new(self, data)))
    }

    fn memory(&self, s: &Shape) -> Vec<(String, f64)> {
        vec![s.candidates(self.candidates)]
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
        if let Some(tables) = cx.model.host_tables() {
            // On the CPU: a row's k·M candidates are drawn (the same stream as the batched path below),
            // scored against the row's query in one pass over the tables, and the best of each M kept;
            // nothing of size (B, k·M) is materialised.
            let mut best = Vec::with_capacity(batch.len() * k);
            let (mut candidates, mut scores) = (vec![0u32; k * m], vec![0f32; k * m]);
            for &q in batch.queries {
                let q = q as usize;
                for c in candidates.iter_mut() {
                    *c = self.uniform.draw_one(q, &mut *cx.rng);
                }
                tables.score_row(q, &candidates, &mut scores);
                for (group, s) in candidates.chunks_exact(m).zip(scores.chunks_exact(m)) {
                    best.push(group[first_max(s)] as i64);
                }
            }
            let ids = Tensor::from_slice(&best).view([batch.len() as i64, k as i64]);
            return Ok(Negatives::ids(ids.to_device(cx.device)));
        }
        let candidates = self.uniform.draw(batch, k * m, cx);
        let _no_grad = tch::no_grad_guard();
        let scores = cx.model.score_candidates(batch.queries_t, &candidates)?; // (B, k·M)
        let b = batch.len() as i64;
        let best = scores.view([b, k as i64, m as i64]).argmax(2, true); // (B, k, 1)
        let ids = candidates
            .view([b, k as i64, m as i64])
            .gather(2, &best, false)
            .squeeze_dim(2);
        Ok(Negatives::ids(ids.to_kind(Kind::Int64)))
    }
}

/// The index of the first maximum of `scores` (argmax's tie rule); NaN never wins over a number.
pub(crate) fn first_max(scores: &[f32]) -> usize {
    let mut at = 0;
    for (j, &s) in scores.iter().enumerate().skip(1) {
        if s > scores[at] || scores[at].is_nan() {
            at = j;
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::tests::sample_with_model;
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

    #[test]
    fn the_host_path_picks_what_the_batched_path_picks() {
        // The batched path: candidates drawn by `Uniform::draw`, scored by `score_candidates`, argmax.
        let data = tiny_data();
        let mut dns = Dns::new(&DnsConfig::default(), &data);
        let queries = [0i64, 1, 2, 1];
        let (n, _) = sample_with_model(&mut dns, &data, &queries, 3, 11);
        let host = Vec::<Vec<i64>>::try_from(n.drawn_ids().unwrap()).unwrap();
        let mut h = crate::sampler::tests::Harness::new(&data, 11);
        let positives = [7i64, 1, 5, 1];
        let (q_t, p_t) = (Tensor::from_slice(&queries), Tensor::from_slice(&positives));
        let batch = Batch {
            queries: &queries,
            positives: &positives,
            queries_t: &q_t,
            positives_t: &p_t,
        };
        let mut cx = SampleContext {
            loss: &crate::loss::LossConfig::Bpr,
            rng: &mut h.rng,
            model: h.model.as_ref(),
            device: tch::Device::Cpu,
            epoch: 1,
            epochs: 1,
            step: 0,
        };
        let candidates = dns.uniform.draw(&batch, 30, &mut cx).view([4, 3, 10]);
        let scores = h
            .model
            .score_candidates(&q_t, &candidates.view([4, 30]))
            .unwrap()
            .view([4, 3, 10]);
        let batched = candidates
            .gather(2, &scores.argmax(2, true), false)
            .squeeze_dim(2);
        assert_eq!(host, Vec::<Vec<i64>>::try_from(batched).unwrap());
    }
}
