//! Knowledge graphs as a query–candidate task: `head<TAB>relation<TAB>tail` files (the Nations, Kinships,
//! UMLS, FB15k-237 and WN18RR releases) or the embedded generator, turned into the queries the core
//! trains and ranks.
//!
//! Every triple (h, r, t) gives two queries: the tail query (h, r, ?) with answer t and the head query
//! (?, r, t) with answer h. Queries get dense ids over all splits (the tail query of (h, r) first seen,
//! then its head query, in file order), entities and relations dense ids in order of first appearance
//! (train file first). `Dataset::train` holds both pairs of every training triple, the tail pair at
//! 2i and the head pair at 2i + 1: an epoch picks one of the two per triple (see `Corruption`), or both.

use std::collections::HashMap;
use std::path::PathBuf;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use super::{Dataset, FileConfig, Interactions, QueryItems};
use crate::error::DataError;

/// Which entity, relation and side every query of a knowledge-graph data set is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KgQueryIndex {
    /// The known entity of each query: the head of a tail query, the tail of a head query.
    pub entity: Vec<u32>,
    pub relation: Vec<u32>,
    /// True for a head query (?, r, t).
    pub head_side: Vec<bool>,
    pub n_relations: usize,
}

impl KgQueryIndex {
    pub fn len(&self) -> usize {
        self.entity.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entity.is_empty()
    }
}

/// What a knowledge-graph data set adds to the query–candidate view.
#[derive(Debug, Clone)]
pub struct KgData {
    /// Entity, relation and side of every query (and the number of relations).
    pub queries: KgQueryIndex,
    /// Relation of every training triple (pairs 2i and 2i + 1 of `Dataset::train`).
    pub train_relation: Vec<u32>,
    /// Every true answer of each query known from any split (train ∪ valid ∪ test): filtered ranking
    /// and the false-negative rate against all known triples.
    pub known: QueryItems,
    /// Per relation, the probability of corrupting the head under the Bernoulli scheme of Wang et al.
    /// (2014): tph / (tph + hpt), tails per head and heads per tail over the training triples.
    pub head_probability: Vec<f64>,
}

/// Triples of one split as dense (head, relation, tail).
pub type Triples = Vec<[u32; 3]>;

/// `[domain].data` of format `synthetic-kg`: a graph drawn from a translational latent model.
///
/// Entities get latent vectors e ~ N(0, I_d) and relations translations t_r ~ N(0, I_d). Each relation
/// has a cardinality type drawn among 1-1, 1-N, N-1 (and a fan-out m from 2 to `max_fanout` for the
/// many side): for 1-1 and 1-N relations a random subset of heads each gets the m (1 for 1-1) entities
/// nearest to e_h + t_r as true tails; for N-1 relations a random subset of tails each gets the m
/// entities nearest to e_t − t_r as true heads. `observed` of the true triples are observed and split
/// into train / valid / test; every true triple is kept as ground truth, so a negative that is true but
/// unobserved is an exact false negative (`fn_rate_true`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticKgConfig {
    pub entities: usize,
    pub relations: usize,
    /// Observed triples (train + valid + test), approximately.
    pub triples: usize,
    pub dim: usize,
    /// Largest fan-out of a 1-N or N-1 relation.
    pub max_fanout: usize,
    /// Share of the true triples that are observed.
    pub observed: f64,
    /// Shares of the observed triples held out for validation and test.
    pub valid: f64,
    pub test: f64,
}

impl Default for SyntheticKgConfig {
    fn default() -> Self {
        SyntheticKgConfig {
            entities: 500,
            relations: 20,
            triples: 10_000,
            dim: 8,
            max_fanout: 5,
            observed: 0.8,
            valid: 0.05,
            test: 0.1,
        }
    }
}

impl SyntheticKgConfig {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.entities < 3 {
            p.push(("entities", format!("must be >= 3 (got {})", self.entities)));
        }
        if self.relations < 1 {
            p.push(("relations", "must be >= 1".into()));
        }
        if self.triples < 10 {
            p.push(("triples", format!("must be >= 10 (got {})", self.triples)));
        }
        if self.dim < 1 {
            p.push(("dim", "must be >= 1".into()));
        }
        if self.max_fanout < 1 || self.max_fanout >= self.entities {
            p.push((
                "max_fanout",
                format!("must be in 1..entities (got {})", self.max_fanout),
            ));
        }
        if !(self.observed > 0.0 && self.observed <= 1.0) {
            p.push((
                "observed",
                format!("must be in (0, 1] (got {})", self.observed),
            ));
        }
        if !(self.valid >= 0.0 && self.test > 0.0 && self.valid + self.test < 1.0) {
            p.push((
                "test",
                format!(
                    "valid >= 0, test > 0 and valid + test < 1 are needed (got {} and {})",
                    self.valid, self.test
                ),
            ));
        }
        p
    }
}

/// Reads `train`, `valid` (optional) and `test` triple files.
pub fn load_files(name: &str, f: &FileConfig) -> Result<Dataset, DataError> {
    let missing = |key: &str| {
        DataError::Invalid {
        what: format!("data of domain {name:?}"),
        message: format!(
            "a knowledge graph needs `train` and `test` triple files (and optionally `valid`): `{key}` is missing"
        ),
    }
    };
    if let Some(p) = &f.path {
        return Err(DataError::Invalid {
            what: format!("data file {}", p.display()),
            message: "knowledge graphs come as given `train`, `valid`, `test` files, not one `path` to split"
                .into(),
        });
    }
    let train_path = f.train.as_ref().ok_or_else(|| missing("train"))?;
    let test_path = f.test.as_ref().ok_or_else(|| missing("test"))?;
    let mut names = Names::default();
    let train = read_triples(train_path, &mut names)?;
    let valid = match &f.valid {
        Some(p) => read_triples(p, &mut names)?,
        None => Vec::new(),
    };
    let test = read_triples(test_path, &mut names)?;
    if train.is_empty() {
        return Err(DataError::Invalid {
            what: format!("data file {}", train_path.display()),
            message: "holds no triples".into(),
        });
    }
    if test.is_empty() {
        return Err(DataError::Invalid {
            what: format!("data file {}", test_path.display()),
            message: "holds no triples".into(),
        });
    }
    // Names are numbered in order of first appearance with the train file read first, so the training
    // triples' entities and relations are the first ids: the pool is theirs (an entity only held-out
    // triples name has no trained embedding to rank, and its triples are dropped below).
    let n_e = 1 + train
        .iter()
        .flat_map(|&[h, _, t]| [h, t])
        .max()
        .unwrap_or(0) as usize;
    let n_r = 1 + train.iter().map(|t| t[1]).max().unwrap_or(0) as usize;
    debug_assert!(n_e <= names.entities.len() && n_r <= names.relations.len());
    let mut notes = Vec::new();
    let valid = seen_in_training(name, &train, valid, "validation", &mut notes);
    let total = test.len();
    let test = seen_in_training(name, &train, test, "test", &mut notes);
    if test.is_empty() {
        return Err(DataError::Invalid {
            what: format!("data file {}", test_path.display()),
            message: format!(
                "none of its {total} triples has both entities and its relation in the training triples: \
                 nothing can be evaluated"
            ),
        });
    }
    let mut d = build(name, n_e, n_r, &train, &valid, &test, None);
    d.notes = notes;
    Ok(d)
}

/// The held-out triples whose entities and relation all occur in training. The others would be ranked
/// with embeddings no step ever trained (their initial random values): they are dropped and counted in
/// `notes`, as PyKEEN drops them (LibKGE refuses such data).
fn seen_in_training(
    name: &str,
    train: &[[u32; 3]],
    held_out: Triples,
    what: &str,
    notes: &mut Vec<String>,
) -> Triples {
    let entities: std::collections::HashSet<u32> =
        train.iter().flat_map(|&[h, _, t]| [h, t]).collect();
    let relations: std::collections::HashSet<u32> = train.iter().map(|t| t[1]).collect();
    let total = held_out.len();
    let kept: Triples = held_out
        .into_iter()
        .filter(|&[h, r, t]| {
            entities.contains(&h) && entities.contains(&t) && relations.contains(&r)
        })
        .collect();
    if kept.len() < total {
        notes.push(format!(
            "domain {name}: dropped {} of {total} {what} triples whose entity or relation never occurs in \
             training (they would be ranked with untrained embeddings)",
            total - kept.len()
        ));
    }
    kept
}

#[derive(Default)]
struct Names {
    entities: HashMap<String, u32>,
    relations: HashMap<String, u32>,
}

fn intern(map: &mut HashMap<String, u32>, key: &str) -> Option<u32> {
    if let Some(&id) = map.get(key) {
        return Some(id);
    }
    let id = u32::try_from(map.len()).ok()?;
    map.insert(key.to_string(), id);
    Some(id)
}

/// One triple per line, three tab-separated fields; CRLF, a BOM and blank lines are accepted.
fn read_triples(path: &PathBuf, names: &mut Names) -> Result<Triples, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Read {
        path: path.clone(),
        source,
    })?;
    let line_err = |line: usize, message: String| DataError::Line {
        path: path.clone(),
        line,
        message,
    };
    let text = std::str::from_utf8(&bytes).map_err(|e| DataError::Invalid {
        what: format!("data file {}", path.display()),
        message: format!(
            "is not UTF-8 text (byte {}): a triple file is text",
            e.valid_up_to()
        ),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::with_capacity(text.len() / 24);
    for (n, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let mut fields = line.split('\t');
        let (Some(h), Some(r), Some(t), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(line_err(
                n + 1,
                format!(
                    "expected head<TAB>relation<TAB>tail, got {} tab-separated field(s): {:?}",
                    line.split('\t').count(),
                    truncate(line)
                ),
            ));
        };
        if [h, r, t]
            .iter()
            .any(|f| f.trim().is_empty() || f.contains('\0'))
        {
            return Err(line_err(
                n + 1,
                format!("an empty or binary field in {:?}", truncate(line)),
            ));
        }
        let too_many = || line_err(n + 1, "more than 2^32 distinct names".into());
        let h = intern(&mut names.entities, h.trim()).ok_or_else(too_many)?;
        let r = intern(&mut names.relations, r.trim()).ok_or_else(too_many)?;
        let t = intern(&mut names.entities, t.trim()).ok_or_else(too_many)?;
        out.push([h, r, t]);
    }
    Ok(out)
}

fn truncate(line: &str) -> String {
    line.chars().take(80).collect()
}

/// The query–candidate view of a knowledge graph. `truth` (synthetic graphs): every true triple.
pub fn build(
    name: &str,
    n_entities: usize,
    n_relations: usize,
    train: &[[u32; 3]],
    valid: &[[u32; 3]],
    test: &[[u32; 3]],
    truth: Option<&[[u32; 3]]>,
) -> Dataset {
    let mut index: HashMap<(u32, u32, bool), u32> = HashMap::new();
    let mut queries = KgQueryIndex {
        n_relations,
        ..Default::default()
    };
    let mut query = |e: u32, r: u32, head_side: bool, q: &mut KgQueryIndex| -> u32 {
        *index.entry((e, r, head_side)).or_insert_with(|| {
            q.entity.push(e);
            q.relation.push(r);
            q.head_side.push(head_side);
            (q.entity.len() - 1) as u32
        })
    };
    let mut pairs = |triples: &[[u32; 3]], q: &mut KgQueryIndex| {
        let mut x = Interactions::default();
        for &[h, r, t] in triples {
            x.push(query(h, r, false, q), t);
            x.push(query(t, r, true, q), h);
        }
        x
    };
    let train_pairs = pairs(train, &mut queries);
    let valid_pairs = pairs(valid, &mut queries);
    let test_pairs = pairs(test, &mut queries);
    // Ground truth: only the pairs of queries that exist (a true triple no split observed has no query
    // to be a false negative of).
    let relevant = truth.map(|truth| {
        let mut x = Interactions::default();
        for &[h, r, t] in truth {
            if let Some(&q) = index.get(&(h, r, false)) {
                x.push(q, t);
            }
            if let Some(&q) = index.get(&(t, r, true)) {
                x.push(q, h);
            }
        }
        QueryItems::from_interactions(queries.len(), &x)
    });
    let n_queries = queries.len();
    let mut all = train_pairs.clone();
    for x in [&valid_pairs, &test_pairs] {
        all.queries.extend(&x.queries);
        all.items.extend(&x.items);
    }
    let kg = KgData {
        train_relation: train.iter().map(|t| t[1]).collect(),
        known: QueryItems::from_interactions(n_queries, &all),
        head_probability: bernoulli_head_probability(train, n_relations),
        queries,
    };
    let mut d = Dataset::new(
        name.into(),
        n_queries,
        n_entities,
        train_pairs,
        valid_pairs,
        test_pairs,
        relevant,
    );
    d.kg = Some(kg);
    d
}

/// tph / (tph + hpt) per relation (Wang et al. 2014): tph = mean tails per (head, relation), hpt = mean
/// heads per (relation, tail). A relation without training triples gets 1/2.
pub fn bernoulli_head_probability(train: &[[u32; 3]], n_relations: usize) -> Vec<f64> {
    let mut heads: Vec<HashMap<u32, u32>> = vec![HashMap::new(); n_relations];
    let mut tails: Vec<HashMap<u32, u32>> = vec![HashMap::new(); n_relations];
    for &[h, r, t] in train {
        *heads[r as usize].entry(h).or_default() += 1;
        *tails[r as usize].entry(t).or_default() += 1;
    }
    (0..n_relations)
        .map(|r| {
            let (hs, ts) = (&heads[r], &tails[r]);
            if hs.is_empty() {
                return 0.5;
            }
            let n: u32 = hs.values().sum();
            let tph = n as f64 / hs.len() as f64;
            let hpt = n as f64 / ts.len() as f64;
            tph / (tph + hpt)
        })
        .collect()
}

/// Generates a synthetic knowledge graph (see `SyntheticKgConfig`).
pub fn generate(name: &str, c: &SyntheticKgConfig, seed: u64) -> Result<Dataset, DataError> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let (n, d) = (c.entities, c.dim);
    let mut normal =
        |len: usize| -> Vec<f32> { (0..len).map(|_| StandardNormal.sample(&mut rng)).collect() };
    let e = normal(n * d);
    let t = normal(c.relations * d);
    let true_target = (c.triples as f64 / c.observed).ceil() as usize;
    let per_relation = true_target.div_ceil(c.relations);
    let mut truth: Triples = Vec::with_capacity(true_target);
    // Distances by one matrix product per relation (‖p‖² − 2 p·e + ‖e‖²), in f64 so near-ties resolve
    // the same on every machine.
    let table = tch::Tensor::from_slice(&e)
        .view([n as i64, d as i64])
        .to_kind(tch::Kind::Double);
    let table_sq = table.square().sum_dim_intlist(1, false, tch::Kind::Double);
    let translations = tch::Tensor::from_slice(&t)
        .view([c.relations as i64, d as i64])
        .to_kind(tch::Kind::Double);
    let _no_grad = tch::no_grad_guard();
    for r in 0..c.relations {
        // 0: 1-1, 1: 1-N, 2: N-1.
        let kind = rng.random_range(0..3u8);
        let m = if kind == 0 {
            1
        } else {
            rng.random_range(2..=c.max_fanout.max(2)).min(n - 1)
        };
        let anchors = (per_relation / m).clamp(1, n);
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.shuffle(&mut rng);
        let sign = if kind == 2 { -1.0 } else { 1.0 };
        // Anchors a block at a time, so the distance matrix stays within ~128 MiB whatever the size.
        let block = (16 << 20) / n.max(1);
        for anchors_block in order[..anchors].chunks(block.max(1)) {
            let chosen: Vec<i64> = anchors_block.iter().map(|&a| a as i64).collect();
            let chosen_t = tch::Tensor::from_slice(&chosen);
            let points =
                table.index_select(0, &chosen_t) + translations.get(r as i64).unsqueeze(0) * sign;
            let mut dist = points.square().sum_dim_intlist(1, true, tch::Kind::Double)
                - points.matmul(&table.tr()) * 2.0
                + table_sq.unsqueeze(0);
            // An anchor is never its own answer.
            let rows =
                tch::Tensor::arange(chosen.len() as i64, (tch::Kind::Int64, tch::Device::Cpu));
            let inf = tch::Tensor::from(f64::INFINITY);
            let _ = dist.index_put_(&[Some(rows), Some(chosen_t)], &inf, false);
            let (_, nearest) = dist.topk(m as i64, 1, false, true);
            let nearest = Vec::<i64>::try_from(nearest.reshape([-1])).expect("int64 indices");
            for (&a, answers) in anchors_block.iter().zip(nearest.chunks(m)) {
                for &x in answers {
                    let x = x as u32;
                    truth.push(if kind == 2 {
                        [x, r as u32, a]
                    } else {
                        [a, r as u32, x]
                    });
                }
            }
        }
    }
    let mut observed: Triples = truth
        .iter()
        .copied()
        .filter(|_| rng.random::<f64>() < c.observed)
        .collect();
    observed.shuffle(&mut rng);
    let n_obs = observed.len();
    let n_test = ((n_obs as f64 * c.test).round() as usize).max(1);
    let n_valid = (n_obs as f64 * c.valid).round() as usize;
    if n_obs < n_test + n_valid + 1 {
        return Err(DataError::Invalid {
            what: format!("synthetic knowledge graph {name:?}"),
            message: format!("only {n_obs} triples observed: raise `triples` or `observed`"),
        });
    }
    let train = observed[n_test + n_valid..].to_vec();
    let mut notes = Vec::new();
    let test = seen_in_training(
        name,
        &train,
        observed[..n_test].to_vec(),
        "test",
        &mut notes,
    );
    let valid = seen_in_training(
        name,
        &train,
        observed[n_test..n_test + n_valid].to_vec(),
        "validation",
        &mut notes,
    );
    if test.is_empty() {
        return Err(DataError::Invalid {
            what: format!("synthetic knowledge graph {name:?}"),
            message: "no test triple has its entities and relation in training: raise `triples`"
                .into(),
        });
    }
    let mut d = build(name, n, c.relations, &train, &valid, &test, Some(&truth));
    d.notes = notes;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_of_every_triple_are_queries_and_known_answers_span_every_split() {
        // (0, r0, 1), (0, r0, 2) train; (3, r0, 1) test.
        let d = build("t", 4, 1, &[[0, 0, 1], [0, 0, 2]], &[], &[[3, 0, 1]], None);
        let kg = d.kg.as_ref().unwrap();
        // Queries: (0, r0, →) 0, (1, r0, ←) 1, (2, r0, ←) 2, (3, r0, →) 3.
        assert_eq!(kg.queries.entity, vec![0, 1, 2, 3]);
        assert_eq!(kg.queries.head_side, vec![false, true, true, false]);
        assert_eq!(d.train.queries, vec![0, 1, 0, 2]);
        assert_eq!(d.train.items, vec![1, 0, 2, 0]);
        assert_eq!(d.train_by_query.items(0), &[1, 2]);
        // The head query (?, r0, 1) has answer 0 from train and 3 from test.
        assert_eq!(kg.known.items(1), &[0, 3]);
        assert_eq!(d.test.queries, vec![3, 1]);
    }

    #[test]
    fn held_out_triples_of_entities_unseen_in_training_are_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let f = FileConfig {
            train: Some(write("train.txt", "a\tr\tb\nb\tr\tc\n")),
            valid: Some(write("valid.txt", "a\tr\tz\n")),
            test: Some(write("test.txt", "a\tr\tc\nc\tq\ta\ny\tr\ta\n")),
            ..Default::default()
        };
        let d = load_files("k", &f).unwrap();
        // Test keeps (a, r, c); (c, q, a) has an unseen relation, (y, r, a) an unseen entity.
        assert_eq!(d.test.len(), 2, "one triple, both sides");
        assert!(d.valid.is_empty());
        assert_eq!(d.n_items, 3, "the pool is the training entities");
        assert!(
            d.notes
                .iter()
                .any(|n| n.contains("dropped 2 of 3 test triples")),
            "{:?}",
            d.notes
        );
        assert!(d
            .notes
            .iter()
            .any(|n| n.contains("dropped 1 of 1 validation")));
        let only_unseen = FileConfig {
            test: Some(write("test2.txt", "y\tr\ta\n")),
            ..f
        };
        let err = load_files("k", &only_unseen).unwrap_err().to_string();
        assert!(
            err.contains("test2.txt") && err.contains("nothing can be evaluated"),
            "{err}"
        );
    }

    #[test]
    fn bernoulli_corrupts_the_head_of_one_to_many_relations_more_often() {
        // r0: head 0 has tails 1, 2, 3 (1-N): tph = 3, hpt = 1, P(head) = 3/4.
        let p = bernoulli_head_probability(&[[0, 0, 1], [0, 0, 2], [0, 0, 3]], 2);
        assert!((p[0] - 0.75).abs() < 1e-12);
        assert_eq!(p[1], 0.5);
    }

    #[test]
    fn a_malformed_triple_line_names_the_file_and_line() {
        let dir = std::env::temp_dir().join(format!("nsbench-kg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("train.txt");
        std::fs::write(&f, "a\tr\tb\r\n\na\tr b\n").unwrap();
        let err = read_triples(&f, &mut Names::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train.txt:3") && err.contains("2 tab-separated"),
            "{err}"
        );
        std::fs::write(&f, "\u{feff}a\tr\tb\r\nb\tr\tc\n").unwrap();
        assert_eq!(read_triples(&f, &mut Names::default()).unwrap().len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_generator_is_seeded_and_its_truth_covers_every_observed_triple() {
        let c = SyntheticKgConfig {
            entities: 60,
            relations: 4,
            triples: 400,
            ..Default::default()
        };
        let a = generate("g", &c, 1).unwrap();
        let b = generate("g", &c, 1).unwrap();
        assert_eq!(a.train, b.train);
        assert_ne!(a.train, generate("g", &c, 2).unwrap().train);
        let truth = a.relevant.as_ref().unwrap();
        for x in [&a.train, &a.valid, &a.test] {
            for (&q, &i) in x.queries.iter().zip(&x.items) {
                assert!(truth.contains(q as usize, i));
            }
        }
        let n = a.train.len() / 2 + a.valid.len() / 2 + a.test.len() / 2;
        assert!((300..=500).contains(&n), "{n} observed triples");
    }
}
