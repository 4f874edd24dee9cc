//! Training: the `[train]` configuration and the epoch loop (the losses live in `crate::loss`).

mod adam;
pub mod diagnostics;
mod examples;
mod fit;
mod vml_sqrt;
pub mod word2vec;

pub use crate::loss::{LossConfig, Losses};
pub use crate::metrics::RankingExcludes;
pub use fit::{
    fit, optimizer, train_step, EpochLog, EpochProgress, Evaluation, Optimizer, TrainLog,
    TrainStreams,
};

use serde::{Deserialize, Serialize};

/// Behaviour version of the training loop (batching, the step, L2, early stopping; enters the
/// configuration hash): bump it when a change alters what a cell trains.
pub const VERSION: u32 = 1;

/// The training loop's behaviour version for a cell trained under `cfg`: `VERSION`, or 2 with early
/// stopping (which since selects the first best in the metric's direction, by default the domain's
/// headline metric: graph's MRR, no longer AUC).
pub fn version(cfg: &TrainConfig) -> u32 {
    if cfg.early_stopping.is_some() {
        VERSION.max(2)
    } else {
        VERSION
    }
}

/// `[train]`: shared by every cell of a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub epochs: u32,
    pub batch_size: usize,
    pub optimizer: OptimizerKind,
    pub lr: f64,
    /// L2 penalty on the embeddings used in a batch: l2/2 · (‖u‖² + ‖p‖² + mean_k ‖n‖²), batch mean.
    pub l2: f64,
    /// The loss, or a list of losses (a grid axis); default: the domain's (rec: bpr; kg: the model's
    /// paper). A domain's own `loss` wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<Losses>,
    /// Evaluate every this many epochs (and after the last).
    pub eval_every: u32,
    /// Cut-offs K of the top-K metrics.
    pub ks: Vec<usize>,
    /// Stop when the validation metric has not improved for `patience` evaluations (needs a validation
    /// split); the reported test metrics are those of the best validation epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopping>,
    /// What the test ranking leaves out besides the item being ranked (rec; link prediction always
    /// filters every known answer): `train-and-valid` (default) or `train` (validation items stay in
    /// the ranking as non-relevant, as many published tables do).
    #[serde(default, skip_serializing_if = "RankingExcludes::is_default")]
    pub exclude_from_ranking: RankingExcludes,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 20,
            batch_size: 1024,
            optimizer: OptimizerKind::Adam,
            lr: 1e-3,
            l2: 1e-4,
            loss: None,
            eval_every: 5,
            ks: vec![10, 20],
            early_stopping: None,
            exclude_from_ranking: RankingExcludes::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    Adam,
    Sgd,
    /// word2vec's own update (skip-gram): one SGD step per pair on the summed logistic loss, on the
    /// host, the learning rate falling linearly from `lr` to 1e-4 over the run (`word2vec`).
    Word2vec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    /// A metric the domain's evaluation reports, e.g. `ndcg@20` (the default for rec) or `mrr` (the
    /// default for kg).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Evaluations without improvement before stopping.
    #[serde(default = "default_patience")]
    pub patience: u32,
}

fn default_patience() -> u32 {
    3
}
