//! What a sampler declares next to its code, and the one list that turns declarations into the
//! `[[sampler]]` enum, the registry, the builder and the estimates.
//!
//! A new sampler is its own file with a config type that implements `DeclaredSampler` (its facts in
//! `INFO`, its run-id tag, its builder and its memory estimate: none has a default, so a forgotten one
//! does not compile) and one line in `samplers!` in `sampler/mod.rs`.

use crate::data::Dataset;
use crate::error::SamplerError;
use crate::loss::LossConfig;

use super::Sampler;

/// Every domain: the sampler sees only queries, positives, the pool, known positives and scores.
pub const ALL_DOMAINS: &[&str] = &["rec", "kg", "graph", "text", "vision"];
/// Samplers that read item frequencies or the interaction graph: not vision, where every image occurs
/// once and is its own only positive (popularity would be uniform, and walks have nowhere to go).
pub const WITH_INTERACTIONS: &[&str] = &["rec", "kg", "graph", "text"];

/// What the registry knows of a sampler.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerInfo {
    /// The `kind` of `[[sampler]]`.
    pub kind: &'static str,
    /// One line with its method, paper and parameters with their defaults (`nsbench list samplers`).
    pub description: &'static str,
    /// Behaviour version: bump it whenever a change alters what the sampler draws or how its negatives
    /// are weighted or masked, so stored cells of the old behaviour run again (it enters the hash).
    pub version: u32,
    /// The sampler this one provably is at k = 1, and why: said in `list samplers` and summaries.
    pub same_at_k1: Option<&'static str>,
    /// Takes every candidate, whatever the ratio: one cell per seed, ratio `all`.
    pub ratio_free: bool,
    /// The domains (`[[domain]].kind`) it runs in.
    pub domains: &'static [&'static str],
    /// The loss the sampler's method brings with it, whatever the cell's loss (the debiased losses,
    /// the whole-data references): such a sampler runs once per domain, not once per loss of the axis.
    pub own_loss: Option<&'static str>,
    /// Its family in docs/samplers.md: static, hard, adversarial, graph, efficient, debiased,
    /// non-sampling (figures draw one panel per family).
    pub family: &'static str,
    /// What it needs besides the training interactions (`list samplers`; the data-independence table).
    pub needs: &'static str,
    /// Returns k ids per pair under the domain's loss, so word2vec's per-pair update can take it (the
    /// contract test checks the claim against what the sampler returns).
    pub per_pair: bool,
    /// Training time relative to uniform at k = 1 on the same data (the shard planner's weights).
    pub cost: Cost,
}

/// Training time of a cell relative to uniform at k = 1 on the same data: rounded from the train
/// seconds of `suites/samplers.toml` and `suites/samplers-ml100k.toml`. Only ratios between cells matter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    /// At k = 1 (or the fixed factor of a ratio-free sampler).
    pub at_k1: f64,
    /// Growth per extra negative.
    pub per_extra_negative: f64,
}

/// The sizes a memory estimate reads, in numbers (not bytes).
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub queries: f64,
    pub items: f64,
    pub batch: f64,
    pub k: f64,
    pub dim: f64,
    /// The sampler takes every entry of its batch, queue or pool under this cell's loss.
    pub whole: bool,
}

impl Shape {
    /// M scored candidates per negative.
    pub fn candidates(&self, m: usize) -> (String, f64) {
        (
            format!("{} × {} × {m} scored candidates", self.batch, self.k),
            self.batch * self.k * m as f64 * 12.0,
        )
    }

    /// Every row scored against the whole pool.
    pub fn whole_pool(&self) -> (String, f64) {
        (
            format!(
                "{} × {} whole-pool scores (mask, scores, gradients)",
                self.batch, self.items
            ),
            self.batch * self.items * 13.0,
        )
    }
}

/// A sampler's declaration, implemented by its `[[sampler]]` config.
pub trait DeclaredSampler {
    const INFO: SamplerInfo;

    /// A short tag of the non-default parameters (tells two samplers of one kind apart in run ids).
    fn tag(&self) -> String;

    /// The sampler, built for one cell's data.
    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError>;

    /// What it holds beyond the per-batch ids and embeddings every sampler has, as (what, bytes).
    fn memory(&self, shape: &Shape) -> Vec<(String, f64)>;

    /// Problems with the parameters, as (key, message).
    fn problems(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Takes a fixed set of candidates whatever the ratio under `loss` (one cell per seed, ratio `all`).
    fn ratio_free_under(&self, _loss: &LossConfig) -> bool {
        Self::INFO.ratio_free
    }

    /// Draws its negatives from the batch's other positives (needs batches of two or more).
    fn takes_batch_positives(&self) -> bool {
        false
    }

    /// Why it cannot train under `loss`, as (key, message): a combination that would train
    /// something other than its method.
    fn problem_under(&self, _loss: &LossConfig) -> Option<(&'static str, String)> {
        None
    }
}

/// The one list: `"kind" => Variant(Config)`, in the order of the families. Generates
/// `SamplerConfig` (serde-tagged by kind), `REGISTRY` and the dispatch to each declaration.
macro_rules! samplers {
    ($($kind:literal => $variant:ident($config:ty)),+ $(,)?) => {
        /// `[[sampler]]`, tagged by `kind`; the kind doubles as the registry name.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind")]
        pub enum SamplerConfig {
            $(#[serde(rename = $kind)] $variant($config),)+
        }

        /// Every registered sampler, in the order of the families: static, hard, adversarial, graph,
        /// efficient, debiased, non-sampling.
        pub const REGISTRY: &[SamplerInfo] = &[$(<$config as DeclaredSampler>::INFO,)+];

        impl SamplerConfig {
            /// The config's declaration.
            fn declared(&self) -> &dyn DeclaredDyn {
                match self {
                    $(SamplerConfig::$variant(c) => c,)+
                }
            }

            /// The `kind` this variant parses from (the list's literal; the contract test checks that
            /// each declaration says the same).
            pub fn kind(&self) -> &'static str {
                match self {
                    $(SamplerConfig::$variant(_) => $kind,)+
                }
            }

            /// The default config of every kind, in the list's order (the contract test's cases).
            pub fn every_default() -> Vec<SamplerConfig> {
                vec![$(SamplerConfig::$variant(<$config>::default()),)+]
            }
        }
    };
}
pub(crate) use samplers;

/// `DeclaredSampler` without its constant, so that one `match` can hand out any declaration.
pub trait DeclaredDyn {
    fn info(&self) -> &'static SamplerInfo;
    fn tag(&self) -> String;
    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError>;
    fn memory(&self, shape: &Shape) -> Vec<(String, f64)>;
    fn problems(&self) -> Vec<(&'static str, String)>;
    fn ratio_free_under(&self, loss: &LossConfig) -> bool;
    fn takes_batch_positives(&self) -> bool;
    fn problem_under(&self, loss: &LossConfig) -> Option<(&'static str, String)>;
}

impl<T: DeclaredSampler> DeclaredDyn for T {
    fn info(&self) -> &'static SamplerInfo {
        &Self::INFO
    }
    fn tag(&self) -> String {
        DeclaredSampler::tag(self)
    }
    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        DeclaredSampler::build(self, data)
    }
    fn memory(&self, shape: &Shape) -> Vec<(String, f64)> {
        DeclaredSampler::memory(self, shape)
    }
    fn problems(&self) -> Vec<(&'static str, String)> {
        DeclaredSampler::problems(self)
    }
    fn ratio_free_under(&self, loss: &LossConfig) -> bool {
        DeclaredSampler::ratio_free_under(self, loss)
    }
    fn takes_batch_positives(&self) -> bool {
        DeclaredSampler::takes_batch_positives(self)
    }
    fn problem_under(&self, loss: &LossConfig) -> Option<(&'static str, String)> {
        DeclaredSampler::problem_under(self, loss)
    }
}
