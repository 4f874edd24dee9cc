//! Variance-aware hard negatives (Ding et al., "Simplify and Robustify Negative Sampling for Implicit
//! Collaborative Filtering" (SRNS), NeurIPS 2020): false negatives are ranked above the positive
//! *steadily*, true hard negatives fluctuate while the model learns. Each query keeps a memory of
//! `memory` (S1) candidates. A negative is the memory item with the largest
//! P(j) + β_t · std(P(j) over the last `history` epochs), where P(j) = σ(s(q, j) − s(q, p)) is the
//! probability that j is ranked above the row's positive p, and β_t (the paper's α) rises linearly to `beta` over
//! `warmup` epochs. After each batch, every query's memory is joined by `candidates` (S2) fresh uniform
//! items and S1 of the union stay, sampled without replacement with probability
//! softmax(score / `temperature`). Scores are recorded once per epoch for every memory item (its history
//! moves with it through memory updates) and for every training interaction (the positive's history), as
//! the paper's reference code does; defaults are that code's (S1 = S2 = 20, 5 epochs, weight 1, warm-up 1
//! epoch, temperature 1).

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape, ALL_DOMAINS};
use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::pool::{Keep, QueryPools};
use super::{score_rows, Batch, Negatives, SampleContext, Sampler, Uniform, UniformConfig};
use crate::data::{Dataset, QueryItems};
use crate::error::SamplerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SrnsConfig {
    /// Memory slots per query (S1).
    pub memory: usize,
    /// Fresh uniform candidates joining each memory update (S2; 0 keeps the first memory).
    pub candidates: usize,
    /// Epochs of recorded scores whose standard deviation is used.
    pub history: usize,
    /// Weight β of the standard deviation once warmed up (the paper's α).
    pub beta: f64,
    /// Epochs over which β rises from 0.
    pub warmup: u32,
    /// Softmax temperature of the memory update.
    pub temperature: f64,
    pub exclude_positives: bool,
}

impl Default for SrnsConfig {
    fn default() -> Self {
        SrnsConfig {
            memory: 20,
            candidates: 20,
            history: 5,
            beta: 1.0,
            warmup: 1,
            temperature: 1.0,
            exclude_positives: true,
        }
    }
}

impl DeclaredSampler for SrnsConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "srns",
            family: "hard",
            needs: "model scores and a per-query memory of them over epochs",
            description: "P(above the positive) + beta · its std over recent epochs, over a per-query memory updated by softmax(score / T) (SRNS, Ding et al. 2020); memory = 20, candidates = 20, history = 5, beta = 1, warmup = 1, temperature = 1, exclude_positives = true",
            version: 1,
            same_at_k1: None,
            ratio_free: false,
            domains: ALL_DOMAINS,
            own_loss: None,
            per_pair: true,
            cost: Cost {
                at_k1: 2.8,
                per_extra_negative: 0.15,
            },
    };

    fn tag(&self) -> String {
        format!("srns-s{}-beta{}", self.memory, self.beta)
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.memory == 0 {
            p.push(("memory", "must be >= 1".into()));
        }
        if self.history < 2 {
            p.push((
                "history",
                "must be >= 2 (a standard deviation needs two scores)".into(),
            ));
        }
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            p.push(("beta", format!("must be >= 0 (got {})", self.beta)));
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            p.push(("temperature", "must be a finite number > 0".into()));
        }
        p
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(Srns::new(self, data)))
    }

    fn memory(&self, s: &Shape) -> Vec<(String, f64)> {
        vec![(
            "per-query memories with score histories".into(),
            s.queries * (self.memory + self.candidates) as f64 * (8.0 + 4.0 * self.history as f64),
        )]
    }
}

/// The `k` slots with the largest P + β · std (k may exceed the slots: they repeat, best first).
pub fn select(p: &[f32], std: &[f32], beta: f32, k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    let key = |j: usize| p[j] + beta * std[j];
    order.sort_by(|&a, &b| key(b).total_cmp(&key(a)));
    (0..k).map(|j| order[j % order.len()]).collect()
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Rings of the last `len` per-epoch scores of many entries, with the last epoch each recorded.
struct Histories {
    len: usize,
    scores: Vec<f32>,
    held: Vec<u32>,
    recorded: Vec<u32>,
}

impl Histories {
    fn new(entries: usize, len: usize) -> Histories {
        Histories {
            len,
            scores: vec![0.0; entries * len],
            held: vec![0; entries],
            recorded: vec![0; entries],
        }
    }

    /// Records `score` as entry `at`'s score of `epoch`, unless one is recorded already.
    fn record(&mut self, at: usize, epoch: u32, score: f32) {
        if self.held[at] > 0 && self.recorded[at] == epoch {
            return;
        }
        let n = self.held[at] as usize;
        self.scores[at * self.len + n % self.len] = score;
        self.held[at] += 1;
        self.recorded[at] = epoch;
    }

    /// The entry's score `back` records before its latest.
    fn back(&self, at: usize, back: usize) -> f32 {
        let n = self.held[at] as usize;
        self.scores[at * self.len + (n - 1 - back) % self.len]
    }

    fn count(&self, at: usize) -> usize {
        (self.held[at] as usize).min(self.len)
    }

    /// Copies entry `from` of `other` to entry `to` of `self`.
    fn copy_entry(&mut self, to: usize, other: &Histories, from: usize) {
        let len = self.len;
        self.scores[to * len..(to + 1) * len]
            .copy_from_slice(&other.scores[from * len..(from + 1) * len]);
        self.held[to] = other.held[from];
        self.recorded[to] = other.recorded[from];
    }

    fn clear(&mut self, at: usize) {
        self.held[at] = 0;
    }
}

pub struct Srns {
    config: SrnsConfig,
    uniform: Uniform,
    positives: QueryItems,
    /// (Q, S1) memories and their items' score histories, slot by slot.
    memories: QueryPools,
    memory_scores: Histories,
    /// Score histories of the training interactions, by `QueryItems::position`.
    positive_scores: Histories,
}

impl Srns {
    pub fn new(c: &SrnsConfig, data: &Dataset) -> Srns {
        let slots = data.n_queries * c.memory;
        Srns {
            config: c.clone(),
            uniform: Uniform::new(
                &UniformConfig {
                    exclude_positives: c.exclude_positives,
                },
                data,
            ),
            positives: data.train_by_query.clone(),
            memories: QueryPools::new(data.n_queries, data.n_items, c.memory),
            memory_scores: Histories::new(slots, c.history),
            positive_scores: Histories::new(data.train_by_query.nnz(), c.history),
        }
    }

    /// The memory of query `q`.
    pub fn memory(&self, q: usize) -> &[u32] {
        self.memories.pool(q)
    }

    /// std over the epochs both have recorded (the latest ones) of σ(s(q, slot's item) − s(q, p)), with
    /// `positive` the interaction's position; 0 with fewer than two such epochs.
    pub fn likelihood_std(&self, slot: usize, positive: Option<usize>) -> f32 {
        let Some(p) = positive else { return 0.0 };
        let n = self
            .memory_scores
            .count(slot)
            .min(self.positive_scores.count(p));
        if n < 2 {
            return 0.0;
        }
        let values: Vec<f32> = (0..n)
            .map(|b| sigmoid(self.memory_scores.back(slot, b) - self.positive_scores.back(p, b)))
            .collect();
        let mean = values.iter().sum::<f32>() / n as f32;
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n as f32).sqrt()
    }

    /// Joins S2 fresh uniform items to each distinct query's memory and keeps S1 of the union, sampled
    /// without replacement with probability softmax(score / T); kept items keep their score histories.
    fn update_memories(
        &mut self,
        batch: &Batch,
        cx: &mut SampleContext,
    ) -> Result<(), SamplerError> {
        let (s1, s2) = (self.config.memory, self.config.candidates);
        if s2 == 0 {
            return Ok(());
        }
        let keep = Keep::Softmax {
            inverse_t: (1.0 / self.config.temperature) as f32,
        };
        let (histories, mut old) = (
            &mut self.memory_scores,
            Histories::new(s1, self.config.history),
        );
        self.memories
            .refresh(batch.queries, s2, keep, &self.uniform, cx, |q, from| {
                for j in 0..s1 {
                    old.copy_entry(j, histories, q * s1 + j);
                }
                for (slot, &j) in (q * s1..(q + 1) * s1).zip(from) {
                    if j < s1 {
                        histories.copy_entry(slot, &old, j);
                    } else {
                        histories.clear(slot);
                    }
                }
            })
    }
}

impl Sampler for Srns {
    fn name(&self) -> &'static str {
        "srns"
    }

    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        let s1 = self.config.memory;
        for q in self
            .memories
            .fill_new(batch.queries, &self.uniform, &mut *cx.rng)
        {
            (q * s1..(q + 1) * s1).for_each(|slot| self.memory_scores.clear(slot));
        }
        // Each row's memory and its positive, scored in one pass: width S1 + 1, the positive last.
        let width = s1 + 1;
        let mut rows = Vec::with_capacity(batch.len() * width);
        for (&q, &p) in batch.queries.iter().zip(batch.positives) {
            rows.extend_from_slice(self.memory(q as usize));
            rows.push(p as u32);
        }
        let current = score_rows(cx.model, batch.queries, &rows, width, cx.device)?;
        // The reference code's weight · min(1, epoch / warm-up), with epochs counted from 0.
        let warm =
            ((cx.epoch.saturating_sub(1)) as f64 / self.config.warmup.max(1) as f64).min(1.0);
        let beta = (self.config.beta * warm) as f32;
        let mut out = Vec::with_capacity(batch.len() * k);
        let (mut likelihood, mut std) = (vec![0f32; s1], vec![0f32; s1]);
        for (row, (&q, &p)) in batch.queries.iter().zip(batch.positives).enumerate() {
            let q = q as usize;
            let now = &current[row * width..(row + 1) * width];
            let (memory_now, positive_now) = (&now[..s1], now[s1]);
            let positive = self.positives.position(q, p as u32);
            for (j, &s) in memory_now.iter().enumerate() {
                self.memory_scores.record(q * s1 + j, cx.epoch, s);
            }
            if let Some(at) = positive {
                self.positive_scores.record(at, cx.epoch, positive_now);
            }
            for j in 0..s1 {
                likelihood[j] = sigmoid(memory_now[j] - positive_now);
                std[j] = self.likelihood_std(q * s1 + j, positive);
            }
            for j in select(&likelihood, &std, beta, k) {
                out.push(self.memories.pool(q)[j] as i64);
            }
        }
        self.update_memories(batch, cx)?;
        Ok(Negatives::ids(
            Tensor::from_slice(&out)
                .view([batch.len() as i64, k as i64])
                .to_device(cx.device),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::tests::{tiny_data, Harness};

    #[test]
    fn prefers_a_fluctuating_candidate_over_a_steady_one_of_equal_likelihood() {
        // Slot 0 steadily above the positive (a likely false negative), slot 1 a little lower but
        // fluctuating, slot 2 far below.
        let p = [0.8, 0.7, 0.1];
        let std = [0.0, 0.3, 0.0];
        assert_eq!(select(&p, &std, 0.0, 1), vec![0], "β = 0 is the likeliest");
        assert_eq!(
            select(&p, &std, 1.0, 1),
            vec![1],
            "β = 1 prefers the fluctuating one"
        );
        assert_eq!(select(&p, &std, 1.0, 4), vec![1, 0, 2, 1]);
    }

    #[test]
    fn picks_by_likelihood_plus_beta_std_over_recorded_epochs() {
        let data = tiny_data();
        let mut h = Harness::new(&data, 5);
        let c = SrnsConfig {
            memory: 4,
            candidates: 0, // a fixed memory, so the test can follow each item's history
            history: 3,
            beta: 2.0,
            warmup: 1,
            exclude_positives: false,
            ..Default::default()
        };
        let mut s = Srns::new(&c, &data);
        // Scores small enough that σ(s_j − s_p) is not saturated, so it can fluctuate.
        tch::no_grad(|| {
            for (_, mut v) in h.vs.variables() {
                let _ = v.f_mul_scalar_(0.3).unwrap();
            }
        });
        let (user, positive) = (1usize, 1i64);
        let at = data.train_by_query.position(user, positive as u32);
        // The test's own record of σ(s(q, j) − s(q, p)) per epoch for the memory items.
        let mut seen: Vec<Vec<f32>> = Vec::new();
        for epoch in 1..=5 {
            if epoch > 1 {
                h.perturb(0.3);
            }
            h.epoch = epoch;
            let scores = h.scores(&[user as i64])[0].clone();
            // Two rows of the user in one epoch record once.
            h.sample(&mut s, &data, &[1, 1], Some(&[positive, positive]), 1);
            let memory = s.memory(user).to_vec();
            seen.push(
                memory
                    .iter()
                    .map(|&i| sigmoid(scores[i as usize] - scores[positive as usize]))
                    .collect(),
            );
        }
        assert_eq!(s.memory_scores.count(user * 4), 3, "three epochs kept");
        // Epoch 6: the pick maximises σ(s_j − s_p) + β · std of the last three epochs (6, 5, 4).
        h.perturb(0.3);
        h.epoch = 6;
        let scores = h.scores(&[user as i64])[0].clone();
        let memory = s.memory(user).to_vec();
        let now: Vec<f32> = memory
            .iter()
            .map(|&i| sigmoid(scores[i as usize] - scores[positive as usize]))
            .collect();
        let key = |j: usize| {
            let values = [now[j], seen[4][j], seen[3][j]];
            let mean = values.iter().sum::<f32>() / 3.0;
            let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 3.0).sqrt();
            now[j] + 2.0 * std
        };
        let want = (0..4).max_by(|&a, &b| key(a).total_cmp(&key(b))).unwrap();
        let likeliest = (0..4).max_by(|&a, &b| now[a].total_cmp(&now[b])).unwrap();
        assert_ne!(
            memory[want], memory[likeliest],
            "the std term decides this pick"
        );
        let drawn = h.sample(&mut s, &data, &[1], Some(&[positive]), 1);
        assert_eq!(
            Vec::<i64>::try_from(drawn.drawn_ids().unwrap().reshape([-1])).unwrap(),
            [memory[want] as i64]
        );
        let stds: Vec<f32> = (0..4).map(|j| s.likelihood_std(user * 4 + j, at)).collect();
        assert!(stds.iter().any(|&sd| sd > 0.01), "{stds:?} {seen:?}");
    }

    #[test]
    fn memory_updates_keep_the_high_scored_and_their_histories() {
        let data = tiny_data();
        let mut h = Harness::new(&data, 8);
        // A cold temperature makes the update keep the best-scored: with a fixed model, user 2's memory
        // becomes its three best non-positive items.
        let c = SrnsConfig {
            memory: 3,
            candidates: 3,
            temperature: 1e-4,
            ..Default::default()
        };
        let mut s = Srns::new(&c, &data);
        for _ in 0..30 {
            h.sample(&mut s, &data, &[2], None, 1);
        }
        let scores = &h.scores(&[2])[0];
        let mut ranked: Vec<u32> = (0..10u32)
            .filter(|&i| !data.train_by_query.contains(2, i))
            .collect();
        ranked.sort_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
        let mut memory = s.memory(2).to_vec();
        memory.sort_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
        assert_eq!(memory, ranked[..3]);
        // Items that stay keep their histories through updates: after two more epochs every slot
        // holds three records (epochs 1, 2, 3), though the memory was rewritten at every step.
        for epoch in 2..=3 {
            h.epoch = epoch;
            h.sample(&mut s, &data, &[2], None, 1);
        }
        assert!((0..3).all(|j| s.memory_scores.count(2 * 3 + j) == 3));
    }
}
