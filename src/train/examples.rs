//! The training examples of an epoch, in a seeded random order. Recommendation: every (user, item)
//! pair. Knowledge graphs: one (query, answer) pair per training triple, its side (the tail query
//! (h, r, ?) or the head query (?, r, t)) chosen per triple and epoch by the sampler's `Corruption`
//! scheme, or both pairs (non-sampling references). The side draws come from the shuffle stream whatever
//! the scheme, so samplers of one seed see the same triples in the same order. Text: the epoch's
//! (centre, context) pairs drawn anew (subsampling, dynamic window; `TextData::epoch_pairs`), then
//! shuffled, both from the shuffle stream; in corpus order under word2vec's own update, as word2vec
//! trains (`in_corpus_order`).

use rand::seq::SliceRandom;
use rand::Rng;
use rand_pcg::Pcg64Mcg;

use crate::data::text::{PairDraw, PIECE_PAIRS};
use crate::data::Dataset;
use crate::sampler::Corruption;

/// Pairs in a text piece: `PIECE_PAIRS`, smaller in tests so that epochs of a tiny corpus cut.
#[cfg(not(test))]
fn piece_pairs() -> usize {
    PIECE_PAIRS
}

#[cfg(test)]
thread_local! {
    pub static TEST_PIECE: std::cell::Cell<usize> = const { std::cell::Cell::new(PIECE_PAIRS) };
}

#[cfg(test)]
fn piece_pairs() -> usize {
    TEST_PIECE.with(|p| p.get())
}

pub struct EpochExamples {
    order: Vec<u32>,
    corruption: Corruption,
    /// Text: keep each epoch's pairs in corpus order (sentence by sentence, each centre word's contexts
    /// together) instead of shuffling them.
    in_corpus_order: bool,
    /// Text: where the epoch's draw stands, and a piece before its shuffle.
    draw: Option<PairDraw>,
    drawn: (Vec<i64>, Vec<i64>),
    /// Whether the epoch's examples were all written.
    done: bool,
}

impl EpochExamples {
    pub fn new(data: &Dataset, corruption: Corruption) -> EpochExamples {
        let order = match data.text {
            Some(_) => Vec::new(),
            None => (0..data.n_examples() as u32).collect(),
        };
        EpochExamples {
            order,
            corruption,
            in_corpus_order: false,
            draw: None,
            drawn: (Vec::new(), Vec::new()),
            done: true,
        }
    }

    /// Text pairs in corpus order, as word2vec reads its corpus.
    pub fn in_corpus_order(mut self) -> EpochExamples {
        self.in_corpus_order = true;
        self
    }

    /// Starts the next epoch (its examples then come from `next_piece`).
    pub fn start_epoch(&mut self, data: &Dataset) {
        self.draw = data.text.as_ref().map(PairDraw::new);
        self.done = false;
    }

    /// Appends the epoch's next (query, positive) pairs: all of them, or text's next piece. Returns
    /// whether more follow.
    pub fn next_piece(
        &mut self,
        data: &Dataset,
        rng: &mut Pcg64Mcg,
        queries: &mut Vec<i64>,
        positives: &mut Vec<i64>,
    ) -> bool {
        assert!(!self.done, "start_epoch before next_piece");
        let more = match (&data.text, &mut self.draw) {
            (Some(text), Some(draw)) if self.in_corpus_order => {
                text.draw_pairs(draw, rng, queries, positives, piece_pairs())
            }
            (Some(text), Some(draw)) => {
                let (q, p) = &mut self.drawn;
                q.clear();
                p.clear();
                let more = text.draw_pairs(draw, rng, q, p, piece_pairs());
                self.order.clear();
                self.order.extend(0..q.len() as u32);
                self.order.shuffle(rng);
                queries.extend(self.order.iter().map(|&o| q[o as usize]));
                positives.extend(self.order.iter().map(|&o| p[o as usize]));
                more
            }
            _ => {
                self.write_all(data, rng, queries, positives);
                false
            }
        };
        self.done = !more;
        more
    }

    /// The share of the epoch written so far (0 to 1).
    pub fn progress(&self) -> f64 {
        match (&self.draw, self.done) {
            (_, true) => 1.0,
            (Some(draw), false) => draw.progress(),
            (None, false) => 0.0,
        }
    }

    /// The whole epoch's pairs, in place of `queries` and `positives` (tests).
    #[cfg(test)]
    pub fn next_epoch(
        &mut self,
        data: &Dataset,
        rng: &mut Pcg64Mcg,
        queries: &mut Vec<i64>,
        positives: &mut Vec<i64>,
    ) {
        queries.clear();
        positives.clear();
        self.start_epoch(data);
        while self.next_piece(data, rng, queries, positives) {}
    }

    /// Shuffles and appends every pair of the epoch (all but text).
    fn write_all(
        &mut self,
        data: &Dataset,
        rng: &mut Pcg64Mcg,
        queries: &mut Vec<i64>,
        positives: &mut Vec<i64>,
    ) {
        self.order.shuffle(rng);
        let pair = |at: usize, queries: &mut Vec<i64>, positives: &mut Vec<i64>| {
            queries.push(data.train.queries[at] as i64);
            positives.push(data.train.items[at] as i64);
        };
        let Some(kg) = &data.kg else {
            for &o in &self.order {
                pair(o as usize, queries, positives);
            }
            return;
        };
        for &t in &self.order {
            let t = t as usize;
            let u: f64 = rng.random();
            let head = match self.corruption {
                Corruption::EvenSides => u < 0.5,
                Corruption::Bernoulli => u < kg.head_probability[kg.train_relation[t] as usize],
                Corruption::BothSides => {
                    pair(2 * t, queries, positives);
                    pair(2 * t + 1, queries, positives);
                    continue;
                }
            };
            // The head pair (2t + 1) ranks heads: it corrupts the head.
            pair(2 * t + usize::from(head), queries, positives);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_text_epoch_of_one_piece_is_its_whole_draw_shuffled() {
        let data = crate::sampler::tests::tiny_text();
        let text = data.text.as_ref().unwrap();
        let mut ex = EpochExamples::new(&data, Corruption::EvenSides);
        let (mut q, mut p) = (Vec::new(), Vec::new());
        ex.next_epoch(&data, &mut Pcg64Mcg::seed_from_u64(3), &mut q, &mut p);
        // The draw, then a shuffle of its order, from the one stream.
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        let (mut dq, mut dp) = (Vec::new(), Vec::new());
        text.epoch_pairs(&mut rng, &mut dq, &mut dp);
        let mut order: Vec<u32> = (0..dq.len() as u32).collect();
        order.shuffle(&mut rng);
        let shuffled = |v: &[i64]| order.iter().map(|&o| v[o as usize]).collect::<Vec<_>>();
        assert_eq!((q.clone(), p.clone()), (shuffled(&dq), shuffled(&dp)));
        assert_ne!(q, dq, "shuffled");
        assert_eq!(ex.progress(), 1.0);
        // In corpus order: the draw itself.
        let mut ex = EpochExamples::new(&data, Corruption::EvenSides).in_corpus_order();
        ex.next_epoch(&data, &mut Pcg64Mcg::seed_from_u64(3), &mut q, &mut p);
        assert_eq!((q, p), (dq, dp));
    }

    #[test]
    fn each_triple_trains_one_side_per_epoch_and_bernoulli_follows_the_relation() {
        // r0 is 1-N (head 0 has tails 1..=4): Bernoulli corrupts its head with probability 4/5.
        let triples: Vec<[u32; 3]> = (1..=4).map(|t| [0, 0, t]).collect();
        let data = crate::data::kg::build("t", 5, 1, &triples, &[], &[[0, 0, 1]], None);
        let count_heads = |corruption| {
            let mut ex = EpochExamples::new(&data, corruption);
            let mut rng = Pcg64Mcg::seed_from_u64(1);
            let (mut q, mut p) = (Vec::new(), Vec::new());
            let mut heads = 0;
            for _ in 0..500 {
                ex.next_epoch(&data, &mut rng, &mut q, &mut p);
                assert_eq!(q.len(), 4, "one example per triple");
                heads += q
                    .iter()
                    .filter(|&&q| data.kg.as_ref().unwrap().queries.head_side[q as usize])
                    .count();
            }
            heads as f64 / 2000.0
        };
        assert!((count_heads(Corruption::EvenSides) - 0.5).abs() < 0.04);
        assert!((count_heads(Corruption::Bernoulli) - 0.8).abs() < 0.04);
        let mut ex = EpochExamples::new(&data, Corruption::BothSides);
        let (mut q, mut p) = (Vec::new(), Vec::new());
        ex.next_epoch(&data, &mut Pcg64Mcg::seed_from_u64(1), &mut q, &mut p);
        assert_eq!(q.len(), 8);
    }
}
