//! Per-query pools of candidate ids, the state behind `cache` (NSCaching) and `srns`: a query's pool is
//! filled with uniform candidates on its first batch; a refresh joins fresh uniform candidates to each
//! distinct query's pool, scores the union with the current model and keeps `size` of it, either the
//! best-scored or a draw without replacement with probability softmax(score / T).

use rand::RngCore;

use super::{score_rows, SampleContext, Uniform};
use crate::draws::gumbel::{add_gumbel, largest, pack};
use crate::error::SamplerError;

/// How a refresh chooses the entries that stay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Keep {
    /// The best-scored.
    Top,
    /// Sampled without replacement with probability softmax(score · `inverse_t`).
    Softmax { inverse_t: f32 },
}

impl Keep {
    /// Turns scores into the keys they compete with for a place (the largest keys stay): the score
    /// itself, or score / T plus Gumbel noise, whose top n are the softmax draw (Gumbel-top-k).
    pub(crate) fn keys(self, scores: &mut [f32], rng: &mut impl RngCore, scratch: &mut Vec<f32>) {
        if let Keep::Softmax { inverse_t } = self {
            scores.iter_mut().for_each(|s| *s *= inverse_t);
            add_gumbel(scores, rng, scratch);
        }
    }
}

pub(crate) struct QueryPools {
    size: usize,
    /// (Q, size) ids; a query's row is filled on its first batch.
    ids: Vec<u32>,
    filled: Vec<bool>,
    /// Per item, the refresh that last put it in a union (duplicate check).
    seen: Vec<u64>,
    stamp: u64,
}

impl QueryPools {
    pub(crate) fn new(n_queries: usize, n_items: usize, size: usize) -> QueryPools {
        QueryPools {
            size,
            ids: vec![0; n_queries * size],
            filled: vec![false; n_queries],
            seen: vec![0; n_items],
            stamp: 0,
        }
    }

    /// The pool of query `q`, in slot order.
    pub(crate) fn pool(&self, q: usize) -> &[u32] {
        &self.ids[q * self.size..(q + 1) * self.size]
    }

    /// Fills the pools of `queries` seen for the first time with uniform candidates; returns them.
    pub(crate) fn fill_new(
        &mut self,
        queries: &[i64],
        uniform: &Uniform,
        rng: &mut impl RngCore,
    ) -> Vec<usize> {
        let size = self.size;
        let new: Vec<i64> = queries
            .iter()
            .copied()
            .filter(|&q| !self.filled[q as usize])
            .collect();
        let fresh = uniform.draw_for(&new, size, rng);
        let mut filled = Vec::new();
        for (&q, row) in new.iter().zip(fresh.chunks(size)) {
            let q = q as usize;
            if !self.filled[q] {
                self.filled[q] = true;
                self.ids[q * size..(q + 1) * size].copy_from_slice(row);
                filled.push(q);
            }
        }
        filled
    }

    /// Joins `fresh` uniform candidates to the pool of each distinct query of `queries`, scores the
    /// union with the current model and keeps `size` entries of it by `keep` (a duplicate counts once; a
    /// union smaller than the pool repeats its entries). `kept(q, from)` is told, per query, where each
    /// new slot came from: entry j of the union, j < size being old slot j, the rest the fresh ones.
    pub(crate) fn refresh(
        &mut self,
        queries: &[i64],
        fresh: usize,
        keep: Keep,
        uniform: &Uniform,
        cx: &mut SampleContext,
        mut kept: impl FnMut(usize, &[usize]),
    ) -> Result<(), SamplerError> {
        let size = self.size;
        let width = size + fresh;
        let mut queries = queries.to_vec();
        queries.sort_unstable();
        queries.dedup();
        let mut union = Vec::with_capacity(queries.len() * width);
        for &q in &queries {
            union.extend_from_slice(self.pool(q as usize));
            union.extend((0..fresh).map(|_| uniform.draw_one(q as usize, &mut *cx.rng)));
        }
        let scores = score_rows(cx.model, &queries, &union, width, cx.device)?;
        let (mut keys, mut entries, mut noise) = (Vec::new(), Vec::new(), Vec::new());
        let (mut ranked, mut from) = (Vec::<u64>::with_capacity(width), Vec::with_capacity(size));
        for ((&q, ids), scores) in queries
            .iter()
            .zip(union.chunks_exact(width))
            .zip(scores.chunks_exact(width))
        {
            let q = q as usize;
            // Stamp the items already in the union so a duplicate is kept once, in O(1).
            self.stamp += 1;
            keys.clear();
            entries.clear();
            for (j, (&id, &s)) in ids.iter().zip(scores).enumerate() {
                if self.seen[id as usize] != self.stamp {
                    self.seen[id as usize] = self.stamp;
                    keys.push(s);
                    entries.push(j as u32);
                }
            }
            keep.keys(&mut keys, &mut *cx.rng, &mut noise);
            ranked.clear();
            ranked.extend(keys.iter().zip(&entries).map(|(&k, &j)| pack(k, j)));
            from.clear();
            from.extend(
                largest(&mut ranked, size)
                    .iter()
                    .cycle()
                    .take(size)
                    .map(|&key| key as u32 as usize),
            );
            for (slot, &j) in (q * size..(q + 1) * size).zip(&from) {
                self.ids[slot] = ids[j];
            }
            kept(q, &from);
        }
        Ok(())
    }
}
