//! The parquet schemas: rows ⇄ polars columns. Tidy (long) rows keep the schema fixed as metrics are
//! added; every column is documented in README.md ("Results").

use polars::prelude::*;

use crate::metrics::PerQuery;

/// Everything that describes one finished cell; repeated on each of its rows.
#[derive(Debug, Clone, PartialEq)]
pub struct CellInfo {
    pub suite: String,
    pub run_id: String,
    /// The domain's kind: `rec`, `kg`.
    pub domain: String,
    /// The data set's name (the domain's `name`).
    pub dataset: String,
    pub model: String,
    /// The loss (kind, plus parameters that differ from its defaults).
    pub loss: String,
    /// The loss's full configuration as JSON.
    pub loss_params: String,
    /// Sampler label (kind, plus parameters when a suite has two of a kind).
    pub sampler: String,
    pub sampler_kind: String,
    /// The sampler's full configuration as JSON.
    pub sampler_params: String,
    pub ratio: u32,
    pub seed: u64,
    pub epochs_trained: u32,
    pub selected_epoch: u32,
    pub n_queries: u64,
    pub n_items: u64,
    pub n_train: u64,
    pub n_test: u64,
    pub git_rev: String,
    pub nsbench_version: String,
    pub libtorch_version: String,
    pub threads: u32,
    pub device: String,
    pub config_hash: String,
    /// The behaviour versions of the code that trained the cell (sampler, model, loss, data, training,
    /// evaluation), part of the configuration hash.
    pub behaviour: String,
    /// Seconds since the Unix epoch when the cell finished.
    pub finished_unix: u64,
    /// What the test ranking removed besides the ranked item: `train-and-valid`, `train` (rec) or
    /// `all-known` (link prediction's filtered setting).
    pub ranking_excludes: String,
    /// What loading the data found and fixed (dropped duplicates, held-out triples of entities unseen
    /// in training, …), `; `-separated; empty when nothing.
    pub data_notes: String,
}

/// Why a cell failed: `stage` is `diverged` (a non-finite loss or score), `error` (an error returned by
/// the code) or `panic` (a libtorch or internal panic, caught at the cell boundary); `epoch` is the epoch
/// in which it happened (0: before training).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub stage: &'static str,
    pub epoch: u32,
    pub reason: String,
}

/// A failed cell as read back from `failures.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureRecord {
    pub run_id: String,
    pub domain: String,
    pub sampler: String,
    pub ratio: u32,
    pub seed: u64,
    pub stage: String,
    pub epoch: u32,
    pub reason: String,
}

/// One metric of a cell: `category` is `effectiveness` or `efficiency`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    pub category: &'static str,
    pub metric: String,
    pub value: f64,
}

/// One point of a training curve: `split` is `train` (loss, timings), `valid` or `test`.
#[derive(Debug, Clone, PartialEq)]
pub struct CurveRow {
    pub epoch: u32,
    pub split: String,
    pub metric: String,
    pub value: f64,
}

/// The fields of a stored row that reports and comparisons use.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    pub run_id: String,
    /// The data set (one table and one set of figures each).
    pub dataset: String,
    /// The series: the sampler's label, with the loss appended where the run id names it.
    pub sampler: String,
    /// The sampler's kind (its registry name: the family and the fixed look of figures follow it).
    pub kind: String,
    /// The loss label appended to `sampler` ("" when the run id names no loss): the reference sampler's
    /// series under the same loss carries the same suffix.
    pub loss_suffix: String,
    pub ratio: u32,
    pub seed: u64,
    pub category: String,
    pub metric: String,
    pub value: f64,
}

impl ResultRow {
    /// The domain kind of the row's cell (`rec`, `kg`, `graph`, `text`, `vision`): its run id's first
    /// word.
    pub fn domain(&self) -> &str {
        self.run_id.split('-').next().unwrap_or("")
    }
}

fn info_columns(info: &CellInfo, n: usize) -> Vec<Column> {
    let s = |name: &str, v: &str| Column::new(name.into(), vec![v; n]);
    vec![
        s("suite", &info.suite),
        s("run_id", &info.run_id),
        s("domain", &info.domain),
        s("dataset", &info.dataset),
        s("model", &info.model),
        s("loss", &info.loss),
        s("loss_params", &info.loss_params),
        s("sampler", &info.sampler),
        s("sampler_kind", &info.sampler_kind),
        s("sampler_params", &info.sampler_params),
        Column::new("ratio".into(), vec![info.ratio; n]),
        Column::new("seed".into(), vec![info.seed; n]),
    ]
}

fn provenance_columns(info: &CellInfo, n: usize) -> Vec<Column> {
    let s = |name: &str, v: &str| Column::new(name.into(), vec![v; n]);
    vec![
        Column::new("epochs_trained".into(), vec![info.epochs_trained; n]),
        Column::new("selected_epoch".into(), vec![info.selected_epoch; n]),
        Column::new("n_queries".into(), vec![info.n_queries; n]),
        Column::new("n_items".into(), vec![info.n_items; n]),
        Column::new("n_train".into(), vec![info.n_train; n]),
        Column::new("n_test".into(), vec![info.n_test; n]),
        s("git_rev", &info.git_rev),
        s("nsbench_version", &info.nsbench_version),
        s("libtorch_version", &info.libtorch_version),
        Column::new("threads".into(), vec![info.threads; n]),
        s("device", &info.device),
        s("config_hash", &info.config_hash),
        s("behaviour", &info.behaviour),
        Column::new("finished_unix".into(), vec![info.finished_unix; n]),
        s("ranking_excludes", &info.ranking_excludes),
        s("data_notes", &info.data_notes),
    ]
}

/// Brings a stored frame written before a provenance column existed to today's schema: the column is
/// added (last, where today's files have it) with the value every such cell had.
pub fn upgrade(mut df: DataFrame) -> PolarsResult<DataFrame> {
    if df.column("finished_unix").is_ok() && df.column("ranking_excludes").is_err() {
        let domains = strings(&df, "domain")?;
        let values: Vec<&str> = domains
            .iter()
            .map(|d| {
                if d == "kg" {
                    "all-known"
                } else {
                    "train-and-valid"
                }
            })
            .collect();
        df.with_column(Column::new("ranking_excludes".into(), values))?;
    }
    if df.column("finished_unix").is_ok() && df.column("data_notes").is_err() {
        // Written before the notes were recorded: unknown, kept empty.
        df.with_column(Column::new("data_notes".into(), vec![""; df.height()]))?;
    }
    Ok(df)
}

/// A column of one field of every row.
fn column<'a, R, T>(name: &str, rows: &'a [R], field: impl Fn(&'a R) -> T) -> Column
where
    Series: NamedFrom<Vec<T>, [T]>,
{
    Column::new(name.into(), rows.iter().map(field).collect::<Vec<T>>())
}

pub fn metric_frame(info: &CellInfo, rows: &[MetricRow]) -> PolarsResult<DataFrame> {
    let n = rows.len();
    let mut cols = info_columns(info, n);
    cols.push(column("category", rows, |r| r.category));
    cols.push(column("metric", rows, |r| r.metric.as_str()));
    cols.push(column("value", rows, |r| r.value));
    cols.extend(provenance_columns(info, n));
    DataFrame::new(n, cols)
}

pub fn curve_frame(info: &CellInfo, rows: &[CurveRow]) -> PolarsResult<DataFrame> {
    let n = rows.len();
    let mut cols = info_columns(info, n);
    cols.push(column("epoch", rows, |r| r.epoch));
    cols.push(column("split", rows, |r| r.split.as_str()));
    cols.push(column("metric", rows, |r| r.metric.as_str()));
    cols.push(column("value", rows, |r| r.value));
    cols.push(Column::new(
        "config_hash".into(),
        vec![info.config_hash.as_str(); n],
    ));
    DataFrame::new(n, cols)
}

/// One row per evaluated test query: its id and a few of its metrics (f32 keeps the file small: a
/// 40,000-query test split takes a few hundred KiB).
pub fn per_query_frame(info: &CellInfo, per_query: &PerQuery) -> PolarsResult<DataFrame> {
    let n = per_query.queries.len();
    let mut cols = vec![Column::new("query".into(), per_query.queries.as_slice())];
    for (name, values) in &per_query.columns {
        cols.push(Column::new(name.as_str().into(), values.as_slice()));
    }
    cols.push(Column::new(
        "config_hash".into(),
        vec![info.config_hash.as_str(); n],
    ));
    DataFrame::new(n, cols)
}

/// One row: the failed cell, where and why it failed.
pub fn failure_frame(info: &CellInfo, failure: &Failure) -> PolarsResult<DataFrame> {
    let mut cols = info_columns(info, 1);
    cols.push(Column::new("status".into(), ["failed"]));
    cols.push(Column::new("stage".into(), [failure.stage]));
    cols.push(Column::new("epoch".into(), [failure.epoch]));
    cols.push(Column::new("reason".into(), [failure.reason.as_str()]));
    cols.extend(provenance_columns(info, 1));
    DataFrame::new(1, cols)
}

pub fn failure_records(df: &DataFrame) -> PolarsResult<Vec<FailureRecord>> {
    let (run_id, domain, sampler, stage, reason) = (
        strings(df, "run_id")?,
        strings(df, "domain")?,
        strings(df, "sampler")?,
        strings(df, "stage")?,
        strings(df, "reason")?,
    );
    let ratio = u32s(df, "ratio")?;
    let epoch = u32s(df, "epoch")?;
    let seed = u64s(df, "seed")?;
    Ok((0..df.height())
        .map(|i| FailureRecord {
            run_id: run_id[i].clone(),
            domain: domain[i].clone(),
            sampler: sampler[i].clone(),
            ratio: ratio[i],
            seed: seed[i],
            stage: stage[i].clone(),
            epoch: epoch[i],
            reason: reason[i].clone(),
        })
        .collect())
}

/// The first value of a string column (the config hash of a one-cell file).
pub fn first_string(df: &DataFrame, name: &str) -> Option<String> {
    Some(df.column(name).ok()?.str().ok()?.get(0)?.to_string())
}

fn u64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<u64>> {
    Ok(df
        .column(name)?
        .u64()?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect())
}

fn u32s(df: &DataFrame, name: &str) -> PolarsResult<Vec<u32>> {
    Ok(df
        .column(name)?
        .u32()?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect())
}

fn strings(df: &DataFrame, name: &str) -> PolarsResult<Vec<String>> {
    Ok(df
        .column(name)?
        .str()?
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect())
}

/// A cell's series in tables and figures: its sampler, or "sampler-loss" where the id names the loss
/// (a suite with several losses).
/// One group of the statistics table: every identifying column of a (cell group, metric) and its seeds'
/// values.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStats {
    pub domain: String,
    pub dataset: String,
    pub model: String,
    pub loss: String,
    pub sampler: String,
    pub ratio: u32,
    pub category: String,
    pub metric: String,
    pub n_seeds: usize,
    pub mean: f64,
    pub std: f64,
    pub cv: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub level: f64,
}

/// Every (domain, dataset, model, loss, sampler, ratio, metric) of `df` with its values over seeds, in
/// order of first appearance.
#[allow(clippy::type_complexity)]
pub fn grouped_values(
    df: &DataFrame,
) -> PolarsResult<
    Vec<(
        (String, String, String, String, String, u32, String, String),
        Vec<f64>,
    )>,
> {
    let cols = [
        "domain", "dataset", "model", "loss", "sampler", "category", "metric",
    ]
    .map(|c| strings(df, c));
    let [domain, dataset, model, loss, sampler, category, metric] = cols;
    let (domain, dataset, model, loss, sampler, category, metric) = (
        domain?, dataset?, model?, loss?, sampler?, category?, metric?,
    );
    let ratio = u32s(df, "ratio")?;
    let value = df.column("value")?.f64()?.clone();
    let mut index: std::collections::HashMap<_, usize> = std::collections::HashMap::new();
    let mut out: Vec<(_, Vec<f64>)> = Vec::new();
    for (i, v) in value.iter().enumerate() {
        let key = (
            domain[i].clone(),
            dataset[i].clone(),
            model[i].clone(),
            loss[i].clone(),
            sampler[i].clone(),
            ratio[i],
            category[i].clone(),
            metric[i].clone(),
        );
        let slot = *index.entry(key.clone()).or_insert_with(|| {
            out.push((key, Vec::new()));
            out.len() - 1
        });
        out[slot].1.push(v.unwrap_or(f64::NAN));
    }
    Ok(out)
}

pub fn statistics_frame(rows: &[GroupStats]) -> PolarsResult<DataFrame> {
    let n = rows.len();
    DataFrame::new(
        n,
        vec![
            column("domain", rows, |r| r.domain.as_str()),
            column("dataset", rows, |r| r.dataset.as_str()),
            column("model", rows, |r| r.model.as_str()),
            column("loss", rows, |r| r.loss.as_str()),
            column("sampler", rows, |r| r.sampler.as_str()),
            column("ratio", rows, |r| r.ratio),
            column("category", rows, |r| r.category.as_str()),
            column("metric", rows, |r| r.metric.as_str()),
            column("n_seeds", rows, |r| r.n_seeds as u32),
            column("mean", rows, |r| r.mean),
            column("std", rows, |r| r.std),
            column("cv", rows, |r| r.cv),
            column("ci_low", rows, |r| r.ci_low),
            column("ci_high", rows, |r| r.ci_high),
            column("level", rows, |r| r.level),
        ],
    )
}

/// One comparison of the report (`comparisons.parquet`).
#[derive(Debug, Clone, PartialEq)]
pub struct ComparisonRow {
    pub dataset: String,
    pub metric: String,
    pub reference: String,
    pub reference_k: u32,
    pub sampler: String,
    pub k: u32,
    pub n_seeds: usize,
    /// Mean difference over paired seeds, positive where the sampler is better.
    pub estimate: f64,
    pub ci_lower: f64,
    pub ci_upper: f64,
    pub p_raw: f64,
    pub p_adjusted: f64,
    pub p_equivalence: f64,
    pub margin: f64,
    pub level: f64,
    pub verdict: String,
}

pub fn comparisons_frame(rows: &[ComparisonRow]) -> PolarsResult<DataFrame> {
    DataFrame::new(
        rows.len(),
        vec![
            column("dataset", rows, |r| r.dataset.as_str()),
            column("metric", rows, |r| r.metric.as_str()),
            column("reference", rows, |r| r.reference.as_str()),
            column("reference_k", rows, |r| r.reference_k),
            column("sampler", rows, |r| r.sampler.as_str()),
            column("k", rows, |r| r.k),
            column("n_seeds", rows, |r| r.n_seeds as u32),
            column("estimate", rows, |r| r.estimate),
            column("ci_lower", rows, |r| r.ci_lower),
            column("ci_upper", rows, |r| r.ci_upper),
            column("p_raw", rows, |r| r.p_raw),
            column("p_adjusted", rows, |r| r.p_adjusted),
            column("p_equivalence", rows, |r| r.p_equivalence),
            column("margin", rows, |r| r.margin),
            column("level", rows, |r| r.level),
            column("verdict", rows, |r| r.verdict.as_str()),
        ],
    )
}

fn series(run_id: &str, sampler: &str, loss: &str) -> String {
    let named = format!("-{sampler}-{}-r", crate::suite::make_filename_safe(loss));
    if run_id.contains(&named) {
        format!("{sampler}-{loss}")
    } else {
        sampler.to_string()
    }
}

pub fn result_rows(df: &DataFrame) -> PolarsResult<Vec<ResultRow>> {
    let (run_id, dataset, sampler, loss, kind) = (
        strings(df, "run_id")?,
        strings(df, "dataset")?,
        strings(df, "sampler")?,
        strings(df, "loss")?,
        strings(df, "sampler_kind")?,
    );
    let ratio = u32s(df, "ratio")?;
    let seed = u64s(df, "seed")?;
    let metric = strings(df, "metric")?;
    let value: Vec<f64> = df
        .column("value")?
        .f64()?
        .iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect();
    let category = match df.column("category") {
        Ok(_) => strings(df, "category")?,
        Err(_) => vec![String::new(); df.height()],
    };
    Ok((0..df.height())
        .map(|i| ResultRow {
            run_id: run_id[i].clone(),
            dataset: dataset[i].clone(),
            sampler: series(&run_id[i], &sampler[i], &loss[i]),
            loss_suffix: if series(&run_id[i], &sampler[i], &loss[i]) == sampler[i] {
                String::new()
            } else {
                loss[i].clone()
            },
            kind: kind[i].clone(),
            ratio: ratio[i],
            seed: seed[i],
            category: category[i].clone(),
            metric: metric[i].clone(),
            value: value[i],
        })
        .collect())
}

pub fn curve_rows(df: &DataFrame) -> PolarsResult<Vec<(ResultRow, CurveRow)>> {
    let base = result_rows(df)?;
    let epoch = u32s(df, "epoch")?;
    let split = strings(df, "split")?;
    Ok(base
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let c = CurveRow {
                epoch: epoch[i],
                split: split[i].clone(),
                metric: r.metric.clone(),
                value: r.value,
            };
            (r, c)
        })
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A cell's provenance for tests.
    pub(crate) fn info(domain: &str) -> CellInfo {
        CellInfo {
            suite: "s".into(),
            run_id: format!("{domain}-d-uniform-r1-s0"),
            domain: domain.into(),
            dataset: "d".into(),
            model: "mf".into(),
            loss: "bpr".into(),
            loss_params: "{}".into(),
            sampler: "uniform".into(),
            sampler_kind: "uniform".into(),
            sampler_params: "{}".into(),
            ratio: 1,
            seed: 0,
            epochs_trained: 1,
            selected_epoch: 1,
            n_queries: 1,
            n_items: 1,
            n_train: 1,
            n_test: 1,
            git_rev: "g".into(),
            nsbench_version: "v".into(),
            libtorch_version: "l".into(),
            threads: 1,
            device: "cpu".into(),
            config_hash: "h".into(),
            behaviour: "b".into(),
            finished_unix: 0,
            ranking_excludes: "train".into(),
            data_notes: String::new(),
        }
    }

    #[test]
    fn files_written_before_a_provenance_column_are_upgraded_to_todays_schema() {
        let rows = [MetricRow {
            category: "effectiveness",
            metric: "mrr".into(),
            value: 0.5,
        }];
        let today = metric_frame(&info("rec"), &rows).unwrap();
        for (domain, expected) in [("rec", "train-and-valid"), ("kg", "all-known")] {
            let old = metric_frame(&info(domain), &rows)
                .unwrap()
                .drop_many(["ranking_excludes", "data_notes"]);
            let upgraded = upgrade(old).unwrap();
            assert_eq!(upgraded.get_column_names(), today.get_column_names());
            assert_eq!(
                upgraded
                    .column("ranking_excludes")
                    .unwrap()
                    .str()
                    .unwrap()
                    .get(0),
                Some(expected)
            );
        }
        // Written before the data notes: an empty note.
        let old = metric_frame(&info("rec"), &rows)
            .unwrap()
            .drop_many(["data_notes"]);
        assert_eq!(upgrade(old).unwrap(), today);
        // Today's files are left as they are.
        assert_eq!(upgrade(today.clone()).unwrap(), today);
    }
}
