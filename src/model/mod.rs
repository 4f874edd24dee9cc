//! Models score (query, candidate) pairs: a query embedding (a user; a head and a relation; …) against a
//! candidate embedding (an item; an entity; …) under the model's `Similarity` (a dot product, or minus a
//! distance). Matrix factorisation is the recommendation model, TransE, DistMult, ComplEx and RotatE the
//! knowledge-graph ones; the `ContrastiveModel` trait is all that trainers, samplers and evaluators see.

mod first_layer;
mod gcn;
mod kg;
mod lightgcn;
mod mf;
mod similarity;
pub mod vision;

pub use gcn::{Gcn, GcnConfig};
pub use kg::{KgModel, KgModelConfig, KgScore};
pub use lightgcn::{LightGcn, LightGcnConfig};
pub use mf::{Mf, MfConfig, SgnsConfig};
pub use similarity::Similarity;
pub use vision::{ImageEncoder, ImageEncoderConfig};

use serde::{Deserialize, Serialize};
use tch::{nn, TchError, Tensor};

/// `[domain].model`, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ModelConfig {
    Mf(MfConfig),
    Lightgcn(LightGcnConfig),
    /// Shallow node embeddings (graph domain): one table for queries and candidates.
    Embedding(MfConfig),
    /// The GAE encoder (graph domain).
    Gcn(GcnConfig),
    /// Skip-gram (text domain): centre and context word tables, word2vec's initialisation.
    Sgns(SgnsConfig),
    /// An image encoder with a projection head (vision domain).
    ImageEncoder(ImageEncoderConfig),
    Transe(KgModelConfig),
    Distmult(KgModelConfig),
    Complex(KgModelConfig),
    Rotate(KgModelConfig),
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
            ModelConfig::Lightgcn(_) => "lightgcn",
            ModelConfig::Embedding(_) => "embedding",
            ModelConfig::Gcn(_) => "gcn",
            ModelConfig::Sgns(_) => "sgns",
            ModelConfig::ImageEncoder(_) => "image-encoder",
            ModelConfig::Transe(_) => "transe",
            ModelConfig::Distmult(_) => "distmult",
            ModelConfig::Complex(_) => "complex",
            ModelConfig::Rotate(_) => "rotate",
        }
    }

    /// Behaviour version (enters the configuration hash): bump it when the model's scores or
    /// initialisation change. LightGCN 2: gradients carried back outside autograd (the same gradient,
    /// summed in another order).
    pub fn version(&self) -> u32 {
        match self {
            ModelConfig::Lightgcn(_) => 2,
            // 2: `l2` is the network's weight decay, not a penalty on unit-norm projections. 3
            // (without a key encoder): queries and candidates encoded in one pass, SimCLR's 2N × 2N
            // scores one product (the same values, summed in another order). 4 (the `cnn` encoder):
            // its first layer's gradient computed on the host on the CPU (`first_layer`; the same
            // gradient, summed in another order).
            ModelConfig::ImageEncoder(c) if c.encoder == vision::EncoderKind::Cnn => 4,
            ModelConfig::ImageEncoder(c) if c.momentum.is_none() => 3,
            ModelConfig::ImageEncoder(_) => 2,
            // 2: centre vectors start U(−1/d, 1/d), as gensim 4 (word2vec.c: half that).
            ModelConfig::Sgns(_) => 2,
            _ => 1,
        }
    }

    /// The knowledge-graph score function and configuration, for the KG models.
    pub fn kg(&self) -> Option<(KgScore, &KgModelConfig)> {
        match self {
            ModelConfig::Mf(_)
            | ModelConfig::Lightgcn(_)
            | ModelConfig::Embedding(_)
            | ModelConfig::Gcn(_)
            | ModelConfig::Sgns(_)
            | ModelConfig::ImageEncoder(_) => None,
            ModelConfig::Transe(c) => Some((
                KgScore::TransE {
                    norm: c.norm.unwrap_or(1),
                },
                c,
            )),
            ModelConfig::Distmult(c) => Some((KgScore::DistMult, c)),
            ModelConfig::Complex(c) => Some((KgScore::ComplEx, c)),
            ModelConfig::Rotate(c) => Some((KgScore::RotatE, c)),
        }
    }

    /// Embedding width.
    pub fn dim(&self) -> i64 {
        match self {
            ModelConfig::Mf(c) | ModelConfig::Embedding(c) => c.dim,
            ModelConfig::Lightgcn(c) => c.dim,
            ModelConfig::Gcn(c) => c.dim,
            ModelConfig::Sgns(c) => c.dim,
            ModelConfig::ImageEncoder(c) => c.dim,
            ModelConfig::Transe(c)
            | ModelConfig::Distmult(c)
            | ModelConfig::Complex(c)
            | ModelConfig::Rotate(c) => c.dim,
        }
    }

    /// Problems with the parameters, as (key, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.dim() < 1 {
            p.push(("dim", format!("must be >= 1 (got {})", self.dim())));
        }
        match self {
            ModelConfig::Transe(c) if !matches!(c.norm, None | Some(1) | Some(2)) => {
                p.push(("norm", format!("must be 1 or 2 (got {:?})", c.norm)))
            }
            ModelConfig::Distmult(c) | ModelConfig::Complex(c) | ModelConfig::Rotate(c)
                if c.norm.is_some() =>
            {
                p.push(("norm", "only TransE has a norm".into()))
            }
            ModelConfig::Complex(c) | ModelConfig::Rotate(c) if c.dim % 2 != 0 => p.push((
                "dim",
                format!(
                    "must be even: {} embeds dim/2 complex numbers (got {})",
                    self.name(),
                    c.dim
                ),
            )),
            ModelConfig::Gcn(c) if c.hidden < 1 => {
                p.push(("hidden", format!("must be >= 1 (got {})", c.hidden)))
            }
            ModelConfig::ImageEncoder(c) => p.extend(c.problems()),
            _ => {}
        }
        p
    }

    /// The domain kinds the model runs in.
    pub fn domains(&self) -> &'static [&'static str] {
        match self {
            ModelConfig::Mf(_) => &["rec"],
            ModelConfig::Lightgcn(_) => &["rec", "graph"],
            ModelConfig::Embedding(_) | ModelConfig::Gcn(_) => &["graph"],
            ModelConfig::Sgns(_) => &["text"],
            ModelConfig::ImageEncoder(_) => &["vision"],
            _ => &["kg"],
        }
    }

    /// Builds the model's parameters in `root`, initialised from `seed` (not from libtorch's global
    /// generator, which cells running in parallel would share). Knowledge-graph models need the data's
    /// query index (which entity, relation and side each query is).
    pub fn build(
        &self,
        root: &nn::Path,
        data: &crate::data::Dataset,
        seed: u64,
    ) -> Result<Box<dyn ContrastiveModel>, String> {
        Ok(match self {
            ModelConfig::Mf(c) => Box::new(Mf::new(root, c, data.n_queries, data.n_items, seed)),
            ModelConfig::Embedding(c) => Box::new(Mf::shared(root, c, data.n_items, seed)),
            ModelConfig::Sgns(c) => Box::new(Mf::word2vec(root, c, data.n_items, seed)),
            ModelConfig::ImageEncoder(c) => {
                let images = data.vision.as_ref().ok_or_else(|| {
                    "model \"image-encoder\" encodes images: it needs a domain of kind \"vision\""
                        .to_string()
                })?;
                Box::new(ImageEncoder::new(root, c, images, seed))
            }
            ModelConfig::Gcn(c) => Box::new(Gcn::new(
                root,
                c,
                &data.train_by_query,
                data.graph.as_ref().and_then(|g| g.features.as_ref()),
                seed,
                root.device(),
            )),
            ModelConfig::Lightgcn(c) => Box::new(LightGcn::new(
                root,
                c,
                &data.train_by_query,
                data.n_items,
                data.graph.is_some(),
                seed,
                root.device(),
            )),
            _ => {
                let (score, c) = self.kg().expect("every other model is a KG model");
                let index = data.kg.as_ref().ok_or_else(|| {
                    format!(
                        "model {:?} scores knowledge-graph triples: it needs a domain of kind \"kg\"",
                        self.name()
                    )
                })?;
                Box::new(KgModel::new(
                    root,
                    score,
                    c,
                    &index.queries,
                    data.n_items,
                    seed,
                ))
            }
        })
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
        dot::<false>(
            &self.queries[q * d..(q + 1) * d],
            &self.items[c * d..(c + 1) * d],
        )
    }

    /// s(q, c) for every c of `candidates`, into `out` (same length): the candidate-scoring samplers'
    /// inner loop. Uses AVX2 + FMA where the CPU has them (detected once per call, so a whole row of
    /// candidates shares the dispatch), else `score`.
    pub fn score_row(&self, q: usize, candidates: &[u32], out: &mut [f32]) {
        assert_eq!(candidates.len(), out.len(), "one score per candidate");
        #[cfg(target_arch = "x86_64")]
        if self.dim.is_multiple_of(8)
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU features the function is compiled for were just detected.
            unsafe { self.score_row_avx2(q, candidates, out) };
            return;
        }
        for (o, &c) in out.iter_mut().zip(candidates) {
            *o = self.score(q, c as usize);
        }
    }

    /// `score_row` with 256-bit fused multiply-adds; `dim` must be a multiple of 8.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn score_row_avx2(&self, q: usize, candidates: &[u32], out: &mut [f32]) {
        use std::arch::x86_64::*;
        let d = self.dim;
        let query = &self.queries[q * d..(q + 1) * d];
        for (o, &c) in out.iter_mut().zip(candidates) {
            let item = &self.items[c as usize * d..(c as usize + 1) * d];
            // Two accumulators so consecutive FMAs do not wait on each other.
            let (mut even, mut odd) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let mut j = 0;
            while j + 16 <= d {
                let (a, b) = (query.as_ptr().add(j), item.as_ptr().add(j));
                even = _mm256_fmadd_ps(_mm256_loadu_ps(a), _mm256_loadu_ps(b), even);
                odd = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(8)), _mm256_loadu_ps(b.add(8)), odd);
                j += 16;
            }
            if j < d {
                let (a, b) = (query.as_ptr().add(j), item.as_ptr().add(j));
                even = _mm256_fmadd_ps(_mm256_loadu_ps(a), _mm256_loadu_ps(b), even);
            }
            let sum = _mm256_add_ps(even, odd);
            let half = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
            let quarter = _mm_add_ps(half, _mm_movehl_ps(half, half));
            *o = _mm_cvtss_f32(_mm_add_ss(quarter, _mm_shuffle_ps(quarter, quarter, 1)));
        }
    }
}

/// Σ aᵢ bᵢ with eight partial sums, so it vectorises without reassociation licence; `FMA`: fused
/// multiply-adds (only where the CPU has them: elsewhere `mul_add` is a slow library call).
#[inline(always)]
pub(crate) fn dot<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
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
            acc[j] = if FMA {
                x[j].mul_add(y[j], acc[j])
            } else {
                acc[j] + x[j] * y[j]
            };
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// A model whose query and candidate embeddings are the rows of one given table (tests of evaluations).
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct FixedEmbeddings(pub Tensor);

#[cfg(test)]
impl ContrastiveModel for FixedEmbeddings {
    fn queries(&self, ids: &Tensor) -> Tensor {
        self.0.index_select(0, ids)
    }
    fn items(&self, ids: &Tensor) -> Tensor {
        self.0.index_select(0, ids)
    }
    fn all_items(&self) -> Tensor {
        self.0.shallow_clone()
    }
    fn n_items(&self) -> i64 {
        self.0.size()[0]
    }
}

/// The two tables of a dot-product model as writable host memory, for an update made on the host
/// (word2vec's per-pair SGD). The two slices never overlap.
pub struct HostTablesMut<'a> {
    pub queries: &'a mut [f32],
    pub items: &'a mut [f32],
    pub dim: usize,
}

/// A two-sided embedding model: s(q, c) = similarity(queries(q), items(c)).
pub trait ContrastiveModel: Send {
    /// Query embeddings, `ids` (B) i64 → (B, D).
    fn queries(&self, ids: &Tensor) -> Tensor;
    /// Item (candidate) embeddings, `ids` of any shape (...) i64 → (..., D).
    fn items(&self, ids: &Tensor) -> Tensor;
    /// `queries(queries)` and then `items(items)`, as one call: an encoder of augmented views embeds
    /// both in one pass through its network (SimCLR's 2N views of a batch in one forward), drawing the
    /// same augmentations in the same order.
    fn queries_and_items(&self, queries: &Tensor, items: &Tensor) -> (Tensor, Tensor) {
        (self.queries(queries), self.items(items))
    }
    /// Every item's embedding, (N, D): for full ranking and non-sampling losses.
    fn all_items(&self) -> Tensor;
    /// Number of items in the candidate pool.
    fn n_items(&self) -> i64;
    /// How a query embedding and a candidate embedding make a score.
    fn similarity(&self) -> Similarity {
        Similarity::Dot
    }
    /// Whether every query and candidate embedding has unit L2 norm (an image encoder's projection),
    /// so a synthesised embedding is normalised back onto the sphere (MoCHi). Default: no.
    fn unit_norm(&self) -> bool {
        false
    }
    /// Whether a query and its positive are two views of one object through one network (SimCLR's image
    /// encoder): the batch's other anchors are then negatives too (2N − 2) and the in-batch loss is
    /// symmetric. Default: no (users and items, or a key encoder apart from the trained one).
    fn two_views(&self) -> bool {
        false
    }
    /// The query embeddings as one trainable table (Q, D), when they are one (MF's users): the L2
    /// penalty can then weigh table rows by use instead of gathering them.
    fn query_table(&self) -> Option<Tensor> {
        None
    }
    /// Σ of the squared norms of the parameters a batch of queries uses, for the L2 penalty, when the
    /// query embedding is composed from them (None: the query embedding is itself a parameter row).
    fn query_sq_norms(&self, _ids: &Tensor) -> Option<Tensor> {
        None
    }
    /// The tables as host slices when they live in CPU memory as contiguous f32 and the similarity is a
    /// dot product (else None): the fast host path of candidate-scoring samplers.
    fn host_tables(&self) -> Option<HostTables<'_>> {
        None
    }
    /// `host_tables`, writable, for a model whose query and candidate tables are distinct parameters
    /// (skip-gram's centre and context words); None otherwise. The caller must hold no other view of
    /// the tables (no `host_tables`, no tensor op) while it writes.
    fn host_tables_mut(&self) -> Option<HostTablesMut<'_>> {
        None
    }
    /// Called before each training step (with gradient) and before each evaluation (without): models
    /// whose embeddings are computed from their parameters over the whole graph (LightGCN) compute them
    /// here once, so a step and an evaluation each propagate once. Default: nothing to compute.
    fn refresh(&self) {}
    /// The raw parameter tables (queries, candidates) behind the embeddings, when the embeddings are
    /// computed from them (LightGCN): the L2 penalty weighs these rows, not the propagated embeddings.
    fn penalty_tables(&self) -> Option<(Tensor, Tensor)> {
        None
    }
    /// Every propagation layer's candidate embeddings, layer 0 first, for a graph encoder (MixGCF's hop
    /// mixing); None for a model without layers.
    fn item_layers(&self) -> Option<Vec<Tensor>> {
        None
    }
    /// Every propagation layer's query embeddings, layer 0 first (see `item_layers`).
    fn query_layers(&self) -> Option<Vec<Tensor>> {
        None
    }
    /// The representation evaluated downstream, `ids` (B) → (B, D'): the query embedding by default; an
    /// image encoder's output before its projection head, on clean images (ids may be held-out images).
    fn features(&self, ids: &Tensor) -> Tensor {
        self.queries(ids)
    }
    /// Two augmented views of each image, projected and normalised, from a stream seeded by `seed`
    /// (alignment and uniformity); None for a model without augmentations.
    fn views(&self, _ids: &Tensor, _seed: u64) -> Option<(Tensor, Tensor)> {
        None
    }
    /// Called after the loss's backward pass, before the optimiser step: a model that computed its
    /// embeddings outside autograd (LightGCN's propagation) carries their gradients back to its
    /// parameters here. Default: nothing to carry.
    fn after_backward(&self) {}
    /// Asks for this step's embedding rows to be gathered apart from autograd (`on`, before the loss's
    /// forward pass; off again after it): their gradients then reach the optimiser as rows
    /// (`take_row_grads`), not as a table-sized tensor that is zero except where the batch gathered. A
    /// model that cannot ignores it (the default), as may one whose tables are not on the host.
    fn gather_apart(&self, _on: bool) {}
    /// The gradients of this step's gathers made apart, after the backward pass (the optimiser adds
    /// them to whatever gradient autograd gave the same tables). Default: none.
    fn take_row_grads(&self) -> Vec<RowGrads> {
        Vec::new()
    }
    /// Applied after every optimiser step: constraints of the model's paper (TransE keeps entity
    /// embeddings on the unit sphere). Default: none.
    fn after_step(&self) {}
    /// Scores of each query against its own candidates: `queries` (B) and `candidates` (B, M) → (B, M),
    /// without gradient (samplers score candidates to choose among them, never to train through).
    /// One batched call; samplers use it to score candidates, never one at a time.
    fn score_candidates(&self, queries: &Tensor, candidates: &Tensor) -> Result<Tensor, TchError> {
        let _no_grad = tch::no_grad_guard();
        let q = self.queries(queries).unsqueeze(1);
        self.similarity().f_pairwise(&q, &self.items(candidates))
    }
    /// Scores of each query against the whole pool, `queries` (B) → (B, N), with gradient (the `full`
    /// reference trains through it; evaluation calls it under `no_grad`).
    fn score_all(&self, queries: &Tensor) -> Result<Tensor, TchError> {
        self.similarity()
            .f_all(&self.queries(queries), &self.all_items())
    }
}

/// The gradient of a table `param` that is zero except at the rows one gather read: row `j` of `grads`
/// belongs to row `ids[j]` of the table, rows read more than once summing in the order of `ids` from
/// +0, as libtorch's backward of `index_select` (`index_add_` into zeros) sums them.
#[derive(Debug)]
pub struct RowGrads {
    pub param: Tensor,
    /// (n) i64 row ids.
    pub ids: Tensor,
    /// (n, D): one gradient row per id.
    pub grads: Tensor,
}

impl RowGrads {
    /// The whole table's gradient, as autograd's backward of the gather makes it.
    pub fn dense(&self) -> Tensor {
        tch::no_grad(|| {
            self.param
                .zeros_like()
                .index_add_(0, &self.ids, &self.grads)
        })
    }
}

/// Adds `g` to the gradient of `param`, for a model that carries gradients back itself in
/// `after_backward`; when autograd gave the parameter none, through a surrogate loss, so libtorch holds
/// that gradient as it holds every other.
pub(crate) fn accumulate_grad(param: &Tensor, g: &Tensor) {
    let mut grad = param.grad();
    if grad.defined() {
        let _ = tch::no_grad(|| grad.g_add_(g));
    } else {
        tch::with_grad(|| (param * g).sum(tch::Kind::Float).backward());
    }
}

#[cfg(test)]
mod tests {
    use super::HostTables;

    #[test]
    fn score_row_is_the_dot_product_at_every_width() {
        // 8 and 24 take the one-register tail of the vector path, 64 its main loop, 12 the portable loop.
        for dim in [8usize, 12, 24, 64] {
            let queries: Vec<f32> = (0..3 * dim)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
                .collect();
            let items: Vec<f32> = (0..5 * dim)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0)
                .collect();
            let t = HostTables {
                queries: &queries,
                items: &items,
                dim,
            };
            let candidates = [4u32, 0, 2, 2];
            let mut out = [0f32; 4];
            t.score_row(1, &candidates, &mut out);
            for (&c, &s) in candidates.iter().zip(&out) {
                let exact: f64 = (0..dim)
                    .map(|j| queries[dim + j] as f64 * items[c as usize * dim + j] as f64)
                    .sum();
                assert!((s as f64 - exact).abs() < 1e-4, "dim {dim}, item {c}");
            }
        }
    }
}
