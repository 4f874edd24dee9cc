//! Curriculum negatives (Bengio et al., "Curriculum Learning", ICML 2009; for negatives, Chu et al.,
//! "CuCo: Graph Representation with Curriculum Contrastive Learning", IJCAI 2021): each negative is hard
//! (the best-scored of M uniform candidates, as in DNS) with probability h(epoch), else easy (the first
//! uniform candidate). h rises linearly from `start` to `end` over the first `ramp` share of the epochs
//! and stays at `end`: training sees easy negatives first and hard ones later.

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape, ALL_DOMAINS};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::{Batch, Negatives, SampleContext, Sampler, Uniform, UniformConfig};
use crate::data::Dataset;
use crate::error::SamplerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CurriculumConfig {
    /// Candidates M a hard negative is the best of.
    pub candidates: usize,
    /// Share of hard negatives in the first epoch.
    pub start: f64,
    /// Share of hard negatives once the ramp is over.
    pub end: f64,
    /// Share of the training epochs over which the share rises.
    pub ramp: f64,
    pub exclude_positives: bool,
}

impl Default for CurriculumConfig {
    fn default() -> Self {
        CurriculumConfig {
            candidates: 10,
            start: 0.0,
            end: 1.0,
            ramp: 1.0,
            exclude_positives: true,
        }
    }
}

impl CurriculumConfig {
    /// The share of hard negatives at `epoch` (from 1) of `epochs`.
    pub fn hard_share(&self, epoch: u32, epochs: u32) -> f64 {
        let span = self.ramp * (epochs.max(1) - 1) as f64;
        let progress = if span <= 0.0 {
            1.0
        } else {
            ((epoch.max(1) - 1) as f64 / span).min(1.0)
        };
        self.start + (self.end - self.start) * progress
    }
}

impl DeclaredSampler for CurriculumConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "curriculum",
            family: "hard",
            needs: "model scores of a candidate pool and the training progress",
            description: "uniform then hard (best of M) negatives, hard share rising from start to end over the ramp (Bengio et al. 2009; Chu et al. 2021); candidates = 10, start = 0, end = 1, ramp = 1, exclude_positives = true",
            version: 1,
            same_at_k1: None,
            ratio_free: false,
            domains: ALL_DOMAINS,
            own_loss: None,
            per_pair: true,
            cost: Cost {
                at_k1: 1.1,
                per_extra_negative: 0.35,
            },
    };

    fn tag(&self) -> String {
        format!(
            "curriculum-m{}-{}to{}",
            self.candidates, self.start, self.end
        )
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.candidates == 0 {
            p.push(("candidates", "must be >= 1".into()));
        }
        for (key, v) in [("start", self.start), ("end", self.end)] {
            if !(0.0..=1.0).contains(&v) {
                p.push((key, format!("must be a share in [0, 1] (got {v})")));
            }
        }
        if !(self.ramp > 0.0 && self.ramp <= 1.0) {
            p.push(("ramp", format!("must be in (0, 1] (got {})", self.ramp)));
        }
        p
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(Curriculum::new(self, data)))
    }

    fn memory(&self, s: &Shape) -> Vec<(String, f64)> {
        vec![s.candidates(self.candidates)]
    }
}

pub struct Curriculum {
    config: CurriculumConfig,
    uniform: Uniform,
}

impl Curriculum {
    pub fn new(c: &CurriculumConfig, data: &Dataset) -> Curriculum {
        Curriculum {
            config: c.clone(),
            uniform: Uniform::new(
                &UniformConfig {
                    exclude_positives: c.exclude_positives,
                },
                data,
            ),
        }
    }
}

impl Sampler for Curriculum {
    fn name(&self) -> &'static str {
        "curriculum"
    }

    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        let m = self.config.candidates as i64;
        let (b, k) = (batch.len() as i64, k as i64);
        let candidates = self
            .uniform
            .draw(batch, (k * m) as usize, cx)
            .view([b, k, m]);
        let share = self.config.hard_share(cx.epoch, cx.epochs);
        let hard: Vec<bool> = (0..b * k).map(|_| cx.rng.random_bool(share)).collect();
        if !hard.contains(&true) {
            return Ok(Negatives::ids(candidates.select(2, 0)));
        }
        let _no_grad = tch::no_grad_guard();
        let scores = cx
            .model
            .score_candidates(batch.queries_t, &candidates.view([b, k * m]))?
            .view([b, k, m]);
        let best = scores.argmax(2, true);
        let hard = Tensor::from_slice(&hard)
            .view([b, k, 1])
            .to_device(cx.device);
        // A hard slot takes its best candidate, an easy one its first.
        let pick = best * hard.to_kind(Kind::Int64);
        Ok(Negatives::ids(
            candidates.gather(2, &pick, false).squeeze_dim(2),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::tests::{tiny_data, Harness};
    use crate::sampler::{Dns, DnsConfig};

    #[test]
    fn the_share_of_hard_negatives_follows_the_schedule() {
        let c = CurriculumConfig {
            start: 0.2,
            end: 0.8,
            ramp: 0.5,
            ..Default::default()
        };
        let shares: Vec<f64> = (1..=11).map(|e| c.hard_share(e, 11)).collect();
        let expected = [0.2, 0.32, 0.44, 0.56, 0.68, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8];
        for (s, e) in shares.iter().zip(expected) {
            assert!((s - e).abs() < 1e-9, "{shares:?}");
        }

        // On the same candidate stream a hard slot is DNS's pick and an easy one the first candidate;
        // where the two differ, the share taking DNS's pick is the schedule's.
        let data = tiny_data();
        let queries: Vec<i64> = (0..2000).map(|r| [1i64, 2][r % 2]).collect();
        let draw = |s: &mut dyn Sampler, epoch| {
            let mut h = Harness::new(&data, 9);
            (h.epoch, h.epochs) = (epoch, 11);
            let n = h.sample(s, &data, &queries, None, 1);
            Vec::<i64>::try_from(n.drawn_ids().unwrap().reshape([-1])).unwrap()
        };
        let dns = draw(&mut Dns::new(&DnsConfig::default(), &data), 1);
        let easy = draw(
            &mut Curriculum::new(
                &CurriculumConfig {
                    end: 0.0,
                    ..Default::default()
                },
                &data,
            ),
            1,
        );
        for epoch in [1, 3, 6, 11] {
            let picked = draw(&mut Curriculum::new(&c, &data), epoch);
            let (mut differ, mut hard) = (0, 0);
            for ((&d, &e), &p) in dns.iter().zip(&easy).zip(&picked) {
                assert!(p == d || p == e, "a pick is DNS's or the first candidate");
                if d != e {
                    differ += 1;
                    hard += usize::from(p == d);
                }
            }
            let share = hard as f64 / differ as f64;
            let want = c.hard_share(epoch, 11);
            // Binomial standard deviation over ~1800 slots is about 0.012.
            assert!(
                (share - want).abs() < 0.05,
                "epoch {epoch}: {share} vs {want}"
            );
        }
    }
}
