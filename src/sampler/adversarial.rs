//! A learned adversarial generator (Wang et al., "IRGAN: A Minimax Game for Unifying Generative and
//! Discriminative Information Retrieval Models", SIGIR 2017; Cai & Wang, "KBGAN: Adversarial Learning for
//! Knowledge Graph Embeddings", NAACL 2018): a second, small MF model (the generator) proposes negatives
//! from a softmax over `candidates` uniform candidates per positive (KBGAN's candidate set, which keeps the
//! softmax cheap on large pools); the main model trains on them as usual, and the generator is trained by
//! REINFORCE with the main model's score of each proposed negative as its reward (harder negatives are
//! rewarded) and the batch's mean reward as baseline. The generator's draws use the sampler's own stream.

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape, ALL_DOMAINS};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

use super::{Batch, Negatives, SampleContext, Sampler, Uniform, UniformConfig};
use crate::data::Dataset;
use crate::error::SamplerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdversarialConfig {
    /// Uniform candidates the generator's softmax is over (KBGAN's Ns = 20).
    pub candidates: usize,
    /// Generator embedding dimension.
    pub dim: i64,
    /// Generator learning rate (Adam).
    pub lr: f64,
    pub exclude_positives: bool,
}

impl Default for AdversarialConfig {
    fn default() -> Self {
        AdversarialConfig {
            candidates: 20,
            dim: 16,
            lr: 1e-2,
            exclude_positives: true,
        }
    }
}

impl DeclaredSampler for AdversarialConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "adversarial",
            family: "adversarial",
            needs: "a generator model trained alongside",
            description: "a small generator proposes negatives from a softmax over candidates, trained by REINFORCE on the model's scores (IRGAN, KBGAN); candidates = 20, dim = 16, lr = 0.01, exclude_positives = true",
            version: 1,
            same_at_k1: None,
            ratio_free: false,
            domains: ALL_DOMAINS,
            own_loss: None,
            per_pair: true,
            cost: Cost {
                at_k1: 2.8,
                per_extra_negative: 0.25,
            },
    };

    fn tag(&self) -> String {
        format!("adversarial-m{}-d{}", self.candidates, self.dim)
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.candidates == 0 {
            p.push(("candidates", "must be >= 1".into()));
        }
        if self.dim <= 0 {
            p.push(("dim", format!("must be >= 1 (got {})", self.dim)));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            p.push(("lr", format!("must be > 0 (got {})", self.lr)));
        }
        p
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(Adversarial::new(self, data)))
    }

    fn memory(&self, s: &Shape) -> Vec<(String, f64)> {
        vec![(
            "generator candidates".into(),
            s.batch * self.candidates as f64 * (12.0 + s.dim * 4.0),
        )]
    }
}

/// The generator: its parameters and optimiser, built on the first batch (device and stream known).
struct Generator {
    _vs: nn::VarStore,
    users: Tensor,
    items: Tensor,
    opt: nn::Optimizer,
}

pub struct Adversarial {
    config: AdversarialConfig,
    uniform: Uniform,
    n_queries: usize,
    n_items: usize,
    generator: Option<Generator>,
    /// log p_G of the negatives drawn in the last batch (with gradient), awaiting their reward.
    pending: Option<Tensor>,
    /// Mean reward of every batch so far.
    pub rewards: Vec<f64>,
}

impl Adversarial {
    pub fn new(c: &AdversarialConfig, data: &Dataset) -> Adversarial {
        Adversarial {
            config: c.clone(),
            uniform: Uniform::new(
                &UniformConfig {
                    exclude_positives: c.exclude_positives,
                },
                data,
            ),
            n_queries: data.n_queries,
            n_items: data.n_items,
            generator: None,
            pending: None,
            rewards: Vec::new(),
        }
    }

    fn generator(&mut self, cx: &mut SampleContext) -> Result<&mut Generator, SamplerError> {
        if self.generator.is_none() {
            let vs = nn::VarStore::new(cx.device);
            let d = self.config.dim;
            let mut init = |rows: usize| {
                let v: Vec<f32> = (0..rows * d as usize)
                    .map(|_| (cx.rng.random::<f32>() - 0.5) * 0.2)
                    .collect();
                Tensor::from_slice(&v).view([rows as i64, d])
            };
            let (u, i) = (init(self.n_queries), init(self.n_items));
            let root = vs.root();
            let users = root.var_copy("user", &u);
            let items = root.var_copy("item", &i);
            let opt = nn::Adam::default().build(&vs, self.config.lr)?;
            self.generator = Some(Generator {
                _vs: vs,
                users,
                items,
                opt,
            });
        }
        Ok(self.generator.as_mut().expect("built above"))
    }
}

impl Sampler for Adversarial {
    fn name(&self) -> &'static str {
        "adversarial"
    }

    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        let m = self.config.candidates;
        let candidates = self.uniform.draw(batch, m, cx); // (B, M)
        let g = self.generator(cx)?;
        let logits = (g.users.index_select(0, batch.queries_t).unsqueeze(1)
            * g.items.index_select(0, &candidates.reshape([-1])).view([
                batch.len() as i64,
                m as i64,
                -1,
            ]))
        .sum_dim_intlist(-1, false, Kind::Float);
        let log_p = logits.log_softmax(1, Kind::Float);
        let probs =
            Vec::<f32>::try_from(log_p.detach().exp().reshape([-1]).to_device(Device::Cpu))?;
        // k draws per row from the generator's distribution, by inverse CDF on the sampler's stream.
        let mut picks = Vec::with_capacity(batch.len() * k);
        for row in probs.chunks(m) {
            for _ in 0..k {
                let mut u = cx.rng.random::<f32>();
                let mut j = 0;
                while j + 1 < m && u >= row[j] {
                    u -= row[j];
                    j += 1;
                }
                picks.push(j as i64);
            }
        }
        let picks = Tensor::from_slice(&picks)
            .view([batch.len() as i64, k as i64])
            .to_device(cx.device);
        self.pending = Some(log_p.gather(1, &picks, false));
        Ok(Negatives::ids(candidates.gather(1, &picks, false)))
    }

    /// REINFORCE: reward = the main model's score of each proposed negative, baseline = the batch mean.
    fn observe(&mut self, _batch: &Batch, _negatives: &Negatives, scores: &Tensor) {
        let (Some(log_p), Some(g)) = (self.pending.take(), self.generator.as_mut()) else {
            return;
        };
        let reward = scores.detach().to_kind(Kind::Float);
        let mean = reward.mean(Kind::Float);
        self.rewards.push(mean.double_value(&[]));
        let loss = -((reward - mean) * log_p).mean(Kind::Float);
        g.opt.backward_step(&loss);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Interactions;
    use crate::sampler::tests::Harness;
    use crate::sampler::NegativeItems;

    #[test]
    fn the_generators_reward_rises_while_it_trains() {
        // 4 users over 200 items; the main model is fixed, so rewards rise only if the generator learns
        // to propose the items the main model scores high.
        let mut train = Interactions::default();
        for u in 0..4 {
            train.push(u, u);
        }
        let data = Dataset::new(
            "t".into(),
            4,
            200,
            train,
            Interactions::default(),
            Interactions::default(),
            None,
        );
        let mut h = Harness::new(&data, 6);
        let mut s = Adversarial::new(
            &AdversarialConfig {
                candidates: 50,
                lr: 0.05,
                ..Default::default()
            },
            &data,
        );
        let queries: Vec<i64> = (0..64).map(|r| r % 4).collect();
        for _ in 0..150 {
            let n = h.sample(&mut s, &data, &queries, None, 4);
            let NegativeItems::Ids(ids) = &n.items else {
                panic!()
            };
            let scores = h
                .model
                .score_candidates(&Tensor::from_slice(&queries), ids)
                .unwrap()
                .detach();
            s.observe(
                &Batch {
                    queries: &queries,
                    positives: &queries,
                    queries_t: &Tensor::from_slice(&queries),
                    positives_t: &Tensor::from_slice(&queries),
                },
                &n,
                &scores,
            );
        }
        let mean = |r: &[f64]| r.iter().sum::<f64>() / r.len() as f64;
        let (first, last) = (mean(&s.rewards[..10]), mean(&s.rewards[140..]));
        // The uniform candidates' mean score is ≈ 0 (random model); the learned generator picks high ones.
        assert!(last > first + 1.0, "reward {first:.3} → {last:.3}");
    }
}
