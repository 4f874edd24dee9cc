//! An epoch's (centre, context) pairs, drawn as the training reaches them: word2vec's frequent-word
//! subsampling and dynamic window, sentence by sentence, in pieces of a bounded size
//! (`TextData::draw_pairs`). Memory is the corpus and one piece, not the epoch's pairs: a text8-sized
//! corpus (17M tokens) draws about 100M pairs an epoch. The pieces are the same draws in the same order
//! as one draw of the whole epoch (`epoch_pairs`), from the same stream, wherever they are cut.

use rand::Rng;
use rand_pcg::Pcg64Mcg;

use super::TextData;
use crate::data::Interactions;

/// Pairs an epoch's training holds at once (two i64 ids each, and the shuffle's copy): 4M pairs,
/// about 200 MB. An epoch with fewer is drawn, shuffled and trained as one piece.
pub const PIECE_PAIRS: usize = 1 << 22;

/// Where one epoch's draw stands.
#[derive(Debug, Clone)]
pub struct PairDraw {
    /// The next sentence to subsample.
    next: usize,
    /// The current sentence's kept words, and the next centre among them.
    kept: Vec<u32>,
    at: usize,
    /// Corpus tokens of the sentences before the current one, the current one's, and the corpus's.
    tokens_before: usize,
    tokens_current: usize,
    tokens_total: usize,
}

impl PairDraw {
    pub fn new(text: &TextData) -> PairDraw {
        PairDraw {
            next: 0,
            kept: Vec::new(),
            at: 0,
            tokens_before: 0,
            tokens_current: 0,
            tokens_total: text.tokens(),
        }
    }

    /// The share of the corpus's tokens whose pairs were drawn (0 to 1), for schedules over an epoch.
    pub fn progress(&self) -> f64 {
        let within = match self.kept.len() {
            0 => 0.0,
            n => self.tokens_current as f64 * self.at as f64 / n as f64,
        };
        ((self.tokens_before as f64 + within) / self.tokens_total.max(1) as f64).min(1.0)
    }
}

impl TextData {
    /// Appends the draw's next pairs, stopping after the centre word that brings at least `room`;
    /// returns whether the epoch has more. Each sentence is subsampled when reached, then every kept
    /// word is paired with the kept words within its reduced window.
    pub fn draw_pairs(
        &self,
        draw: &mut PairDraw,
        rng: &mut Pcg64Mcg,
        queries: &mut Vec<i64>,
        items: &mut Vec<i64>,
        room: usize,
    ) -> bool {
        let start = queries.len();
        loop {
            if queries.len() - start >= room {
                return true;
            }
            while draw.at == draw.kept.len() {
                let Some(sentence) = self.sentences.get(draw.next) else {
                    draw.tokens_before += std::mem::take(&mut draw.tokens_current);
                    return false;
                };
                draw.next += 1;
                draw.tokens_before += std::mem::replace(&mut draw.tokens_current, sentence.len());
                draw.kept.clear();
                draw.kept.extend(sentence.iter().copied().filter(|&w| {
                    self.keep[w as usize] >= 1.0 || rng.random::<f32>() < self.keep[w as usize]
                }));
                draw.at = 0;
            }
            let (kept, at) = (&draw.kept, draw.at);
            let reach = rng.random_range(1..=self.window);
            let from = at.saturating_sub(reach);
            let to = (at + reach).min(kept.len() - 1);
            for (j, &context) in kept.iter().enumerate().take(to + 1).skip(from) {
                if j != at {
                    queries.push(kept[at] as i64);
                    items.push(context as i64);
                }
            }
            draw.at += 1;
        }
    }

    /// One epoch's pairs in corpus order, all at once (tests and small corpora).
    pub fn epoch_pairs(&self, rng: &mut Pcg64Mcg, queries: &mut Vec<i64>, items: &mut Vec<i64>) {
        self.draw_pairs(&mut PairDraw::new(self), rng, queries, items, usize::MAX);
    }

    /// The distinct pairs of one epoch's draw, sorted by (centre, context), and how many pairs the draw
    /// had: the known co-occurrences, held without the draw's repeats.
    pub fn distinct_pairs(&self, rng: &mut Pcg64Mcg) -> (Interactions, usize) {
        self.distinct_pairs_by(rng, PIECE_PAIRS)
    }

    fn distinct_pairs_by(&self, rng: &mut Pcg64Mcg, piece: usize) -> (Interactions, usize) {
        let mut draw = PairDraw::new(self);
        let (mut q, mut i) = (Vec::new(), Vec::new());
        let (mut keys, mut deduplicated, mut drawn) = (Vec::<u64>::new(), 0, 0);
        loop {
            q.clear();
            i.clear();
            let more = self.draw_pairs(&mut draw, rng, &mut q, &mut i, piece);
            drawn += q.len();
            keys.extend(q.iter().zip(&i).map(|(&a, &b)| (a as u64) << 32 | b as u64));
            // Sorting when the keys have doubled keeps the work linear-logarithmic overall.
            if !more || keys.len() > 2 * deduplicated.max(piece) {
                keys.sort_unstable();
                keys.dedup();
                deduplicated = keys.len();
            }
            if !more {
                break;
            }
        }
        let pairs = Interactions {
            queries: keys.iter().map(|&k| (k >> 32) as u32).collect(),
            items: keys.iter().map(|&k| k as u32).collect(),
        };
        (pairs, drawn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn text(sentences: Vec<Vec<u32>>, keep: f32, window: usize) -> TextData {
        let n = 1 + *sentences.iter().flatten().max().unwrap() as usize;
        TextData {
            words: (0..n).map(|w| format!("w{w}")).collect(),
            counts: vec![1; n],
            sentences,
            keep: vec![keep; n],
            window,
            similarity: Vec::new(),
            analogies: None,
            topics: None,
            pairs_per_epoch: 0,
        }
    }

    fn corpus() -> TextData {
        let sentences = (0..40u32)
            .map(|s| {
                (0..(s % 7 + 1) * 5)
                    .map(|j| (s * 31 + j * 7) % 53)
                    .collect()
            })
            .collect();
        text(sentences, 0.6, 4)
    }

    #[test]
    fn pieces_are_the_whole_draw_cut_anywhere() {
        let text = corpus();
        let (mut q, mut i) = (Vec::new(), Vec::new());
        text.epoch_pairs(&mut Pcg64Mcg::seed_from_u64(5), &mut q, &mut i);
        assert!(q.len() > 1000);
        for room in [1, 7, 100, 999] {
            let mut rng = Pcg64Mcg::seed_from_u64(5);
            let mut draw = PairDraw::new(&text);
            let (mut pq, mut pi) = (Vec::new(), Vec::new());
            let mut progress = 0.0;
            while text.draw_pairs(&mut draw, &mut rng, &mut pq, &mut pi, room) {
                assert!(draw.progress() >= progress && draw.progress() <= 1.0);
                progress = draw.progress();
            }
            assert_eq!((&pq, &pi), (&q, &i), "pieces of {room}");
            assert_eq!(draw.progress(), 1.0);
        }
    }

    #[test]
    fn a_piece_stops_after_the_centre_that_fills_it() {
        // Window 1 over one sentence of 5 kept words: 1 + 2 + 2 + 2 + 1 pairs.
        let text = text(vec![vec![0, 1, 2, 3, 4]], 1.0, 1);
        let mut draw = PairDraw::new(&text);
        let mut rng = Pcg64Mcg::seed_from_u64(0);
        let (mut q, mut i) = (Vec::new(), Vec::new());
        assert!(text.draw_pairs(&mut draw, &mut rng, &mut q, &mut i, 2));
        assert_eq!(q, [0, 1, 1], "the centre that crosses the room finishes");
        assert!((draw.progress() - 0.4).abs() < 1e-12);
        assert!(!text.draw_pairs(&mut draw, &mut rng, &mut q, &mut i, usize::MAX));
        assert_eq!(q.len(), 8);
    }

    #[test]
    fn distinct_pairs_are_the_draw_without_repeats() {
        let text = corpus();
        let (mut q, mut i) = (Vec::new(), Vec::new());
        text.epoch_pairs(&mut Pcg64Mcg::seed_from_u64(9), &mut q, &mut i);
        let mut expected: Vec<(u32, u32)> = q
            .iter()
            .zip(&i)
            .map(|(&a, &b)| (a as u32, b as u32))
            .collect();
        expected.sort_unstable();
        expected.dedup();
        assert!(expected.len() < q.len(), "the corpus repeats pairs");
        // Whole, and in pieces small enough that the keys are sorted and deduplicated many times.
        for piece in [PIECE_PAIRS, 10] {
            let (pairs, drawn) = text.distinct_pairs_by(&mut Pcg64Mcg::seed_from_u64(9), piece);
            assert_eq!(drawn, q.len());
            let got: Vec<(u32, u32)> = pairs
                .queries
                .iter()
                .copied()
                .zip(pairs.items.iter().copied())
                .collect();
            assert_eq!(got, expected, "pieces of {piece}");
        }
    }
}
