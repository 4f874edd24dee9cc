//! One cell of the grid, end to end: model, sampler, training, and the rows that record it.

use anyhow::{Context, Result};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use tch::{nn, Device};

use crate::data::Dataset;
use crate::provenance;
use crate::store::{CellInfo, CurveRow, MetricRow};
use crate::suite::RunSpec;
use crate::train::{self, EpochProgress, TrainLog, TrainStreams};

/// Everything a finished cell writes.
pub struct CellOutput {
    pub info: CellInfo,
    pub metrics: Vec<MetricRow>,
    pub curves: Vec<CurveRow>,
    pub per_query: crate::metrics::PerQuery,
}

/// What describes a cell before it has trained: the identifying and provenance columns of its rows
/// (epochs 0 until training says otherwise).
pub fn cell_info(
    spec: &RunSpec,
    data: &Dataset,
    config_hash: &str,
    threads: usize,
) -> Result<CellInfo> {
    Ok(CellInfo {
        suite: spec.suite.clone(),
        run_id: spec.id(),
        domain: spec.domain.config.kind.as_str().into(),
        dataset: spec.domain.name.clone(),
        model: spec.model().name().into(),
        loss: spec
            .sampler
            .config
            .info()
            .own_loss
            .map_or_else(|| spec.loss.label(), String::from),
        loss_params: serde_json::to_string(&spec.loss)?,
        sampler: spec.sampler.label.clone(),
        sampler_kind: spec.sampler.config.kind().into(),
        sampler_params: serde_json::to_string(&spec.sampler.config)?,
        ratio: spec.ratio,
        seed: spec.seed,
        epochs_trained: 0,
        selected_epoch: 0,
        n_queries: data.n_queries as u64,
        n_items: data.n_items as u64,
        n_train: data.n_train_pairs() as u64,
        n_test: data.test.len() as u64,
        git_rev: provenance::GIT_REV.into(),
        nsbench_version: provenance::NSBENCH_VERSION.into(),
        libtorch_version: provenance::LIBTORCH_VERSION.into(),
        threads: threads as u32,
        device: spec.device.clone(),
        config_hash: config_hash.into(),
        behaviour: spec.behaviour(),
        ranking_excludes: match spec.domain.config.kind.as_str() {
            "kg" | "graph" => "all-known".into(),
            // Word similarity ranks nothing; an analogy excludes its three question words.
            "text" => "question-words".into(),
            _ => spec.train.exclude_from_ranking.as_str().into(),
        },
        data_notes: data.notes.join("; "),
        finished_unix: provenance::unix_now(),
    })
}

/// Trains one cell on `data` and returns its rows. `threads` is libtorch's intra-op thread count for this
/// worker thread; `progress` hears of every finished epoch.
pub fn run_cell(
    spec: &RunSpec,
    data: &Dataset,
    config_hash: &str,
    threads: usize,
    device: Device,
    progress: &mut dyn FnMut(EpochProgress),
) -> Result<CellOutput> {
    tch::set_num_threads(threads as i32);
    let vs = nn::VarStore::new(device);
    let model = spec
        .model()
        .build(&vs.root(), data, spec.stream_seed("init"))
        .map_err(anyhow::Error::msg)?;
    let mut sampler = spec
        .sampler
        .config
        .build(data)
        .with_context(|| format!("building sampler for {}", spec.id()))?;
    let mut streams = TrainStreams {
        shuffle: Pcg64Mcg::seed_from_u64(spec.stream_seed("shuffle")),
        sampler: Pcg64Mcg::seed_from_u64(spec.stream_seed("sampler")),
    };
    let log = train::fit(
        &spec.train,
        &spec.loss,
        data,
        model.as_ref(),
        &vs,
        sampler.as_mut(),
        spec.ratio as usize,
        device,
        &mut streams,
        progress,
    )?;

    let info = CellInfo {
        epochs_trained: log.epochs.len() as u32,
        selected_epoch: log.selected_epoch,
        finished_unix: provenance::unix_now(),
        ..cell_info(spec, data, config_hash, threads)?
    };
    Ok(CellOutput {
        info,
        metrics: metric_rows(&log, data),
        curves: curve_rows(&log),
        per_query: log.test_per_query.clone(),
    })
}

fn metric_rows(log: &TrainLog, data: &Dataset) -> Vec<MetricRow> {
    let mut rows: Vec<MetricRow> = log
        .test
        .iter()
        .map(|(m, v)| MetricRow {
            category: "effectiveness",
            metric: m.clone(),
            value: *v,
        })
        .collect();
    let epochs = log.epochs.len().max(1) as f64;
    let efficiency = [
        ("epoch_seconds", log.train_seconds / epochs),
        ("sampling_seconds_per_epoch", log.sampling_seconds / epochs),
        (
            "sampler_share",
            if log.train_seconds > 0.0 {
                log.sampling_seconds / log.train_seconds
            } else {
                0.0
            },
        ),
        ("train_seconds", log.train_seconds),
        ("eval_seconds", log.eval_seconds),
        ("diagnostics_seconds", log.diagnostics_seconds),
        (
            "positives_per_second",
            if log.train_seconds > 0.0 {
                log.positives_seen as f64 / log.train_seconds
            } else {
                0.0
            },
        ),
        ("process_peak_rss_mib", provenance::peak_rss_mib()),
    ];
    // Text: word2vec's and gensim's throughput, in-vocabulary corpus words (before subsampling) per
    // training second.
    let words = data.text.as_ref().map(|t| {
        let seconds = log.train_seconds.max(1e-12);
        ("words_per_second", t.tokens() as f64 * epochs / seconds)
    });
    rows.extend(mean_diagnostics(log).into_iter().map(|(m, v)| MetricRow {
        category: "sampler",
        metric: m.into(),
        value: v,
    }));
    rows.extend(efficiency.into_iter().chain(words).map(|(m, v)| MetricRow {
        category: "efficiency",
        metric: m.into(),
        value: v,
    }));
    rows
}

/// Each sampler diagnostic's mean over the epochs that reported it (an epoch whose every draw was
/// masked reports its cost only; hardness needs a scored batch).
fn mean_diagnostics(log: &TrainLog) -> Vec<(&'static str, f64)> {
    let mut sums: Vec<(&'static str, f64, u32)> = Vec::new();
    for e in &log.epochs {
        for &(m, v) in &e.diagnostics {
            match sums.iter_mut().find(|(n, _, _)| *n == m) {
                Some(d) => (d.1, d.2) = (d.1 + v, d.2 + 1),
                None => sums.push((m, v, 1)),
            }
        }
    }
    sums.into_iter()
        .map(|(m, sum, n)| (m, sum / f64::from(n)))
        .collect()
}

fn curve_rows(log: &TrainLog) -> Vec<CurveRow> {
    let mut rows = Vec::new();
    for e in &log.epochs {
        let row = |split: &str, metric: &str, value: f64| CurveRow {
            epoch: e.epoch,
            split: split.into(),
            metric: metric.into(),
            value,
        };
        rows.push(row("train", "loss", e.loss));
        rows.push(row("train", "epoch_seconds", e.train_seconds));
        rows.push(row("train", "sampling_seconds", e.sampling_seconds));
        rows.extend(e.diagnostics.iter().map(|&(m, v)| row("train", m, v)));
        for ev in &e.evaluations {
            rows.extend(ev.metrics.iter().map(|(m, v)| row(ev.split, m, *v)));
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::EpochLog;

    #[test]
    fn a_diagnostic_is_averaged_over_the_epochs_that_reported_it() {
        let epoch = |epoch, diagnostics: Vec<(&'static str, f64)>| EpochLog {
            epoch,
            loss: 1.0,
            train_seconds: 1.0,
            sampling_seconds: 0.1,
            diagnostics,
            evaluations: Vec::new(),
        };
        let log = TrainLog {
            epochs: vec![
                epoch(1, vec![("ns_per_negative", 10.0), ("hardness", 0.6)]),
                epoch(2, vec![("ns_per_negative", 20.0)]),
                epoch(3, vec![("ns_per_negative", 30.0), ("hardness", 0.8)]),
            ],
            test: Vec::new(),
            test_per_query: Default::default(),
            selected_epoch: 3,
            stopped_early: false,
            positives_seen: 0,
            train_seconds: 3.0,
            sampling_seconds: 0.3,
            eval_seconds: 0.0,
            diagnostics_seconds: 0.0,
        };
        let means: std::collections::HashMap<_, _> = mean_diagnostics(&log).into_iter().collect();
        assert_eq!(means["ns_per_negative"], 20.0);
        // Two epochs reported hardness: their mean, not their sum over three epochs.
        assert!((means["hardness"] - 0.7).abs() < 1e-12);
    }
}
