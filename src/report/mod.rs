//! Reports from stored results: a summary table (mean ± std over seeds) and the figures.

mod audit;
mod figures;
mod html;
mod plots;
mod properties;
mod protocols;
pub mod significance;
mod summary;
pub mod table;
pub mod views;

pub use summary::{summarize, Summary, SummaryRow};
pub use views::headline;

use anyhow::Result;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::store::{self, FailureRecord};
use crate::suite::ratio_label;

/// Reads `dir`'s merged results (only cells of the current plan: `store::merge` keeps nothing else),
/// writes `dir/summary.md` (with the failed cells, if any) and the figures under `dir/plots/`, and returns
/// the summary table as text and the files written.
pub fn render(dir: &Path) -> Result<(String, Vec<PathBuf>)> {
    let rows = store::read_results(dir)?;
    let curves = store::read_curves(dir)?;
    let failures = store::read_failures(dir)?;
    let summary = summarize(&rows);
    let mut table = summary.markdown_table();
    table.push_str(&failures_section(&failures));
    let mut files = vec![dir.join("summary.md")];
    store::atomic::write_bytes(
        &files[0],
        format!("# Results of {}\n\n{table}", dir.display()).as_bytes(),
    )?;
    files.extend(plots::render_all(
        &summary,
        &curves,
        &dir.join("plots"),
        false,
    )?);
    Ok((table, files))
}

/// Everything `nsbench report` reads: the rows, curves and failures of one or more results directories
/// (their data sets side by side), and where each cell's per-query file is.
///
/// A data set is one experiment only within one suite: its data, split and every random stream derive
/// from (suite, data set, seed). Where directories of different suites (or of one suite name with other
/// data settings) hold a data set of the same name, each is reported apart, named
/// `<data set>.<suite>` (its run ids likewise), never paired by seed or by query with the other.
pub struct Inputs {
    pub dirs: Vec<PathBuf>,
    pub rows: Vec<store::ResultRow>,
    pub curves: Vec<(store::ResultRow, store::CurveRow)>,
    pub failures: Vec<FailureRecord>,
    /// run id as reported → (its directory, its stored run id, its configuration hash); the first
    /// directory wins a duplicate id of the same experiment.
    cells: HashMap<String, (PathBuf, String, String)>,
    /// Per directory: stored data-set name → the name it is reported under (itself unless another
    /// experiment shares it).
    renamed: Vec<HashMap<String, String>>,
}

impl Inputs {
    pub fn read(dirs: &[PathBuf]) -> Result<Inputs> {
        let renamed = experiment_names(dirs);
        let mut inputs = Inputs {
            dirs: dirs.to_vec(),
            rows: Vec::new(),
            curves: Vec::new(),
            failures: Vec::new(),
            cells: HashMap::new(),
            renamed,
        };
        for (d, dir) in dirs.iter().enumerate() {
            let names = inputs.renamed[d].clone();
            let rename_id = |id: &str| rename_run_id(id, &names);
            let hashes = store::read_run_hashes(dir)?;
            let fresh: std::collections::HashSet<String> = hashes
                .keys()
                .map(|id| rename_id(id))
                .filter(|id| !inputs.cells.contains_key(id))
                .collect();
            let rename_row = |mut r: store::ResultRow| {
                r.run_id = rename_id(&r.run_id);
                if let Some(name) = names.get(&r.dataset) {
                    r.dataset = name.clone();
                }
                r
            };
            inputs.rows.extend(
                store::read_results(dir)?
                    .into_iter()
                    .map(rename_row)
                    .filter(|r| fresh.contains(&r.run_id)),
            );
            inputs.curves.extend(
                store::read_curves(dir)?
                    .into_iter()
                    .map(|(r, c)| (rename_row(r), c))
                    .filter(|(r, _)| fresh.contains(&r.run_id)),
            );
            inputs
                .failures
                .extend(store::read_failures(dir)?.into_iter().map(|mut f| {
                    f.run_id = rename_id(&f.run_id);
                    f
                }));
            for (id, hash) in hashes {
                inputs
                    .cells
                    .entry(rename_id(&id))
                    .or_insert((dir.clone(), id, hash));
            }
        }
        Ok(inputs)
    }

    /// A cell's per-query values of `metric`.
    pub fn per_query(&self, run_id: &str, metric: &str) -> Option<Vec<(u32, f32)>> {
        let (dir, stored_id, hash) = self.cells.get(run_id)?;
        store::read_per_query(dir, stored_id, hash, metric)
    }

    /// The name directory `dir_index`'s data set `dataset` is reported under.
    pub fn dataset_name(&self, dir_index: usize, dataset: &str) -> String {
        self.renamed[dir_index]
            .get(dataset)
            .cloned()
            .unwrap_or_else(|| dataset.to_string())
    }
}

/// `<domain>-<dataset>-…` with the data set renamed as `names` says (the longest data-set name that
/// fits: `a-b` before `a`).
fn rename_run_id(id: &str, names: &HashMap<String, String>) -> String {
    let mut parts = id.splitn(2, '-');
    let (domain, rest) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let found = names
        .iter()
        .filter_map(|(from, to)| {
            Some((
                from,
                to,
                rest.strip_prefix(from.as_str())?.strip_prefix('-')?,
            ))
        })
        .max_by_key(|(from, _, _)| from.len());
    match found {
        Some((from, to, tail)) if from != to => format!("{domain}-{to}-{tail}"),
        _ => id.to_string(),
    }
}

/// Per directory, each data set's reported name: its own, or, where another directory uses the name
/// for another experiment (another suite, or other data settings under one suite name), qualified.
fn experiment_names(dirs: &[PathBuf]) -> Vec<HashMap<String, String>> {
    // (data set, identity, suite) of every directory; a directory without a readable resolved suite
    // is its own experiment.
    let found: Vec<Vec<(String, String, String)>> = dirs
        .iter()
        .map(
            |dir| match crate::suite::load(&dir.join("suite.resolved.toml")) {
                Ok(suite) => suite
                    .domains
                    .iter()
                    .map(|d| {
                        let identity = serde_json::json!({
                            "suite": suite.name,
                            "kind": d.config.kind.as_str(),
                            "data": d.config.data,
                            "split": d.config.split,
                        });
                        (d.name.clone(), identity.to_string(), suite.name.clone())
                    })
                    .collect(),
                Err(_) => Vec::new(),
            },
        )
        .collect();
    let mut identities: HashMap<&str, Vec<&str>> = HashMap::new();
    for (name, identity, _) in found.iter().flatten() {
        let seen = identities.entry(name).or_default();
        if !seen.contains(&identity.as_str()) {
            seen.push(identity);
        }
    }
    found
        .iter()
        .map(|sets| {
            sets.iter()
                .map(|(name, identity, suite)| {
                    if identities[name.as_str()].len() == 1 {
                        return (name.clone(), name.clone());
                    }
                    let same_suite = found
                        .iter()
                        .flatten()
                        .filter(|(n, i, s)| n == name && s == suite && i != identity)
                        .count();
                    let label = if same_suite == 0 {
                        format!("{name}.{suite}")
                    } else {
                        // One suite name, other data settings: number the experiments.
                        let nth = identities[name.as_str()]
                            .iter()
                            .position(|i| i == identity)
                            .unwrap_or(0);
                        format!("{name}.{suite}.{}", nth + 1)
                    };
                    (name.clone(), label)
                })
                .collect()
        })
        .collect()
}

/// The files `statistics_report` wrote.
#[derive(Debug, Clone)]
pub struct ReportFiles {
    pub markdown: PathBuf,
    pub html: PathBuf,
    pub latex: Vec<PathBuf>,
    pub figures: Vec<PathBuf>,
}

/// Writes the report of `inputs` into `out`: `report.md` (every table), `tables/<domain>.tex` (the
/// paper tables, one file per domain), the figures under `plots/`, and the self-contained `report.html`.
/// Returns the Markdown text and the files.
pub fn statistics_report(
    inputs: &Inputs,
    out: &Path,
    settings: &significance::Settings,
) -> Result<(String, ReportFiles)> {
    let mut views = views::dataset_views(&inputs.rows, &inputs.failures);
    let metric_of = |dataset: &str| {
        views
            .iter()
            .find(|v| v.name == dataset)
            .map(|v| v.metric.clone())
    };
    let curves = views::cell_curves(&inputs.curves, &metric_of);
    // Each sampler's k across data sets: chosen on validation where there is one.
    let on_test: Vec<String> = views
        .iter_mut()
        .filter_map(|v| (!v.choose_k(&curves)).then(|| v.name.clone()))
        .collect();
    let reader = |id: &str, metric: &str| inputs.per_query(id, metric);

    let mut sections: Vec<(String, Vec<table::Table>)> = Vec::new();
    let mut paper: Vec<(String, table::Table)> = Vec::new();
    let mut comparisons: Vec<store::ComparisonRow> = Vec::new();
    let mut decided: Vec<String> = Vec::new();
    for view in &views {
        let e = significance::effectiveness(view, settings, &reader);
        comparisons.extend(comparison_rows(view, settings, &e));
        if e.verdicts.keys().any(|k| e.decided(k)) {
            decided.push(view.name.clone());
        }
        paper.push((
            view.domain.clone(),
            significance::paper_table(view, settings, &e),
        ));
        let mut tables = vec![e.seed_table];
        tables.extend(e.query_table);
        tables.extend(protocols::sampled_vs_full(view));
        tables.push(properties::stability(view, &curves));
        tables.extend(properties::budget(view, settings, &curves));
        sections.push((format!("Data set {} ({})", view.name, view.domain), tables));
    }
    let (audit_verdict, mut audit_tables) = audit::section(&inputs.dirs);
    audit_tables.extend(audit::expectations(&inputs.dirs));
    sections.insert(0, ("Audit and published values".into(), audit_tables));
    let across = significance::across_datasets(&views, settings, &on_test);
    let mut across_tables: Vec<table::Table> =
        across.iter().flat_map(|(t, _)| t.iter().cloned()).collect();
    across_tables.extend(properties::independence(&views, settings));
    if !across_tables.is_empty() {
        sections.push(("Across data sets".into(), across_tables));
    }

    let names: Vec<String> = inputs
        .dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    let mut text = format!(
        "# Statistics of {}\n\n{audit_verdict}\n\n",
        names.join(", ")
    );
    // The compact tables first (as in tables/<domain>.tex), then every table behind them.
    text.push_str("## Paper tables\n\n");
    for (_, t) in &paper {
        text.push_str(&t.markdown(3));
    }
    for (heading, tables) in &sections {
        text.push_str(&format!("## {heading}\n\n"));
        for t in tables {
            text.push_str(&t.markdown(3));
        }
    }
    text.push_str(&failures_section(&inputs.failures));
    std::fs::create_dir_all(out)?;
    write_statistics_table(inputs, settings, &out.join("statistics.parquet"))?;
    store::write_comparisons(&out.join("comparisons.parquet"), &comparisons)?;
    let markdown = out.join("report.md");
    store::atomic::write_bytes(&markdown, text.as_bytes())?;

    let mut latex = Vec::new();
    let mut domains: Vec<&str> = paper.iter().map(|(d, _)| d.as_str()).collect();
    domains.dedup();
    std::fs::create_dir_all(out.join("tables"))?;
    for domain in domains {
        let mut tex = format!(
            "% nsbench report: the {domain} tables (\\usepackage{{booktabs}}); \\input this file.\n"
        );
        for (_, t) in paper.iter().filter(|(d, _)| d == domain) {
            let label = format!("nsbench-{}", t.title.split(':').next().unwrap_or(domain));
            tex.push_str(&t.latex(&label.replace(' ', "-")));
            tex.push('\n');
        }
        let path = out.join("tables").join(format!("{domain}.tex"));
        store::atomic::write_bytes(&path, tex.as_bytes())?;
        latex.push(path);
    }

    let mut figures = plots::render_all(
        &summarize(&inputs.rows),
        &inputs.curves,
        &out.join("plots"),
        true,
    )?;
    figures.extend(figures::render_report_figures(
        &views,
        across.as_ref().map_or(&[][..], |(_, cd)| cd.as_slice()),
        &decided,
        &out.join("plots"),
    )?);
    let html = out.join("report.html");
    let page = html::page(inputs, &sections, &paper, &figures, &names, &audit_verdict)?;
    store::atomic::write_bytes(&html, page.as_bytes())?;
    Ok((
        text,
        ReportFiles {
            markdown,
            html,
            latex,
            figures,
        },
    ))
}

/// Every comparison of one data set's effectiveness table, as `comparisons.parquet` rows.
fn comparison_rows(
    view: &views::DatasetView,
    settings: &significance::Settings,
    e: &significance::Effectiveness,
) -> Vec<store::ComparisonRow> {
    e.verdicts
        .iter()
        .map(|(key, d)| store::ComparisonRow {
            dataset: view.name.clone(),
            metric: view.metric.clone(),
            reference: d.reference.0.clone(),
            reference_k: d.reference.1,
            sampler: key.0.clone(),
            k: key.1,
            n_seeds: d.comparison.n,
            estimate: d.comparison.estimate,
            ci_lower: d.comparison.ci.lower,
            ci_upper: d.comparison.ci.upper,
            p_raw: d.comparison.p,
            p_adjusted: d.p_adjusted,
            p_equivalence: d.comparison.p_equivalence,
            margin: d.comparison.margin,
            level: settings.level,
            verdict: d.verdict.as_str().into(),
        })
        .collect()
}

/// Writes `statistics.parquet`: per (domain, dataset, model, loss, sampler, ratio, metric) of every
/// input directory, every metric's seed count, mean, std, CV and t interval of the mean over seeds.
fn write_statistics_table(
    inputs: &Inputs,
    settings: &significance::Settings,
    path: &Path,
) -> Result<()> {
    let mut rows = Vec::new();
    for (d, dir) in inputs.dirs.iter().enumerate() {
        for (key, values) in store::read_grouped_values(dir)? {
            let (domain, dataset, model, loss, sampler, ratio, category, metric) = key;
            let dataset = inputs.dataset_name(d, &dataset);
            let summary = crate::stats::Summary::of(&values);
            let ci = crate::stats::t_interval(&values, settings.level);
            rows.push(store::GroupStats {
                domain,
                dataset,
                model,
                loss,
                sampler,
                ratio,
                category,
                metric,
                n_seeds: summary.n,
                mean: summary.mean,
                std: summary.std,
                cv: summary.cv,
                ci_low: ci.lower,
                ci_high: ci.upper,
                level: settings.level,
            });
        }
    }
    store::write_statistics(path, &rows)?;
    Ok(())
}

/// `at epoch 3 (diverged): the training loss is NaN`.
pub fn describe_failure(f: &FailureRecord) -> String {
    let at = if f.epoch == 0 {
        "before training".to_string()
    } else {
        format!("at epoch {}", f.epoch)
    };
    format!("failed {at} ({}): {}", f.stage, f.reason)
}

/// The failed cells as a markdown list (empty when none failed): they have no rows in the tables above.
fn failures_section(failures: &[FailureRecord]) -> String {
    if failures.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "## Failed cells ({})\n\nThese cells have no results above (a seed count below the suite's \
         shows where); `failures.parquet` has them.\n\n| cell | sampler | k | seed | why |\n|---|---|---:|---:|---|\n",
        failures.len()
    );
    for f in failures {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            f.run_id,
            f.sampler,
            ratio_label(f.ratio),
            f.seed,
            describe_failure(f).replace('|', "\\|").replace('\n', " ")
        ));
    }
    out.push('\n');
    out
}
