//! Word-embedding evaluation (text domain), on the centre-word vectors (the queries), as gensim's
//! `KeyedVectors` evaluates them:
//! - word similarity (`evaluate_word_pairs`): Spearman's ρ between the cosine of each covered pair and
//!   the human score, `<set>-spearman`, and the share of the set's pairs in the vocabulary,
//!   `<set>-coverage` (WordSim353, SimLex-999; on the synthetic corpus `truth-spearman` against the
//!   generator's similarity);
//! - analogies (`evaluate_word_analogies`, 3CosAdd): for a : b :: c : d, the word nearest to
//!   b̂ − â + ĉ (unit vectors) among the `analogy_vocab` most frequent words, a, b and c excluded;
//!   `analogy-accuracy` over the covered questions and `analogy-coverage`;
//! - on the synthetic corpus, `nn-precision@10`: the share of each word's 10 nearest neighbours (cosine)
//!   that share its home topic.

use tch::{Device, Kind, Tensor};

use super::{MetricValues, NonFiniteScores, PerQuery};
use crate::data::text::{Analogies, TextData};
use crate::model::ContrastiveModel;

/// Neighbours of the nearest-neighbour check.
pub const NEIGHBOURS: usize = 10;

/// Names of the metrics a text data set reports, in order.
pub fn metric_names(text: &TextData) -> Vec<String> {
    let mut names = Vec::new();
    for set in &text.similarity {
        names.push(format!("{}-spearman", set.name));
        names.push(format!("{}-coverage", set.name));
    }
    if text.analogies.is_some() {
        names.push("analogy-accuracy".into());
        names.push("analogy-coverage".into());
    }
    if text.topics.is_some() {
        names.push(format!("nn-precision@{NEIGHBOURS}"));
    }
    names
}

pub struct TextEvaluator {
    text: TextData,
    device: Device,
}

impl TextEvaluator {
    pub fn new(text: &TextData, device: Device) -> TextEvaluator {
        TextEvaluator {
            text: text.clone(),
            device,
        }
    }

    /// Unit-length centre vectors of the whole vocabulary, (V, D) f32 on the evaluator's device.
    fn unit_vectors(&self, model: &dyn ContrastiveModel) -> Result<Tensor, NonFiniteScores> {
        let n = self.text.words.len() as i64;
        let ids = Tensor::arange(n, (Kind::Int64, self.device));
        let v = model.queries(&ids).to_kind(Kind::Float);
        NonFiniteScores::check(&v, n as usize)?;
        let norms = v
            .norm_scalaropt_dim(2, [1i64].as_slice(), true)
            .clamp_min(1e-12);
        Ok(v / norms)
    }

    pub fn evaluate(&self, model: &dyn ContrastiveModel) -> Result<MetricValues, NonFiniteScores> {
        self.evaluate_per_query(model).map(|(m, _)| m)
    }

    /// The metrics and, per query (for tests paired by query), each analogy question's correctness (1
    /// or 0), or without analogies each word's nearest-neighbour precision on the synthetic corpus.
    pub fn evaluate_per_query(
        &self,
        model: &dyn ContrastiveModel,
    ) -> Result<(MetricValues, PerQuery), NonFiniteScores> {
        let _no_grad = tch::no_grad_guard();
        let unit = self.unit_vectors(model)?;
        let mut metrics = Vec::new();
        let mut per_query = PerQuery {
            queries: Vec::new(),
            columns: Vec::new(),
        };
        for set in &self.text.similarity {
            let (a, b): (Vec<i64>, Vec<i64>) =
                set.pairs.iter().map(|p| (p.0 as i64, p.1 as i64)).unzip();
            let ta = Tensor::from_slice(&a).to_device(self.device);
            let tb = Tensor::from_slice(&b).to_device(self.device);
            let cos = (unit.index_select(0, &ta) * unit.index_select(0, &tb))
                .sum_dim_intlist(1, false, Kind::Double)
                .to_device(Device::Cpu);
            let cos = Vec::<f64>::try_from(cos).expect("a f64 vector");
            let gold: Vec<f64> = set.pairs.iter().map(|p| p.2).collect();
            metrics.push((
                format!("{}-spearman", set.name),
                similarity_rho(&cos, &gold),
            ));
            metrics.push((
                format!("{}-coverage", set.name),
                set.pairs.len() as f64 / set.total.max(1) as f64,
            ));
        }
        if let Some(analogies) = &self.text.analogies {
            let correct = answer_analogies(&unit, analogies);
            let accuracy =
                correct.iter().map(|&c| c as f64).sum::<f64>() / correct.len().max(1) as f64;
            metrics.push(("analogy-accuracy".into(), accuracy));
            metrics.push((
                "analogy-coverage".into(),
                analogies.questions.len() as f64 / analogies.total.max(1) as f64,
            ));
            per_query.queries = (0..correct.len() as u32).collect();
            per_query.columns.push(("analogy".into(), correct));
        }
        if let Some(topics) = &self.text.topics {
            let precision = neighbour_precision(&unit, topics);
            metrics.push((
                format!("nn-precision@{NEIGHBOURS}"),
                precision.iter().map(|&p| p as f64).sum::<f64>() / precision.len().max(1) as f64,
            ));
            if per_query.columns.is_empty() {
                per_query.queries = (0..precision.len() as u32).collect();
                per_query
                    .columns
                    .push((format!("nn-precision@{NEIGHBOURS}"), precision));
            }
        }
        Ok((metrics, per_query))
    }
}

/// Spearman's ρ of the model's cosines against the gold scores (which loading guarantees vary). A model
/// whose cosines are all equal (collapsed) gets 0, the expectation of ρ over random orders of its ties,
/// as the ranking metrics count ties; never an undefined value.
fn similarity_rho(cos: &[f64], gold: &[f64]) -> f64 {
    if cos.iter().all(|&c| c == cos[0]) {
        return 0.0;
    }
    crate::stats::spearman(cos, gold)
}

/// Whether each covered question's nearest word to b̂ − â + ĉ (a, b, c excluded) is d: 1 or 0, and
/// where several words tie for nearest with d among them, 1 / their number (the chance a random order
/// of the ties puts d first; never the lowest id's luck).
fn answer_analogies(unit: &Tensor, analogies: &Analogies) -> Vec<f32> {
    let restricted = unit.narrow(0, 0, (analogies.restrict as i64).min(unit.size()[0]));
    let mut correct = Vec::with_capacity(analogies.questions.len());
    for block in analogies.questions.chunks(1024) {
        let column = |j: usize| {
            let ids: Vec<i64> = block.iter().map(|q| q[j] as i64).collect();
            unit.index_select(0, &Tensor::from_slice(&ids).to_device(unit.device()))
        };
        let target = column(1) - column(0) + column(2);
        let scores = target
            .matmul(&restricted.tr())
            .to_device(Device::Cpu)
            .contiguous();
        let n = restricted.size()[0] as usize;
        let values = Vec::<f32>::try_from(scores.view([-1])).expect("a f32 matrix");
        for (q, row) in block.iter().zip(values.chunks_exact(n)) {
            let candidates = || {
                row.iter()
                    .enumerate()
                    .filter(|(w, _)| !q[..3].contains(&(*w as u32)))
            };
            let best = candidates().fold(f32::NEG_INFINITY, |m, (_, &s)| m.max(s));
            let tied = candidates().filter(|(_, &s)| s == best).count();
            let answer_tied = row.get(q[3] as usize) == Some(&best) && !q[..3].contains(&q[3]);
            correct.push(if answer_tied { 1.0 / tied as f32 } else { 0.0 });
        }
    }
    correct
}

/// Each word's share of its NEIGHBOURS nearest words (itself excluded) with its home topic; words tied
/// with the NEIGHBOURS-th nearest count in proportion to the places left for them (their expectation
/// over a random order of the ties).
fn neighbour_precision(unit: &Tensor, topics: &[u32]) -> Vec<f32> {
    let n = topics.len();
    let k = NEIGHBOURS.min(n - 1);
    let device = unit.device();
    let topic_t =
        Tensor::from_slice(&topics.iter().map(|&t| t as i64).collect::<Vec<_>>()).to_device(device);
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(1024) {
        let rows = (n - start).min(1024);
        let mut scores = unit.narrow(0, start as i64, rows as i64).matmul(&unit.tr());
        // A word is not its own neighbour.
        let own = Tensor::arange_start(start as i64, (start + rows) as i64, (Kind::Int64, device));
        let _ = scores.scatter_(
            1,
            &own.unsqueeze(1),
            &Tensor::full([rows as i64, 1], f64::NEG_INFINITY, (Kind::Float, device)),
        );
        let (top, _) = scores.topk(k as i64, 1, true, true);
        let cut = top.select(1, k as i64 - 1).unsqueeze(1);
        let same = topic_t
            .narrow(0, start as i64, rows as i64)
            .unsqueeze(1)
            .eq_tensor(&topic_t.unsqueeze(0));
        let count = |mask: &Tensor| mask.sum_dim_intlist(1, false, Kind::Double);
        let (above, tied) = (scores.gt_tensor(&cut), scores.eq_tensor(&cut));
        let (n_above, n_tied) = (count(&above), count(&tied));
        let hits = count(&above.logical_and(&same))
            + count(&tied.logical_and(&same)) * (-&n_above + k as f64) / n_tied.clamp_min(1.0);
        let precision = (hits / k as f64)
            .to_kind(Kind::Float)
            .to_device(Device::Cpu);
        out.extend(Vec::<f32>::try_from(precision).expect("a f32 vector"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::text::WordPairs;

    // A model whose centre vectors are given.
    use crate::model::FixedEmbeddings as Fixed;

    fn text(vectors: usize) -> TextData {
        TextData {
            words: (0..vectors).map(|i| format!("w{i}")).collect(),
            counts: vec![1; vectors],
            sentences: Vec::new(),
            keep: vec![1.0; vectors],
            window: 1,
            similarity: Vec::new(),
            analogies: None,
            topics: None,
            pairs_per_epoch: 0,
        }
    }

    #[test]
    fn similarity_is_spearman_of_cosines_and_coverage_counts_every_pair() {
        // w0 = (1, 0), w1 = (1, 1), w2 = (0, 1), w3 = (−1, 0): cos(0,1) > cos(0,2) > cos(0,3).
        let v = Tensor::from_slice(&[1f32, 0., 1., 1., 0., 1., -1., 0.]).view([4, 2]);
        let mut t = text(4);
        t.similarity.push(WordPairs {
            name: "ws".into(),
            pairs: vec![(0, 1, 9.0), (0, 2, 5.0), (0, 3, 1.0)],
            total: 4,
        });
        let m = TextEvaluator::new(&t, Device::Cpu)
            .evaluate(&Fixed(v.shallow_clone()))
            .unwrap();
        assert_eq!(m[0], ("ws-spearman".into(), 1.0));
        assert_eq!(m[1], ("ws-coverage".into(), 0.75));
        t.similarity[0].pairs[0].2 = 0.0; // now the most similar pair scores lowest
        let m = TextEvaluator::new(&t, Device::Cpu)
            .evaluate(&Fixed(v))
            .unwrap();
        assert!(m[0].1 < 0.0);
        // A collapsed model (every vector equal): ρ is 0, the mean over orders of its ties, not NaN.
        let same = Tensor::ones([4, 2], (tch::Kind::Float, Device::Cpu));
        let m = TextEvaluator::new(&t, Device::Cpu)
            .evaluate(&Fixed(same))
            .unwrap();
        assert_eq!(m[0], ("ws-spearman".into(), 0.0));
    }

    #[test]
    fn analogies_take_the_nearest_word_to_b_minus_a_plus_c_excluding_the_question() {
        // man (1,0,0), king (1,1,0), woman (0,0,1), queen (0,1,1), plus a decoy equal to king.
        let v = Tensor::from_slice(&[
            1f32, 0., 0., 1., 1., 0., 0., 0., 1., 0., 1., 1., 1., 1., 0.01,
        ])
        .view([5, 3]);
        let mut t = text(5);
        t.analogies = Some(Analogies {
            questions: vec![[0, 1, 2, 3], [0, 1, 2, 4]],
            total: 3,
            restrict: 5,
        });
        let (m, per_query) = TextEvaluator::new(&t, Device::Cpu)
            .evaluate_per_query(&Fixed(v.shallow_clone()))
            .unwrap();
        assert_eq!(m[0], ("analogy-accuracy".into(), 0.5));
        assert!((m[1].1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(per_query.columns[0].1, vec![1.0, 0.0]);
        // Restricted to the first three words, queen cannot be the answer.
        t.analogies.as_mut().unwrap().restrict = 3;
        let m = TextEvaluator::new(&t, Device::Cpu)
            .evaluate(&Fixed(v))
            .unwrap();
        assert_eq!(m[0].1, 0.0);
    }

    #[test]
    fn neighbour_precision_counts_same_topic_neighbours() {
        // Two tight clusters of six words: every word's ten nearest hold its five cluster mates.
        let mut values = Vec::new();
        for i in 0..12 {
            let (x, y) = if i < 6 {
                (1.0, 0.01 * i as f32)
            } else {
                (0.01 * i as f32, 1.0)
            };
            values.extend([x, y]);
        }
        let v = Tensor::from_slice(&values).view([12, 2]);
        let topics: Vec<u32> = (0..12).map(|i| u32::from(i >= 6)).collect();
        let p = neighbour_precision(
            &(&v / v.norm_scalaropt_dim(2, [1i64].as_slice(), true)),
            &topics,
        );
        assert!(p.iter().all(|&x| (x - 0.5).abs() < 1e-6), "{p:?}");
    }

    #[test]
    fn tied_neighbours_and_tied_analogy_answers_count_their_expectation_not_the_lowest_id() {
        // Twelve equal vectors: every other word ties. Same-topic share among the 11 others: 5/11 for
        // every word, whatever order topk returns the ties in.
        let equal = Tensor::ones([12, 2], (Kind::Float, Device::Cpu)) / 2f64.sqrt();
        let topics: Vec<u32> = (0..12).map(|i| u32::from(i >= 6)).collect();
        let p = neighbour_precision(&equal, &topics);
        assert!(p.iter().all(|&x| (x - 5.0 / 11.0).abs() < 1e-6), "{p:?}");
        // An analogy over 6 tied words, 3 of them the question: 1/3 of a correct answer.
        let a = Analogies {
            questions: vec![[0, 1, 2, 3]],
            total: 1,
            restrict: 6,
        };
        let six = Tensor::ones([6, 2], (Kind::Float, Device::Cpu)) / 2f64.sqrt();
        assert_eq!(answer_analogies(&six, &a), vec![1.0 / 3.0]);
    }

    #[test]
    fn non_finite_vectors_are_reported() {
        let v = Tensor::from_slice(&[1f32, f32::NAN, 0., 1.]).view([2, 2]);
        let mut t = text(2);
        t.similarity.push(WordPairs {
            name: "ws".into(),
            pairs: vec![(0, 1, 1.0), (1, 0, 2.0)],
            total: 2,
        });
        let e = TextEvaluator::new(&t, Device::Cpu)
            .evaluate(&Fixed(v))
            .unwrap_err();
        assert_eq!(e.bad, 1);
    }
}
