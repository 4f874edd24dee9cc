//! Variance-aware hard negatives (Ding et al., "Simplify and Robustify Negative Sampling for Implicit
//! Collaborative Filtering" (SRNS), NeurIPS 2020): false negatives are scored high *steadily*, true hard
//! negatives fluctuate while the model learns. Each query keeps a memory of `memory` candidates with the
//! scores the model gave them in its last `history` epochs (one record per epoch); a negative is picked by
//! score + β_t · std(recent scores), the k best of the memory, with β_t rising linearly to `beta` over
//! `warmup` epochs (the paper's warm-up). After each draw the `refresh` lowest-scored memory slots are
//! replaced by fresh uniform candidates (histories reset), so the memory drifts toward informative items.

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use super::{Batch, Negatives, SampleContext, Sampler, Uniform, UniformConfig};
use crate::data::Dataset;
use crate::error::SamplerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SrnsConfig {
    /// Memory slots per query (S1).
    pub memory: usize,
    /// Slots replaced by fresh uniform candidates after each draw (S2).
    pub refresh: usize,
    /// Epochs of scores whose standard deviation is used.
    pub history: usize,
    /// Weight β of the standard deviation once warmed up.
    pub beta: f64,
    /// Epochs over which β rises from 0.
    pub warmup: u32,
    pub exclude_positives: bool,
}

impl Default for SrnsConfig {
    fn default() -> Self {
        SrnsConfig {
            memory: 20,
            refresh: 5,
            history: 5,
            beta: 1.0,
            warmup: 5,
            exclude_positives: true,
        }
    }
}

impl SrnsConfig {
    pub fn tag(&self) -> String {
        format!("srns-s{}-beta{}", self.memory, self.beta)
    }

    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.memory == 0 {
            p.push(("memory", "must be >= 1".into()));
        }
        if self.refresh > self.memory {
            p.push(("refresh", format!("must be <= memory ({})", self.memory)));
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
        p
    }
}

/// The `k` slots with the largest score + β · std (k may exceed the slots: they repeat, best first).
pub fn select(current: &[f32], std: &[f32], beta: f32, k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..current.len()).collect();
    let key = |j: usize| current[j] + beta * std[j];
    order.sort_by(|&a, &b| key(b).total_cmp(&key(a)));
    (0..k).map(|j| order[j % order.len()]).collect()
}

pub struct Srns {
    config: SrnsConfig,
    uniform: Uniform,
    /// (Q, S1) memory ids; per slot a ring of the last `history` per-epoch scores and how many it holds.
    ids: Vec<u32>,
    scores: Vec<f32>,
    held: Vec<u32>,
    /// Per query: whether its memory is filled, and the last epoch its scores were recorded.
    filled: Vec<bool>,
    recorded: Vec<u32>,
}

impl Srns {
    pub fn new(c: &SrnsConfig, data: &Dataset) -> Srns {
        let slots = data.n_users * c.memory;
        Srns {
            config: c.clone(),
            uniform: Uniform::new(
                &UniformConfig {
                    exclude_positives: c.exclude_positives,
                },
                data,
            ),
            ids: vec![0; slots],
            scores: vec![0.0; slots * c.history],
            held: vec![0; slots],
            filled: vec![false; data.n_users],
            recorded: vec![0; data.n_users],
        }
    }

    /// Standard deviation of the recorded scores of memory slot `slot` (0 with fewer than two).
    pub fn std(&self, slot: usize) -> f32 {
        let h = self.config.history;
        let n = (self.held[slot] as usize).min(h);
        if n < 2 {
            return 0.0;
        }
        let s = &self.scores[slot * h..slot * h + n];
        let mean = s.iter().sum::<f32>() / n as f32;
        (s.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n as f32).sqrt()
    }

    /// The memory of query `q`.
    pub fn memory(&self, q: usize) -> &[u32] {
        &self.ids[q * self.config.memory..(q + 1) * self.config.memory]
    }

    /// Appends an epoch's score to the slot's ring of the last `history` scores.
    fn record(&mut self, slot: usize, score: f32) {
        let h = self.config.history;
        let n = self.held[slot] as usize;
        self.scores[slot * h + n % h] = score;
        self.held[slot] += 1;
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
        // Fill the memories of queries seen for the first time.
        let new: Vec<i64> = batch
            .queries
            .iter()
            .copied()
            .filter(|&q| !self.filled[q as usize])
            .collect();
        if !new.is_empty() {
            let fresh = self.uniform.draw_for(&new, s1, cx.rng);
            for (&q, row) in new.iter().zip(fresh.chunks(s1)) {
                let q = q as usize;
                if !self.filled[q] {
                    self.filled[q] = true;
                    self.ids[q * s1..(q + 1) * s1].copy_from_slice(row);
                }
            }
        }
        // Score every row's memory in one call.
        let memory: Vec<i64> = batch
            .queries
            .iter()
            .flat_map(|&q| self.memory(q as usize).iter().map(|&i| i as i64))
            .collect();
        let memory_t = Tensor::from_slice(&memory)
            .view([batch.len() as i64, s1 as i64])
            .to_device(cx.device);
        let current = {
            let _no_grad = tch::no_grad_guard();
            cx.model.score_candidates(batch.queries_t, &memory_t)
        };
        let current =
            Vec::<f32>::try_from(current.reshape([-1]).to_device(Device::Cpu)).unwrap_or_default();
        let warm = (cx.epoch as f64 / self.config.warmup.max(1) as f64).min(1.0);
        let beta = (self.config.beta * warm) as f32;
        let mut out = Vec::with_capacity(batch.len() * k);
        let mut std = vec![0f32; s1];
        let refresh = self.config.refresh;
        let mut stale = Vec::new();
        for (row, &q) in batch.queries.iter().enumerate() {
            let q = q as usize;
            let now = &current[row * s1..(row + 1) * s1];
            if self.recorded[q] != cx.epoch {
                self.recorded[q] = cx.epoch;
                for (j, &s) in now.iter().enumerate() {
                    self.record(q * s1 + j, s);
                }
            }
            for (j, sd) in std.iter_mut().enumerate() {
                *sd = self.std(q * s1 + j);
            }
            for j in select(now, &std, beta, k) {
                out.push(self.ids[q * s1 + j] as i64);
            }
            // The lowest-scored slots make way for fresh candidates.
            if refresh > 0 {
                let mut order: Vec<usize> = (0..s1).collect();
                order.sort_by(|&a, &b| now[a].total_cmp(&now[b]));
                stale.extend(order[..refresh].iter().map(|&j| q * s1 + j));
            }
        }
        if !stale.is_empty() {
            let owners: Vec<i64> = stale.iter().map(|&slot| (slot / s1) as i64).collect();
            let fresh = self.uniform.draw_for(&owners, 1, cx.rng);
            for (&slot, &i) in stale.iter().zip(&fresh) {
                self.ids[slot] = i;
                self.held[slot] = 0;
            }
        }
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
    fn prefers_a_fluctuating_candidate_over_a_steady_one_of_equal_score() {
        // Slot 0 steady at 1.0 (a likely false negative), slot 1 at 0.9 with std 0.5, slot 2 low.
        let current = [1.0, 0.9, -1.0];
        let std = [0.0, 0.5, 0.0];
        assert_eq!(
            select(&current, &std, 0.0, 1),
            vec![0],
            "β = 0 is the best score"
        );
        assert_eq!(
            select(&current, &std, 1.0, 1),
            vec![1],
            "β = 1 prefers the fluctuating one"
        );
        assert_eq!(select(&current, &std, 1.0, 4), vec![1, 0, 2, 1]);
    }

    #[test]
    fn records_one_score_per_epoch_and_picks_by_score_plus_beta_std() {
        let data = tiny_data();
        let mut h = Harness::new(&data, 5);
        let c = SrnsConfig {
            memory: 4,
            refresh: 0,
            history: 3,
            beta: 2.0,
            warmup: 1,
            exclude_positives: false,
        };
        let mut s = Srns::new(&c, &data);
        // A fixed model: scores never change, every std is 0 and the pick is the memory's best.
        for epoch in 1..=3 {
            h.epoch = epoch;
            h.sample(&mut s, &data, &[1, 1], None, 1);
        }
        let memory = s.memory(1).to_vec();
        assert!((0..4).all(|j| s.std(4 + j) == 0.0));
        assert_eq!(s.held[4], 3, "two rows of user 1 in one epoch record once");
        let scores = &h.scores(&[1])[0];
        let best = *memory
            .iter()
            .max_by(|&&a, &&b| scores[a as usize].total_cmp(&scores[b as usize]))
            .unwrap();
        h.epoch = 4;
        let n = h.sample(&mut s, &data, &[1], None, 1);
        assert_eq!(
            Vec::<i64>::try_from(n.drawn_ids().unwrap().reshape([-1])).unwrap(),
            [best as i64]
        );
        // The model moves: recorded scores vary, and the pick maximises score + β · std.
        for epoch in 5..=7 {
            h.perturb(1.0);
            h.epoch = epoch;
            h.sample(&mut s, &data, &[1], None, 1);
        }
        h.epoch = 8;
        h.perturb(1.0);
        let scores = &h.scores(&[1])[0];
        let memory = s.memory(1).to_vec();
        let drawn = h.sample(&mut s, &data, &[1], None, 1);
        // Epoch 8's score is recorded before the pick; the pick uses the updated std.
        let key = |j: usize| scores[memory[j] as usize] + 2.0 * s.std(4 + j);
        let want = (0..4).max_by(|&a, &b| key(a).total_cmp(&key(b))).unwrap();
        assert_eq!(
            Vec::<i64>::try_from(drawn.drawn_ids().unwrap().reshape([-1])).unwrap(),
            [memory[want] as i64]
        );
        assert!((0..4).any(|j| s.std(4 + j) > 0.0));
    }
}
