//! Graph data for link prediction: an undirected node graph whose held-out edges are to be found again.
//!
//! Sources: an edge list (`src dst` per line, whitespace- or comma-separated, `#` comments), such as
//! Cora's `cora.cites`, with optional node features in the `cora.content` format (`id f1 … fF label`);
//! or the embedded stochastic block model (known communities). Node ids are dense, in order of first
//! appearance: the feature file's rows first (so featured nodes without edges exist), then the edges.
//!
//! Split (GAE's protocol, Kipf & Welling 2016): of the undirected edges (self-loops and duplicates
//! dropped), `test` and `valid` shares are held out, each with as many fixed random non-edges (pairs
//! that are edges in no split); training is the rest of the graph. `Dataset::train` holds every training
//! edge in both directions, and `valid`/`test` each held-out edge once, as (lower id, higher id).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use super::{Dataset, Interactions, QueryItems};
use crate::error::DataError;

/// What a graph data set adds to the `Dataset` (whose queries and candidates are both its nodes, and
/// whose `train` holds every training edge in both directions).
#[derive(Debug, Clone)]
pub struct GraphData {
    /// Every known neighbour of each node (train, valid and test edges) and the node itself: what the
    /// filtered full ranking removes besides the answer.
    pub known: QueryItems,
    /// The fixed random non-edges the sampled protocol (AUC, AP) scores against the held-out edges.
    pub valid_non_edges: Interactions,
    pub test_non_edges: Interactions,
    /// Node features (rows of `n_features`), when the data has them.
    pub features: Option<NodeFeatures>,
    /// Each node's community or class label, when known (the generator's blocks, Cora's classes).
    pub labels: Option<Vec<u32>>,
}

/// Dense node features, one row per node, in node-id order.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeFeatures {
    pub n_features: usize,
    pub values: Vec<f32>,
}

/// `[domain].data` of format `edge-list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeListConfig {
    /// The edges, `src dst` per line.
    pub path: PathBuf,
    /// Node features in the `cora.content` format (id, features…, label), optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<PathBuf>,
    /// Whether `src dst` means an arc (default false). Link prediction here is on the undirected graph:
    /// a directed list is read as its undirected graph, which the run's notes say.
    #[serde(default)]
    pub directed: bool,
    /// Shares of the undirected edges held out for validation and test (GAE: 0.05 and 0.10).
    #[serde(default = "default_valid")]
    pub valid: f64,
    #[serde(default = "default_test")]
    pub test: f64,
}

fn default_valid() -> f64 {
    0.05
}

fn default_test() -> f64 {
    0.10
}

/// `[domain].data` of format `synthetic-graph`: a stochastic block model. `nodes` are spread evenly over
/// `communities`; two nodes of one community are joined with probability `p_in`, of two communities with
/// `p_out`. With `features`, each node gets that many binary features: a community's own features are on
/// with probability `feature_signal`, the others with `feature_noise` (bag-of-words-like, as Cora's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SbmConfig {
    pub nodes: usize,
    pub communities: usize,
    pub p_in: f64,
    pub p_out: f64,
    pub features: usize,
    pub feature_signal: f64,
    pub feature_noise: f64,
    pub valid: f64,
    pub test: f64,
}

impl Default for SbmConfig {
    fn default() -> Self {
        SbmConfig {
            nodes: 1000,
            communities: 10,
            p_in: 0.05,
            p_out: 0.002,
            features: 100,
            feature_signal: 0.3,
            feature_noise: 0.02,
            valid: 0.05,
            test: 0.10,
        }
    }
}

fn share_problems(valid: f64, test: f64) -> Option<(&'static str, String)> {
    (!(valid > 0.0 && test > 0.0 && valid + test < 1.0)).then(|| {
        (
            "test",
            format!("valid > 0, test > 0 and valid + test < 1 are needed (got {valid} and {test})"),
        )
    })
}

impl EdgeListConfig {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        share_problems(self.valid, self.test).into_iter().collect()
    }

    /// The files read, as (key, path).
    pub fn files(&self) -> Vec<(&'static str, &PathBuf)> {
        let mut f = vec![("path", &self.path)];
        if let Some(p) = &self.features {
            f.push(("features", p));
        }
        f
    }

    pub fn resolved(&self, dir: &Path) -> EdgeListConfig {
        EdgeListConfig {
            path: crate::data::resolve_path(dir, &self.path),
            features: self
                .features
                .as_ref()
                .map(|p| crate::data::resolve_path(dir, p)),
            ..self.clone()
        }
    }
}

impl SbmConfig {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.nodes < 10 {
            p.push(("nodes", format!("must be >= 10 (got {})", self.nodes)));
        }
        if self.communities < 1 || self.communities > self.nodes {
            p.push((
                "communities",
                format!("must be in 1..=nodes (got {})", self.communities),
            ));
        }
        for (key, v) in [
            ("p_in", self.p_in),
            ("p_out", self.p_out),
            ("feature_signal", self.feature_signal),
            ("feature_noise", self.feature_noise),
        ] {
            if !(0.0..=1.0).contains(&v) {
                p.push((key, format!("must be a probability in [0, 1] (got {v})")));
            }
        }
        if self.p_in <= 0.0 {
            p.push(("p_in", "must be > 0: the graph needs edges".into()));
        }
        p.extend(share_problems(self.valid, self.test));
        p
    }
}

/// Reads an edge list (and its features) and splits it.
pub fn load_files(name: &str, c: &EdgeListConfig, seed: u64) -> Result<Dataset, DataError> {
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut notes = Vec::new();
    let (features, labels) = match &c.features {
        Some(path) => {
            let (f, l) = read_content(path, &mut ids)?;
            (Some(f), Some(l))
        }
        None => (None, None),
    };
    let text = read(&c.path)?;
    let mut edges = Vec::new();
    let mut unknown = 0usize;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line
            .split(|ch: char| ch.is_whitespace() || ch == ',')
            .filter(|f| !f.is_empty())
            .collect();
        if fields.len() < 2 {
            return Err(DataError::Line {
                path: c.path.clone(),
                line: n + 1,
                message: format!(
                    "expected `src dst` (two node ids separated by whitespace or a comma), got {line:?}"
                ),
            });
        }
        if features.is_some() && !(ids.contains_key(fields[0]) && ids.contains_key(fields[1])) {
            // Cora's convention: edges to papers outside the feature file are not part of the graph.
            unknown += 1;
            continue;
        }
        let mut id = |s: &str| {
            let next = ids.len() as u32;
            *ids.entry(s.to_string()).or_insert(next)
        };
        edges.push((id(fields[0]), id(fields[1])));
    }
    if unknown > 0 {
        notes.push(format!(
            "{unknown} edge lines name a node missing from the feature file: left out"
        ));
    }
    if c.directed {
        notes.push(
            "the arcs are read as an undirected graph (link prediction on undirected graphs)"
                .into(),
        );
    }
    let n_nodes = ids.len();
    let mut data = split(name, n_nodes, edges, c.valid, c.test, seed, &mut notes)?;
    if let Some(g) = data.graph.as_mut() {
        g.features = features;
        g.labels = labels;
    }
    data.notes = notes;
    Ok(data)
}

fn read(path: &Path) -> Result<String, DataError> {
    std::fs::read_to_string(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// `id f1 … fF label` per line: features as f32, labels as dense class ids (order of appearance).
fn read_content(
    path: &Path,
    ids: &mut HashMap<String, u32>,
) -> Result<(NodeFeatures, Vec<u32>), DataError> {
    let text = read(path)?;
    let (mut values, mut labels) = (Vec::new(), Vec::new());
    let mut classes: HashMap<String, u32> = HashMap::new();
    let mut width = None;
    for (n, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let bad = |message: String| DataError::Line {
            path: path.to_path_buf(),
            line: n + 1,
            message,
        };
        if fields.len() < 3 {
            return Err(bad(format!(
                "expected `id feature… label` (at least one feature), got {} fields",
                fields.len()
            )));
        }
        let f = fields.len() - 2;
        match width {
            None => width = Some(f),
            Some(w) if w != f => {
                return Err(bad(format!(
                    "{f} features where the first line has {w}: every node needs the same number"
                )))
            }
            _ => {}
        }
        if ids.contains_key(fields[0]) {
            return Err(bad(format!("node {:?} is listed twice", fields[0])));
        }
        let next = ids.len() as u32;
        ids.insert(fields[0].to_string(), next);
        for (j, v) in fields[1..=f].iter().enumerate() {
            values.push(
                v.parse::<f32>()
                    .map_err(|_| bad(format!("feature {} is {v:?}, not a number", j + 1)))?,
            );
        }
        let next_class = classes.len() as u32;
        labels.push(
            *classes
                .entry(fields[f + 1].to_string())
                .or_insert(next_class),
        );
    }
    let n_features = width.ok_or_else(|| DataError::Invalid {
        what: path.display().to_string(),
        message: "the feature file has no nodes".into(),
    })?;
    Ok((NodeFeatures { n_features, values }, labels))
}

/// Draws a stochastic block model and splits it.
pub fn generate(name: &str, c: &SbmConfig, seed: u64) -> Result<Dataset, DataError> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let n = c.nodes;
    let community: Vec<u32> = (0..n).map(|v| (v * c.communities / n) as u32).collect();
    let mut edges = Vec::new();
    // One draw per pair: O(n²), a second for the suites' graphs of a few thousand nodes.
    for u in 0..n {
        for v in u + 1..n {
            let p = if community[u] == community[v] {
                c.p_in
            } else {
                c.p_out
            };
            if p > 0.0 && rng.random::<f64>() < p {
                edges.push((u as u32, v as u32));
            }
        }
    }
    let features = (c.features > 0).then(|| {
        let mut values = vec![0f32; n * c.features];
        for (v, row) in values.chunks_mut(c.features).enumerate() {
            for (j, x) in row.iter_mut().enumerate() {
                let own = j * c.communities / c.features == community[v] as usize;
                let p = if own {
                    c.feature_signal
                } else {
                    c.feature_noise
                };
                *x = f32::from(u8::from(rng.random::<f64>() < p));
            }
        }
        NodeFeatures {
            n_features: c.features,
            values,
        }
    });
    let mut notes = Vec::new();
    let mut data = split(name, n, edges, c.valid, c.test, seed ^ 0x5b3d, &mut notes)?;
    let g = data.graph.as_mut().expect("split makes a graph");
    g.features = features;
    g.labels = Some(community);
    data.notes = notes;
    Ok(data)
}

/// GAE's split of `edges` (any direction, duplicates and self-loops allowed) over `n` nodes.
fn split(
    name: &str,
    n: usize,
    edges: Vec<(u32, u32)>,
    valid_share: f64,
    test_share: f64,
    seed: u64,
    notes: &mut Vec<String>,
) -> Result<Dataset, DataError> {
    let given = edges.len();
    let mut undirected: Vec<(u32, u32)> = edges
        .into_iter()
        .filter(|(a, b)| a != b)
        .map(|(a, b)| (a.min(b), a.max(b)))
        .collect();
    undirected.sort_unstable();
    undirected.dedup();
    if undirected.len() < given {
        notes.push(format!(
            "{} of {given} edge lines were self-loops or repeated an edge (either direction): {} undirected edges",
            given - undirected.len(),
            undirected.len()
        ));
    }
    let n_test = (undirected.len() as f64 * test_share).floor() as usize;
    let n_valid = (undirected.len() as f64 * valid_share).floor() as usize;
    if n_test == 0 || n_valid == 0 || n_test + n_valid >= undirected.len() {
        return Err(DataError::Invalid {
            what: name.into(),
            message: format!(
                "{} undirected edges are too few to hold out {valid_share} for validation and {test_share} for test",
                undirected.len()
            ),
        });
    }
    let pairs = (n as u64) * (n as u64 - 1) / 2;
    if pairs < (undirected.len() + n_test + n_valid) as u64 {
        return Err(DataError::Invalid {
            what: name.into(),
            message: "the graph is too dense to draw as many non-edges as held-out edges".into(),
        });
    }
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    undirected.shuffle(&mut rng);
    let test_edges = undirected[..n_test].to_vec();
    let valid_edges = undirected[n_test..n_test + n_valid].to_vec();
    let train_edges = &undirected[n_test + n_valid..];
    let edge_set: HashSet<(u32, u32)> = undirected.iter().copied().collect();
    // Non-edges: uniform pairs of distinct nodes that are no edge of any split, drawn without repeats.
    let mut drawn: HashSet<(u32, u32)> = HashSet::new();
    let mut non_edges = |count: usize, rng: &mut Pcg64Mcg| {
        let mut out = Interactions::default();
        while out.len() < count {
            let (a, b) = (rng.random_range(0..n as u32), rng.random_range(0..n as u32));
            let pair = (a.min(b), a.max(b));
            if a != b && !edge_set.contains(&pair) && drawn.insert(pair) {
                out.push(pair.0, pair.1);
            }
        }
        out
    };
    let test_non_edges = non_edges(n_test, &mut rng);
    let valid_non_edges = non_edges(n_valid, &mut rng);
    let as_pairs = |edges: &[(u32, u32)]| {
        let mut x = Interactions::default();
        for &(a, b) in edges {
            x.push(a, b);
        }
        x
    };
    let mut train = Interactions::default();
    for &(a, b) in train_edges {
        train.push(a, b);
        train.push(b, a);
    }
    let mut known = Interactions::default();
    for &(a, b) in &undirected {
        known.push(a, b);
        known.push(b, a);
    }
    for v in 0..n as u32 {
        known.push(v, v);
    }
    let mut data = Dataset::new(
        name.into(),
        n,
        n,
        train,
        as_pairs(&valid_edges),
        as_pairs(&test_edges),
        None,
    );
    // A node is no negative of itself: samplers exclude what `train_by_query` holds, so it holds the
    // node too (the encoders' adjacencies handle self-loops themselves; `train` has none).
    let mut with_self = data.train.clone();
    for v in 0..n as u32 {
        with_self.push(v, v);
    }
    data.train_by_query = QueryItems::from_interactions(n, &with_self);
    data.graph = Some(GraphData {
        known: QueryItems::from_interactions(n, &known),
        valid_non_edges,
        test_non_edges,
        features: None,
        labels: None,
    });
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_holds_out_edges_and_as_many_non_edges_that_are_no_edge_anywhere() {
        let data = generate("sbm", &SbmConfig::default(), 3).unwrap();
        let g = data.graph.as_ref().unwrap();
        let total = data.train.len() / 2 + data.valid.len() + data.test.len();
        assert_eq!(data.test.len(), (total as f64 * 0.10).floor() as usize);
        assert_eq!(data.valid.len(), (total as f64 * 0.05).floor() as usize);
        assert_eq!(g.test_non_edges.len(), data.test.len());
        assert_eq!(g.valid_non_edges.len(), data.valid.len());
        for (&a, &b) in data.test.queries.iter().zip(&data.test.items) {
            assert!(!data.train_by_query.contains(a as usize, b), "held out");
            assert!(g.known.contains(a as usize, b) && g.known.contains(b as usize, a));
        }
        for x in [&g.test_non_edges, &g.valid_non_edges] {
            for (&a, &b) in x.queries.iter().zip(&x.items) {
                assert!(a != b && !g.known.contains(a as usize, b));
            }
        }
        // Training edges go both ways; every node is its own known positive (never its negative).
        for (&a, &b) in data.train.queries.iter().zip(&data.train.items) {
            assert!(a != b && data.train_by_query.contains(b as usize, a));
        }
        assert!((0..1000).all(|v| data.train_by_query.contains(v, v as u32)));
    }

    #[test]
    fn the_block_model_has_its_communities_and_features() {
        let c = SbmConfig::default();
        let data = generate("sbm", &c, 1).unwrap();
        let g = data.graph.as_ref().unwrap();
        let labels = g.labels.as_ref().unwrap();
        let inside = data
            .train
            .queries
            .iter()
            .zip(&data.train.items)
            .filter(|(&a, &b)| labels[a as usize] == labels[b as usize])
            .count();
        // Expected within-community share: 10·C(100,2)·0.05 vs C(1000,2)·0.9·0.002 ⇒ about 0.73.
        let share = inside as f64 / data.train.len() as f64;
        assert!((0.65..0.85).contains(&share), "{share}");
        assert_eq!(g.features.as_ref().unwrap().values.len(), 1000 * 100);
        // Same seed, same graph.
        assert_eq!(generate("sbm", &c, 1).unwrap().test, data.test);
    }

    #[test]
    fn an_edge_list_with_features_keeps_featured_nodes_and_reports_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let content = dir.path().join("g.content");
        let mut text = String::new();
        for v in 0..40 {
            text += &format!("n{v}\t{}\t{}\tc{}\n", v % 2, (v / 2) % 2, v % 3);
        }
        std::fs::write(&content, text).unwrap();
        let cites = dir.path().join("g.cites");
        let mut edges = String::from("# comment\n");
        for v in 0..39 {
            edges += &format!("n{v} n{}\nn{} n{v}\n", v + 1, v + 1);
        }
        edges += "n0 unknown\n";
        std::fs::write(&cites, edges).unwrap();
        let c = EdgeListConfig {
            path: cites.clone(),
            features: Some(content),
            directed: false,
            valid: 0.1,
            test: 0.1,
        };
        let data = load_files("g", &c, 0).unwrap();
        assert_eq!(data.n_items, 40);
        let g = data.graph.unwrap();
        assert_eq!(g.features.unwrap().n_features, 2);
        assert_eq!(g.labels.unwrap()[5], 2);
        assert_eq!(
            data.train.len() / 2 + data.valid.len() + data.test.len(),
            39
        );
        assert!(
            data.notes.iter().any(|n| n.contains("1 edge lines")),
            "{:?}",
            data.notes
        );
        std::fs::write(&cites, "n0 n1\nn2\n").unwrap();
        let err = load_files("g", &c, 0).unwrap_err().to_string();
        assert!(
            err.contains("g.cites:2") && err.contains("src dst"),
            "{err}"
        );
    }
}
