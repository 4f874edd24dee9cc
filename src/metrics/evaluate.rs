//! Full-ranking evaluation: every user with target items is scored against the whole item pool, the
//! items they already have (training, and validation when testing) are excluded, and the top K is
//! compared with the targets. Scoring runs in blocks of users, one matrix product per block, each block
//! sized so its score matrix and masks stay within `EVAL_BLOCK_BYTES` whatever the pool (a pool of a
//! million items is scored a few users at a time). A score that is not finite (a diverged model) is an
//! error, never a rank: NaN compares false with everything, which would rank a target first.
//!
//! Beside full ranking, the sampled protocol many published tables use (RecBole's `uni100`): each user's
//! targets ranked among `SAMPLED_NEGATIVES` items the user has in no split, drawn once per user from a
//! fixed stream (every cell of a data set meets the same ones), reported as `sampled-recall@K` and
//! `sampled-ndcg@K`. The report says how far the two protocols order samplers alike.

use tch::{Device, Kind, Tensor};

use super::ranking::{self, TieGroup};
use crate::data::QueryItems;
use crate::model::{ContrastiveModel, Similarity};

/// (metric name, value) pairs in `metric_names` order, averaged over evaluated users.
pub type MetricValues = Vec<(String, f64)>;

/// A few metrics of every evaluated query, for comparisons paired by query (IR-style significance
/// tests): `queries[i]` is the query of row `i` of every column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PerQuery {
    pub queries: Vec<u32>,
    pub columns: Vec<(String, Vec<f32>)>,
}

/// Negatives per user of the sampled protocol.
pub const SAMPLED_NEGATIVES: usize = 100;

/// Memory for one block of users' scores and masks.
pub const EVAL_BLOCK_BYTES: usize = 256 << 20;
/// Bytes per (user, item) entry of a block: the f32 score, its masked copy, and three boolean masks.
pub const BYTES_PER_SCORE: usize = 4 + 4 + 3;
/// More users per block gains nothing once the matrix product is large.
const MAX_BLOCK_USERS: usize = 4096;

/// Users scored at once for a pool of `n_items`.
pub fn block_users(n_items: usize) -> usize {
    (EVAL_BLOCK_BYTES / (n_items.max(1) * BYTES_PER_SCORE)).clamp(1, MAX_BLOCK_USERS)
}

/// The model scored some (user, item) pair as NaN or ±inf.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the model's scores are not finite (a NaN or infinite score for at least {bad} of the {users} users evaluated)")]
pub struct NonFiniteScores {
    pub bad: usize,
    pub users: usize,
}

impl NonFiniteScores {
    /// Ok when every row of `rows` (R, D) is finite; else how many rows are not, of `users` evaluated.
    pub fn check(rows: &Tensor, users: usize) -> Result<(), NonFiniteScores> {
        let bad = rows
            .isfinite()
            .all_dim(1, false)
            .logical_not()
            .sum(Kind::Int64)
            .int64_value(&[]) as usize;
        if bad > 0 {
            return Err(NonFiniteScores { bad, users });
        }
        Ok(())
    }
}

/// Scores of one block of users on the host: small enough to stay in the last-level cache while the
/// block's rows are scanned (the scan reads each row three times).
pub const SCAN_BLOCK_BYTES: usize = 4 << 20;
/// Users per host block at most: beyond this the matrix product gains nothing.
const MAX_SCAN_USERS: usize = 256;

/// Users scored at once by the host scan for a pool of `n_items`.
pub fn scan_block_users(n_items: usize) -> usize {
    (SCAN_BLOCK_BYTES / (n_items.max(1) * 4)).clamp(1, MAX_SCAN_USERS)
}

/// Everything one target split (validation or test) needs, precomputed.
///
/// On the CPU the scores of a block of users are written by one matrix product into a buffer reused
/// for every block, and each row is scanned once on the host for the top K (excluded items skipped as
/// they come, a running threshold rejecting almost every item), the rank of the best target and the
/// sampled protocol: no masked copy, no full sort, no whole-matrix temporaries. On an accelerator the
/// same metrics come from tensor operations on the device (`chunks`), which keep the scores there.
pub struct Evaluator {
    ks: Vec<usize>,
    /// The evaluated users (those with targets), in order.
    users: Vec<usize>,
    targets: QueryItems,
    exclude: Vec<QueryItems>,
    /// The sampled protocol's negatives of each evaluated user (same order as `users`).
    sampled: Vec<Vec<u32>>,
    /// The device path's index tensors; empty when the scores are scanned on the host.
    chunks: Vec<Chunk>,
}

struct Chunk {
    /// Range of `Evaluator::users`.
    start: usize,
    users_t: Tensor,
    /// (row within chunk, item) of every excluded pair.
    excluded: (Tensor, Tensor),
    /// (row within chunk, item) of every target pair.
    target: (Tensor, Tensor),
    /// Sampled protocol: (rows, SAMPLED_NEGATIVES) negatives, and (rows, most targets of a row) targets
    /// padded with item 0 where `sampled_valid` is false.
    sampled_negatives: Tensor,
    sampled_targets: Tensor,
    sampled_valid: Tensor,
}

/// One user's ranking, whichever path computed it, as tie groups (see `ranking`): every metric is its
/// expectation over a random order of tied scores.
#[derive(Debug, Default, Clone, PartialEq)]
struct RowRanking {
    /// The full ranking's top K, best first; the last group holds every item tied with the K-th (it may
    /// reach past K). Fewer than K items when fewer are left after the exclusions.
    groups: Vec<TieGroup>,
    /// The expected rank of the best target in the full ranking.
    first_rank: f64,
    /// The sampled short list (negatives and targets), best first.
    sampled_groups: Vec<TieGroup>,
}

impl RowRanking {
    /// The top groups from the top K (`top`: (score, item), best first, excluded items left out) and,
    /// when the list is full, `tied_at_cut` = (items left in the ranking tied with the K-th score,
    /// targets among them).
    fn set_top(
        &mut self,
        top: impl IntoIterator<Item = (f32, u32)>,
        targets: &[u32],
        tied_at_cut: Option<(usize, usize)>,
    ) {
        self.groups.clear();
        ranking::tie_groups(top, |i| targets.binary_search(&i).is_ok(), &mut self.groups);
        if let (Some((tied, tied_hits)), Some(last)) = (tied_at_cut, self.groups.last_mut()) {
            *last = TieGroup {
                len: tied,
                hits: tied_hits,
            };
        }
    }

    /// The short list's groups from its (score, is target) entries in any order.
    fn set_sampled(&mut self, candidates: &mut [(f32, bool)]) {
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
        self.sampled_groups.clear();
        ranking::tie_groups(
            candidates.iter().copied(),
            |hit| hit,
            &mut self.sampled_groups,
        );
    }
}

impl Evaluator {
    /// `exclude` are the item sets removed from each user's ranking, `targets` the items to find among
    /// `n_items`. Scores are ranked where `device` computes them (see the type's doc).
    pub fn new(
        ks: &[usize],
        exclude: &[&QueryItems],
        targets: &QueryItems,
        n_items: usize,
        device: Device,
    ) -> Evaluator {
        let users: Vec<usize> = (0..targets.n_queries())
            .filter(|&u| !targets.items(u).is_empty())
            .collect();
        let sampled = users
            .iter()
            .map(|&u| sampled_negatives(exclude, targets, u, n_items))
            .collect();
        let mut e = Evaluator {
            ks: ks.to_vec(),
            users,
            targets: targets.clone(),
            exclude: exclude.iter().map(|&set| set.clone()).collect(),
            sampled,
            chunks: Vec::new(),
        };
        if device != Device::Cpu {
            e.chunks = e.device_chunks(n_items, device);
        }
        e
    }

    /// The same evaluator ranking with tensor operations on `device` even on the CPU (for comparisons
    /// of the two paths).
    pub fn on_device_path(mut self, n_items: usize, device: Device) -> Evaluator {
        self.chunks = self.device_chunks(n_items, device);
        self
    }

    fn device_chunks(&self, n_items: usize, device: Device) -> Vec<Chunk> {
        let exclude: Vec<&QueryItems> = self.exclude.iter().collect();
        let pairs = |sets: &[&QueryItems], group: &[usize]| {
            let (mut rows, mut cols) = (Vec::new(), Vec::new());
            for (row, &u) in group.iter().enumerate() {
                for set in sets {
                    for &i in set.items(u) {
                        rows.push(row as i64);
                        cols.push(i as i64);
                    }
                }
            }
            (
                Tensor::from_slice(&rows).to_device(device),
                Tensor::from_slice(&cols).to_device(device),
            )
        };
        let block = block_users(n_items);
        (0..self.users.len())
            .step_by(block)
            .map(|start| {
                let end = (start + block).min(self.users.len());
                let group = &self.users[start..end];
                let (negatives, padded, valid) =
                    self.sampled_tensors(start..end, n_items.min(SAMPLED_NEGATIVES));
                Chunk {
                    start,
                    users_t: Tensor::from_slice(
                        &group.iter().map(|&u| u as i64).collect::<Vec<_>>(),
                    )
                    .to_device(device),
                    excluded: pairs(&exclude, group),
                    target: pairs(&[&self.targets], group),
                    sampled_negatives: negatives.to_device(device),
                    sampled_targets: padded.to_device(device),
                    sampled_valid: valid.to_device(device),
                }
            })
            .collect()
    }

    /// The sampled negatives of users `range` as one (rows, per_user) tensor; the targets padded to the
    /// longest row, with a validity mask.
    fn sampled_tensors(
        &self,
        range: std::ops::Range<usize>,
        per_user: usize,
    ) -> (Tensor, Tensor, Tensor) {
        let group = &self.users[range.clone()];
        let longest = group
            .iter()
            .map(|&u| self.targets.items(u).len())
            .max()
            .unwrap_or(1);
        let negatives: Vec<i64> = self.sampled[range]
            .iter()
            .flatten()
            .map(|&i| i as i64)
            .collect();
        let (mut padded, mut valid) = (Vec::new(), Vec::new());
        for &u in group {
            let t = self.targets.items(u);
            for j in 0..longest {
                padded.push(t.get(j).map_or(0, |&i| i as i64));
                valid.push(j < t.len());
            }
        }
        let rows = group.len() as i64;
        (
            Tensor::from_slice(&negatives).view([rows, per_user as i64]),
            Tensor::from_slice(&padded).view([rows, longest as i64]),
            Tensor::from_slice(&valid).view([rows, longest as i64]),
        )
    }

    pub fn n_queries(&self) -> usize {
        self.users.len()
    }

    pub fn evaluate(&self, model: &dyn ContrastiveModel) -> Result<MetricValues, NonFiniteScores> {
        self.evaluate_per_query(model).map(|(means, _)| means)
    }

    /// The means and, per query, NDCG and recall at the largest cut-off and the reciprocal rank.
    pub fn evaluate_per_query(
        &self,
        model: &dyn ContrastiveModel,
    ) -> Result<(MetricValues, PerQuery), NonFiniteScores> {
        let _no_grad = tch::no_grad_guard();
        let k_max = (*self.ks.iter().max().unwrap_or(&1)).min(model.n_items().max(1) as usize);
        let names = super::metric_names(&self.ks);
        let mut sums = vec![0.0; names.len()];
        let k_top = *self.ks.iter().max().unwrap_or(&1);
        let n = self.n_queries();
        let mut per_query = PerQuery {
            queries: Vec::with_capacity(n),
            columns: vec![
                (format!("ndcg@{k_top}"), Vec::with_capacity(n)),
                (format!("recall@{k_top}"), Vec::with_capacity(n)),
                ("mrr".into(), Vec::with_capacity(n)),
            ],
        };
        let mut add = |u: usize, r: &RowRanking| self.add_row(u, r, &mut sums, &mut per_query);
        if self.chunks.is_empty() {
            self.rank_on_host(model, k_max, &mut add)?;
        } else {
            self.rank_on_device(model, k_max, &mut add)?;
        }
        let n = n.max(1) as f64;
        let means = names
            .into_iter()
            .zip(sums)
            .map(|(name, s)| (name, s / n))
            .collect();
        Ok((means, per_query))
    }

    /// Adds user `u`'s metrics to `sums` (in `metric_names` order) and its row to `per_query`.
    fn add_row(&self, u: usize, r: &RowRanking, sums: &mut [f64], per_query: &mut PerQuery) {
        let n_targets = self.targets.items(u).len();
        let mut j = 0;
        let mut add = |value: f64| {
            sums[j] += value;
            j += 1;
        };
        for &k in &self.ks {
            add(ranking::expected_recall(&r.groups, k, n_targets));
        }
        for &k in &self.ks {
            add(ranking::expected_ndcg(&r.groups, k, n_targets));
        }
        for &k in &self.ks {
            add(ranking::hit_probability(&r.groups, k));
        }
        for &k in &self.ks {
            add(ranking::expected_precision(&r.groups, k));
        }
        let rr = ranking::reciprocal_rank(r.first_rank);
        add(rr);
        for &k in &self.ks {
            add(ranking::expected_recall(&r.sampled_groups, k, n_targets));
        }
        for &k in &self.ks {
            add(ranking::expected_ndcg(&r.sampled_groups, k, n_targets));
        }
        let k_top = *self.ks.iter().max().unwrap_or(&1);
        per_query.queries.push(u as u32);
        for (column, value) in per_query.columns.iter_mut().zip([
            ranking::expected_ndcg(&r.groups, k_top, n_targets),
            ranking::expected_recall(&r.groups, k_top, n_targets),
            rr,
        ]) {
            column.1.push(value as f32);
        }
    }

    /// The host path: blocks of users scored into one reused buffer, each row scanned once.
    fn rank_on_host(
        &self,
        model: &dyn ContrastiveModel,
        k: usize,
        add: &mut dyn FnMut(usize, &RowRanking),
    ) -> Result<(), NonFiniteScores> {
        let items = model.all_items();
        let n_items = items.size()[0] as usize;
        let block = scan_block_users(n_items);
        let dot = model.similarity() == Similarity::Dot
            && items.kind() == Kind::Float
            && items.device() == Device::Cpu;
        let buffer = Tensor::empty([block as i64, n_items as i64], (Kind::Float, Device::Cpu));
        let mut scratch = RowScratch::default();
        let mut ranking = RowRanking::default();
        for (b, group) in self.users.chunks(block).enumerate() {
            let users_t = Tensor::from_slice(&group.iter().map(|&u| u as i64).collect::<Vec<_>>());
            let scores = if dot {
                let out = buffer.narrow(0, 0, group.len() as i64);
                // Written as its transpose (items × users, column-major): the small query block is
                // the operand the BLAS packs, not the whole item table once per block.
                let _ = items.mm_out(&out.tr(), &model.queries(&users_t).tr());
                out
            } else {
                model
                    .score_all(&users_t.to_device(items.device()))
                    .expect("query and item embeddings of one model fit together")
                    .to_device(Device::Cpu)
                    .to_kind(Kind::Float)
                    .contiguous()
            };
            // SAFETY: `scores` is a contiguous CPU f32 tensor of group.len() × n_items values (the
            // buffer's first rows, or a fresh contiguous copy) and outlives this borrow.
            let values = unsafe {
                std::slice::from_raw_parts(scores.data_ptr() as *const f32, group.len() * n_items)
            };
            for (row, &u) in group.iter().enumerate() {
                let scanned = scratch.rank(
                    &values[row * n_items..(row + 1) * n_items],
                    self.exclude.iter().flat_map(|set| set.items(u)),
                    self.targets.items(u),
                    &self.sampled[b * block + row],
                    k,
                    &mut ranking,
                );
                if !scanned {
                    return Err(NonFiniteScores {
                        // The failing block's users: later blocks are not scored.
                        bad: self.count_non_finite_users(values, group.len(), n_items),
                        users: self.n_queries(),
                    });
                }
                add(u, &ranking);
            }
        }
        Ok(())
    }

    /// Users of the failing block whose row holds a non-finite score.
    fn count_non_finite_users(&self, values: &[f32], rows: usize, n_items: usize) -> usize {
        (0..rows)
            .filter(|r| {
                values[r * n_items..(r + 1) * n_items]
                    .iter()
                    .any(|x| !x.is_finite())
            })
            .count()
    }

    /// The device path: the whole block's metrics from tensor operations where the scores are.
    fn rank_on_device(
        &self,
        model: &dyn ContrastiveModel,
        k_max: usize,
        add: &mut dyn FnMut(usize, &RowRanking),
    ) -> Result<(), NonFiniteScores> {
        let k_max = k_max as i64;
        let mut ranking = RowRanking::default();
        for chunk in &self.chunks {
            let mut scores = model
                .score_all(&chunk.users_t)
                .expect("query and item embeddings of one model fit together");
            NonFiniteScores::check(&scores, self.n_queries())?;
            let neg_inf = Tensor::from(f32::NEG_INFINITY).to_device(scores.device());
            let _ = scores.index_put_(
                &[Some(&chunk.excluded.0), Some(&chunk.excluded.1)],
                &neg_inf,
                false,
            );
            // The best target's score; the items above it and tied with it (excluded items are −inf,
            // never tied with a finite score).
            let mut is_target = scores.zeros_like().to_kind(Kind::Bool);
            let yes = Tensor::from(true).to_device(scores.device());
            let _ =
                is_target.index_put_(&[Some(&chunk.target.0), Some(&chunk.target.1)], &yes, false);
            let count = |t: &Tensor| host_i64(&t.sum_dim_intlist(1, false, Kind::Int64));
            let tied_with = |x: &Tensor| {
                let x = x.unsqueeze(1);
                scores.eq_tensor(&x).logical_and(&x.isfinite())
            };
            let best = scores.where_self(&is_target, &neg_inf).amax(1, false);
            let above = count(&scores.gt_tensor(&best.unsqueeze(1)));
            let at_best = tied_with(&best);
            let (tied, tied_hits) = (count(&at_best), count(&at_best.logical_and(&is_target)));
            let (values, top) = scores.topk(k_max, 1, true, true);
            let at_cut = tied_with(&values.select(1, k_max - 1));
            let (cut_tied, cut_hits) = (count(&at_cut), count(&at_cut.logical_and(&is_target)));
            let values = Vec::<f32>::try_from(values.reshape([-1]).to_device(Device::Cpu))
                .expect("the evaluator's own f32 scores");
            let top = host_i64(&top.reshape([-1]));
            // Sampled protocol: the targets among the sampled negatives, ranked on the host.
            let n_neg = chunk.sampled_negatives.size()[1] as usize;
            let candidates = Tensor::cat(
                &[
                    scores.gather(1, &chunk.sampled_negatives, false),
                    scores.gather(1, &chunk.sampled_targets, false),
                ],
                1,
            );
            let width = candidates.size()[1] as usize;
            let candidates = Vec::<f32>::try_from(candidates.reshape([-1]).to_device(Device::Cpu))
                .expect("the evaluator's own f32 scores");
            let valid =
                Vec::<bool>::try_from(chunk.sampled_valid.reshape([-1]).to_device(Device::Cpu))
                    .expect("the evaluator's own masks");
            let mut short = Vec::new();
            let rows = chunk.users_t.size()[0] as usize;
            let k_max = k_max as usize;
            for row in 0..rows {
                let u = self.users[chunk.start + row];
                let targets = self.targets.items(u);
                ranking.first_rank = ranking::expected_first_rank(
                    above[row] as usize,
                    tied[row] as usize,
                    tied_hits[row] as usize,
                );
                let span = row * k_max..(row + 1) * k_max;
                // −inf entries are excluded items: the ranking ran out before K.
                let top_row: Vec<(f32, u32)> = values[span.clone()]
                    .iter()
                    .zip(&top[span])
                    .filter(|(v, _)| v.is_finite())
                    .map(|(&v, &i)| (v, i as u32))
                    .collect();
                let full = top_row.len() == k_max;
                ranking.set_top(
                    top_row,
                    targets,
                    full.then_some((cut_tied[row] as usize, cut_hits[row] as usize)),
                );
                let entries = &candidates[row * width..(row + 1) * width];
                let longest = width - n_neg;
                short.clear();
                short.extend(entries[..n_neg].iter().map(|&x| (x, false)));
                short.extend(
                    entries[n_neg..]
                        .iter()
                        .zip(&valid[row * longest..(row + 1) * longest])
                        .filter(|(_, &v)| v)
                        .map(|(&x, _)| (x, true)),
                );
                ranking.set_sampled(&mut short);
                add(u, &ranking);
            }
        }
        Ok(())
    }
}

/// Reused buffers of the host scan.
#[derive(Default)]
struct RowScratch {
    excluded: Vec<u32>,
    top: Vec<(f32, u32)>,
    candidates: Vec<(f32, bool)>,
}

impl RowScratch {
    /// Ranks one user's `row` of scores over the pool into `out`; false when a score is not finite.
    /// Tied scores form groups (`RowRanking`), in the full ranking and in the short list alike.
    fn rank<'a>(
        &mut self,
        row: &[f32],
        excluded: impl Iterator<Item = &'a u32>,
        targets: &[u32],
        sampled: &[u32],
        k: usize,
        out: &mut RowRanking,
    ) -> bool {
        self.excluded.clear();
        self.excluded.extend(excluded);
        self.excluded.sort_unstable();
        self.excluded.dedup();
        let excluded = &self.excluded;
        let is_excluded = |i: u32| excluded.binary_search(&i).is_ok();
        let score = |i: u32| {
            if is_excluded(i) {
                f32::NEG_INFINITY
            } else {
                row[i as usize]
            }
        };
        let best = targets
            .iter()
            .map(|&t| score(t))
            .fold(f32::NEG_INFINITY, f32::max);
        let scan = top_k(row, k, excluded, best, &mut self.top);
        if scan.non_finite > 0 {
            return false;
        }
        // Items left in the ranking scored like `x`, and targets among them.
        let excluded_where =
            |f: &dyn Fn(f32) -> bool| excluded.iter().filter(|&&i| f(row[i as usize])).count();
        let targets_at = |x: f32| targets.iter().filter(|&&t| score(t) == x).count();
        let above = scan.above - excluded_where(&|x| x > best);
        let tied = scan.tied - excluded_where(&|x| x == best);
        out.first_rank = ranking::expected_first_rank(above, tied, targets_at(best));
        let tied_at_cut = (k > 0 && self.top.len() == k).then(|| {
            let cut = self.top[k - 1].0;
            let tied = if cut == best {
                tied
            } else {
                count_equal(row, cut) - excluded_where(&|x| x == cut)
            };
            (tied, targets_at(cut))
        });
        out.set_top(self.top.iter().copied(), targets, tied_at_cut);

        self.candidates.clear();
        self.candidates
            .extend(sampled.iter().map(|&i| (score(i), false)));
        self.candidates
            .extend(targets.iter().map(|&t| (score(t), true)));
        out.set_sampled(&mut self.candidates);
        true
    }
}

/// How many of `row` equal `x`.
fn count_equal(row: &[f32], x: f32) -> usize {
    // Eight lanes so the compiler keeps the counts in a vector register.
    let mut lanes = [0u32; 8];
    let eights = row.chunks_exact(8);
    let tail = eights.remainder();
    for eight in eights {
        for l in 0..8 {
            lanes[l] += u32::from(eight[l] == x);
        }
    }
    lanes.iter().sum::<u32>() as usize + tail.iter().filter(|&&y| y == x).count()
}

/// What one pass over a row counted besides the top K.
struct RowCounts {
    /// Scores strictly above the `above` threshold, and equal to it (excluded items included).
    above: usize,
    tied: usize,
    /// NaN or infinite scores.
    non_finite: usize,
}

/// The `k` best (score, item) of `row` whose item is not in `excluded` (sorted), best first, ties to
/// the lower item, in one pass that also counts the scores above and equal to `above` and the
/// non-finite ones. A
/// running threshold (the k-th best so far) rejects whole runs of items with one vectorised maximum;
/// only items above it are looked at one by one.
fn top_k(
    row: &[f32],
    k: usize,
    excluded: &[u32],
    above: f32,
    top: &mut Vec<(f32, u32)>,
) -> RowCounts {
    const RUN: usize = 64;
    top.clear();
    let mut threshold = f32::NEG_INFINITY;
    // Eight independent lanes so the compiler keeps each in a vector register.
    let (mut lanes_above, mut lanes_tied, mut lanes_bad) = ([0u32; 8], [0u32; 8], [0u32; 8]);
    let runs = row.chunks_exact(RUN);
    let tail = runs.remainder();
    for (r, run) in runs.enumerate() {
        let mut best = [f32::NEG_INFINITY; 8];
        for eight in run.chunks_exact(8) {
            for l in 0..8 {
                let x = eight[l];
                best[l] = if x > best[l] { x } else { best[l] };
                lanes_above[l] += u32::from(x > above);
                lanes_tied[l] += u32::from(x == above);
                // Exponent all ones: NaN or ±inf.
                lanes_bad[l] += u32::from(x.to_bits() & 0x7f80_0000 == 0x7f80_0000);
            }
        }
        let best = best
            .iter()
            .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
        if k > 0 && (top.len() < k || best > threshold) {
            consider(r * RUN, run, k, excluded, top, &mut threshold);
        }
    }
    let (mut n_above, mut n_tied, mut non_finite) = (
        lanes_above.iter().sum::<u32>(),
        lanes_tied.iter().sum::<u32>(),
        lanes_bad.iter().sum::<u32>(),
    );
    for &x in tail {
        n_above += u32::from(x > above);
        n_tied += u32::from(x == above);
        non_finite += u32::from(x.to_bits() & 0x7f80_0000 == 0x7f80_0000);
    }
    if k > 0 {
        consider(
            row.len() - tail.len(),
            tail,
            k,
            excluded,
            top,
            &mut threshold,
        );
    }
    RowCounts {
        above: n_above as usize,
        tied: n_tied as usize,
        non_finite: non_finite as usize,
    }
}

/// Offers the items of `run` (the first is item `start`) to the top K above `threshold`.
fn consider(
    start: usize,
    run: &[f32],
    k: usize,
    excluded: &[u32],
    top: &mut Vec<(f32, u32)>,
    threshold: &mut f32,
) {
    for (j, &x) in run.iter().enumerate() {
        if top.len() == k && x <= *threshold {
            continue;
        }
        let i = (start + j) as u32;
        if excluded.binary_search(&i).is_ok() {
            continue;
        }
        // After every equal score: an earlier (lower) item keeps its place.
        let at = top.partition_point(|&(s, _)| s >= x);
        if top.len() == k {
            top.pop();
        }
        top.insert(at, (x, i));
        if top.len() == k {
            *threshold = top[k - 1].0;
        }
    }
}

/// The sampled protocol's negatives of user `u`: `SAMPLED_NEGATIVES` distinct items (fewer in a small
/// pool) in none of `exclude` nor `targets`, from a stream seeded by the user id alone.
fn sampled_negatives(
    exclude: &[&QueryItems],
    targets: &QueryItems,
    u: usize,
    n_items: usize,
) -> Vec<u32> {
    use rand::{Rng, SeedableRng};
    let known = |i: u32| targets.contains(u, i) || exclude.iter().any(|set| set.contains(u, i));
    // Rejection draws; a user with fewer free items than asked (a tiny pool) repeats its last draw, and
    // one with none gets item 0: the short list is then padding, a known limit of the sampled protocol.
    let per_user = SAMPLED_NEGATIVES.min(n_items);
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0x5a3d_0000 ^ u as u64);
    let mut row: Vec<u32> = Vec::with_capacity(per_user);
    let mut tries = 0;
    while row.len() < per_user && tries < 50 * per_user {
        tries += 1;
        let i = rng.random_range(0..n_items as u32);
        if !known(i) && !row.contains(&i) {
            row.push(i);
        }
    }
    let fill = row.last().copied().unwrap_or(0);
    row.resize(per_user, fill);
    row
}

/// An int64 tensor's values on the host. The evaluator builds these tensors itself as int64, so a
/// failure here is a bug, not a data problem.
fn host_i64(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t.to_device(Device::Cpu)).expect("the evaluator's own int64 tensor")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Interactions;
    use crate::model::{Mf, MfConfig};

    #[test]
    fn a_nan_score_is_an_error_not_a_first_rank() {
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let model = Mf::new(
            &vs.root(),
            &MfConfig {
                dim: 4,
                init_std: 0.1,
            },
            2,
            6,
            0,
        );
        let mut x = Interactions::default();
        x.push(0, 3);
        x.push(1, 5);
        let targets = QueryItems::from_interactions(2, &x);
        let none = QueryItems::from_interactions(2, &Interactions::default());
        let eval = Evaluator::new(&[1], &[&none], &targets, 6, Device::Cpu);
        assert!(eval.evaluate(&model).is_ok());
        tch::no_grad(|| {
            let _ = model.all_items().get(3).fill_(f64::NAN);
        });
        let err = eval.evaluate(&model).unwrap_err();
        assert_eq!(err, NonFiniteScores { bad: 2, users: 2 });
    }

    #[test]
    fn a_pool_of_a_million_items_is_evaluated_a_block_at_a_time() {
        let n_items = 1_000_000;
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let model = Mf::new(
            &vs.root(),
            &MfConfig {
                dim: 4,
                init_std: 0.1,
            },
            50,
            n_items,
            0,
        );
        let mut x = Interactions::default();
        for u in 0..50u32 {
            x.push(u, u * 9973 % n_items as u32);
        }
        let targets = QueryItems::from_interactions(50, &x);
        let none = QueryItems::from_interactions(50, &Interactions::default());
        let eval = Evaluator::new(&[10], &[&none], &targets, n_items, Device::Cpu);
        assert!(scan_block_users(n_items) < 50, "more than one block");
        let metrics = eval.evaluate(&model).unwrap();
        assert!(metrics.iter().all(|(_, v)| v.is_finite() && *v >= 0.0));
    }

    #[test]
    fn the_sampled_protocol_never_ranks_a_target_lower_than_full_ranking() {
        // 40 users, 500 items, random MF: the short list is a subset of the full ranking holding every
        // target, so its recall and NDCG at every K are at least the full ones, and above them on average.
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let model = Mf::new(
            &vs.root(),
            &MfConfig {
                dim: 8,
                init_std: 1.0,
            },
            40,
            500,
            3,
        );
        let (mut train, mut test) = (Interactions::default(), Interactions::default());
        for u in 0..40u32 {
            for j in 0..5 {
                train.push(u, (u * 7 + j * 31) % 500);
                test.push(u, (u * 11 + j * 97 + 3) % 500);
            }
        }
        let train = QueryItems::from_interactions(40, &train);
        let test = QueryItems::from_interactions(40, &test);
        let eval = Evaluator::new(&[5, 20], &[&train], &test, 500, Device::Cpu);
        let m: std::collections::HashMap<String, f64> =
            eval.evaluate(&model).unwrap().into_iter().collect();
        for k in [5, 20] {
            for name in ["recall", "ndcg"] {
                let (full, sampled) =
                    (m[&format!("{name}@{k}")], m[&format!("sampled-{name}@{k}")]);
                assert!(
                    sampled > full,
                    "{name}@{k}: sampled {sampled} vs full {full}"
                );
            }
        }
        // Every user has 100 distinct negatives outside its known items.
        for (row, &u) in eval.users.iter().enumerate() {
            let set: std::collections::HashSet<_> = eval.sampled[row].iter().collect();
            assert_eq!(set.len(), SAMPLED_NEGATIVES);
            assert!(eval.sampled[row]
                .iter()
                .all(|&i| !train.contains(u, i) && !test.contains(u, i)));
        }
    }

    #[test]
    fn the_host_scan_and_the_device_path_agree_on_every_metric_and_query() {
        // Random MF (no ties), two overlapping exclusion sets, targets some of which are excluded.
        let (users, items) = (70, 300);
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let model = Mf::new(
            &vs.root(),
            &MfConfig {
                dim: 8,
                init_std: 1.0,
            },
            users,
            items,
            5,
        );
        let (mut train, mut valid, mut test) = (
            Interactions::default(),
            Interactions::default(),
            Interactions::default(),
        );
        for u in 0..users as u32 {
            for j in 0..(u % 9) {
                train.push(u, (u * 13 + j * 37) % items as u32);
                valid.push(u, (u * 13 + j * 41) % items as u32);
            }
            for j in 0..(1 + u % 6) {
                test.push(u, (u * 29 + j * 53 + 1) % items as u32);
            }
        }
        let [train, valid, test] =
            [train, valid, test].map(|x| QueryItems::from_interactions(users, &x));
        let host = Evaluator::new(&[1, 5, 20], &[&train, &valid], &test, items, Device::Cpu);
        let (host_means, host_rows) = host.evaluate_per_query(&model).unwrap();
        let device = Evaluator::new(&[1, 5, 20], &[&train, &valid], &test, items, Device::Cpu)
            .on_device_path(items, Device::Cpu);
        let (device_means, device_rows) = device.evaluate_per_query(&model).unwrap();
        for ((name, a), (_, b)) in host_means.iter().zip(&device_means) {
            assert!((a - b).abs() < 1e-12, "{name}: host {a} vs device {b}");
        }
        assert_eq!(host_rows, device_rows);
        assert!(host_means.iter().any(|(n, v)| n == "mrr" && *v > 0.0));
    }

    #[test]
    fn top_k_skips_excluded_items_breaks_ties_to_the_lower_item_and_may_come_up_short() {
        let row = [0.5, 0.9, 0.5, 0.1, 0.9, 0.7];
        let mut top = Vec::new();
        top_k(&row, 3, &[], 0.6, &mut top);
        assert_eq!(top, vec![(0.9, 1), (0.9, 4), (0.7, 5)]);
        top_k(&row, 4, &[1, 5], 0.6, &mut top);
        assert_eq!(top, vec![(0.9, 4), (0.5, 0), (0.5, 2), (0.1, 3)]);
        let counts = top_k(&row, 10, &[0, 1, 2, 3], 0.6, &mut top);
        assert_eq!((counts.above, counts.non_finite), (3, 0));
        assert_eq!(top, vec![(0.9, 4), (0.7, 5)]);
        // Longer than one run of the threshold's vectorised check.
        let long: Vec<f32> = (0..100).map(|i| ((i * 37) % 101) as f32).collect();
        top_k(&long, 2, &[], 0.0, &mut top);
        assert_eq!(top, vec![(100.0, 30), (99.0, 60)]);
    }

    #[test]
    fn the_first_rank_counts_only_items_left_in_the_ranking() {
        // Targets 2 (0.6) and 4 (excluded: never the best); above 0.6: items 0, 1 and 3, of which 1 is
        // excluded: rank 3. The short list: negatives 5 and 0 around the target.
        let row = [0.8, 0.95, 0.6, 0.7, 0.99, 0.1];
        let mut out = RowRanking::default();
        let ok = RowScratch::default().rank(&row, [1u32, 4].iter(), &[2, 4], &[5, 0], 2, &mut out);
        assert!(ok);
        assert_eq!(out.first_rank, 3.0);
        let single = |hits| TieGroup { len: 1, hits };
        assert_eq!(out.groups, vec![single(0), single(0)]);
        // 0.8 (item 0), 0.6 (target 2), 0.1 (item 5), −inf (the excluded target 4).
        assert_eq!(
            out.sampled_groups,
            vec![single(0), single(1), single(0), single(1)]
        );
        let bad = [0.1, f32::INFINITY];
        assert!(!RowScratch::default().rank(&bad, [].iter(), &[0], &[], 1, &mut out));
    }

    #[test]
    fn ties_at_the_cut_and_at_the_best_target_form_groups_with_every_tied_item() {
        // Items 0..8: 0.9, then 0.5 × 5 (items 1, 2, 4, 6, 7; item 3 excluded), 0.1 × 2. Targets 2 and 6
        // (both at 0.5): top 3 = 0.9 alone, then the 0.5 group of 5 with 2 targets (reaching past K).
        let row = [0.9, 0.5, 0.5, 0.5, 0.5, 0.1, 0.5, 0.5, 0.1];
        let mut out = RowRanking::default();
        assert!(RowScratch::default().rank(&row, [3u32].iter(), &[2, 6], &[], 3, &mut out));
        assert_eq!(
            out.groups,
            vec![TieGroup { len: 1, hits: 0 }, TieGroup { len: 5, hits: 2 }]
        );
        // 1 above, 5 tied with 2 targets: 1 + 6 / 3.
        assert_eq!(out.first_rank, 3.0);
    }

    /// Scores every pair 0: the model of `init_std = 0`, which never moves under BPR.
    fn constant_model(users: usize, items: usize) -> (tch::nn::VarStore, Mf) {
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let model = Mf::new(
            &vs.root(),
            &MfConfig {
                dim: 4,
                init_std: 0.0,
            },
            users,
            items,
            0,
        );
        (vs, model)
    }

    #[test]
    fn a_constant_scorer_scores_chance_on_both_paths_never_mrr_one() {
        let (users, items) = (30, 200);
        let (_vs, model) = constant_model(users, items);
        let (mut train, mut test) = (Interactions::default(), Interactions::default());
        for u in 0..users as u32 {
            // Disjoint: training items below 100, test items above.
            for j in 0..10 {
                train.push(u, (u * 3 + j * 17) % 100);
            }
            for j in 0..4 {
                test.push(u, 100 + (u * 5 + j * 41 + 7) % 100);
            }
        }
        let [train, test] = [train, test].map(|x| QueryItems::from_interactions(users, &x));
        // Per user: n items left (not in train), 4 targets among them, all tied.
        let expect = |name: &str, u: usize| -> f64 {
            let n = (items - train.items(u).len()) as f64;
            let h = test.items(u).len() as f64;
            match name {
                "recall@20" => 20.0 / n,
                "precision@20" => h / n,
                "mrr" => (h + 1.0) / (n + 1.0),
                _ => unreachable!(),
            }
        };
        let host = Evaluator::new(&[20], &[&train], &test, items, Device::Cpu);
        let device = Evaluator::new(&[20], &[&train], &test, items, Device::Cpu)
            .on_device_path(items, Device::Cpu);
        for eval in [host, device] {
            let m: std::collections::HashMap<String, f64> =
                eval.evaluate(&model).unwrap().into_iter().collect();
            for name in ["recall@20", "precision@20", "mrr"] {
                let want = (0..users).map(|u| expect(name, u)).sum::<f64>() / users as f64;
                assert!(
                    (m[name] - want).abs() < 1e-9,
                    "{name}: {} vs {want}",
                    m[name]
                );
            }
            assert!(m["mrr"] < 0.05 && m["ndcg@20"] < 0.2, "{m:?}");
        }
    }

    #[test]
    fn the_host_scan_and_the_device_path_agree_on_tied_scores() {
        // Scores rounded to a few levels: ties everywhere, at the cut and at the targets.
        let (users, items) = (40, 120);
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let model = Mf::new(
            &vs.root(),
            &MfConfig {
                dim: 2,
                init_std: 1.0,
            },
            users,
            items,
            9,
        );
        tch::no_grad(|| {
            model.all_items().copy_(&model.all_items().round());
        });
        let (mut train, mut test) = (Interactions::default(), Interactions::default());
        for u in 0..users as u32 {
            for j in 0..(u % 7) {
                train.push(u, (u * 13 + j * 37) % items as u32);
            }
            for j in 0..(1 + u % 5) {
                test.push(u, (u * 29 + j * 53 + 1) % items as u32);
            }
        }
        let [train, test] = [train, test].map(|x| QueryItems::from_interactions(users, &x));
        let host = Evaluator::new(&[1, 5, 20], &[&train], &test, items, Device::Cpu);
        let device = Evaluator::new(&[1, 5, 20], &[&train], &test, items, Device::Cpu)
            .on_device_path(items, Device::Cpu);
        let (h, hq) = host.evaluate_per_query(&model).unwrap();
        let (d, dq) = device.evaluate_per_query(&model).unwrap();
        for ((name, a), (_, b)) in h.iter().zip(&d) {
            assert!((a - b).abs() < 1e-9, "{name}: host {a} vs device {b}");
        }
        assert_eq!(hq, dq);
    }

    #[test]
    fn blocks_shrink_with_the_pool_and_stay_within_memory() {
        assert_eq!(block_users(1000), MAX_BLOCK_USERS);
        let users = block_users(1_000_000);
        assert!(users >= 1 && users * 1_000_000 * BYTES_PER_SCORE <= EVAL_BLOCK_BYTES);
        assert_eq!(block_users(usize::MAX / 64), 1);
    }
}
