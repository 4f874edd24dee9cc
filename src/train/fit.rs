//! The epoch loop: shuffle, sample, score, BPR + L2, optimiser step; evaluate every `eval_every` epochs
//! with full ranking; optional early stopping on the validation split. A loss or a score that is not
//! finite ends training with `TrainError::Diverged` (the cell is recorded as failed, never as a result).

use std::time::{Duration, Instant};

use anyhow::Result;
use rand_pcg::Pcg64Mcg;
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

use super::adam::HostAdam;
use super::diagnostics::Diagnostics;
use super::examples::EpochExamples;
use super::word2vec::PerPairSgd;
use super::{OptimizerKind, TrainConfig};
use crate::data::Dataset;
use crate::error::TrainError;
use crate::loss::{self, LossConfig, Objective};
use crate::metrics::{MetricValues, PerQuery, Protocol};
use crate::model::{accumulate_grad, ContrastiveModel, RowGrads};
use crate::sampler::{Batch, NegativeItems, Negatives, SampleContext, Sampler};

/// The random streams of one cell's training, each seeded from (suite, cell, seed).
pub struct TrainStreams {
    /// Order of the training pairs in every epoch.
    pub shuffle: Pcg64Mcg,
    /// Everything the sampler draws.
    pub sampler: Pcg64Mcg,
}

/// Metrics on one split at one epoch.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// `valid` or `test`.
    pub split: &'static str,
    pub metrics: MetricValues,
}

#[derive(Debug, Clone)]
pub struct EpochLog {
    pub epoch: u32,
    /// Mean training loss over the epoch's positives.
    pub loss: f64,
    /// Wall time of the epoch's training steps (evaluation excluded).
    pub train_seconds: f64,
    /// Time spent inside the sampler during the epoch.
    pub sampling_seconds: f64,
    /// Sampler diagnostics of the epoch (see `diagnostics`).
    pub diagnostics: Vec<(&'static str, f64)>,
    pub evaluations: Vec<Evaluation>,
}

#[derive(Debug, Clone)]
pub struct TrainLog {
    pub epochs: Vec<EpochLog>,
    /// Test metrics of the selected epoch (the last one, or the best validation epoch with early stopping).
    pub test: MetricValues,
    /// Per-query test metrics of the selected epoch.
    pub test_per_query: PerQuery,
    pub selected_epoch: u32,
    pub stopped_early: bool,
    pub positives_seen: u64,
    pub train_seconds: f64,
    pub sampling_seconds: f64,
    pub eval_seconds: f64,
    /// Time spent measuring sampler diagnostics (kept out of `train_seconds`).
    pub diagnostics_seconds: f64,
}

/// Where a cell's training stands, after each epoch (for progress lines); epoch 0 when it starts.
#[derive(Debug, Clone, Copy)]
pub struct EpochProgress {
    pub epoch: u32,
    pub epochs: u32,
    pub loss: f64,
    /// Wall time since training started, evaluations included.
    pub elapsed_seconds: f64,
}

/// The early-stopping metric when the configuration names none: the domain's headline metric.
pub fn default_selection_metric(data: &Dataset, ks: &[usize]) -> String {
    let names = crate::domain::metric_names(data, ks);
    crate::domain::of(data.kind())
        .headline(&names.iter().map(String::as_str).collect::<Vec<_>>())
        .expect("every domain reports its headline metric")
}

/// Trains `model` (whose parameters live in `vs`) on `data` with `ratio` negatives per positive under
/// `loss`; `progress` hears of every finished epoch.
#[allow(clippy::too_many_arguments)]
pub fn fit(
    cfg: &TrainConfig,
    loss: &LossConfig,
    data: &Dataset,
    model: &dyn ContrastiveModel,
    vs: &nn::VarStore,
    sampler: &mut dyn Sampler,
    ratio: usize,
    device: Device,
    streams: &mut TrainStreams,
    progress: &mut dyn FnMut(EpochProgress),
) -> Result<TrainLog> {
    let training_started = Instant::now();
    let mut updater = match cfg.optimizer {
        OptimizerKind::Word2vec => Updater::PerPair(PerPairSgd::new(cfg.lr, cfg.l2, cfg.epochs)),
        _ => Updater::Torch(optimizer(cfg, vs, weight_decay(cfg, model))?),
    };
    let test_eval = crate::domain::protocol(data, &cfg.ks, true, cfg.exclude_from_ranking, device)
        .expect("every data set has a test split");
    let valid_eval =
        crate::domain::protocol(data, &cfg.ks, false, cfg.exclude_from_ranking, device);
    let early = cfg.early_stopping.as_ref().filter(|_| valid_eval.is_some());
    let selection_metric = early
        .and_then(|es| es.metric.clone())
        .unwrap_or_else(|| default_selection_metric(data, &cfg.ks));

    let mut examples = EpochExamples::new(data, sampler.corruption());
    if cfg.optimizer == OptimizerKind::Word2vec {
        examples = examples.in_corpus_order();
    }
    let mut log = TrainLog {
        epochs: Vec::new(),
        test: Vec::new(),
        test_per_query: PerQuery::default(),
        selected_epoch: 0,
        stopped_early: false,
        positives_seen: 0,
        train_seconds: 0.0,
        sampling_seconds: 0.0,
        eval_seconds: 0.0,
        diagnostics_seconds: 0.0,
    };
    // Epoch 0: training is about to start (a failure from here on is one of training).
    progress(EpochProgress {
        epoch: 0,
        epochs: cfg.epochs,
        loss: f64::NAN,
        elapsed_seconds: 0.0,
    });
    let mut selection = Selection::new(&selection_metric);
    let mut step = 0u64;
    let mut diagnostics = Diagnostics::new(data.n_items);
    for epoch in 1..=cfg.epochs {
        let started = Instant::now();
        let pass = EpochPass {
            cfg,
            loss,
            data,
            model,
            ratio,
            device,
            epoch,
        };
        let (loss_sum, n, sampling, diagnosing) = pass.run_pieces(
            &mut examples,
            &mut streams.shuffle,
            &mut updater,
            sampler,
            &mut streams.sampler,
            &mut diagnostics,
            &mut step,
        )?;
        sampler.end_epoch(epoch);
        let mean_loss = f64::try_from(&loss_sum)? / n.max(1) as f64;
        if !mean_loss.is_finite() {
            return Err(TrainError::Diverged {
                epoch,
                what: format!("the training loss is {mean_loss}"),
            }
            .into());
        }
        // The epoch's summary (coverage, Gini, a uniform draw's reference) is diagnostics too.
        let summing = Instant::now();
        let diagnostics_of_epoch = diagnostics.finish_epoch(data, sampling.as_secs_f64());
        let diagnosing = diagnosing + summing.elapsed();
        log.diagnostics_seconds += diagnosing.as_secs_f64();
        let train_seconds = (started.elapsed() - diagnosing).as_secs_f64();
        log.train_seconds += train_seconds;
        log.sampling_seconds += sampling.as_secs_f64();
        log.positives_seen += n as u64;

        let last = epoch == cfg.epochs;
        let evaluations = if epoch % cfg.eval_every.max(1) == 0 || last {
            let evaluated = evaluate(model, &test_eval, valid_eval.as_ref(), epoch, &mut log)?;
            select(
                &mut log,
                evaluated,
                early.is_some(),
                &mut selection,
                &selection_metric,
                epoch,
            )
        } else {
            Vec::new()
        };
        log.epochs.push(EpochLog {
            epoch,
            loss: mean_loss,
            train_seconds,
            sampling_seconds: sampling.as_secs_f64(),
            diagnostics: diagnostics_of_epoch,
            evaluations,
        });
        progress(EpochProgress {
            epoch,
            epochs: cfg.epochs,
            loss: mean_loss,
            elapsed_seconds: training_started.elapsed().as_secs_f64(),
        });
        if let Some(es) = early {
            if selection.since_best >= es.patience && !last {
                log.stopped_early = true;
                break;
            }
        }
    }
    if log.test.is_empty() {
        // Cannot happen with finite metrics (the first evaluation is always selected); never write a
        // cell without effectiveness rows.
        anyhow::bail!(
            "no evaluation was selected after {} epochs",
            log.epochs.len()
        );
    }
    Ok(log)
}

/// One epoch's pass over its examples: what stays fixed within it.
struct EpochPass<'a> {
    cfg: &'a TrainConfig,
    loss: &'a LossConfig,
    data: &'a Dataset,
    model: &'a dyn ContrastiveModel,
    ratio: usize,
    device: Device,
    epoch: u32,
}

impl EpochPass<'_> {
    /// Trains on the epoch's examples piece by piece (`EpochExamples::next_piece`), carrying a piece's
    /// last partial batch into the next so every batch but the epoch's last is whole: the summed loss
    /// (on the device), the pairs trained, and the time spent sampling and in diagnostics.
    #[allow(clippy::too_many_arguments)]
    fn run_pieces(
        &self,
        examples: &mut EpochExamples,
        shuffle: &mut Pcg64Mcg,
        updater: &mut Updater,
        sampler: &mut dyn Sampler,
        rng: &mut Pcg64Mcg,
        diagnostics: &mut Diagnostics,
        step: &mut u64,
    ) -> Result<(Tensor, usize, Duration, Duration)> {
        let (mut queries, mut positives) = (Vec::new(), Vec::new());
        let mut total: Option<Tensor> = None;
        let (mut n, mut sampling, mut diagnosing) = (0, Duration::ZERO, Duration::ZERO);
        let mut from = 0.0;
        examples.start_epoch(self.data);
        loop {
            let more = examples.next_piece(self.data, shuffle, &mut queries, &mut positives);
            let to = examples.progress();
            let whole = match more {
                true => queries.len() - queries.len() % self.cfg.batch_size,
                false => queries.len(),
            };
            let (sum, s, d) = self.run(
                &queries[..whole],
                &positives[..whole],
                (from, to),
                updater,
                sampler,
                rng,
                diagnostics,
                step,
            )?;
            total = Some(match total {
                Some(t) => t + sum,
                None => sum,
            });
            (n, sampling, diagnosing) = (n + whole, sampling + s, diagnosing + d);
            queries.drain(..whole);
            positives.drain(..whole);
            from = to;
            if !more {
                break;
            }
        }
        Ok((total.expect("one piece at least"), n, sampling, diagnosing))
    }

    /// Trains on every batch of (`queries`, `positives`), the pairs from `span`.0 to `span`.1 of the
    /// epoch (word2vec's learning-rate schedule): the summed loss (on the device) and the time spent
    /// sampling and in diagnostics.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        queries: &[i64],
        positives: &[i64],
        span: (f64, f64),
        updater: &mut Updater,
        sampler: &mut dyn Sampler,
        rng: &mut Pcg64Mcg,
        diagnostics: &mut Diagnostics,
        step: &mut u64,
    ) -> Result<(Tensor, Duration, Duration)> {
        let EpochPass {
            cfg,
            loss,
            data,
            model,
            ratio,
            device,
            epoch,
        } = *self;
        let n = queries.len();
        let mut sampling = Duration::ZERO;
        let mut diagnosing = Duration::ZERO;
        let queries_t = Tensor::from_slice(queries).to_device(device);
        let positives_t = Tensor::from_slice(positives).to_device(device);
        let mut loss_sum = Tensor::zeros([], (Kind::Float, device));
        for start in (0..n).step_by(cfg.batch_size) {
            let len = cfg.batch_size.min(n - start);
            let q_t = queries_t.narrow(0, start as i64, len as i64);
            let p_t = positives_t.narrow(0, start as i64, len as i64);
            let batch = Batch {
                queries: &queries[start..start + len],
                positives: &positives[start..start + len],
                queries_t: &q_t,
                positives_t: &p_t,
            };
            let mut cx = SampleContext {
                rng: &mut *rng,
                loss,
                model,
                device,
                epoch,
                epochs: cfg.epochs,
                step: *step,
            };
            let mut inspect = |negatives: &Negatives| {
                let t = Instant::now();
                let recorded = diagnostics.record(data, batch.queries, negatives, model, &q_t);
                diagnosing += t.elapsed();
                recorded
            };
            let (batch_loss, sampled) = match updater {
                Updater::Torch(opt) => train_step(
                    cfg, loss, model, opt, sampler, &batch, ratio, &mut cx, inspect,
                )?,
                Updater::PerPair(sgd) => {
                    let t = Instant::now();
                    let negatives = sampler.sample(&batch, ratio, &mut cx)?;
                    let sampled = t.elapsed();
                    inspect(&negatives)?;
                    let within = span.0 + (span.1 - span.0) * (start as f64 / n.max(1) as f64);
                    let (sum, scores) = sgd.step(
                        model,
                        batch.queries,
                        batch.positives,
                        &negatives,
                        epoch,
                        within,
                    )?;
                    sampler.observe(&batch, &negatives, &scores);
                    (Tensor::from(sum / len as f64), sampled)
                }
            };
            sampling += sampled;
            loss_sum += batch_loss * len as f64;
            *step += 1;
        }
        Ok((loss_sum, sampling, diagnosing))
    }
}

/// Evaluates the model on the validation split (if any) and the test split: (valid, test, test per
/// query), every metric finite.
fn evaluate(
    model: &dyn ContrastiveModel,
    test_eval: &Protocol,
    valid_eval: Option<&Protocol>,
    epoch: u32,
    log: &mut TrainLog,
) -> Result<(Option<MetricValues>, MetricValues, PerQuery)> {
    let t = Instant::now();
    let diverged = |e: crate::metrics::NonFiniteScores| TrainError::Diverged {
        epoch,
        what: e.to_string(),
    };
    // The last step's propagation predates its update: evaluate the parameters as they are.
    tch::no_grad(|| model.refresh());
    let valid = valid_eval
        .map(|e| e.evaluate(model))
        .transpose()
        .map_err(diverged)?;
    let (test, test_per_query) = test_eval.evaluate_per_query(model).map_err(diverged)?;
    log.eval_seconds += t.elapsed().as_secs_f64();
    if let Some(v) = &valid {
        all_finite(v, "valid", epoch)?;
    }
    all_finite(&test, "test", epoch)?;
    Ok((valid, test, test_per_query))
}

/// Keeps the test metrics of the selected epoch in `log` (the best validation value under early
/// stopping, else the latest) and returns the epoch's evaluations.
fn select(
    log: &mut TrainLog,
    (valid, test, test_per_query): (Option<MetricValues>, MetricValues, PerQuery),
    early: bool,
    selection: &mut Selection,
    selection_metric: &str,
    epoch: u32,
) -> Vec<Evaluation> {
    let selected = match (early, &valid) {
        (true, Some(v)) => selection.offer(metric(v, selection_metric)),
        _ => true,
    };
    if selected {
        log.test = test.clone();
        log.test_per_query = test_per_query;
        log.selected_epoch = epoch;
    }
    let mut evaluations = Vec::new();
    if let Some(v) = valid {
        evaluations.push(Evaluation {
            split: "valid",
            metrics: v,
        });
    }
    evaluations.push(Evaluation {
        split: "test",
        metrics: test,
    });
    evaluations
}

/// One optimiser step on one batch: the sampler draws `ratio` negatives, `inspect` sees them before the
/// update (diagnostics), the loss is minimised by one step of `opt`, and the sampler observes the scores
/// its negatives got. Returns the batch loss (detached) and the time spent in the sampler.
#[allow(clippy::too_many_arguments)]
pub fn train_step(
    cfg: &TrainConfig,
    loss: &LossConfig,
    model: &dyn ContrastiveModel,
    opt: &mut Optimizer,
    sampler: &mut dyn Sampler,
    batch: &Batch,
    ratio: usize,
    cx: &mut SampleContext,
    mut inspect: impl FnMut(&Negatives) -> Result<()>,
) -> Result<(Tensor, Duration)> {
    // A graph encoder propagates once per step, before the sampler scores through it.
    model.refresh();
    let t = Instant::now();
    let negatives = sampler.sample(batch, ratio, cx)?;
    let sampled = t.elapsed();
    inspect(&negatives)?;
    model.gather_apart(opt.takes_row_grads() && touches_tables_by_gather(&negatives));
    let (value, neg_score, positives) = step_loss(
        cfg,
        loss,
        model,
        batch.queries_t,
        batch.positives_t,
        &negatives,
    );
    model.gather_apart(false);
    if sampler.wants_positives() {
        sampler.observe_positives(batch, &positives.detach());
    }
    opt.zero_grad();
    value.backward();
    model.after_backward();
    opt.step(model.take_row_grads());
    model.after_step();
    sampler.observe(batch, &negatives, &neg_score.detach());
    Ok((value.detach(), sampled))
}

/// Whether the step's loss reads the embedding tables through one gather of the batch's rows (id
/// negatives under the domain's loss) and otherwise at most through the L2 penalty's whole-table sum:
/// a table's gradient is then autograd's sum of at most two, which `gather_apart` reproduces in any
/// order. Every candidate as a negative, stored embeddings, or a whole-data objective read the tables in
/// more ways, whose sum autograd orders its own way.
fn touches_tables_by_gather(negatives: &Negatives) -> bool {
    matches!(negatives.items, NegativeItems::Ids(_))
        && matches!(negatives.objective, Objective::Domain)
}

/// How a cell's parameters are updated: a libtorch optimiser over the loss's gradient, or word2vec's
/// per-pair SGD on the host.
enum Updater {
    Torch(Optimizer),
    PerPair(PerPairSgd),
}

/// The libtorch optimiser `cfg` asks for over the variables of `vs`, with (coupled) weight decay
/// `weight_decay` (`word2vec` is not one: it updates pair by pair on the host, see `word2vec`).
pub fn optimizer(cfg: &TrainConfig, vs: &nn::VarStore, weight_decay: f64) -> Result<Optimizer> {
    Ok(match cfg.optimizer {
        OptimizerKind::Adam => {
            let torch = nn::Adam {
                wd: weight_decay,
                ..Default::default()
            }
            .build(vs, cfg.lr)?;
            let host = HostAdam::new(&torch, cfg.lr, weight_decay);
            Optimizer { torch, host }
        }
        OptimizerKind::Sgd => Optimizer {
            torch: nn::Sgd {
                wd: weight_decay,
                ..Default::default()
            }
            .build(vs, cfg.lr)?,
            host: None,
        },
        OptimizerKind::Word2vec => {
            anyhow::bail!(
                "optimizer \"word2vec\" updates pair by pair on the host, not through libtorch"
            )
        }
    })
}

/// A libtorch optimiser; for Adam on the CPU its update runs in one pass on the host (`HostAdam`, the
/// same bits), libtorch still clearing the gradients.
pub struct Optimizer {
    torch: nn::Optimizer,
    host: Option<HostAdam>,
}

impl Optimizer {
    pub fn zero_grad(&mut self) {
        self.torch.zero_grad();
    }

    /// Whether a table's gradient may come as rows (`RowGrads`) and be used as such: the host update
    /// reads them where they are; libtorch's would need them spread over the whole table first.
    pub fn takes_row_grads(&self) -> bool {
        self.host.is_some()
    }

    /// One update from the variables' gradients and `rows`, tables' gradients given as their rows.
    pub fn step(&mut self, rows: Vec<RowGrads>) {
        match &mut self.host {
            Some(host) => host.step(&self.torch, &rows),
            None => {
                for r in &rows {
                    accumulate_grad(&r.param, &r.dense());
                }
                self.torch.step()
            }
        }
    }
}

/// How `l2` regularises `model`: an embedding model's penalty is L2 on the embedding rows a batch uses
/// (`penalty_weight`); an encoder whose embeddings are unit vectors (an image encoder's projection) has
/// nothing to gain from one (‖z‖² = 1 has no gradient, and computing it would embed every training
/// image each step), so there `l2` is the network's weight decay, as SimCLR and MoCo train.
pub fn weight_decay(cfg: &TrainConfig, model: &dyn ContrastiveModel) -> f64 {
    if model.unit_norm() {
        cfg.l2
    } else {
        0.0
    }
}

/// The weight of the batch-embedding L2 penalty (0 where `l2` is weight decay instead).
fn penalty_weight(cfg: &TrainConfig, model: &dyn ContrastiveModel) -> f64 {
    if model.unit_norm() {
        0.0
    } else {
        cfg.l2
    }
}

/// SimCLR's symmetric in-batch scores from the anchors' views `u` and the positives' views `p` (B, D)
/// and their pair scores `pos` (B): 2B rows (every view an anchor, its other view the positive) against
/// the same 2B views z = [u; p], one matrix product. The diagonal of each (B, B) block (the view itself,
/// or its other view, the positive, scored apart in `pos`) is masked by the tiled in-batch mask.
fn simclr_views(
    sim: &crate::model::Similarity,
    u: &Tensor,
    p: &Tensor,
    pos: &Tensor,
) -> (Tensor, Tensor) {
    let z = Tensor::cat(&[u, p], 0);
    let neg = sim
        .f_all(&z, &z)
        .expect("query and item embeddings of one model fit together");
    (
        Tensor::cat(&[pos.shallow_clone(), pos.shallow_clone()], 0),
        neg,
    )
}

/// An in-batch sampler's (B, B) mask, weights and logQ tiled 2 × 2 for `simclr_views` (the u block's
/// columns are the same images as the p block's).
struct Tiled {
    valid: Option<Tensor>,
    weights: Option<Tensor>,
    log_q: Option<Tensor>,
    log_q_pos: Option<Tensor>,
}

impl Tiled {
    fn of(n: &Negatives) -> Tiled {
        let square = |t: &Option<Tensor>| t.as_ref().map(|t| t.repeat([2, 2]));
        Tiled {
            valid: square(&n.valid),
            weights: square(&n.weights),
            log_q: square(&n.log_q),
            log_q_pos: n.log_q_pos.as_ref().map(|t| t.repeat([2])),
        }
    }
}

/// The batch's scores as a loss reads them, with the L2 sum over the embedding rows they used.
struct BatchScores {
    /// The queries' embeddings (B, D).
    u: Tensor,
    /// The positives' embeddings (B, D).
    p: Tensor,
    /// (B), or (2B) for SimCLR's symmetric views.
    pos: Tensor,
    /// (B, k) or (B, M).
    neg: Tensor,
    /// Σ of squared norms behind the batch, when the cell has a penalty.
    penalty: Option<Tensor>,
    /// ccl's cosines of the positive and negative pairs.
    cosine: Option<(Tensor, Tensor)>,
    /// The negatives' masks and corrections tiled to SimCLR's 2N rows, when the loss takes that form.
    tiled: Option<Tiled>,
}

/// Scores the positive and the negatives: the positive and the id negatives looked up in one gather
/// and scored in one pass; with every candidate as a negative, one call against the whole pool.
fn score_negatives(
    loss: &LossConfig,
    l2: f64,
    model: &dyn ContrastiveModel,
    queries: &Tensor,
    positives: &Tensor,
    negatives: &Negatives,
) -> BatchScores {
    let sim = model.similarity();
    // The positives (with id negatives, gathered with them) are embedded in one call with the queries.
    let candidates = match &negatives.items {
        NegativeItems::Ids(ids) => Tensor::cat(&[positives.unsqueeze(1), ids.shallow_clone()], 1),
        _ => positives.shallow_clone(),
    };
    let (u, first) = model.queries_and_items(queries, &candidates);
    let unit = |t: &Tensor| {
        t / t
            .norm_scalaropt_dim(2, [-1i64].as_slice(), true)
            .clamp_min(1e-12)
    };
    let cosine_of = |q: &Tensor, c: &Tensor| (unit(q) * unit(c)).sum_dim_intlist(-1, false, None);
    let mut tiled: Option<Tiled> = None;
    let (p, pos, neg, penalty, cosine) = match &negatives.items {
        NegativeItems::All => {
            let p = first;
            let all = model.all_items();
            let pos = sim.pairwise(&u, &p);
            let scored = negatives.rows.as_ref().map(|rows| model.queries(rows));
            let neg = sim
                .f_all(scored.as_ref().unwrap_or(&u), &all)
                .expect("query and item embeddings of one model fit together");
            // The mean over negatives of ‖n‖² is the pool's mean squared norm, for every row.
            let sq = |t: &Tensor| t.square().sum(Kind::Float);
            let rows = queries.size()[0] as f64;
            let penalty = (l2 > 0.0).then(|| {
                query_sq(model, queries, &u) + sq(&p) + sq(&all) * (rows / all.size()[0] as f64)
            });
            let cosine = loss
                .needs_cosine()
                .then(|| (cosine_of(&u, &p), unit(&u).matmul(&unit(&all).tr())));
            (p, pos, neg, penalty, cosine)
        }
        NegativeItems::Ids(ids) => {
            let items = first;
            let scores = sim.pairwise(&u.unsqueeze(1), &items);
            let k = scores.size()[1] - 1;
            let penalty = (l2 > 0.0).then(|| {
                let (p, n) = (items.select(1, 0), items.narrow(1, 1, k));
                batch_l2(model, queries, &u, positives, &p, Some((ids, &n)))
            });
            let cosine = loss.needs_cosine().then(|| {
                let c = cosine_of(&u.unsqueeze(1), &items);
                (c.select(1, 0), c.narrow(1, 1, k))
            });
            let p = items.select(1, 0);
            (
                p,
                scores.select(1, 0),
                scores.narrow(1, 1, k),
                penalty,
                cosine,
            )
        }
        NegativeItems::Shared { ids, embeddings } => {
            let p = first;
            let pos = sim.pairwise(&u, &p);
            let own_batch =
                embeddings.is_none() && ids.size() == positives.size() && ids.equal(positives);
            let e = match embeddings {
                Some(e) => e.shallow_clone(),
                // The batch's own positives (in-batch): the very embeddings just computed, which for an
                // encoder of augmented views are the batch's other views themselves (SimCLR), not new ones.
                None if own_batch => p.shallow_clone(),
                None => model.items(ids),
            };
            // Each row's mean over its M negatives of ‖n‖² is the shared set's mean: rows × that.
            let penalty = (l2 > 0.0).then(|| {
                let base = batch_l2(model, queries, &u, positives, &p, None);
                if e.requires_grad() {
                    let rows = queries.size()[0] as f64;
                    base + e.square().sum(Kind::Float) * (rows / e.size()[0].max(1) as f64)
                } else {
                    base
                }
            });
            if own_batch && model.two_views() && !loss.needs_cosine() {
                // SimCLR's NT-Xent: both views of every image are anchors, and each anchor's negatives
                // are the other 2N − 2 views of the batch.
                let (pos, neg) = simclr_views(&sim, &u, &p, &pos);
                tiled = Some(Tiled::of(negatives));
                (p, pos, neg, penalty, None)
            } else {
                let neg = sim
                    .f_all(&u, &e)
                    .expect("query and item embeddings of one model fit together");
                let cosine = loss
                    .needs_cosine()
                    .then(|| (cosine_of(&u, &p), unit(&u).matmul(&unit(&e).tr())));
                (p, pos, neg, penalty, cosine)
            }
        }
        NegativeItems::Embeddings(e) => {
            // Scored apart from the positive: no concatenation to copy and split again in backward.
            let p = first;
            let pos = sim.pairwise(&u, &p);
            let neg = sim.pairwise(&u.unsqueeze(1), e);
            // Stored (detached) negatives add a constant to the penalty: only trainable ones count.
            let penalty = (l2 > 0.0).then(|| {
                let base = batch_l2(model, queries, &u, positives, &p, None);
                if e.requires_grad() {
                    base + e.square().sum(Kind::Float) / e.size()[1] as f64
                } else {
                    base
                }
            });
            let cosine = loss
                .needs_cosine()
                .then(|| (cosine_of(&u, &p), cosine_of(&u.unsqueeze(1), e)));
            (p, pos, neg, penalty, cosine)
        }
    };
    BatchScores {
        u,
        p,
        pos,
        neg,
        penalty,
        cosine,
        tiled,
    }
}

/// The batch loss (`loss`, or the objective the negatives ask for, + L2 on the batch's embeddings), the
/// negatives' scores (B, k) and the positives' embeddings: score the negatives, apply the loss, add the
/// penalty.
fn step_loss(
    cfg: &TrainConfig,
    loss: &LossConfig,
    model: &dyn ContrastiveModel,
    queries: &Tensor,
    positives: &Tensor,
    negatives: &Negatives,
) -> (Tensor, Tensor, Tensor) {
    let l2 = penalty_weight(cfg, model);
    let BatchScores {
        u,
        p,
        pos,
        neg,
        penalty,
        cosine,
        tiled,
    } = score_negatives(loss, l2, model, queries, positives, negatives);
    let (valid, log_q, log_q_pos) = match &tiled {
        Some(t) => (t.valid.as_ref(), t.log_q.as_ref(), t.log_q_pos.as_ref()),
        None => (
            negatives.valid.as_ref(),
            negatives.log_q.as_ref(),
            negatives.log_q_pos.as_ref(),
        ),
    };
    let all_items = || model.all_items();
    let mut value = loss::objective(
        &negatives.objective,
        loss,
        &loss::Scored {
            pos: &pos,
            neg: &neg,
            weights: tiled
                .as_ref()
                .map_or(negatives.weights.as_ref(), |t| t.weights.as_ref()),
            valid,
            log_q,
            log_q_pos,
            cosine: cosine.as_ref().map(|(p, n)| (p, n)),
            attract: negatives.attract.as_ref(),
        },
        &loss::Whole {
            queries: &u,
            all_items: &all_items,
            row_weights: negatives.row_weights.as_ref(),
        },
    );
    let penalty = match model.penalty_tables() {
        Some(tables) if l2 > 0.0 => Some(raw_l2(&tables, queries, positives, negatives)),
        _ => penalty,
    };
    if let Some(penalty) = penalty {
        value += penalty * (l2 / 2.0 / queries.size()[0] as f64);
    }
    (value, neg, p)
}

/// The L2 sum of `batch_l2` over the raw parameter rows behind the batch (LightGCN's layer-0
/// embeddings, as its reference code regularises): Σ ‖u⁰‖² + Σ ‖p⁰‖² + the negatives' mean Σ ‖n⁰‖²
/// (id negatives; the whole pool's mean for every-candidate and shared negatives). Synthesised negative
/// embeddings (MixGCF) add nothing: they are no parameter rows.
fn raw_l2(
    (query_table, item_table): &(Tensor, Tensor),
    queries: &Tensor,
    positives: &Tensor,
    negatives: &Negatives,
) -> Tensor {
    let sq = |t: &Tensor| t.square().sum(Kind::Float);
    let rows = queries.size()[0] as f64;
    let base =
        sq(&query_table.index_select(0, queries)) + sq(&item_table.index_select(0, positives));
    match &negatives.items {
        NegativeItems::Ids(ids) if ids.size()[1] > 0 => {
            base + sq(&item_table.index_select(0, &ids.reshape([-1]))) / ids.size()[1] as f64
        }
        NegativeItems::All => base + sq(item_table) * (rows / item_table.size()[0] as f64),
        NegativeItems::Shared { ids, .. } if ids.numel() > 0 => {
            base + sq(&item_table.index_select(0, &ids.reshape([-1]))) * (rows / ids.numel() as f64)
        }
        _ => base,
    }
}

/// Σ of the squared norms of the parameter rows behind the batch's queries: the query embeddings
/// themselves where they are rows (MF's users), else what the model says (a KG query's entity and
/// relation rows, not their composition).
fn query_sq(model: &dyn ContrastiveModel, queries: &Tensor, u: &Tensor) -> Tensor {
    model
        .query_sq_norms(queries)
        .unwrap_or_else(|| u.square().sum(Kind::Float))
}

/// Σ ‖u‖² + Σ ‖p‖² (+ Σ ‖n‖² / k for id negatives, given as their ids and gathered rows) over the
/// embedding rows the batch used (a row used twice counts twice). Computed on the gathered rows, or, when
/// the embedding tables are smaller than the gathered batch (small pools, large batches), as the same sum
/// over table rows weighted by how often the batch used each row: identical value and gradient, a
/// fraction of the work.
fn batch_l2(
    model: &dyn ContrastiveModel,
    queries: &Tensor,
    u: &Tensor,
    positives: &Tensor,
    p: &Tensor,
    negatives: Option<(&Tensor, &Tensor)>,
) -> Tensor {
    let sq = |t: &Tensor| t.square().sum(Kind::Float);
    // No negatives (a whole-data objective) is no negative term, not 0 / 0.
    let negatives = negatives.filter(|(ids, _)| ids.size()[1] > 0);
    let item_table = model.all_items();
    let (batch, k) = (
        queries.size()[0],
        negatives.map_or(0, |(ids, _)| ids.size()[1]),
    );
    let user_table = match model.query_table() {
        Some(t) if t.size()[0] + item_table.size()[0] <= batch * (2 + k) => t,
        _ => {
            let base = query_sq(model, queries, u) + sq(p);
            return match negatives {
                Some((_, n)) => base + sq(n) / k as f64,
                None => base,
            };
        }
    };
    let row_norms = |table: &Tensor| table.square().sum_dim_intlist(1, false, Kind::Float);
    let counts = |ids: &Tensor, n: i64| {
        ids.reshape([-1])
            .bincount(None::<Tensor>, n)
            .to_kind(Kind::Float)
    };
    let n_items = item_table.size()[0];
    let mut item_counts = counts(positives, n_items);
    if let Some((ids, _)) = negatives {
        item_counts += counts(ids, n_items) / k as f64;
    }
    (row_norms(&user_table) * counts(queries, user_table.size()[0])).sum(Kind::Float)
        + (row_norms(&item_table) * item_counts).sum(Kind::Float)
}

fn metric(values: &MetricValues, name: &str) -> f64 {
    values
        .iter()
        .find(|(n, _)| n == name)
        .map_or(f64::NAN, |(_, v)| *v)
}

/// Ok when every metric of an evaluation is a number; else the cell fails (`NonFiniteMetric`).
fn all_finite(values: &MetricValues, split: &'static str, epoch: u32) -> Result<(), TrainError> {
    match values.iter().find(|(_, v)| !v.is_finite()) {
        Some((metric, value)) => Err(TrainError::NonFiniteMetric {
            epoch,
            split,
            metric: metric.clone(),
            value: *value,
        }),
        None => Ok(()),
    }
}

/// Early stopping's choice: the first evaluation whose metric is strictly better than every earlier
/// one, in the metric's own direction (`metrics::better`: a lower mean rank is better).
struct Selection<'a> {
    metric: &'a str,
    best: Option<f64>,
    /// Evaluations since the best.
    since_best: u32,
}

impl<'a> Selection<'a> {
    fn new(metric: &'a str) -> Selection<'a> {
        Selection {
            metric,
            best: None,
            since_best: 0,
        }
    }

    /// Offers one evaluation's value; true when it is the new best.
    fn offer(&mut self, value: f64) -> bool {
        if self
            .best
            .is_none_or(|b| crate::metrics::better(self.metric, value, b))
        {
            (self.best, self.since_best) = (Some(value), 0);
            true
        } else {
            self.since_best += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Mf, MfConfig};

    /// Delegates to a sampler and keeps every batch's pairs.
    struct Recording {
        inner: Box<dyn Sampler>,
        batches: Vec<Vec<(i64, i64)>>,
    }

    impl Sampler for Recording {
        fn name(&self) -> &'static str {
            "recording"
        }
        fn sample(
            &mut self,
            batch: &Batch,
            ratio: usize,
            cx: &mut SampleContext,
        ) -> Result<Negatives, crate::error::SamplerError> {
            let pairs = batch.queries.iter().zip(batch.positives);
            self.batches.push(pairs.map(|(&q, &p)| (q, p)).collect());
            self.inner.sample(batch, ratio, cx)
        }
    }

    #[test]
    fn text_epochs_in_pieces_train_every_drawn_pair_once_in_whole_batches() {
        use crate::sampler::{SamplerConfig, UniformConfig};
        use rand::SeedableRng;
        let mut data = crate::sampler::tests::tiny_text();
        data.text.as_mut().unwrap().similarity = vec![crate::data::text::WordPairs {
            name: "pairs".into(),
            pairs: vec![(0, 1, 3.0), (2, 3, 1.0), (4, 5, 2.0), (1, 6, 0.5)],
            total: 4,
        }];
        let text = data.text.as_ref().unwrap();
        let (batch_size, epochs) = (7, 3);
        let cfg = TrainConfig {
            epochs,
            batch_size,
            optimizer: OptimizerKind::Word2vec,
            lr: 0.025,
            l2: 0.0,
            eval_every: epochs,
            ..Default::default()
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let c = crate::model::SgnsConfig { dim: 8 };
        let model = Mf::word2vec(&vs.root(), &c, data.n_items, 1);
        let uniform = SamplerConfig::Uniform(UniformConfig {
            exclude_positives: false,
        });
        let mut sampler = Recording {
            inner: uniform.build(&data).unwrap(),
            batches: Vec::new(),
        };
        let seed = 11;
        let mut streams = TrainStreams {
            shuffle: Pcg64Mcg::seed_from_u64(seed),
            sampler: Pcg64Mcg::seed_from_u64(3),
        };
        // Pieces of 10 pairs: each epoch (about 60 pairs) is cut several times, mid-sentence.
        super::super::examples::TEST_PIECE.with(|p| p.set(10));
        let log = fit(
            &cfg,
            &LossConfig::Bce,
            &data,
            &model,
            &vs,
            &mut sampler,
            1,
            Device::Cpu,
            &mut streams,
            &mut |_| {},
        );
        super::super::examples::TEST_PIECE.with(|p| p.set(crate::data::text::PIECE_PAIRS));
        let log = log.unwrap();
        // In corpus order the epochs are the draws of the shuffle stream, one after another.
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let mut batches = sampler.batches.iter();
        for epoch in 0..epochs {
            let (mut q, mut p) = (Vec::new(), Vec::new());
            text.epoch_pairs(&mut rng, &mut q, &mut p);
            let expected: Vec<(i64, i64)> = q.into_iter().zip(p).collect();
            let whole = expected.len() / batch_size;
            let trained: Vec<&Vec<(i64, i64)>> = batches
                .by_ref()
                .take(expected.len().div_ceil(batch_size))
                .collect();
            assert!(
                trained[..whole].iter().all(|b| b.len() == batch_size),
                "epoch {epoch}"
            );
            let trained: Vec<(i64, i64)> = trained.into_iter().flatten().copied().collect();
            assert_eq!(
                trained, expected,
                "epoch {epoch}: every pair once, in order"
            );
        }
        assert!(batches.next().is_none());
        let drawn: u64 = log.positives_seen;
        assert_eq!(
            drawn as usize,
            sampler.batches.iter().map(Vec::len).sum::<usize>()
        );
    }

    #[test]
    fn early_stopping_selects_the_first_best_in_the_metrics_own_direction() {
        let chosen = |metric: &str, values: &[f64]| {
            let mut s = Selection::new(metric);
            let picks: Vec<usize> = (0..values.len()).filter(|&i| s.offer(values[i])).collect();
            (*picks.last().unwrap(), s.since_best)
        };
        // Mean rank: lower is better; the tie at 2.5 keeps the first.
        assert_eq!(chosen("mr", &[5.0, 3.0, 4.0, 2.5, 2.5, 6.0]), (3, 2));
        assert_eq!(chosen("ndcg@20", &[0.1, 0.3, 0.2, 0.3]), (1, 2));
        assert_eq!(chosen("alignment", &[0.9, 0.5, 0.7]), (1, 1));
        assert_eq!(
            crate::metrics::first_best("mr", [5.0, 3.0, 4.0, 2.5, 2.5]),
            Some(3)
        );
    }

    #[test]
    fn a_non_finite_metric_fails_the_cell_naming_it() {
        let ok = vec![("mrr".to_string(), 0.3)];
        assert!(all_finite(&ok, "test", 2).is_ok());
        let bad = vec![
            ("mrr".to_string(), 0.3),
            ("ws-spearman".to_string(), f64::NAN),
        ];
        let e = all_finite(&bad, "test", 2).unwrap_err().to_string();
        assert!(
            e.contains("ws-spearman = NaN") && e.contains("epoch 2"),
            "{e}"
        );
    }

    #[test]
    fn l2_on_an_image_encoder_is_weight_decay_not_a_penalty_on_unit_vectors() {
        // Two encoders from one seed draw the same augmentations: the step's loss is the same with
        // and without l2 (no penalty on unit-norm projections, no pass over every training image),
        // and l2 reaches the optimiser as weight decay instead.
        let data = crate::sampler::tests::tiny_images();
        let images = data.vision.as_ref().unwrap();
        let encoder = |vs: &nn::VarStore| {
            crate::model::ImageEncoder::new(
                &vs.root(),
                &crate::model::ImageEncoderConfig {
                    hidden: 8,
                    dim: 8,
                    projection: 8,
                    ..Default::default()
                },
                images,
                0,
            )
        };
        let loss_with = |l2: f64| {
            let vs = nn::VarStore::new(Device::Cpu);
            let m = encoder(&vs);
            let cfg = TrainConfig {
                l2,
                ..Default::default()
            };
            assert_eq!(weight_decay(&cfg, &m), l2);
            let negatives = Negatives::ids(Tensor::from_slice(&[2i64, 3, 4, 5]).view([2, 2]));
            let (value, _, _) = step_loss(
                &cfg,
                &LossConfig::Softmax { temperature: 0.5 },
                &m,
                &Tensor::from_slice(&[0i64, 1]),
                &Tensor::from_slice(&[0i64, 1]),
                &negatives,
            );
            value.double_value(&[])
        };
        assert_eq!(loss_with(0.0), loss_with(1.0));
        let vs = nn::VarStore::new(Device::Cpu);
        let mf = Mf::new(
            &vs.root(),
            &MfConfig {
                dim: 4,
                init_std: 0.1,
            },
            2,
            4,
            0,
        );
        assert_eq!(weight_decay(&TrainConfig::default(), &mf), 0.0);
    }

    #[test]
    fn simclrs_symmetric_loss_takes_every_other_view_of_the_batch_as_a_negative() {
        // Three images, two views each (rows of u and p), as NT-Xent at temperature 0.5.
        let u = Tensor::from_slice(&[1.0f32, 0.0, 0.6, 0.8, 0.0, 1.0]).view([3, 2]);
        let p = Tensor::from_slice(&[0.8f32, 0.6, 0.0, 1.0, -0.6, 0.8]).view([3, 2]);
        let sim = crate::model::Similarity::Dot;
        let pos = sim.pairwise(&u, &p);
        let eye = Tensor::eye(3, (Kind::Bool, Device::Cpu));
        let negatives = Negatives::ids(Tensor::new()).with_valid(eye.logical_not());
        let (pos2, neg2) = simclr_views(&sim, &u, &p, &pos);
        let tiled = Tiled::of(&negatives);
        let value = loss::compute(
            &LossConfig::Softmax { temperature: 0.5 },
            &loss::Scored {
                pos: &pos2,
                neg: &neg2,
                weights: None,
                valid: tiled.valid.as_ref(),
                log_q: None,
                log_q_pos: None,
                cosine: None,
                attract: None,
            },
        )
        .double_value(&[]);
        // By hand: the 6 views z, each anchor's positive its other view, the partition over the 5 others.
        let z: Vec<Vec<f32>> = Vec::<Vec<f32>>::try_from(Tensor::cat(&[&u, &p], 0)).unwrap();
        let dot = |a: usize, b: usize| (z[a][0] * z[b][0] + z[a][1] * z[b][1]) as f64 / 0.5;
        let mut want = 0.0;
        for a in 0..6 {
            let partner = (a + 3) % 6;
            let partition: f64 = (0..6).filter(|&b| b != a).map(|b| dot(a, b).exp()).sum();
            want += -(dot(a, partner).exp() / partition).ln() / 6.0;
        }
        assert!((value - want).abs() < 1e-5, "{value} vs {want}");
    }

    #[test]
    fn table_weighted_l2_equals_the_gathered_sum_in_value_and_gradient() {
        // 3 users + 5 items is fewer rows than 6 rows × (2 + k) gathered: the weighted branch runs.
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let model = Mf::new(
            &vs.root(),
            &MfConfig {
                dim: 4,
                init_std: 0.5,
            },
            3,
            5,
            1,
        );
        let queries = Tensor::from_slice(&[0i64, 1, 1, 2, 0, 0]);
        let positives = Tensor::from_slice(&[4i64, 4, 0, 1, 2, 3]);
        let ids = Tensor::from_slice(&[1i64, 2, 3, 3, 0, 4, 2, 2, 1, 0, 4, 4]).view([6, 2]);
        let sq = |t: &Tensor| t.square().sum(Kind::Float);
        for with_negatives in [true, false] {
            let value_and_grads = |weighted: bool| {
                let (u, p, n) = (
                    model.queries(&queries),
                    model.items(&positives),
                    model.items(&ids),
                );
                let negatives = with_negatives.then_some((&ids, &n));
                let l2 = if weighted {
                    batch_l2(&model, &queries, &u, &positives, &p, negatives)
                } else {
                    let base = sq(&u) + sq(&p);
                    if with_negatives {
                        base + sq(&n) / 2.0
                    } else {
                        base
                    }
                };
                let grads = Tensor::run_backward(
                    &[&l2],
                    &[&model.query_table().unwrap(), &model.all_items()],
                    false,
                    false,
                );
                (l2.double_value(&[]), grads)
            };
            let (weighted, gw) = value_and_grads(true);
            let (gathered, gg) = value_and_grads(false);
            assert!(
                (weighted - gathered).abs() < 1e-4,
                "{weighted} vs {gathered}"
            );
            for (a, b) in gw.iter().zip(&gg) {
                assert!(a.allclose(b, 1e-5, 1e-5, false), "gradients differ");
            }
        }
    }

    /// Gathering the tables' rows apart from autograd and updating from their row gradients gives
    /// the tables libtorch's Adam gives from autograd's whole-table gradients, bit for bit: with tables
    /// larger than a batch's gathers (rows only) and smaller (the L2 penalty's whole-table sum adds its
    /// gradient to the rows'), with and without L2.
    #[test]
    fn gathering_rows_apart_changes_no_bit_of_training() {
        use crate::data::Interactions;
        use crate::sampler::{SamplerConfig, UniformConfig};
        use rand::{Rng, SeedableRng};
        let (n_users, n_items) = (40, 60);
        let mut train = Interactions::default();
        let mut draw = Pcg64Mcg::seed_from_u64(5);
        for _ in 0..400 {
            train.push(draw.random_range(0..40), draw.random_range(0..60));
        }
        let (queries, positives): (Vec<i64>, Vec<i64>) = (
            train.queries.iter().map(|&q| q as i64).collect(),
            train.items.iter().map(|&i| i as i64).collect(),
        );
        let empty = Interactions::default;
        let data = Dataset::new(
            "apart".into(),
            n_users,
            n_items,
            train,
            empty(),
            empty(),
            None,
        );
        // 16 rows × (2 + k = 2) gathered < 100 table rows; 64 × 4 ≥ 100: the penalty weighs whole tables.
        for (batch_size, l2, rows_only) in [(16, 1e-2, true), (16, 0.0, true), (64, 1e-2, false)] {
            let cfg = TrainConfig {
                batch_size,
                lr: 0.05,
                l2,
                ..Default::default()
            };
            let train = |host: bool| {
                let vs = nn::VarStore::new(Device::Cpu);
                let c = MfConfig {
                    dim: 5,
                    init_std: 0.3,
                };
                let model = Mf::new(&vs.root(), &c, n_users, n_items, 2);
                let mut opt = optimizer(&cfg, &vs, 0.0).unwrap();
                if !host {
                    opt.host = None;
                }
                assert_eq!(opt.takes_row_grads(), host);
                let uniform = SamplerConfig::Uniform(UniformConfig {
                    exclude_positives: true,
                });
                let mut sampler = uniform.build(&data).unwrap();
                let mut rng = Pcg64Mcg::seed_from_u64(9);
                for step in 0..6 {
                    let at = step * batch_size..(step + 1) * batch_size;
                    let (q, p) = (&queries[at.clone()], &positives[at]);
                    let (q_t, p_t) = (Tensor::from_slice(q), Tensor::from_slice(p));
                    let batch = Batch {
                        queries: q,
                        positives: p,
                        queries_t: &q_t,
                        positives_t: &p_t,
                    };
                    let mut cx = SampleContext {
                        rng: &mut rng,
                        loss: &LossConfig::Bpr,
                        model: &model,
                        device: Device::Cpu,
                        epoch: 1,
                        epochs: 1,
                        step: step as u64,
                    };
                    let (bpr, sampler) = (&LossConfig::Bpr, &mut *sampler);
                    let inspect = |_: &Negatives| Ok(());
                    let (loss, _) = train_step(
                        &cfg, bpr, &model, &mut opt, sampler, &batch, 2, &mut cx, inspect,
                    )
                    .unwrap();
                    assert!(loss.double_value(&[]).is_finite());
                }
                let users = model.query_table().unwrap();
                // Through rows alone autograd never reaches the tables.
                assert_eq!(users.grad().defined(), !(host && rows_only));
                (users, model.all_items())
            };
            let (host, torch) = (train(true), train(false));
            assert!(
                host.0.equal(&torch.0) && host.1.equal(&torch.1),
                "batch {batch_size}, l2 {l2}"
            );
        }
    }

    /// The whole-data objectives against their definitions computed pair by pair.
    #[test]
    fn whole_data_objectives_equal_their_pair_by_pair_definitions() {
        use crate::sampler::tests::{tiny_data, tiny_kg, Harness};
        use crate::sampler::SamplerConfig;
        let cfg = TrainConfig {
            l2: 0.0,
            ..Default::default()
        };
        let scores_of = |h: &Harness, q: &[i64]| h.scores(q);
        let value =
            |h: &mut Harness, data: &Dataset, kind: &str, queries: &[i64], positives: &[i64]| {
                let config: SamplerConfig = toml::from_str(&format!("kind = \"{kind}\"")).unwrap();
                let mut sampler = config.build(data).unwrap();
                let negatives = h.sample(sampler.as_mut(), data, queries, Some(positives), 1);
                let (q, p) = (Tensor::from_slice(queries), Tensor::from_slice(positives));
                step_loss(&cfg, &LossConfig::Bpr, h.model.as_ref(), &q, &p, &negatives)
                    .0
                    .double_value(&[])
            };

        // ENMF over every training pair of the tiny data: Σ_R ((1 − c₀) ŷ² − 2ŷ) + c₀ Σ_u Σ_j ŷ²_uj, / B.
        let data = tiny_data();
        let mut h = Harness::new(&data, 3);
        let (queries, positives): (Vec<i64>, Vec<i64>) = (0..data.n_queries)
            .flat_map(|u| {
                data.train_by_query
                    .items(u)
                    .iter()
                    .map(move |&i| (u as i64, i as i64))
            })
            .unzip();
        let scores = scores_of(&h, &(0..data.n_queries as i64).collect::<Vec<_>>());
        let c0 = 0.1;
        let observed: f64 = queries
            .iter()
            .zip(&positives)
            .map(|(&u, &i)| {
                let y = scores[u as usize][i as usize] as f64;
                (1.0 - c0) * y * y - 2.0 * y
            })
            .sum();
        let whole: f64 = scores.iter().flatten().map(|&y| (y as f64).powi(2)).sum();
        let expected = (observed + c0 * whole) / queries.len() as f64;
        let got = value(&mut h, &data, "enmf", &queries, &positives);
        assert!(
            (got - expected).abs() < 1e-3 * expected.abs().max(1.0),
            "enmf {got} vs {expected}"
        );

        // 1vsAll and KvsAll on the tiny graph, scored by TransE.
        let kg = tiny_kg();
        let mut h = Harness::new(&kg, 5);
        let (queries, positives) = (vec![0i64, 1, 2], vec![3i64, 0, 0]);
        let scores = scores_of(&h, &queries);
        let one_vs_all: f64 = queries
            .iter()
            .enumerate()
            .map(|(row, _)| {
                let s: Vec<f64> = scores[row].iter().map(|&x| x as f64).collect();
                let lse = s.iter().map(|x| x.exp()).sum::<f64>().ln();
                lse - s[positives[row] as usize]
            })
            .sum::<f64>()
            / 3.0;
        let got = value(&mut h, &kg, "one-vs-all", &queries, &positives);
        assert!(
            (got - one_vs_all).abs() < 1e-4,
            "one-vs-all {got} vs {one_vs_all}"
        );
        let bce = |x: f64, y: f64| {
            -(y * (1.0 / (1.0 + (-x).exp())).ln() + (1.0 - y) * (1.0 / (1.0 + x.exp())).ln())
        };
        let k_vs_all: f64 = queries
            .iter()
            .enumerate()
            .map(|(row, &q)| {
                let answers = kg.train_by_query.items(q as usize);
                let sum: f64 = (0..kg.n_items)
                    .map(|e| {
                        bce(
                            scores[row][e] as f64,
                            f64::from(u8::from(answers.contains(&(e as u32)))),
                        )
                    })
                    .sum();
                sum / answers.len() as f64
            })
            .sum::<f64>()
            / 3.0;
        let got = value(&mut h, &kg, "k-vs-all", &queries, &positives);
        assert!(
            (got - k_vs_all).abs() < 1e-4,
            "k-vs-all {got} vs {k_vs_all}"
        );
    }
}
