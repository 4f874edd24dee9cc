//! Models that score (query, candidate) pairs by a dot product of embeddings. Matrix factorisation is the
//! recommendation model; the `ContrastiveModel` trait is what trainers and model-aware samplers use.

mod mf;

pub use mf::{Mf, MfConfig};

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// `[domain].model`, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ModelConfig {
    Mf(MfConfig),
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig::Mf(MfConfig::default())
    }
}

impl ModelConfig {
    pub fn name(&self) -> &'static str {
        match self {
            ModelConfig::Mf(_) => "mf",
        }
    }

    /// Builds the model's parameters in `root`, initialised from `seed` (not from libtorch's global
    /// generator, which cells running in parallel would share).
    pub fn build(
        &self,
        root: &nn::Path,
        n_queries: usize,
        n_items: usize,
        seed: u64,
    ) -> Box<dyn ContrastiveModel> {
        match self {
            ModelConfig::Mf(c) => Box::new(Mf::new(root, c, n_queries, n_items, seed)),
        }
    }
}

/// The embedding tables as host memory, for samplers that score candidates one by one on the CPU.
pub struct HostTables<'a> {
    pub queries: &'a [f32],
    pub items: &'a [f32],
    pub dim: usize,
}

impl HostTables<'_> {
    /// s(q, c), with eight independent partial sums so the compiler vectorises it.
    #[inline]
    pub fn score(&self, q: usize, c: usize) -> f32 {
        let d = self.dim;
        let (a, b) = (
            &self.queries[q * d..(q + 1) * d],
            &self.items[c * d..(c + 1) * d],
        );
        let mut acc = [0f32; 8];
        let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
        let tail: f32 = ca
            .remainder()
            .iter()
            .zip(cb.remainder())
            .map(|(x, y)| x * y)
            .sum();
        for (x, y) in ca.zip(cb) {
            for j in 0..8 {
                acc[j] += x[j] * y[j];
            }
        }
        acc.iter().sum::<f32>() + tail
    }
}

/// A two-sided embedding model: s(q, c) = ⟨queries(q), items(c)⟩.
pub trait ContrastiveModel: Send {
    /// Query embeddings, `ids` (B) i64 → (B, D).
    fn queries(&self, ids: &Tensor) -> Tensor;
    /// Item embeddings, `ids` of any shape (...) i64 → (..., D).
    fn items(&self, ids: &Tensor) -> Tensor;
    /// Every query's embedding, (Q, D).
    fn all_queries(&self) -> Tensor;
    /// Every item's embedding, (N, D): for full ranking and non-sampling losses.
    fn all_items(&self) -> Tensor;
    /// Number of items in the candidate pool.
    fn n_items(&self) -> i64;
    /// The tables as host slices when they live in CPU memory as contiguous f32 (else None).
    fn host_tables(&self) -> Option<HostTables<'_>> {
        None
    }
    /// Scores of each query against its own candidates: `queries` (B) and `candidates` (B, M) → (B, M),
    /// without gradient (samplers score candidates to choose among them, never to train through).
    /// One batched call; samplers use it to score candidates, never one at a time.
    fn score_candidates(&self, queries: &Tensor, candidates: &Tensor) -> Tensor {
        let _no_grad = tch::no_grad_guard();
        let q = self.queries(queries).unsqueeze(1);
        (self.items(candidates) * q).sum_dim_intlist(-1, false, None)
    }
}
