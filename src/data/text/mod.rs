//! Text for skip-gram with negative sampling (word2vec; Mikolov et al., "Distributed Representations of
//! Words and Phrases and their Compositionality", NeurIPS 2013), as gensim reads it.
//!
//! Sources: a plain-text corpus (`corpus`: one document or sentence per line, tokenised as gensim's
//! `simple_preprocess`: lower-cased runs of letters, 2 to 15 characters long, digits splitting words), or
//! the embedded topic-model generator (`synthetic-text`), whose word similarity is known.
//!
//! Vocabulary: words seen at least `min_count` times, ordered by count (most frequent first, ties by first
//! appearance), as gensim; rarer words leave the sentences before windows are taken. Queries are centre
//! words and the candidate pool is the vocabulary. An epoch's (centre, context) pairs are drawn anew each
//! epoch, as the training reaches them (`pairs`): word2vec's frequent-word subsampling (keep probability
//! (√(c / (s·N)) + 1) · s·N / c, capped at 1, for a word seen c times in N, s = `sample`) and its dynamic
//! window (a reduced window drawn uniformly in 1..=`window` per centre word). `Dataset::train` holds the
//! distinct pairs of one such draw: the known co-occurrences samplers filter against, and the
//! false-negative diagnostics. The corpus is read line by line into word ids (`tokens`).

mod pairs;
mod tokens;

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use super::{Dataset, Interactions, QueryItems};
use crate::draws::AliasTable;
use crate::error::DataError;
pub use pairs::{PairDraw, PIECE_PAIRS};
pub(crate) use tokens::Tokens;

/// word2vec's training settings shared by both sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// Words seen fewer times leave the vocabulary (gensim's `min_count`).
    pub min_count: u64,
    /// Frequent-word subsampling threshold (word2vec's `sample`; 0 keeps every word).
    pub sample: f64,
    /// The largest distance between a centre word and a context word (word2vec's `window`).
    pub window: usize,
}

/// `[domain].data` of format `corpus`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusConfig {
    /// The corpus: one document or sentence per line.
    pub path: PathBuf,
    #[serde(default = "default_min_count")]
    pub min_count: u64,
    #[serde(default = "default_sample")]
    pub sample: f64,
    #[serde(default = "default_window")]
    pub window: usize,
    /// `simple` (gensim's `simple_preprocess`, default) or `whitespace` (tokens as written, split on
    /// white space).
    #[serde(default)]
    pub tokenizer: Tokenizer,
    /// Word-similarity sets (`word1 word2 score` per line, tab- or space-separated, `#` comments), such
    /// as WordSim353 and SimLex-999; each reports `<file stem>-spearman` and `<file stem>-coverage`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub similarity: Vec<PathBuf>,
    /// Analogy questions in word2vec's `questions-words.txt` format (`: section` lines, then `a b c d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analogies: Option<PathBuf>,
    /// Analogies are answered among the most frequent this many words (gensim's `restrict_vocab`).
    #[serde(default = "default_restrict")]
    pub analogy_vocab: usize,
}

fn default_min_count() -> u64 {
    5
}
fn default_sample() -> f64 {
    1e-3
}
fn default_window() -> usize {
    5
}
fn default_restrict() -> usize {
    300_000
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tokenizer {
    #[default]
    Simple,
    Whitespace,
}

/// `[domain].data` of format `synthetic-text`: a topic model with known word similarity. Each word has
/// a home topic (word id mod `topics`) and, with weight m drawn uniformly in [0, `mix`), a second one;
/// its topic profile is (1 − m) on the first and m on the second. A topic emits word w with probability ∝
/// (w + 10)^−`zipf` × profile_w(topic). A document draws a main topic and a second one (shares 0.8 and
/// 0.2), then `doc_len` words. The true similarity of two words is the cosine of their topic profiles;
/// two words of one home topic are each other's relevant items (exact false negatives).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticTextConfig {
    pub words: usize,
    pub topics: usize,
    pub documents: usize,
    pub doc_len: usize,
    pub zipf: f64,
    pub mix: f64,
    pub min_count: u64,
    pub sample: f64,
    pub window: usize,
}

impl Default for SyntheticTextConfig {
    fn default() -> Self {
        SyntheticTextConfig {
            words: 1000,
            topics: 20,
            documents: 600,
            doc_len: 60,
            zipf: 1.0,
            mix: 0.5,
            min_count: 5,
            sample: 1e-3,
            window: 5,
        }
    }
}

impl CorpusConfig {
    pub fn window(&self) -> WindowConfig {
        WindowConfig {
            min_count: self.min_count,
            sample: self.sample,
            window: self.window,
        }
    }

    /// The files read, as (key, path).
    pub fn files(&self) -> Vec<(&'static str, &PathBuf)> {
        let mut f = vec![("path", &self.path)];
        f.extend(self.similarity.iter().map(|p| ("similarity", p)));
        f.extend(self.analogies.iter().map(|p| ("analogies", p)));
        f
    }

    pub fn resolved(&self, dir: &Path) -> CorpusConfig {
        let fix = |p: &PathBuf| crate::data::resolve_path(dir, p);
        CorpusConfig {
            path: fix(&self.path),
            similarity: self.similarity.iter().map(fix).collect(),
            analogies: self.analogies.as_ref().map(fix),
            ..self.clone()
        }
    }

    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = window_problems(&self.window());
        if self.analogy_vocab == 0 {
            p.push(("analogy_vocab", "must be >= 1".into()));
        }
        p
    }
}

impl SyntheticTextConfig {
    pub fn window(&self) -> WindowConfig {
        WindowConfig {
            min_count: self.min_count,
            sample: self.sample,
            window: self.window,
        }
    }

    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = window_problems(&self.window());
        if self.topics < 2 || self.words < 2 * self.topics {
            p.push((
                "words",
                format!(
                    "needs topics >= 2 and words >= 2 · topics (got {} words, {} topics)",
                    self.words, self.topics
                ),
            ));
        }
        if self.documents == 0 || self.doc_len < 2 {
            p.push((
                "doc_len",
                "needs documents >= 1 and doc_len >= 2".to_string(),
            ));
        }
        if !(self.zipf >= 0.0 && self.zipf.is_finite()) {
            p.push(("zipf", format!("must be >= 0 (got {})", self.zipf)));
        }
        if !(0.0..=1.0).contains(&self.mix) {
            p.push(("mix", format!("must be in [0, 1] (got {})", self.mix)));
        }
        p
    }
}

fn window_problems(w: &WindowConfig) -> Vec<(&'static str, String)> {
    let mut p = Vec::new();
    if w.min_count == 0 {
        p.push(("min_count", "must be >= 1".to_string()));
    }
    if !(w.sample >= 0.0 && w.sample.is_finite()) {
        p.push((
            "sample",
            format!("must be >= 0 (got {}; 0 keeps every word)", w.sample),
        ));
    }
    if w.window == 0 {
        p.push(("window", "must be >= 1".to_string()));
    }
    p
}

/// A word-similarity set restricted to the vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct WordPairs {
    /// The metric prefix: the file's stem, or `truth` for the generator's similarity.
    pub name: String,
    /// (word, word, gold score) of the pairs whose words are both in the vocabulary.
    pub pairs: Vec<(u32, u32, f64)>,
    /// Pairs in the set, covered or not.
    pub total: usize,
}

/// Analogy questions a : b :: c : d restricted to the analogy vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct Analogies {
    pub questions: Vec<[u32; 4]>,
    /// Questions in the file, covered or not.
    pub total: usize,
    /// Answers are searched among word ids below this (the most frequent words).
    pub restrict: usize,
}

/// What a text data set adds to the `Dataset` (whose queries and candidates are both the vocabulary).
#[derive(Debug, Clone)]
pub struct TextData {
    pub words: Vec<String>,
    /// Each vocabulary word's count in the corpus.
    pub counts: Vec<u64>,
    /// The corpus in vocabulary ids, rare words removed.
    pub sentences: Vec<Vec<u32>>,
    /// Each word's subsampling keep probability.
    pub keep: Vec<f32>,
    pub window: usize,
    pub similarity: Vec<WordPairs>,
    pub analogies: Option<Analogies>,
    /// Synthetic corpora: each word's home topic (nearest-neighbour checks).
    pub topics: Option<Vec<u32>>,
    /// Pairs in the draw whose distinct pairs `Dataset::train` holds: about an epoch's.
    pub pairs_per_epoch: usize,
}

impl TextData {
    /// Number of corpus tokens in the vocabulary (before subsampling).
    pub fn tokens(&self) -> usize {
        self.sentences.iter().map(Vec::len).sum()
    }
}

/// gensim's `simple_preprocess`: lower-cased runs of letters (digits and other characters split them),
/// kept when 2 to 15 characters long and not starting with an underscore.
pub fn simple_preprocess(line: &str) -> impl Iterator<Item = String> + '_ {
    line.split(|c: char| !(c.is_alphabetic() || c == '_' || is_mark(c)))
        .filter(|t| {
            let n = t.chars().count();
            (2..=15).contains(&n) && !t.starts_with('_')
        })
        .map(str::to_lowercase)
}

/// Combining marks belong to words in Python's `\w`.
fn is_mark(c: char) -> bool {
    matches!(c as u32, 0x0300..=0x036F)
}

/// Builds the vocabulary and the data set from a tokenised corpus (`seed`: the draw whose distinct pairs
/// `train` keeps); also returns the vocabulary's index.
pub(crate) fn build(
    name: &str,
    tokens: Tokens,
    w: &WindowConfig,
    seed: u64,
) -> Result<(Dataset, HashMap<String, u32>), DataError> {
    let Tokens {
        types,
        counts: type_counts,
        docs,
        ..
    } = tokens;
    // Kept types by count, ties by first appearance (their id).
    let mut vocab: Vec<u32> = (0..types.len() as u32)
        .filter(|&t| type_counts[t as usize] >= w.min_count)
        .collect();
    vocab.sort_by_key(|&t| (std::cmp::Reverse(type_counts[t as usize]), t));
    if vocab.len() < 2 {
        return Err(DataError::Invalid {
            what: name.into(),
            message: format!(
                "only {} word(s) occur at least min_count = {} times: lower min_count or give a larger corpus",
                vocab.len(),
                w.min_count
            ),
        });
    }
    let mut word_of_type = vec![u32::MAX; types.len()];
    for (word, &t) in vocab.iter().enumerate() {
        word_of_type[t as usize] = word as u32;
    }
    let words: Vec<String> = vocab.iter().map(|&t| types[t as usize].clone()).collect();
    let counts: Vec<u64> = vocab.iter().map(|&t| type_counts[t as usize]).collect();
    let index: HashMap<String, u32> = words
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    drop(types);
    let n_docs = docs.len();
    let sentences: Vec<Vec<u32>> = docs
        .into_iter()
        .map(|mut d| {
            d.retain_mut(|t| {
                *t = word_of_type[*t as usize];
                *t != u32::MAX
            });
            d.shrink_to_fit();
            d
        })
        .filter(|s| s.len() >= 2)
        .collect();
    let keep = keep_probabilities(&counts, w.sample);
    let mut text = TextData {
        words,
        counts,
        sentences,
        keep,
        window: w.window,
        similarity: Vec::new(),
        analogies: None,
        topics: None,
        pairs_per_epoch: 0,
    };
    let (train, drawn) = text.distinct_pairs(&mut Pcg64Mcg::seed_from_u64(seed));
    text.pairs_per_epoch = drawn;
    let n = text.words.len();
    let n_distinct = train.len();
    let mut data = Dataset::new(
        name.into(),
        n,
        n,
        train,
        Interactions::default(),
        Interactions::default(),
        None,
    );
    data.notes.push(format!(
        "{n_docs} documents, {} tokens in a vocabulary of {n} words (min_count {}); about {} (centre, \
         context) pairs an epoch, {} distinct in one draw",
        text.tokens(),
        w.min_count,
        text.pairs_per_epoch,
        n_distinct,
    ));
    data.text = Some(text);
    Ok((data, index))
}

/// word2vec's subsampling: each word's keep probability (1 for all at `sample` 0).
fn keep_probabilities(counts: &[u64], sample: f64) -> Vec<f32> {
    let retained: u64 = counts.iter().sum();
    counts
        .iter()
        .map(|&c| {
            if sample == 0.0 {
                return 1.0;
            }
            let threshold = sample * retained as f64;
            (((c as f64 / threshold).sqrt() + 1.0) * threshold / c as f64).min(1.0) as f32
        })
        .collect()
}

/// Loads a corpus (read line by line) and its evaluation sets.
pub fn load_corpus(name: &str, c: &CorpusConfig, seed: u64) -> Result<Dataset, DataError> {
    let read_error = |source| DataError::Read {
        path: c.path.clone(),
        source,
    };
    let file = std::fs::File::open(&c.path).map_err(read_error)?;
    let mut tokens = Tokens::default();
    for line in std::io::BufReader::with_capacity(1 << 20, file).lines() {
        let line = line.map_err(read_error)?;
        match c.tokenizer {
            Tokenizer::Simple => tokens.push_doc(simple_preprocess(&line)),
            Tokenizer::Whitespace => tokens.push_doc(line.split_whitespace()),
        }
    }
    let (mut data, index) = build(name, tokens, &c.window(), seed)?;
    let fold = |w: &str| match c.tokenizer {
        Tokenizer::Simple => w.to_lowercase(),
        Tokenizer::Whitespace => w.to_string(),
    };
    let mut similarity = Vec::new();
    for path in &c.similarity {
        similarity.push(read_pairs(path, &index, &fold)?);
    }
    let analogies = match &c.analogies {
        Some(p) => Some(read_analogies(p, &index, &fold, c.analogy_vocab)?),
        None => None,
    };
    let text = data.text.as_mut().expect("build sets the text");
    text.similarity = similarity;
    text.analogies = analogies;
    Ok(data)
}

fn read(path: &Path) -> Result<String, DataError> {
    std::fs::read_to_string(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// A similarity file: `word1 word2 score` per line; `#` lines and a header whose score does not parse
/// are skipped.
fn read_pairs(
    path: &Path,
    index: &HashMap<String, u32>,
    fold: &dyn Fn(&str) -> String,
) -> Result<WordPairs, DataError> {
    let raw = read(path)?;
    let mut pairs = Vec::new();
    let mut total = 0;
    let mut first = true;
    for (n, line) in raw.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let header = std::mem::replace(&mut first, false);
        let fields: Vec<&str> = line
            .split(['\t', ' ', ','])
            .filter(|f| !f.is_empty())
            .collect();
        let score = fields.get(2).map(|s| s.parse::<f64>());
        let score = match score {
            Some(Ok(x)) if x.is_finite() => x,
            Some(Ok(_)) => {
                return Err(DataError::Line {
                    path: path.to_path_buf(),
                    line: n + 1,
                    message: format!(
                        "score {:?} is not a finite number (expected `word1 word2 score`)",
                        fields[2]
                    ),
                })
            }
            // A first line whose score is no number at all is a header.
            _ if header => continue,
            _ => {
                return Err(DataError::Line {
                    path: path.to_path_buf(),
                    line: n + 1,
                    message: format!("expected `word1 word2 score`, got {line:?}"),
                })
            }
        };
        total += 1;
        if let (Some(&a), Some(&b)) = (index.get(&fold(fields[0])), index.get(&fold(fields[1]))) {
            pairs.push((a, b, score));
        }
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "similarity".into());
    // Spearman's ρ needs two covered pairs whose human scores differ: anything less is no number.
    let invalid = |message: String| DataError::Invalid {
        what: format!("similarity file {}", path.display()),
        message,
    };
    if pairs.len() < 2 {
        return Err(invalid(format!(
            "only {} of its {total} pairs have both words in the vocabulary: Spearman's ρ needs at least 2 \
             (lower `min_count`, or check the file's words and tokenizer)",
            pairs.len()
        )));
    }
    if pairs.iter().all(|p| p.2 == pairs[0].2) {
        return Err(invalid(format!(
            "every covered pair has the score {}: Spearman's ρ against constant scores is undefined",
            pairs[0].2
        )));
    }
    Ok(WordPairs { name, pairs, total })
}

fn read_analogies(
    path: &Path,
    index: &HashMap<String, u32>,
    fold: &dyn Fn(&str) -> String,
    restrict: usize,
) -> Result<Analogies, DataError> {
    let raw = read(path)?;
    let mut questions = Vec::new();
    let mut total = 0;
    for (n, line) in raw.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(':') || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() != 4 {
            return Err(DataError::Line {
                path: path.to_path_buf(),
                line: n + 1,
                message: format!(
                    "expected four words `a b c d` (a is to b as c is to d), got {line:?}"
                ),
            });
        }
        total += 1;
        let ids: Vec<u32> = words
            .iter()
            .filter_map(|w| index.get(&fold(w)).copied())
            .filter(|&id| (id as usize) < restrict)
            .collect();
        if let [a, b, c, d] = ids[..] {
            questions.push([a, b, c, d]);
        }
    }
    if questions.is_empty() {
        return Err(DataError::Invalid {
            what: format!("analogy file {}", path.display()),
            message: format!(
                "none of its {total} questions has all four words among the {restrict} most frequent words \
                 of the vocabulary: an accuracy over no question is no number (raise `analogy_vocab`, lower \
                 `min_count`)"
            ),
        });
    }
    Ok(Analogies {
        questions,
        total,
        restrict,
    })
}

/// The embedded topic-model corpus (see `SyntheticTextConfig`), with its true similarity on a fixed
/// set of word pairs and each word's home topic.
pub fn generate(name: &str, c: &SyntheticTextConfig, seed: u64) -> Result<Dataset, DataError> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let t = c.topics;
    // Each word's topic profile: (home, second, weight on the second).
    let profiles: Vec<(usize, usize, f64)> = (0..c.words)
        .map(|w| {
            let home = w % t;
            let second = (home + rng.random_range(1..t)) % t;
            (
                home,
                second,
                rng.random_range(0.0..c.mix.max(f64::MIN_POSITIVE)),
            )
        })
        .collect();
    let emit: Vec<AliasTable> = (0..t)
        .map(|topic| {
            let weights: Vec<f64> = profiles
                .iter()
                .enumerate()
                .map(|(w, &(home, second, m))| {
                    let share = if home == topic {
                        1.0 - m
                    } else if second == topic {
                        m
                    } else {
                        0.0
                    };
                    (w as f64 + 10.0).powf(-c.zipf) * share
                })
                .collect();
            AliasTable::new(&weights).expect("every topic emits its home words")
        })
        .collect();
    let mut docs = Tokens::default();
    for _ in 0..c.documents {
        let main = rng.random_range(0..t);
        let other = (main + rng.random_range(1..t)) % t;
        let doc: Vec<String> = (0..c.doc_len)
            .map(|_| {
                let topic = if rng.random::<f64>() < 0.8 {
                    main
                } else {
                    other
                };
                format!("w{}", emit[topic].sample(&mut rng))
            })
            .collect();
        docs.push_doc(doc);
    }
    let (mut data, _) = build(name, docs, &c.window(), seed ^ 0x5eed)?;
    let original = |word: &str| word[1..].parse::<usize>().expect("generated word names");
    let text = data.text.as_mut().expect("build sets the text");
    let ids: Vec<usize> = text.words.iter().map(|w| original(w)).collect();
    let cosine = |a: usize, b: usize| {
        let (pa, pb) = (profiles[a], profiles[b]);
        let vec = |(home, second, m): (usize, usize, f64)| {
            let mut v = vec![0.0; t];
            v[home] += 1.0 - m;
            v[second] += m;
            v
        };
        let (va, vb) = (vec(pa), vec(pb));
        let dot: f64 = va.iter().zip(&vb).map(|(x, y)| x * y).sum();
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        dot / (norm(&va) * norm(&vb))
    };
    // 2,000 fixed word pairs (from the generator's stream), half of them within one home topic so the
    // set spans the whole similarity range.
    let n = ids.len();
    let mut pairs = Vec::new();
    let mut by_topic: Vec<Vec<u32>> = vec![Vec::new(); t];
    for (v, &w) in ids.iter().enumerate() {
        by_topic[profiles[w].0].push(v as u32);
    }
    while pairs.len() < 2000 {
        let a = rng.random_range(0..n) as u32;
        let b = if pairs.len() % 2 == 0 {
            *by_topic[profiles[ids[a as usize]].0]
                .choose(&mut rng)
                .expect("a's own topic holds a")
        } else {
            rng.random_range(0..n) as u32
        };
        if a != b {
            pairs.push((a, b, cosine(ids[a as usize], ids[b as usize])));
        }
    }
    text.similarity = vec![WordPairs {
        name: "truth".into(),
        total: pairs.len(),
        pairs,
    }];
    let topics: Vec<u32> = ids.iter().map(|&w| profiles[w].0 as u32).collect();
    let mut relevant = Interactions::default();
    for (v, &topic) in topics.iter().enumerate() {
        for &u in &by_topic[topic as usize] {
            if u as usize != v {
                relevant.push(v as u32, u);
            }
        }
    }
    text.topics = Some(topics);
    data.relevant = Some(QueryItems::from_interactions(n, &relevant));
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_preprocess_keeps_lower_cased_letter_runs_of_two_to_fifteen() {
        let t: Vec<String> = simple_preprocess(
            "At 4:00pm AEDT, a bush-fire (NSW) x2y _id supercalifragilistic Café",
        )
        .collect();
        assert_eq!(t, ["at", "pm", "aedt", "bush", "fire", "nsw", "café"]);
    }

    #[test]
    fn the_vocabulary_drops_rare_words_and_orders_by_count() {
        let mut docs = Tokens::default();
        docs.push_doc(["b", "a", "b", "c"]);
        docs.push_doc(["a", "b", "rare"]);
        docs.push_doc(["c", "a"]);
        let w = WindowConfig {
            min_count: 2,
            sample: 0.0,
            window: 1,
        };
        let (data, _) = build("t", docs, &w, 0).unwrap();
        let text = data.text.unwrap();
        // a and b are seen 3 times (b first), c twice; "rare" once.
        assert_eq!(text.words, ["b", "a", "c"]);
        assert_eq!(text.counts, [3, 3, 2]);
        assert_eq!(
            text.sentences,
            vec![vec![0, 1, 0, 2], vec![1, 0], vec![2, 1]]
        );
        assert!(text.keep.iter().all(|&k| k == 1.0));
    }

    #[test]
    fn window_one_pairs_neighbours_and_subsampling_thins_frequent_words() {
        let text = TextData {
            words: vec!["x".into(), "y".into(), "z".into()],
            counts: vec![1, 1, 1],
            sentences: vec![vec![0, 1, 2]],
            keep: vec![1.0; 3],
            window: 1,
            similarity: Vec::new(),
            analogies: None,
            topics: None,
            pairs_per_epoch: 0,
        };
        let (mut q, mut i) = (Vec::new(), Vec::new());
        text.epoch_pairs(&mut Pcg64Mcg::seed_from_u64(0), &mut q, &mut i);
        let pairs: Vec<(i64, i64)> = q.into_iter().zip(i).collect();
        assert_eq!(pairs, [(0, 1), (1, 0), (1, 2), (2, 1)]);

        // word2vec's keep probability: a word of 1% of the corpus at sample 1e-3 is kept ~41% of the time.
        let mut docs = Tokens::default();
        docs.push_doc((0..1000).map(|j| {
            if j % 100 == 0 {
                "common".to_string()
            } else {
                format!("w{}", j % 97)
            }
        }));
        let w = WindowConfig {
            min_count: 1,
            sample: 1e-3,
            window: 2,
        };
        let (data, index) = build("t", docs, &w, 0).unwrap();
        let keep = data.text.unwrap().keep[index["common"] as usize] as f64;
        let f: f64 = 10.0 / 1000.0;
        let expected = ((f / 1e-3).sqrt() + 1.0) * 1e-3 / f;
        assert!((keep - expected).abs() < 1e-6, "{keep} vs {expected}");
    }

    #[test]
    fn the_generator_knows_its_similarity_and_topics() {
        let c = SyntheticTextConfig::default();
        let data = generate("s", &c, 3).unwrap();
        let text = data.text.as_ref().unwrap();
        let truth = &text.similarity[0];
        assert_eq!(truth.pairs.len(), 2000);
        assert!(truth
            .pairs
            .iter()
            .all(|p| (0.0..=1.0 + 1e-12).contains(&p.2)));
        let topics = text.topics.as_ref().unwrap();
        // Same-topic pairs are similar (their home topics weigh at least 1 − mix each).
        for &(a, b, s) in &truth.pairs {
            if topics[a as usize] == topics[b as usize] {
                assert!(s > 0.5, "{a} {b} {s}");
            }
        }
        let relevant = data.relevant.as_ref().unwrap();
        assert!(relevant
            .items(0)
            .iter()
            .all(|&v| topics[v as usize] == topics[0]));
        // The same seed, the same corpus.
        let again = generate("s", &c, 3).unwrap();
        assert_eq!(again.text.unwrap().sentences, text.sentences);
    }

    fn three_words() -> HashMap<String, u32> {
        [
            ("tiger".to_string(), 0),
            ("cat".to_string(), 1),
            ("zebra".to_string(), 2),
        ]
        .into()
    }

    #[test]
    fn evaluation_sets_keep_covered_pairs_and_count_all() {
        let dir = tempfile::tempdir().unwrap();
        let sim = dir.path().join("ws.tsv");
        std::fs::write(
            &sim,
            "# comment\nWord 1\tWord 2\tHuman\nTiger\tcat\t7.35\ntiger\tzebra\t5\n",
        )
        .unwrap();
        let index = three_words();
        let fold = |w: &str| w.to_lowercase();
        let pairs = read_pairs(&sim, &index, &fold).unwrap();
        assert_eq!((pairs.name.as_str(), pairs.total), ("ws", 2));
        assert_eq!(pairs.pairs, vec![(0, 1, 7.35), (0, 2, 5.0)]);
        let q = dir.path().join("q.txt");
        std::fs::write(&q, ": s\ntiger cat cat tiger\ntiger cat dog cat\n").unwrap();
        let a = read_analogies(&q, &index, &fold, 10).unwrap();
        assert_eq!((a.total, a.questions.clone()), (2, vec![[0, 1, 1, 0]]));
        // No question within the most frequent word: no accuracy to report.
        let e = read_analogies(&q, &index, &fold, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("none of its 2 questions"), "{e}");
        std::fs::write(&q, "a b c\n").unwrap();
        let e = read_analogies(&q, &index, &fold, 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("q.txt:1:") && e.contains("four words"), "{e}");
    }

    #[test]
    fn a_similarity_file_that_would_give_no_number_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let index = three_words();
        let fold = |w: &str| w.to_lowercase();
        let refused = |text: &str| {
            let sim = dir.path().join("sim.tsv");
            std::fs::write(&sim, text).unwrap();
            read_pairs(&sim, &index, &fold).unwrap_err().to_string()
        };
        let e = refused("tiger\tcat\t7\ntiger\tzebra\tNaN\n");
        assert!(
            e.contains("sim.tsv:2:") && e.contains("not a finite number"),
            "{e}"
        );
        // A non-finite score on the first line is no header either.
        let e = refused("tiger\tcat\tinf\ntiger\tzebra\t5\n");
        assert!(e.contains("sim.tsv:1:"), "{e}");
        let e = refused("tiger\tcat\t7\nlion\tzebra\t5\n");
        assert!(e.contains("only 1 of its 2 pairs"), "{e}");
        let e = refused("tiger\tcat\t5\ntiger\tzebra\t5\n");
        assert!(e.contains("constant"), "{e}");
    }
}
