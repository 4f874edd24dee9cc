//! Implicit-feedback data: the `[domain].data` configuration, the loaded and split `Dataset`, and the
//! per-user item lists everything else looks positives up in.
//!
//! Users and items get dense ids `0..n` in order of first appearance in the files (train file first), so
//! the same files always give the same ids.

pub mod graph;
pub mod kg;
mod loaders;
pub mod npy;
mod split;
mod synthetic;
pub mod text;
pub mod vision;

pub use graph::{EdgeListConfig, GraphData, NodeFeatures, SbmConfig};
pub use kg::{KgData, KgQueryIndex, SyntheticKgConfig};
pub use split::SplitConfig;
pub use synthetic::SyntheticConfig;
pub use text::{CorpusConfig, SyntheticTextConfig, TextData};
pub use vision::{ImagesConfig, SyntheticImagesConfig, VisionData};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

use crate::error::DataError;

/// Where the interactions come from (`[domain].data`, tagged by `format`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "kebab-case")]
pub enum DataConfig {
    /// The embedded generator (latent factors plus popularity skew), with known ground truth.
    Synthetic(SyntheticConfig),
    /// MovieLens files: `u.data` (tab), `ratings.dat` (`::`), `ratings.csv` (comma, header).
    Movielens(FileConfig),
    /// Any delimited `user,item[,rating[,timestamp]]` file.
    Delimited(FileConfig),
    /// NGCF / LightGCN releases: one line per user, `user item item ...`.
    Adjacency(FileConfig),
    /// Knowledge-graph triples, `head<TAB>relation<TAB>tail`: given `train`, `valid`, `test` files.
    Triples(FileConfig),
    /// The embedded knowledge-graph generator (translational latent model), with known ground truth.
    SyntheticKg(SyntheticKgConfig),
    /// A node graph, `src dst` per line, with optional `cora.content`-style node features.
    EdgeList(EdgeListConfig),
    /// The embedded stochastic block model (known communities, optional features).
    SyntheticGraph(SbmConfig),
    /// A plain-text corpus for word embeddings, with word-similarity and analogy sets.
    Corpus(CorpusConfig),
    /// The embedded topic-model corpus (known word similarity).
    SyntheticText(SyntheticTextConfig),
    /// Pixel rows with labels (CSV, optionally gzip-compressed), for contrastive vision.
    Images(ImagesConfig),
    /// The embedded class-conditional glyph images.
    SyntheticImages(SyntheticImagesConfig),
}

/// Files of one data set: either one `path` (split by `[domain].split`) or given `train` + `test` files
/// (and optionally `valid`). Relative paths are relative to the suite file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<PathBuf>,
    /// Field separator of `delimited` files (default `,`; `\t` for tabs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// Whether a `delimited` file starts with a header line (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<bool>,
    /// Keep only interactions rated at least this much (needs a rating column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_rating: Option<f64>,
    /// What each field of a `delimited` line holds: `user`, `item`, `rating`, `timestamp` or `-`
    /// (ignored). Default: the first data line's field count fixes it (2: user, item; 3: + rating;
    /// 4: + timestamp), and every line must have as many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
}

impl FileConfig {
    /// Every file this configuration names, as (key, path).
    pub fn files(&self) -> Vec<(&'static str, &PathBuf)> {
        [
            ("path", &self.path),
            ("train", &self.train),
            ("test", &self.test),
            ("valid", &self.valid),
        ]
        .into_iter()
        .filter_map(|(k, p)| p.as_ref().map(|p| (k, p)))
        .collect()
    }

    /// True when the files come already split into train/test.
    pub fn is_given_split(&self) -> bool {
        self.train.is_some()
    }

    /// The same configuration with every relative path made relative to `dir`.
    pub fn resolved(&self, dir: &Path) -> FileConfig {
        let fix = |p: &Option<PathBuf>| p.as_ref().map(|p| crate::data::resolve_path(dir, p));
        FileConfig {
            path: fix(&self.path),
            train: fix(&self.train),
            test: fix(&self.test),
            valid: fix(&self.valid),
            ..self.clone()
        }
    }
}

/// Behaviour version of the splits (enters the configuration hash).
pub const SPLIT_VERSION: u32 = 1;

impl DataConfig {
    /// Behaviour version of the loader or generator (enters the configuration hash): bump it when the
    /// same input would load or generate other interactions.
    pub fn version(&self) -> u32 {
        match self {
            // 2: held-out triples of entities or relations unseen in training are dropped.
            DataConfig::SyntheticKg(_) => 2,
            // 2: an epoch's pairs are drawn and shuffled a piece of `text::PIECE_PAIRS` at a time, in
            // corpus order between pieces (the same as 1 for epochs of fewer pairs).
            DataConfig::Corpus(_) | DataConfig::SyntheticText(_) => 2,
            DataConfig::Synthetic(_)
            | DataConfig::SyntheticGraph(_)
            | DataConfig::EdgeList(_)
            | DataConfig::Images(_)
            | DataConfig::SyntheticImages(_) => 1,
            // 2 with a given validation file: its pairs that are also test pairs are dropped.
            DataConfig::Movielens(f) | DataConfig::Delimited(f) | DataConfig::Adjacency(f)
                if f.valid.is_some() =>
            {
                2
            }
            // 2: held-out triples of entities or relations unseen in training are dropped, and the
            // pool is the training entities.
            DataConfig::Triples(_) => 2,
            DataConfig::Movielens(_) | DataConfig::Delimited(_) | DataConfig::Adjacency(_) => 1,
        }
    }

    /// The kind of domain whose data the format holds.
    pub fn domain(&self) -> DomainKind {
        if self.is_kg() {
            DomainKind::Kg
        } else if self.is_graph() {
            DomainKind::Graph
        } else if self.is_text() {
            DomainKind::Text
        } else if self.is_vision() {
            DomainKind::Vision
        } else {
            DomainKind::Rec
        }
    }

    /// Whether the format holds knowledge-graph triples (for domains of kind `kg`).
    pub fn is_kg(&self) -> bool {
        matches!(self, DataConfig::Triples(_) | DataConfig::SyntheticKg(_))
    }

    /// Whether the format holds a node graph (for domains of kind `graph`).
    pub fn is_graph(&self) -> bool {
        matches!(
            self,
            DataConfig::EdgeList(_) | DataConfig::SyntheticGraph(_)
        )
    }

    /// Whether the format holds text (for domains of kind `text`).
    pub fn is_text(&self) -> bool {
        matches!(self, DataConfig::Corpus(_) | DataConfig::SyntheticText(_))
    }

    /// Whether the format holds images (for domains of kind `vision`).
    pub fn is_vision(&self) -> bool {
        matches!(self, DataConfig::Images(_) | DataConfig::SyntheticImages(_))
    }

    /// Every file the data reads, as (key, path).
    pub fn files(&self) -> Vec<(&'static str, &PathBuf)> {
        match self {
            DataConfig::EdgeList(e) => e.files(),
            DataConfig::Corpus(c) => c.files(),
            DataConfig::Images(c) => c.files(),
            _ => self.file_config().map(|f| f.files()).unwrap_or_default(),
        }
    }

    pub fn format(&self) -> &'static str {
        match self {
            DataConfig::Synthetic(_) => "synthetic",
            DataConfig::Movielens(_) => "movielens",
            DataConfig::Delimited(_) => "delimited",
            DataConfig::Adjacency(_) => "adjacency",
            DataConfig::Triples(_) => "triples",
            DataConfig::SyntheticKg(_) => "synthetic-kg",
            DataConfig::EdgeList(_) => "edge-list",
            DataConfig::SyntheticGraph(_) => "synthetic-graph",
            DataConfig::Corpus(_) => "corpus",
            DataConfig::SyntheticText(_) => "synthetic-text",
            DataConfig::Images(_) => "images",
            DataConfig::SyntheticImages(_) => "synthetic-images",
        }
    }

    pub fn file_config(&self) -> Option<&FileConfig> {
        match self {
            DataConfig::Synthetic(_)
            | DataConfig::SyntheticKg(_)
            | DataConfig::SyntheticGraph(_)
            | DataConfig::EdgeList(_)
            | DataConfig::Corpus(_)
            | DataConfig::SyntheticText(_)
            | DataConfig::Images(_)
            | DataConfig::SyntheticImages(_) => None,
            DataConfig::Movielens(f)
            | DataConfig::Delimited(f)
            | DataConfig::Adjacency(f)
            | DataConfig::Triples(f) => Some(f),
        }
    }

    /// A short label for run ids when the domain has no `name`: `synthetic`, or the data file's folder.
    pub fn default_name(&self) -> String {
        let files = self.files();
        if files.is_empty() {
            return self.format().into();
        }
        let first = files.first().map(|(_, p)| (*p).clone()).unwrap_or_default();
        first
            .canonicalize()
            .unwrap_or(first)
            .parent()
            .and_then(|d| d.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.format().into())
    }
}

/// (user, item) pairs as two parallel columns of dense ids.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Interactions {
    pub queries: Vec<u32>,
    pub items: Vec<u32>,
}

impl Interactions {
    pub fn len(&self) -> usize {
        self.queries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }
    pub fn push(&mut self, user: u32, item: u32) {
        self.queries.push(user);
        self.items.push(item);
    }
}

/// Each user's items, sorted and without duplicates (compressed sparse rows).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryItems {
    offsets: Vec<usize>,
    items: Vec<u32>,
}

impl QueryItems {
    pub fn from_interactions(n_queries: usize, data: &Interactions) -> QueryItems {
        let mut counts = vec![0usize; n_queries + 1];
        for &u in &data.queries {
            counts[u as usize + 1] += 1;
        }
        for u in 0..n_queries {
            counts[u + 1] += counts[u];
        }
        let mut fill = counts.clone();
        let mut items = vec![0u32; data.len()];
        for (&u, &i) in data.queries.iter().zip(&data.items) {
            items[fill[u as usize]] = i;
            fill[u as usize] += 1;
        }
        // Sort and dedup each row, then compact.
        let mut offsets = Vec::with_capacity(n_queries + 1);
        let mut out = Vec::with_capacity(items.len());
        offsets.push(0);
        for u in 0..n_queries {
            let row = &mut items[counts[u]..counts[u + 1]];
            row.sort_unstable();
            let start = out.len();
            for &i in row.iter() {
                if out.len() == start || *out.last().unwrap() != i {
                    out.push(i);
                }
            }
            offsets.push(out.len());
        }
        QueryItems {
            offsets,
            items: out,
        }
    }

    pub fn n_queries(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// The user's items, sorted ascending.
    pub fn items(&self, user: usize) -> &[u32] {
        &self.items[self.offsets[user]..self.offsets[user + 1]]
    }

    pub fn contains(&self, user: usize, item: u32) -> bool {
        self.items(user).binary_search(&item).is_ok()
    }

    /// The index of (user, item) among all entries (0..nnz), if the user has the item: a dense key for
    /// per-interaction state.
    pub fn position(&self, user: usize, item: u32) -> Option<usize> {
        let at = self.items(user).binary_search(&item).ok()?;
        Some(self.offsets[user] + at)
    }

    /// Total number of (user, item) entries.
    pub fn nnz(&self) -> usize {
        self.items.len()
    }
}

/// A loaded, split data set with dense ids.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub n_queries: usize,
    pub n_items: usize,
    pub train: Interactions,
    pub valid: Interactions,
    pub test: Interactions,
    pub train_by_query: QueryItems,
    pub valid_by_query: QueryItems,
    pub test_by_query: QueryItems,
    /// Synthetic data only: every item the generating model deems relevant to each user (observed or
    /// not), so a sampler's false-negative rate can be measured exactly.
    pub relevant: Option<QueryItems>,
    /// What loading found and fixed (duplicates dropped, test pairs also in train), for the user.
    pub notes: Vec<String>,
    /// Knowledge graphs: which triple side each query is, every known answer, relation statistics.
    pub kg: Option<KgData>,
    /// Graphs (link prediction): every known edge, the fixed non-edges of the sampled protocol, node
    /// features. Queries and candidates are then the same nodes.
    pub graph: Option<GraphData>,
    /// Text (word embeddings): the vocabulary, the corpus each epoch's pairs are drawn from, the
    /// evaluation sets. Queries and candidates are then the same words.
    pub text: Option<TextData>,
    /// Images (contrastive vision): the pixels, labels and the held-out images of the downstream
    /// evaluation. Queries and candidates are then the same training images.
    pub vision: Option<VisionData>,
}

impl Dataset {
    pub fn new(
        name: String,
        n_queries: usize,
        n_items: usize,
        train: Interactions,
        valid: Interactions,
        test: Interactions,
        relevant: Option<QueryItems>,
    ) -> Dataset {
        Dataset {
            train_by_query: QueryItems::from_interactions(n_queries, &train),
            valid_by_query: QueryItems::from_interactions(n_queries, &valid),
            test_by_query: QueryItems::from_interactions(n_queries, &test),
            name,
            n_queries,
            n_items,
            train,
            valid,
            test,
            relevant,
            notes: Vec::new(),
            kg: None,
            graph: None,
            text: None,
            vision: None,
        }
    }

    /// Training examples an epoch trains on: one per triple for a knowledge graph (whose `train` holds
    /// both sides of each), one per pair otherwise.
    pub fn n_examples(&self) -> usize {
        match &self.kg {
            Some(_) => self.train.len() / 2,
            None => self.n_train_pairs(),
        }
    }

    /// Training pairs, repeats counted: text's `train` keeps a draw's distinct pairs, yet an epoch
    /// trains on every pair it draws.
    pub fn n_train_pairs(&self) -> usize {
        match &self.text {
            Some(text) => text.pairs_per_epoch,
            None => self.train.len(),
        }
    }

    pub fn has_validation(&self) -> bool {
        !self.valid.is_empty()
    }

    /// The domain kind this data set belongs to: the one place it is read from which part is set.
    pub fn kind(&self) -> DomainKind {
        if self.text.is_some() {
            DomainKind::Text
        } else if self.vision.is_some() {
            DomainKind::Vision
        } else if self.graph.is_some() {
            DomainKind::Graph
        } else if self.kg.is_some() {
            DomainKind::Kg
        } else {
            DomainKind::Rec
        }
    }

    /// The domain kind's name (`rec`, `kg`, `graph`, `text` or `vision`).
    pub fn domain(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The training graph seen from the items: each item's users, sorted (graph-based samplers).
    pub fn train_by_item(&self) -> QueryItems {
        let flipped = Interactions {
            queries: self.train.items.clone(),
            items: self.train.queries.clone(),
        };
        QueryItems::from_interactions(self.n_items, &flipped)
    }

    /// How often each item occurs in the training interactions; text: each word's corpus count
    /// (word2vec's unigram distribution).
    pub fn item_counts(&self) -> Vec<u64> {
        if let Some(text) = &self.text {
            return text.counts.clone();
        }
        let mut counts = vec![0u64; self.n_items];
        for &i in &self.train.items {
            counts[i as usize] += 1;
        }
        counts
    }
}

/// Loads and splits a domain's data. `seed` drives the synthetic generator and random splits; it comes from
/// (suite, domain, seed) so every sampler of a seed sees the same data.
pub fn load(
    name: &str,
    config: &DataConfig,
    split: Option<&SplitConfig>,
    seed: u64,
) -> Result<Dataset, DataError> {
    let raw = match config {
        DataConfig::Synthetic(c) => return synthetic::generate(name, c, split, seed),
        DataConfig::Movielens(f) => loaders::load_files(f, loaders::Format::Movielens)?,
        DataConfig::Delimited(f) => loaders::load_files(f, loaders::Format::Delimited)?,
        DataConfig::Adjacency(f) => loaders::load_files(f, loaders::Format::Adjacency)?,
        DataConfig::Triples(f) => return kg::load_files(name, f),
        DataConfig::SyntheticKg(c) => return kg::generate(name, c, seed),
        DataConfig::EdgeList(c) => return graph::load_files(name, c, seed),
        DataConfig::SyntheticGraph(c) => return graph::generate(name, c, seed),
        DataConfig::Corpus(c) => return text::load_corpus(name, c, seed),
        DataConfig::SyntheticText(c) => return text::generate(name, c, seed),
        DataConfig::Images(c) => return vision::load_images(name, c, seed),
        DataConfig::SyntheticImages(c) => return vision::generate(name, c, seed),
    };
    split::apply(name, raw, split, seed)
}

/// The task family a domain belongs to: implicit-feedback recommendation, knowledge-graph link
/// prediction, link prediction on a node graph, word embeddings from text, or contrastive learning of
/// image representations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DomainKind {
    Rec,
    Kg,
    Graph,
    Text,
    Vision,
}

impl DomainKind {
    pub const ALL: [DomainKind; 5] = [
        DomainKind::Rec,
        DomainKind::Kg,
        DomainKind::Graph,
        DomainKind::Text,
        DomainKind::Vision,
    ];

    /// The kind of a name (`rec`, `kg`, `graph`, `text`, `vision`).
    pub fn parse(name: &str) -> Option<DomainKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DomainKind::Rec => "rec",
            DomainKind::Kg => "kg",
            DomainKind::Graph => "graph",
            DomainKind::Text => "text",
            DomainKind::Vision => "vision",
        }
    }
}

/// The data sets nsbench embeds, one per domain, at their generators' defaults.
pub fn embedded() -> Result<Vec<Dataset>, DataError> {
    let configs = [
        ("synthetic", DataConfig::Synthetic(Default::default())),
        ("synthetic-kg", DataConfig::SyntheticKg(Default::default())),
        (
            "synthetic-graph",
            DataConfig::SyntheticGraph(Default::default()),
        ),
        (
            "synthetic-text",
            DataConfig::SyntheticText(Default::default()),
        ),
        (
            "synthetic-images",
            DataConfig::SyntheticImages(Default::default()),
        ),
    ];
    configs
        .into_iter()
        .map(|(name, c)| load(name, &c, None, 0))
        .collect()
}

/// Resolves a path from a suite file: relative paths are relative to the suite file's directory.
pub fn resolve_path(suite_dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        suite_dir.join(p)
    }
}

/// A digest of the bytes of every file the data reads, each under its key (`path`, `train`, …): a cell
/// whose data changed is not taken as already finished, and the same bytes under another spelling of
/// the path are the same data. The rest of the configuration enters the cell's hash directly.
pub fn fingerprint(config: &DataConfig) -> Result<String, DataError> {
    let mut h = Sha256::new();
    {
        for (key, path) in config.files() {
            let bytes = std::fs::read(path).map_err(|source| DataError::Read {
                path: path.clone(),
                source,
            })?;
            h.update(key.as_bytes());
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(&bytes);
        }
    }
    Ok(format!("{:x}", h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_items_sorts_and_dedups_each_row() {
        let mut x = Interactions::default();
        for (u, i) in [(1, 5), (0, 3), (1, 2), (1, 5), (0, 1)] {
            x.push(u, i);
        }
        let ui = QueryItems::from_interactions(3, &x);
        assert_eq!(ui.items(0), &[1, 3]);
        assert_eq!(ui.items(1), &[2, 5]);
        assert_eq!(ui.items(2), &[] as &[u32]);
        assert!(ui.contains(1, 5) && !ui.contains(1, 3));
        assert_eq!(ui.nnz(), 4);
    }
}
