//! The suite file as written: serde structs of the TOML, nothing validated yet (see `check.rs`).
//! Every table rejects unknown keys, so a typo is an error instead of a silently ignored setting.

use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::data::{DataConfig, DomainKind, SplitConfig};
use crate::error::SuiteError;
use crate::model::ModelConfig;
use crate::sampler::SamplerConfig;
use crate::train::{Losses, TrainConfig};

/// `[suite]`: the grid's axes and where the cells run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteSection {
    /// Names the results directory (`results/<name>/`): letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// One cell per seed; the seed drives every random stream of the cell.
    pub seeds: Vec<u64>,
    /// Negatives per positive (k); each is a grid axis value.
    pub ratios: Vec<u32>,
    /// libtorch intra-op threads per cell (default 1; `--threads` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// Cells trained at once (default: cores / threads; `--jobs` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<usize>,
    /// `cpu`, `cuda` or `cuda:N` (default `cpu`; `--device` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Run until every comparison with the reference is decided (`nsbench run --until-decided`), with
    /// these settings; the key alone turns it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_decided: Option<UntilDecided>,
    /// Seeds beyond `seeds` that some cells got (written by `--until-decided` into the resolved suite,
    /// so that merge, list and report plan the very cells it trained).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_seeds: Vec<ExtraSeeds>,
}

/// How `--until-decided` adds seeds: `round` more at a time to the comparisons still undecided (and
/// their reference), until every one is decided or has `max_seeds`; verdicts as the report's, against
/// `reference` with equivalence `margin`, at `level` with α spent evenly over the looks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UntilDecided {
    pub max_seeds: usize,
    pub round: usize,
    pub reference: String,
    pub margin: f64,
    pub level: f64,
}

impl Default for UntilDecided {
    fn default() -> Self {
        UntilDecided {
            max_seeds: 20,
            round: 2,
            reference: "uniform".into(),
            margin: 0.02,
            level: 0.95,
        }
    }
}

impl UntilDecided {
    /// How many times the verdicts are looked at, at most, starting from `initial` seeds.
    pub fn looks(&self, initial: usize) -> usize {
        1 + self
            .max_seeds
            .saturating_sub(initial)
            .div_ceil(self.round.max(1))
    }
}

/// More seeds for one (domain, sampler, loss, k) of the grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraSeeds {
    pub domain: String,
    /// The sampler's label.
    pub sampler: String,
    /// The loss's label where the domain's run ids name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<String>,
    pub ratio: u32,
    pub seeds: Vec<u64>,
}

/// `[[domain]]`: a data set, how it is split, and the model trained on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    pub kind: DomainKind,
    /// Label used in run ids and plots; defaults to a name derived from the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub data: DataConfig,
    /// How to split a single interaction file; omitted when the data gives its own train/test files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitConfig>,
    /// The model; default: `mf` for rec, `transe` for kg, `embedding` for graph, `sgns` for text,
    /// `image-encoder` for vision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelConfig>,
    /// This domain's loss or losses (a grid axis), over `[train].loss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<Losses>,
}

impl DomainConfig {
    /// The model, or the domain's default.
    pub fn model(&self) -> ModelConfig {
        self.model
            .clone()
            .unwrap_or_else(|| crate::domain::of(self.kind).default_model())
    }
}

/// The whole file: `[suite]`, optional `[train]`, one or more `[[domain]]` and `[[sampler]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    pub suite: SuiteSection,
    #[serde(default)]
    pub train: TrainConfig,
    #[serde(rename = "domain", default)]
    pub domains: Vec<DomainConfig>,
    #[serde(rename = "sampler", default)]
    pub samplers: Vec<SamplerConfig>,
    /// Published numbers the suite's results must reproduce (`nsbench check --expect`).
    #[serde(rename = "expect", default, skip_serializing_if = "Vec::is_empty")]
    pub expects: Vec<Expect>,
}

/// `[[expect]]`: a published value of one (data set, sampler, k, metric) and the band around it that
/// the seed mean must fall in: `value ± tolerance`, or, with `seeds = z`, ± z standard errors of the
/// seed mean (the band the suite's own seed variance gives). Not part of any cell's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The domain's name (`[[domain]].name`).
    pub dataset: String,
    /// The sampler's label as the results show it (`uniform`, `dns`, ...).
    pub sampler: String,
    /// Negatives per positive; omitted where the sampler ran at one k only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<u32>,
    pub metric: String,
    pub value: f64,
    /// Absolute half width of the band.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// Half width in standard errors of the seed mean (z), when no absolute tolerance is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<f64>,
    /// Where the number comes from (paper, table), shown in the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl SuiteFile {
    /// Reads and parses a suite file; the parse error names the line and column.
    pub fn load(path: &Path) -> Result<SuiteFile, SuiteError> {
        let text = std::fs::read_to_string(path).map_err(|source| SuiteError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses suite text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<SuiteFile, SuiteError> {
        toml::from_str(text).map_err(|e| SuiteError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })
    }
}
