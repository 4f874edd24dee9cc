//! Negative samplers behind one trait.
//!
//! A sampler receives a batch of positives (query, item) and returns k negatives per positive. The
//! interface carries what every family in the literature needs:
//! - model-aware samplers (hard negatives) score candidates through `SampleContext::model` in one batched
//!   call;
//! - stateful samplers (caches, queues) keep state across steps and see the scores of what they drew
//!   (`observe`) and epoch boundaries (`end_epoch`);
//! - weighting samplers return per-negative loss weights, bias-corrected ones a log-proposal `log_q`;
//! - embedding-level samplers (mixing, queues) return negative embeddings instead of ids.
//!
//! Randomness comes only from the `rng` in the context, which derives from (suite, cell, seed).

mod adversarial;
mod bernoulli;
mod bounded;
mod cache;
pub mod contract;
mod curriculum;
mod debiased;
mod declare;
mod dns;
mod fn_filter;
mod full;
mod hard_debiased;
mod in_batch;
mod mcns;
mod mixed;
mod mixing;
mod pagerank;
mod pool;
mod popularity;
mod python;
mod queue;
mod self_adversarial;
mod srns;
mod topk;
mod uniform;
mod whole_data;
pub use crate::draws::AliasTable;
pub use adversarial::{Adversarial, AdversarialConfig};
pub use bernoulli::{Bernoulli, BernoulliConfig};
pub use bounded::{Bounded, BoundedConfig};
pub use cache::{Cache, CacheConfig};
pub use curriculum::{Curriculum, CurriculumConfig};
pub use debiased::{Debiased, DebiasedConfig, DebiasedNegatives};
pub use dns::{Dns, DnsConfig};
pub use fn_filter::{FnFilter, FnFilterConfig};
pub use full::{Full, FullConfig};
pub use hard_debiased::HardDebiasedConfig;
pub use in_batch::{InBatch, InBatchConfig, WholeOrDraws};
pub use mcns::{Mcns, McnsConfig};
pub use mixed::{Mixed, MixedConfig};
pub use mixing::{Mixing, MixingConfig};
pub use pagerank::{Pagerank, PagerankConfig};
pub use popularity::{Popularity, PopularityConfig};
pub use python::PythonConfig;
pub use queue::{Queue, QueueConfig};
pub use self_adversarial::{SelfAdversarial, SelfAdversarialConfig};
pub use srns::{Srns, SrnsConfig};
pub use topk::{Topk, TopkConfig};
pub use uniform::{Uniform, UniformConfig};
pub use whole_data::{
    AllEntities, Enmf, EnmfConfig, GaeConfig, GaeFull, KvsAllConfig, OneVsAllConfig,
};

use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::data::{Dataset, QueryItems};
use crate::error::SamplerError;
use crate::loss::LossConfig;
pub use crate::loss::Objective;
use crate::model::ContrastiveModel;
use declare::{samplers, DeclaredDyn};
pub use declare::{Cost, DeclaredSampler, SamplerInfo, Shape, ALL_DOMAINS, WITH_INTERACTIONS};

samplers! {
    "uniform" => Uniform(UniformConfig),
    "popularity" => Popularity(PopularityConfig),
    "dns" => Dns(DnsConfig),
    "topk" => Topk(TopkConfig),
    "srns" => Srns(SrnsConfig),
    "bounded" => Bounded(BoundedConfig),
    "curriculum" => Curriculum(CurriculumConfig),
    "mixing" => Mixing(MixingConfig),
    "self-adversarial" => SelfAdversarial(SelfAdversarialConfig),
    "adversarial" => Adversarial(AdversarialConfig),
    "pagerank" => Pagerank(PagerankConfig),
    "mcns" => Mcns(McnsConfig),
    "in-batch" => InBatch(InBatchConfig),
    "mixed" => Mixed(MixedConfig),
    "cache" => Cache(CacheConfig),
    "queue" => Queue(QueueConfig),
    "debiased" => Debiased(DebiasedConfig),
    "hard-debiased" => HardDebiased(HardDebiasedConfig),
    "fn-filter" => FnFilter(FnFilterConfig),
    "full" => Full(FullConfig),
    "bernoulli" => Bernoulli(BernoulliConfig),
    "enmf" => Enmf(EnmfConfig),
    "one-vs-all" => OneVsAll(OneVsAllConfig),
    "k-vs-all" => KVsAll(KvsAllConfig),
    "gae" => Gae(GaeConfig),
    "python" => Python(PythonConfig),
}

/// The registry entry of a kind.
pub fn info(kind: &str) -> Option<&'static SamplerInfo> {
    REGISTRY.iter().find(|i| i.kind == kind)
}

impl SamplerConfig {
    /// The registry entry of this sampler's kind.
    pub fn info(&self) -> &'static SamplerInfo {
        self.declared().info()
    }

    /// Whether the sampler takes a fixed set of candidates whatever the ratio under `loss` (one cell
    /// per seed, ratio `all`): `full` always; `in-batch` and `queue` under `softmax` in their default
    /// mode, where they use the whole batch or queue as their papers do.
    pub fn ratio_free_under(&self, loss: &LossConfig) -> bool {
        self.declared().ratio_free_under(loss)
    }

    /// A short tag of the non-default parameters, used to tell two samplers of one kind apart in run ids.
    pub fn params_tag(&self) -> String {
        self.declared().tag()
    }

    /// Why the sampler cannot train under `loss` with batches of `batch_size`, as (key, message): a
    /// combination that would train something other than its method, or no negative at all.
    pub fn problem_under(
        &self,
        loss: &LossConfig,
        batch_size: usize,
    ) -> Option<(&'static str, String)> {
        if self.declared().takes_batch_positives() && batch_size < 2 {
            return Some((
                "kind",
                format!(
                    "{} takes its negatives from the batch's other positives, and train.batch_size = {batch_size} \
                     leaves none: use batch_size >= 2",
                    self.kind()
                ),
            ));
        }
        self.declared().problem_under(loss)
    }

    /// Problems with the parameters, as (key, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        self.declared().problems()
    }

    /// What the sampler holds beyond the per-batch ids and embeddings, as (what, bytes).
    pub fn memory(&self, shape: &Shape) -> Vec<(String, f64)> {
        self.declared().memory(shape)
    }

    /// The sampler, built for one cell's data.
    pub fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        self.declared().build(data)
    }

    /// What the contract holds it to: ratio-free or k per row, and whether it excludes the query's
    /// known positives (every sampler's `exclude_positives`, true unless set false).
    pub fn claims(&self) -> contract::Claims {
        let excludes = toml::Table::try_from(self)
            .ok()
            .and_then(|t| t.get("exclude_positives").and_then(|v| v.as_bool()))
            .unwrap_or(true);
        contract::Claims {
            ratio_free: self.info().ratio_free,
            excludes_positives: excludes,
        }
    }
}

/// One training batch as a sampler sees it: ids on the host (for CPU-side samplers) and on the device.
pub struct Batch<'a> {
    pub queries: &'a [i64],
    pub positives: &'a [i64],
    /// (B) i64 on the training device.
    pub queries_t: &'a Tensor,
    /// (B) i64 on the training device.
    pub positives_t: &'a Tensor,
}

impl Batch<'_> {
    pub fn len(&self) -> usize {
        self.queries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }
}

/// Which side of a knowledge-graph triple an epoch trains (and so corrupts); other domains have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// Head or tail with probability ½ each, per triple and epoch.
    EvenSides,
    /// The head with probability tph / (tph + hpt) of the triple's relation (Wang et al. 2014).
    Bernoulli,
    /// Both sides of every triple every epoch (non-sampling references: 1vsAll).
    BothSides,
}

/// What a sampler may use besides the batch.
pub struct SampleContext<'a> {
    pub rng: &'a mut Pcg64Mcg,
    /// The loss the negatives feed: samplers whose paper defines them under one loss take that form
    /// under it (in-batch and queue under `softmax` use the whole batch or queue).
    pub loss: &'a crate::loss::LossConfig,
    pub model: &'a dyn ContrastiveModel,
    pub device: Device,
    /// The current epoch, from 1.
    pub epoch: u32,
    /// Epochs the training will run (for schedules).
    pub epochs: u32,
    /// Steps taken so far, from 0.
    pub step: u64,
}

/// The negatives themselves.
pub enum NegativeItems {
    /// Candidate ids, (B, k) i64.
    Ids(Tensor),
    /// Synthesised or stored negative embeddings, (B, k, D).
    Embeddings(Tensor),
    /// Every candidate of the pool (non-sampling losses); `valid` (B, N) masks the known positives.
    All,
    /// One set of M candidates shared by every row, `ids` (M): the whole batch's positives (in-batch
    /// under softmax), or the whole queue (MoCo). `embeddings` (M, D): stored ones (detached), or `None`
    /// to look the ids up in the model (with gradient). `valid` (B, M) masks each row's own positive and
    /// known positives. Scored in one call against all rows.
    Shared {
        ids: Tensor,
        embeddings: Option<Tensor>,
    },
}

impl NegativeItems {
    /// What kind of negatives these are, for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            NegativeItems::Ids(_) => "ids, one row per positive",
            NegativeItems::Embeddings(_) => "negative embeddings (stored or synthesised)",
            NegativeItems::All => "every candidate of the pool",
            NegativeItems::Shared { .. } => "one set of negatives shared by the whole batch",
        }
    }
}

/// A sampler's answer for one batch. Shapes stay rectangular: rows are never dropped, `valid` masks.
pub struct Negatives {
    pub items: NegativeItems,
    /// Per-negative loss weights (B, k), no gradient: each slot's weight relative to an ordinary negative
    /// (1). The loss averages weight × term over the k slots; weights are never renormalised.
    pub weights: Option<Tensor>,
    /// log proposal probability of each negative (B, k), for logQ correction.
    pub log_q: Option<Tensor>,
    /// log proposal probability of each row's positive (B), where the sampler's proposal could have
    /// drawn it (in-batch): the sampled softmax corrects the positive's logit too (Yi et al. 2019).
    pub log_q_pos: Option<Tensor>,
    /// (B, k) bool: false marks a slot that must not count as a negative.
    pub valid: Option<Tensor>,
    /// For embedding negatives: the (B, k) ids they were stored from or synthesised around, so the
    /// diagnostics can count them.
    pub origin: Option<Tensor>,
    /// Whole-data objectives: each row's weight (B), so a query met several times an epoch counts once.
    pub row_weights: Option<Tensor>,
    /// Every-candidate negatives under an objective whose row term depends on the query alone (GAE's
    /// reconstruction): the distinct queries (U) scored in place of the batch's rows, each scored once;
    /// `row_weights` and `valid` are then over these rows.
    pub rows: Option<Tensor>,
    /// (B, k) bool: slots the loss treats as further positives of the row, not as negatives (false-
    /// negative attraction; `bce` and `softmax` only).
    pub attract: Option<Tensor>,
    pub objective: Objective,
}

impl Negatives {
    pub fn ids(ids: Tensor) -> Negatives {
        Negatives {
            items: NegativeItems::Ids(ids),
            weights: None,
            log_q: None,
            log_q_pos: None,
            valid: None,
            origin: None,
            row_weights: None,
            rows: None,
            attract: None,
            objective: Objective::Domain,
        }
    }

    pub fn with_weights(mut self, weights: Tensor) -> Negatives {
        self.weights = Some(weights);
        self
    }

    /// `log_q` may be absent (a correction the configuration turned off).
    pub fn with_log_q(mut self, log_q: Option<Tensor>) -> Negatives {
        self.log_q = log_q;
        self
    }

    pub fn with_valid(mut self, valid: Tensor) -> Negatives {
        self.valid = Some(valid);
        self
    }

    /// The ids the diagnostics count, (B, k): the drawn ids, the origin of embedding negatives, or the
    /// shared candidates repeated for every row.
    pub fn drawn_ids(&self) -> Option<Tensor> {
        match &self.items {
            NegativeItems::Ids(ids) => Some(ids.shallow_clone()),
            NegativeItems::Embeddings(_) => self.origin.as_ref().map(|o| o.shallow_clone()),
            NegativeItems::All => None,
            NegativeItems::Shared { ids, .. } => {
                let rows = self.valid.as_ref().map_or(1, |v| v.size()[0]);
                Some(ids.unsqueeze(0).expand([rows, ids.size()[0]], false))
            }
        }
    }

    /// Negatives per positive.
    pub fn per_row(&self) -> i64 {
        match &self.items {
            NegativeItems::Ids(t) | NegativeItems::Embeddings(t) => t.size()[1],
            NegativeItems::All => self.valid.as_ref().map_or(0, |v| v.size()[1]),
            NegativeItems::Shared { ids, .. } => ids.size()[0],
        }
    }
}

/// Draws `k` negatives for every positive of a batch.
pub trait Sampler: Send {
    fn name(&self) -> &'static str;

    /// k negatives per positive of `batch`.
    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError>;

    /// Scores the model gave the drawn negatives (B, k), after the forward pass; for samplers that learn
    /// from them (caches, score memories, generators). Default: nothing.
    fn observe(&mut self, _batch: &Batch, _negatives: &Negatives, _scores: &Tensor) {}

    /// The embeddings the loss gave the batch's positives (B, D), detached, computed before the update:
    /// MoCo's queue stores them as its keys. Called after each libtorch step only for a sampler that
    /// `wants_positives` (none of them runs under word2vec's per-pair update). Default: nothing.
    fn observe_positives(&mut self, _batch: &Batch, _embeddings: &Tensor) {}

    fn wants_positives(&self) -> bool {
        false
    }

    /// Called after every epoch. Default: nothing.
    fn end_epoch(&mut self, _epoch: u32) {}

    /// Which side of each knowledge-graph triple is corrupted. Default: both equally.
    fn corruption(&self) -> Corruption {
        Corruption::EvenSides
    }
}

/// Every query's training positives, for rejecting them from draws: a bitset where queries × pool fits in
/// `BITSET_MAX_BITS` (one memory access per test), else the sorted lists (binary search) with bitsets for
/// their long rows (`WideRows`).
#[derive(Debug, Clone)]
pub struct KnownPositives {
    n_items: usize,
    bits: Option<Vec<u64>>,
    lists: QueryItems,
    wide: WideRows,
}

const BITSET_MAX_BITS: usize = 1 << 29; // 64 MiB

impl KnownPositives {
    pub fn new(data: &Dataset) -> KnownPositives {
        match Self::bitset(data) {
            // The lists too: `shared_mask` reads a row's few positives instead of testing every column.
            Some(bits) => KnownPositives {
                lists: data.train_by_query.clone(),
                ..bits
            },
            None => KnownPositives {
                n_items: data.n_items,
                bits: None,
                wide: WideRows::of(&data.train_by_query, data.n_items),
                lists: data.train_by_query.clone(),
            },
        }
    }

    /// The bitset alone, where it fits (for lookups that have the lists already).
    pub fn bitset(data: &Dataset) -> Option<KnownPositives> {
        Self::bitset_of(&[&data.train_by_query], data.n_queries, data.n_items)
    }

    /// The union of `sets` as a bitset over n_queries × n_items pairs, where it fits.
    pub fn bitset_of(
        sets: &[&QueryItems],
        n_queries: usize,
        n_items: usize,
    ) -> Option<KnownPositives> {
        if n_queries.saturating_mul(n_items) > BITSET_MAX_BITS {
            return None;
        }
        let mut bits = vec![0u64; (n_queries * n_items).div_ceil(64)];
        for set in sets {
            for q in 0..n_queries.min(set.n_queries()) {
                for &i in set.items(q) {
                    let at = q * n_items + i as usize;
                    bits[at / 64] |= 1 << (at % 64);
                }
            }
        }
        Some(KnownPositives {
            n_items,
            bits: Some(bits),
            lists: QueryItems::default(),
            wide: WideRows::default(),
        })
    }

    #[inline]
    pub fn contains(&self, query: usize, item: u32) -> bool {
        match &self.bits {
            Some(bits) => {
                let at = query * self.n_items + item as usize;
                bits[at / 64] & (1 << (at % 64)) != 0
            }
            None => self
                .wide
                .get(query, item)
                .unwrap_or_else(|| self.lists.contains(query, item)),
        }
    }

    /// The first of `draw`'s candidates that is not a known positive of `query`, or the last after
    /// `MAX_REJECTIONS` redraws (a query that has nearly the whole pool cannot be served otherwise).
    #[inline]
    pub fn redraw_known(&self, query: usize, mut draw: impl FnMut() -> u32) -> u32 {
        let mut c = draw();
        let mut tries = 0;
        while tries < MAX_REJECTIONS && self.contains(query, c) {
            c = draw();
            tries += 1;
        }
        c
    }

    /// The query's positives, sorted.
    pub fn items(&self, query: usize) -> &[u32] {
        self.lists.items(query)
    }
}

/// The mask of negatives shared by a batch's rows (row-major, rows × columns): row r (query `queries[r]`,
/// positive `positives[r]`) may take column j (item `columns[j]`) unless the item is its positive or a
/// known positive of its query. Invalid cells are marked from each query's list through the columns
/// sorted by item, so a row costs its bytes and a few binary searches instead of a lookup per cell (MoCo's
/// queue: 1,024 columns a row); a row whose list is too long for that is looked up cell by cell.
pub fn shared_mask(
    known: Option<&KnownPositives>,
    queries: &[i64],
    positives: &[i64],
    columns: &[i64],
) -> Vec<bool> {
    let n = columns.len();
    let mut by_item: Vec<(i64, usize)> = columns.iter().copied().zip(0..).collect();
    by_item.sort_unstable();
    let clear = |row: &mut [bool], item: i64| {
        let from = by_item.partition_point(|&(i, _)| i < item);
        for &(_, col) in by_item[from..].iter().take_while(|&&(i, _)| i == item) {
            row[col] = false;
        }
    };
    let searches = (usize::BITS - n.leading_zeros()) as usize + 1;
    let mut mask = vec![true; queries.len() * n];
    for ((&q, &p), row) in queries.iter().zip(positives).zip(mask.chunks_mut(n.max(1))) {
        clear(row, p);
        let Some(known) = known else { continue };
        let q = q as usize;
        match (q < known.lists.n_queries()).then(|| known.lists.items(q)) {
            Some(items) if items.len() * searches <= n => {
                for &i in items {
                    clear(row, i as i64);
                }
            }
            _ => {
                for (cell, &item) in row.iter_mut().zip(columns) {
                    *cell &= !known.contains(q, item as u32);
                }
            }
        }
    }
    mask
}

/// Bitsets of a set's long rows, those of at least `n_items / 32` entries (where a row's bitset takes no
/// more memory than its list): a lookup there is one memory access instead of a binary search through
/// thousands of entries (a frequent word's co-occurrences span most of the vocabulary).
#[derive(Debug, Clone, Default)]
pub struct WideRows {
    /// Each query's bitset row, or `NARROW`.
    row_of: Vec<u32>,
    words: usize,
    bits: Vec<u64>,
}

const NARROW: u32 = u32::MAX;

impl WideRows {
    pub fn of(set: &QueryItems, n_items: usize) -> WideRows {
        let threshold = (n_items / 32).max(64);
        let words = n_items.div_ceil(64);
        let (mut row_of, mut bits) = (vec![NARROW; set.n_queries()], Vec::new());
        for (q, row) in row_of.iter_mut().enumerate() {
            let items = set.items(q);
            if items.len() < threshold {
                continue;
            }
            *row = (bits.len() / words) as u32;
            let start = bits.len();
            bits.resize(start + words, 0);
            for &i in items {
                bits[start + i as usize / 64] |= 1 << (i % 64);
            }
        }
        WideRows {
            row_of,
            words,
            bits,
        }
    }

    /// Whether `query`'s row holds `item`, if its row is a wide one.
    #[inline]
    pub fn get(&self, query: usize, item: u32) -> Option<bool> {
        let row = *self.row_of.get(query)?;
        if row == NARROW {
            return None;
        }
        let word = self.bits[row as usize * self.words + item as usize / 64];
        Some(word & (1 << (item % 64)) != 0)
    }
}

/// Scores of each of `queries` against its own `width` candidates (`candidates` flat, row by row), as a
/// host vector: read straight from the embedding tables where they live on the CPU, else one batched
/// `score_candidates` call on `device`. For samplers that keep per-query state on the host.
pub(crate) fn score_rows(
    model: &dyn ContrastiveModel,
    queries: &[i64],
    candidates: &[u32],
    width: usize,
    device: Device,
) -> Result<Vec<f32>, SamplerError> {
    assert_eq!(
        queries.len() * width,
        candidates.len(),
        "width candidates per query"
    );
    if let Some(tables) = model.host_tables() {
        let mut scores = vec![0f32; candidates.len()];
        for ((&q, row), out) in queries
            .iter()
            .zip(candidates.chunks_exact(width.max(1)))
            .zip(scores.chunks_exact_mut(width.max(1)))
        {
            tables.score_row(q as usize, row, out);
        }
        return Ok(scores);
    }
    let _no_grad = tch::no_grad_guard();
    let ids: Vec<i64> = candidates.iter().map(|&c| c as i64).collect();
    let ids = Tensor::from_slice(&ids)
        .view([queries.len() as i64, width as i64])
        .to_device(device);
    let scores = model.score_candidates(&Tensor::from_slice(queries).to_device(device), &ids)?;
    Ok(Vec::<f32>::try_from(
        scores.reshape([-1]).to_device(Device::Cpu),
    )?)
}

/// Redraws of a known positive before the last draw stands.
const MAX_REJECTIONS: usize = 64;

/// Draws ids with `draw` into a (B, k) tensor, redrawing a candidate that is a known positive of the query
/// when `exclude` is given (up to `MAX_REJECTIONS` tries, after which the last draw stands: a user who has
/// interacted with nearly the whole pool cannot be served otherwise).
pub(crate) fn draw_ids(
    batch: &Batch,
    k: usize,
    exclude: Option<&KnownPositives>,
    device: Device,
    mut draw: impl FnMut() -> u32,
) -> Tensor {
    let (b, n) = (batch.len(), batch.len() * k);
    // Written straight into the tensor's storage: no intermediate vector, no copy.
    let mut ids = Tensor::empty([b as i64, k as i64], (tch::Kind::Int64, Device::Cpu));
    // SAFETY: `ids` is a freshly allocated, contiguous CPU tensor of n i64s that nothing else references
    // while `out` lives.
    let out = unsafe { std::slice::from_raw_parts_mut(ids.data_ptr() as *mut i64, n) };
    match exclude {
        None => out.iter_mut().for_each(|slot| *slot = draw() as i64),
        Some(exclude) => {
            for (row, &q) in out.chunks_mut(k.max(1)).zip(batch.queries) {
                let q = q as usize;
                for slot in row {
                    *slot = exclude.redraw_known(q, &mut draw) as i64;
                }
            }
        }
    }
    if device != Device::Cpu {
        ids = ids.to_device(device);
    }
    ids
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::Interactions;

    #[test]
    fn wide_rows_answer_as_the_lists_do_and_only_for_long_rows() {
        // 4,000 items: rows of 125 entries or more are wide.
        let n = 4000;
        let mut pairs = Interactions::default();
        for (q, len, stride) in [(0u32, 3000u32, 1u32), (1, 124, 7), (2, 125, 31), (3, 0, 1)] {
            for j in 0..len {
                pairs.push(q, (j * stride + q) % n as u32);
            }
        }
        let lists = QueryItems::from_interactions(4, &pairs);
        let wide = WideRows::of(&lists, n);
        for q in 0..4 {
            let is_wide = lists.items(q).len() >= 125;
            for i in 0..n as u32 {
                match wide.get(q, i) {
                    Some(held) => {
                        assert!(is_wide);
                        assert_eq!(held, lists.contains(q, i), "({q}, {i})");
                    }
                    None => assert!(!is_wide, "row {q} should be wide"),
                }
            }
        }
    }

    #[test]
    fn a_shared_mask_is_the_cell_by_cell_test() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(5);
        // 6 queries over 40 items: short lists, a long one (read cell by cell), an empty one.
        let mut pairs = Interactions::default();
        for (q, len) in [(0u32, 1u32), (1, 3), (2, 38), (3, 0), (4, 5), (5, 2)] {
            for j in 0..len {
                pairs.push(q, (j * 7 + q) % 40);
            }
        }
        let data = Dataset::new(
            "mask".into(),
            6,
            40,
            pairs,
            Default::default(),
            Default::default(),
            None,
        );
        let lists_only = KnownPositives {
            bits: None,
            wide: WideRows::default(),
            ..KnownPositives::new(&data)
        };
        let with_bits = KnownPositives::new(&data);
        let bits_only = KnownPositives::bitset(&data).unwrap();
        for _ in 0..50 {
            let rows = rng.random_range(0..9);
            let queries: Vec<i64> = (0..rows).map(|_| rng.random_range(0..6)).collect();
            let positives: Vec<i64> = (0..rows).map(|_| rng.random_range(0..40)).collect();
            // Repeated items among the columns, as a queue holds an image more than once.
            let columns: Vec<i64> = (0..rng.random_range(0..30))
                .map(|_| rng.random_range(0..40))
                .collect();
            for known in [None, Some(&lists_only), Some(&with_bits), Some(&bits_only)] {
                let want: Vec<bool> = queries
                    .iter()
                    .zip(&positives)
                    .flat_map(|(&q, &p)| {
                        columns.iter().map(move |&c| {
                            c != p && !known.is_some_and(|k| k.contains(q as usize, c as u32))
                        })
                    })
                    .collect();
                assert_eq!(shared_mask(known, &queries, &positives, &columns), want);
            }
        }
    }

    /// 3 users over 10 items; user 0 has items 0..8 (all but 8 and 9).
    pub fn tiny_data() -> Dataset {
        let mut train = Interactions::default();
        for i in 0..8 {
            train.push(0, i);
        }
        for (u, i) in [(1, 0), (1, 0), (1, 1), (2, 5)] {
            train.push(u, i);
        }
        Dataset::new(
            "tiny".into(),
            3,
            10,
            train,
            Interactions::default(),
            Interactions::default(),
            None,
        )
    }

    pub use super::contract::Harness;

    /// Samples `k` negatives for each of `queries` (each with its last training item as the positive)
    /// with a fixed seed and a fixed model; returns the negatives and every query's scores over the pool.
    pub fn sample_with_model(
        sampler: &mut dyn Sampler,
        data: &Dataset,
        queries: &[i64],
        k: usize,
        seed: u64,
    ) -> (Negatives, Vec<Vec<f32>>) {
        let mut h = Harness::new(data, seed);
        let negatives = h.sample(sampler, data, queries, None, k);
        (negatives, h.scores(queries))
    }

    /// The ids `sample_with_model` draws, row by row, checked to be (B, k), with the scores.
    pub fn draw_with_model(
        sampler: &mut dyn Sampler,
        data: &Dataset,
        queries: &[i64],
        k: usize,
        seed: u64,
    ) -> (Vec<Vec<i64>>, Vec<Vec<f32>>) {
        let (negatives, scores) = sample_with_model(sampler, data, queries, k, seed);
        let NegativeItems::Ids(ids) = negatives.items else {
            panic!("expected ids")
        };
        assert_eq!(ids.size(), vec![queries.len() as i64, k as i64]);
        (Vec::<Vec<i64>>::try_from(ids).unwrap(), scores)
    }

    pub fn draw(
        sampler: &mut dyn Sampler,
        data: &Dataset,
        queries: &[i64],
        k: usize,
        seed: u64,
    ) -> Vec<Vec<i64>> {
        draw_with_model(sampler, data, queries, k, seed).0
    }

    /// A knowledge graph shaped like `tiny_data`: 10 entities, 2 relations; query 0 = (e0, r0, ?) has the
    /// answers 1..=8, queries 1 and 2 (heads of (?, r0, e1) and (?, r0, e2)) have e0.
    pub fn tiny_kg() -> Dataset {
        let mut triples: Vec<[u32; 3]> = (1..=8).map(|t| [0, 0, t]).collect();
        triples.extend([[1, 1, 0], [2, 1, 5]]);
        crate::data::kg::build("tiny-kg", 10, 2, &triples, &[], &[[9, 0, 1]], None)
    }

    /// A node graph shaped like `tiny_data`: node 0 joined to 1..=7, node 1 to 2, node 9 to 5; 10 nodes.
    pub fn tiny_graph() -> Dataset {
        let mut train = Interactions::default();
        for (a, b) in (1..8).map(|b| (0, b)).chain([(1, 2), (9, 5)]) {
            train.push(a, b);
            train.push(b, a);
        }
        let mut data = Dataset::new(
            "tiny-graph".into(),
            10,
            10,
            train.clone(),
            Interactions::default(),
            Interactions::default(),
            None,
        );
        let mut known = train;
        for v in 0..10 {
            known.push(v, v);
        }
        // As the graph loaders do: every node is its own known positive.
        data.train_by_query = QueryItems::from_interactions(10, &known);
        data.graph = Some(crate::data::GraphData {
            known: QueryItems::from_interactions(10, &known),
            valid_non_edges: Interactions::default(),
            test_non_edges: Interactions::default(),
            features: None,
            labels: None,
        });
        data
    }

    /// A corpus of 10 words: word 0 ("a", the most frequent) co-occurs with most others within the
    /// window of 2.
    pub fn tiny_text() -> Dataset {
        let mut docs = crate::data::text::Tokens::default();
        for d in ["a b c a d e", "a f g a h", "i a j b", "c i d j e f g h"] {
            docs.push_doc(d.split(' '));
        }
        let w = crate::data::text::WindowConfig {
            min_count: 1,
            sample: 0.0,
            window: 2,
        };
        crate::data::text::build("tiny-text", docs, &w, 0)
            .unwrap()
            .0
    }

    /// Twelve 6 × 6 images of two classes, ten of them to train.
    pub fn tiny_images() -> Dataset {
        let c = crate::data::SyntheticImagesConfig {
            classes: 2,
            per_class: 6,
            size: 6,
            test: 0.2,
            ..Default::default()
        };
        crate::data::vision::generate("tiny-images", &c, 0).unwrap()
    }

    #[test]
    fn every_registered_sampler_draws_in_bounds_reproducibly_and_never_a_known_positive() {
        // Every sampler, on every domain it supports: the contract is the same.
        for data in [
            tiny_data(),
            tiny_kg(),
            tiny_graph(),
            tiny_text(),
            tiny_images(),
        ] {
            contract(&data);
        }
    }

    fn contract(data: &Dataset) {
        let domain = data.domain();
        // Every declared sampler at its defaults, and two non-default forms.
        let mut configs = SamplerConfig::every_default();
        configs.push(SamplerConfig::Popularity(PopularityConfig {
            alpha: -1.0,
            ..Default::default()
        }));
        configs.push(SamplerConfig::InBatch(InBatchConfig {
            logq: true,
            ..Default::default()
        }));
        // A Python sampler has no default file: its contract runs in the Python tests.
        let configs: Vec<_> = configs
            .into_iter()
            .filter(|c| c.info().domains.contains(&domain) && c.kind() != "python")
            .collect();
        // Only the whole-data references are domain-specific (enmf, bernoulli, one-vs-all, k-vs-all, gae),
        // and vision has no frequencies or graph (popularity, pagerank, mcns).
        let least = REGISTRY.len() - if domain == "vision" { 8 } else { 4 };
        assert!(
            configs.len() >= least,
            "{domain}: nearly every sampler runs"
        );
        let queries = [0i64, 1, 2, 0];
        for c in &configs {
            let kind = format!("{domain} {}", c.kind());
            let promises = contract::check(&|d| c.build(d), c.claims(), data, &queries, 50);
            let broken: Vec<_> = promises.iter().filter(|p| p.broken.is_some()).collect();
            assert!(broken.is_empty(), "{kind}: {broken:?}");
            assert_eq!(promises.len(), 7, "{kind}: every promise checked");
            if domain == "text" {
                // The declared `per_pair` (word2vec's per-pair update takes it) is what it returns.
                let a = sample_with_model(c.build(data).unwrap().as_mut(), data, &queries, 50, 7).0;
                let per_pair = matches!(a.items, NegativeItems::Ids(_))
                    && a.objective == Objective::Domain
                    && c.info().own_loss.is_none();
                assert_eq!(
                    c.info().per_pair,
                    per_pair,
                    "{kind}: per_pair says whether it returns k ids per pair under the domain's loss"
                );
            }
        }
    }

    #[test]
    fn the_registry_lists_every_parameter_with_its_true_default() {
        // `nsbench list samplers` prints these descriptions: each "key = value" after the last "; " must
        // be a parameter of the kind's config with that default, and every parameter must be listed.
        for SamplerInfo {
            kind, description, ..
        } in REGISTRY.iter().filter(|i| i.kind != "python")
        {
            let config: SamplerConfig = toml::from_str(&format!("kind = \"{kind}\"")).unwrap();
            let mut defaults = toml::Table::try_from(&config).unwrap();
            defaults.remove("kind");
            let listed = description.rsplit_once("; ").map_or("", |(_, p)| p);
            let mut keys = Vec::new();
            for item in listed.split(", ").filter(|i| *i != "no parameters") {
                let (key, value) = item
                    .split_once(" = ")
                    .unwrap_or_else(|| panic!("{kind}: {item:?} is not key = value"));
                // The default is the first word (and the first alternative of a|b).
                let value = value.split([' ', '|']).next().unwrap();
                let default = defaults
                    .get(key)
                    .unwrap_or_else(|| panic!("{kind}: {key} is not a parameter"));
                let same = match default {
                    toml::Value::String(d) => d == value,
                    toml::Value::Boolean(d) => d.to_string() == value,
                    toml::Value::Integer(d) => value.parse::<f64>().ok() == Some(*d as f64),
                    toml::Value::Float(d) => value.parse::<f64>().ok() == Some(*d),
                    other => panic!("{kind}: {key} = {other} has no listed form"),
                };
                assert!(same, "{kind}: lists {key} = {value}, default is {default}");
                keys.push(key.to_string());
            }
            let mut all: Vec<String> = defaults.keys().cloned().collect();
            keys.sort();
            all.sort();
            assert_eq!(keys, all, "{kind}: listed parameters");
        }
    }

    #[test]
    fn every_declaration_names_the_kind_it_parses_from_and_states_its_costs() {
        let configs = SamplerConfig::every_default();
        assert_eq!(configs.len(), REGISTRY.len());
        for (c, info) in configs.iter().zip(REGISTRY) {
            assert_eq!(
                c.info().kind,
                c.kind(),
                "the list's kind and the declaration's"
            );
            assert_eq!(info.kind, c.kind(), "REGISTRY follows the list");
            let parsed: SamplerConfig =
                toml::from_str(&format!("kind = {:?}", c.kind())).expect("parses by its kind");
            assert_eq!(&parsed, c, "{}: the default parses back", c.kind());
            assert!(info.cost.at_k1 >= 1.0 && info.cost.per_extra_negative >= 0.0);
        }
    }

    #[test]
    fn docs_samplers_md_has_a_row_for_every_sampler_under_its_family() {
        let page = include_str!("../../docs/samplers.md");
        for info in REGISTRY {
            let section = page
                .split("\n## ")
                .find(|s| s.starts_with(&format!("{}\n", info.family)))
                .unwrap_or_else(|| panic!("docs/samplers.md has no section {}", info.family));
            assert!(
                section.contains(&format!("| `{}` |", info.kind)),
                "docs/samplers.md: no row for {} under {}",
                info.kind,
                info.family
            );
        }
    }

    #[test]
    fn without_exclusion_uniform_draws_every_item() {
        let data = tiny_data();
        let mut s = Uniform::new(
            &UniformConfig {
                exclude_positives: false,
            },
            &data,
        );
        let rows = draw(&mut s, &data, &[0], 2000, 1);
        let mut counts = [0usize; 10];
        rows[0].iter().for_each(|&i| counts[i as usize] += 1);
        assert!(
            counts.iter().all(|&c| (140..260).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn popularity_follows_smoothed_counts_to_the_power_alpha() {
        let data = tiny_data();
        let c = PopularityConfig {
            alpha: 0.75,
            smoothing: 1.0,
            exclude_positives: false,
        };
        let mut s = Popularity::new(&c, &data).unwrap();
        let n = 200_000;
        let rows = draw(&mut s, &data, &[2], n, 3);
        let mut observed = [0f64; 10];
        rows[0].iter().for_each(|&i| observed[i as usize] += 1.0);
        let w = c.weights(&data.item_counts());
        let total: f64 = w.iter().sum();
        // Pearson chi-square with 9 degrees of freedom: 27.9 is the 0.999 quantile.
        let chi2: f64 = w
            .iter()
            .zip(&observed)
            .map(|(wi, o)| (o - n as f64 * wi / total).powi(2) / (n as f64 * wi / total))
            .sum();
        assert!(chi2 < 27.9, "chi2 = {chi2}, observed {observed:?}");
        // Item 0 (3 interactions) is drawn (4/1)^0.75 ≈ 2.8 times as often as item 9 (none).
        assert!((observed[0] / observed[9] - 4f64.powf(0.75)).abs() < 0.15);
    }
}
