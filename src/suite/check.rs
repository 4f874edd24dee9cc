//! Validation: `SuiteFile` → `Suite`, once, before any work starts. Every message names the file, the key
//! and what is allowed.

use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::file::{DomainConfig, Expect, SuiteFile, SuiteSection};
use crate::error::SuiteError;
use crate::sampler::SamplerConfig;
use crate::train::{LossConfig, OptimizerKind, TrainConfig};

/// A validated suite: every axis non-empty, every value in range, every data file present, every path
/// resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Suite {
    pub name: String,
    #[serde(skip)]
    pub path: PathBuf,
    pub seeds: Vec<u64>,
    pub ratios: Vec<u32>,
    pub threads: Option<usize>,
    pub jobs: Option<usize>,
    pub device: String,
    pub train: TrainConfig,
    pub domains: Vec<Domain>,
    pub samplers: Vec<SamplerEntry>,
    /// Published values the results must reproduce (`nsbench check --expect`).
    pub expects: Vec<super::Expect>,
    /// `--until-decided` settings, when the suite names them.
    pub until_decided: Option<super::UntilDecided>,
    /// Seeds beyond `seeds` for some cells (see `ExtraSeeds`).
    pub extra_seeds: Vec<super::ExtraSeeds>,
}

/// A domain with its label, resolved paths and model, and its loss axis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Domain {
    pub name: String,
    pub config: DomainConfig,
    /// The losses its cells train under (the domain's, else `[train]`'s, else the domain's default),
    /// each with its label; not serialised (each cell carries its own loss, so adding a loss to the
    /// axis leaves the other cells' hashes alone).
    #[serde(skip)]
    pub losses: Vec<LossEntry>,
}

/// A loss of a domain's axis and how run ids name it (`None`: the domain's single default loss, not
/// named).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LossEntry {
    pub label: Option<String>,
    pub config: LossConfig,
}

/// A sampler with the label that names it in run ids (its kind, plus its parameters when two samplers of
/// a suite share a kind).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SamplerEntry {
    pub label: String,
    pub config: SamplerConfig,
}

impl Suite {
    /// The suite as a suite file again, with every default filled in and every path resolved.
    pub fn to_file(&self) -> SuiteFile {
        SuiteFile {
            suite: super::file::SuiteSection {
                name: self.name.clone(),
                seeds: self.seeds.clone(),
                ratios: self.ratios.clone(),
                threads: self.threads,
                jobs: self.jobs,
                device: Some(self.device.clone()),
                until_decided: self.until_decided.clone(),
                extra_seeds: self.extra_seeds.clone(),
            },
            train: self.train.clone(),
            domains: self
                .domains
                .iter()
                .map(|d| {
                    let mut c = d.config.clone();
                    if d.losses.len() > 1 || d.losses.iter().any(|l| l.label.is_some()) {
                        c.loss = Some(crate::train::Losses::Many(
                            d.losses.iter().map(|l| l.config.clone()).collect(),
                        ));
                    }
                    c
                })
                .collect(),
            samplers: self.samplers.iter().map(|s| s.config.clone()).collect(),
            expects: self.expects.clone(),
        }
    }
}

/// Names that become directory and file names: letters, digits, `-`, `_`, `.`; no leading dot.
pub fn is_safe_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Lower-cases and replaces every character that is not filename-safe with `-`.
pub fn make_filename_safe(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    out.trim_matches(|c| c == '-' || c == '.').to_string()
}

pub const DEVICES: &str = "`cpu`, `cuda` or `cuda:N`";

/// The device to train on, or why it cannot be used.
pub fn check_device(name: &str) -> Result<tch::Device, String> {
    match parse_device(name) {
        None => Err(format!("unknown device {name:?}; allowed: {DEVICES}")),
        Some(tch::Device::Cuda(_)) if !tch::Cuda::is_available() => Err(format!(
            "device {name:?} asked for, but this libtorch has no usable CUDA: point LIBTORCH at a CUDA \
             libtorch 2.13 and rebuild, or use --device cpu"
        )),
        Some(d) => Ok(d),
    }
}

/// Parses a device name.
pub fn parse_device(s: &str) -> Option<tch::Device> {
    match s {
        "cpu" => Some(tch::Device::Cpu),
        "cuda" => Some(tch::Device::Cuda(0)),
        _ => s
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(tch::Device::Cuda),
    }
}

impl SuiteFile {
    pub fn check(self, path: &Path) -> Result<Suite, SuiteError> {
        let err = |(key, message): Problem| SuiteError::Invalid {
            path: path.to_path_buf(),
            key,
            message,
        };
        let s = &self.suite;
        let device = check_section(s).map_err(err)?;
        check_train(&self.train).map_err(|(k, m)| err((format!("train.{k}"), m)))?;
        // Data paths resolve against the suite's folder, made absolute: the resolved suite, written
        // into the results directory, must name the same files from there (merge, report, check).
        let parent = path.parent().unwrap_or(Path::new("."));
        let absolute = std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf());
        let domains = check_domains(&self.domains, &absolute, &self.train).map_err(err)?;
        let samplers = check_samplers(&self.samplers, &absolute).map_err(err)?;
        check_combinations(&domains, &samplers, &self.train).map_err(err)?;
        if self.train.optimizer == OptimizerKind::Word2vec {
            check_per_pair(&domains, &samplers, &device).map_err(err)?;
        }
        check_sequential(s, &domains, &samplers).map_err(err)?;
        check_expects(&self.expects, &domains).map_err(err)?;
        Ok(Suite {
            name: s.name.clone(),
            path: path.to_path_buf(),
            seeds: s.seeds.clone(),
            ratios: s.ratios.clone(),
            threads: s.threads,
            jobs: s.jobs,
            device,
            train: self.train.clone(),
            domains,
            samplers,
            expects: self.expects.clone(),
            until_decided: s.until_decided.clone(),
            extra_seeds: s.extra_seeds.clone(),
        })
    }
}

/// `[suite]`: its name, seeds, ratios, threads, jobs and device (returned).
fn check_section(s: &SuiteSection) -> Result<String, Problem> {
    let err = |key: &str, message: String| (key.to_string(), message);
    if !is_safe_name(&s.name) {
        return Err(err(
            "suite.name",
            format!(
                "{:?} cannot name a results directory: use letters, digits, `-`, `_` and `.` \
                 (no `/`, no leading dot)",
                s.name
            ),
        ));
    }
    if s.seeds.is_empty() {
        return Err(err(
            "suite.seeds",
            "needs at least one seed, e.g. seeds = [0, 1, 2]".into(),
        ));
    }
    if let Some(d) = first_duplicate(&s.seeds) {
        return Err(err("suite.seeds", format!("seed {d} is listed twice")));
    }
    if s.ratios.is_empty() {
        return Err(err(
            "suite.ratios",
            "needs at least one ratio, e.g. ratios = [1, 4, 16]".into(),
        ));
    }
    if let Some(r) = s.ratios.iter().find(|&&r| r == 0) {
        return Err(err(
            "suite.ratios",
            format!("ratio must be >= 1 negative per positive (got {r})"),
        ));
    }
    if let Some(d) = first_duplicate(&s.ratios) {
        return Err(err("suite.ratios", format!("ratio {d} is listed twice")));
    }
    for (key, v) in [("suite.threads", s.threads), ("suite.jobs", s.jobs)] {
        if v == Some(0) {
            return Err(err(key, "must be >= 1".into()));
        }
    }
    let device = s.device.clone().unwrap_or_else(|| "cpu".into());
    if parse_device(&device).is_none() {
        return Err(err(
            "suite.device",
            format!("unknown device {device:?}; allowed: {DEVICES}"),
        ));
    }
    Ok(device)
}

/// Every `[[domain]]`, each named once.
fn check_domains(
    configs: &[DomainConfig],
    dir: &Path,
    train: &TrainConfig,
) -> Result<Vec<Domain>, Problem> {
    let err = |key: &str, message: String| (key.to_string(), message);
    if configs.is_empty() {
        return Err(err("domain", "needs at least one [[domain]] table".into()));
    }
    let mut domains = Vec::new();
    for (n, d) in configs.iter().enumerate() {
        let key = |k: &str| format!("domain[{n}].{k}");
        let domain = check_domain(d, dir, train).map_err(|(k, m)| err(&key(&k), m))?;
        if domains.iter().any(|x: &Domain| x.name == domain.name) {
            return Err(err(
                &key("name"),
                format!(
                    "two domains are named {:?}: give each a distinct `name`",
                    domain.name
                ),
            ));
        }
        domains.push(domain);
    }
    Ok(domains)
}

/// Every `[[sampler]]`, each labelled once (by its kind, or its parameters when a kind repeats).
fn check_samplers(configs: &[SamplerConfig], dir: &Path) -> Result<Vec<SamplerEntry>, Problem> {
    let err = |key: &str, message: String| (key.to_string(), message);
    if configs.is_empty() {
        return Err(err(
            "sampler",
            "needs at least one [[sampler]] table, e.g. { kind = \"uniform\" }".into(),
        ));
    }
    let mut samplers: Vec<SamplerEntry> = Vec::new();
    for (n, c) in configs.iter().enumerate() {
        if let Some((k, m)) = c.problems().into_iter().next() {
            return Err(err(&format!("sampler[{n}].{k}"), m));
        }
        let shared_kind = configs.iter().filter(|o| o.kind() == c.kind()).count() > 1;
        let label = make_filename_safe(&if shared_kind {
            c.params_tag()
        } else {
            c.kind().to_string()
        });
        if samplers.iter().any(|s| s.label == label) {
            return Err(err(
                &format!("sampler[{n}]"),
                format!("sampler {label:?} is listed twice"),
            ));
        }
        // A Python sampler's file resolves against the suite's folder; its bytes enter the hash.
        let config = match c {
            SamplerConfig::Python(p) => SamplerConfig::Python(
                p.resolved(dir)
                    .map_err(|m| (format!("sampler[{n}].path"), m))?,
            ),
            other => other.clone(),
        };
        samplers.push(SamplerEntry { label, config });
    }
    Ok(samplers)
}

/// Each sampler runs in each domain's kind and under each of its losses.
fn check_combinations(
    domains: &[Domain],
    samplers: &[SamplerEntry],
    train: &TrainConfig,
) -> Result<(), Problem> {
    let err = |key: &str, message: String| (key.to_string(), message);
    for d in domains {
        let kind = d.config.kind.as_str();
        for (n, entry) in samplers.iter().enumerate() {
            let info = entry.config.info();
            if !info.domains.contains(&kind) {
                return Err(err(
                    &format!("sampler[{n}]"),
                    format!(
                        "sampler {:?} runs in {} domains only, and domain {:?} is {kind}: give it a suite of its own",
                        info.kind,
                        info.domains.join(" and "),
                        d.name
                    ),
                ));
            }
        }
    }

    for d in domains {
        for loss in &d.losses {
            for (n, entry) in samplers.iter().enumerate() {
                if let Some((k, m)) = entry.config.problem_under(&loss.config, train.batch_size) {
                    return Err(err(
                        &format!("sampler[{n}].{k}"),
                        format!(
                            "in domain {:?} under loss {:?}: {m}",
                            d.name,
                            loss.config.label()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// `[suite.until_decided]` and the extra seeds a sequential run recorded.
fn check_sequential(
    s: &SuiteSection,
    domains: &[Domain],
    samplers: &[SamplerEntry],
) -> Result<(), Problem> {
    let err = |key: &str, message: String| (key.to_string(), message);
    if let Some(u) = &s.until_decided {
        if u.round == 0
            || u.max_seeds < s.seeds.len()
            || !(u.margin > 0.0 && u.margin < 1.0)
            || !(u.level > 0.5 && u.level < 1.0)
        {
            return Err(err(
                "suite.until_decided",
                format!(
                    "round >= 1, max_seeds >= the {} seeds listed, margin in (0, 1), level in (0.5, 1) \
                     (got round {}, max_seeds {}, margin {}, level {})",
                    s.seeds.len(),
                    u.round,
                    u.max_seeds,
                    u.margin,
                    u.level
                ),
            ));
        }
    }
    for (n, e) in s.extra_seeds.iter().enumerate() {
        let known = domains.iter().any(|d| d.name == e.domain)
            && samplers.iter().any(|x| x.label == e.sampler);
        if !known {
            return Err(err(
                &format!("suite.extra_seeds[{n}]"),
                format!(
                    "names no domain {:?} or sampler {:?} of this suite",
                    e.domain, e.sampler
                ),
            ));
        }
    }
    Ok(())
}

/// `[[expect]]`: each names a domain and gives one band.
fn check_expects(expects: &[Expect], domains: &[Domain]) -> Result<(), Problem> {
    let err = |key: &str, message: String| (key.to_string(), message);
    for (n, e) in expects.iter().enumerate() {
        let key = |k: &str| format!("expect[{n}].{k}");
        if !domains.iter().any(|d| d.name == e.dataset) {
            let names: Vec<&str> = domains.iter().map(|d| d.name.as_str()).collect();
            return Err(err(
                &key("dataset"),
                format!(
                    "{:?} names no domain; the domains are {}",
                    e.dataset,
                    names.join(", ")
                ),
            ));
        }
        let band = match (e.tolerance, e.seeds) {
            (Some(t), None) => t,
            (None, Some(z)) => z,
            _ => {
                return Err(err(
                    &key("tolerance"),
                    "give exactly one of `tolerance` (absolute) and `seeds` (standard errors of the seed mean)"
                        .into(),
                ))
            }
        };
        if !(band > 0.0 && band.is_finite() && e.value.is_finite()) {
            return Err(err(
                &key("tolerance"),
                format!(
                    "the value and the band must be finite and the band > 0 (got {} ± {band})",
                    e.value
                ),
            ));
        }
    }
    Ok(())
}

/// `optimizer = "word2vec"` updates skip-gram's tables pair by pair on the host under the logistic
/// loss, with negatives drawn as ids: every domain, loss, sampler and the device must allow that.
fn check_per_pair(
    domains: &[Domain],
    samplers: &[SamplerEntry],
    device: &str,
) -> Result<(), Problem> {
    let why = "optimizer = \"word2vec\" is word2vec's per-pair SGD";
    if device != "cpu" {
        return Err((
            "suite.device".into(),
            format!("{why} on the host: run it on the cpu (got {device:?}), or use adam or sgd"),
        ));
    }
    for (n, d) in domains.iter().enumerate() {
        if !matches!(d.config.model(), crate::model::ModelConfig::Sgns(_)) {
            return Err((
                format!("domain[{n}].model"),
                format!(
                    "{why} over skip-gram's two word tables: domain {:?} needs model `sgns` (a text \
                     domain), or train with adam or sgd",
                    d.name
                ),
            ));
        }
        if let Some(l) = d.losses.iter().find(|l| l.config != LossConfig::Bce) {
            return Err((
                format!("domain[{n}].loss"),
                format!(
                    "{why} on the logistic loss (`bce`); domain {:?} trains {:?}: drop it or train \
                     with adam or sgd",
                    d.name,
                    l.config.kind()
                ),
            ));
        }
    }
    for (n, s) in samplers.iter().enumerate() {
        let kind = s.config.kind();
        if !crate::train::word2vec::takes(kind) {
            return Err((
                format!("sampler[{n}]"),
                format!(
                    "{why}: it takes negatives drawn as ids, one row per pair, under the logistic loss, and \
                     sampler {kind:?} gives others; allowed: {}; or train with adam or sgd",
                    crate::train::word2vec::samplers().join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn first_duplicate<T: Copy + Eq + std::hash::Hash>(xs: &[T]) -> Option<T> {
    let mut seen = HashSet::new();
    xs.iter().copied().find(|x| !seen.insert(*x))
}

type Problem = (String, String);

fn check_train(t: &TrainConfig) -> Result<(), Problem> {
    let p = |k: &str, m: String| Err((k.to_string(), m));
    if t.epochs == 0 {
        return p("epochs", "must be >= 1".into());
    }
    if t.batch_size == 0 {
        return p("batch_size", "must be >= 1".into());
    }
    if !(t.lr > 0.0 && t.lr.is_finite()) {
        return p("lr", format!("must be > 0 (got {})", t.lr));
    }
    if !(t.l2 >= 0.0 && t.l2.is_finite()) {
        return p("l2", format!("must be >= 0 (got {})", t.l2));
    }
    if t.eval_every == 0 {
        return p(
            "eval_every",
            "must be >= 1 (epochs between evaluations)".into(),
        );
    }
    if t.ks.is_empty() || t.ks.contains(&0) {
        return p(
            "ks",
            format!("needs cut-offs >= 1, e.g. ks = [10, 20] (got {:?})", t.ks),
        );
    }
    if let Some(es) = &t.early_stopping {
        if es.patience == 0 {
            return p("early_stopping.patience", "must be >= 1".into());
        }
    }
    Ok(())
}

fn check_domain(d: &DomainConfig, dir: &Path, train: &TrainConfig) -> Result<Domain, Problem> {
    let p = |k: &str, m: String| Err((k.to_string(), m));
    let mut config = d.clone();
    check_data(d, &mut config, dir)?;
    let model = check_model(d, &config)?;
    config.model = Some(model.clone());
    let entries = check_losses(d, train, &model)?;
    // The axis lives in `Domain::losses`; the domain's configuration in each cell's hash does not carry it.
    config.loss = None;
    check_early_stopping(d, &config, train)?;
    let name = match &d.name {
        Some(n) if !is_safe_name(n) => {
            return p(
                "name",
                format!("{n:?} is not filename-safe: use letters, digits, `-`, `_`, `.`"),
            )
        }
        Some(n) => n.clone(),
        None => make_filename_safe(&config.data.default_name()),
    };
    // The label is part of the resolved configuration, so a resolved suite hashes like its source.
    config.name = Some(name.clone());
    Ok(Domain {
        name,
        config,
        losses: entries,
    })
}

/// The data's own parameters and files (resolved against the suite's folder first) and the split's
/// shares.
fn check_data(d: &DomainConfig, config: &mut DomainConfig, dir: &Path) -> Result<(), Problem> {
    use crate::data::{DataConfig, SplitConfig};
    let p = |k: &str, m: String| Err((k.to_string(), m));
    // The data's own parameters; files are resolved against the suite's folder first.
    let problems = match &mut config.data {
        DataConfig::Synthetic(c) => c.problems(),
        DataConfig::SyntheticKg(c) => c.problems(),
        DataConfig::SyntheticGraph(c) => c.problems(),
        DataConfig::SyntheticText(c) => c.problems(),
        DataConfig::SyntheticImages(c) => c.problems(),
        DataConfig::EdgeList(e) => {
            *e = e.resolved(dir);
            e.problems()
        }
        DataConfig::Corpus(c) => {
            *c = c.resolved(dir);
            c.problems()
        }
        DataConfig::Images(c) => {
            *c = c.resolved(dir);
            c.problems()
        }
        DataConfig::Movielens(_)
        | DataConfig::Delimited(_)
        | DataConfig::Adjacency(_)
        | DataConfig::Triples(_) => Vec::new(),
    };
    if let Some((k, m)) = problems.into_iter().next() {
        return p(&format!("data.{k}"), m);
    }
    if config.data.file_config().is_none() {
        for (key, file) in config.data.files() {
            if !file.is_file() {
                return p(
                    &format!("data.{key}"),
                    format!(
                        "data file {} does not exist or is not a file",
                        file.display()
                    ),
                );
            }
        }
    }
    match &mut config.data {
        DataConfig::Movielens(f)
        | DataConfig::Delimited(f)
        | DataConfig::Adjacency(f)
        | DataConfig::Triples(f) => {
            *f = f.resolved(dir);
            match (&f.path, &f.train, &f.test) {
                (Some(_), None, None) => {}
                (None, Some(_), Some(_)) => {
                    if d.split.is_some() {
                        return p("split", "the data gives its own train/test files: remove `split`".into());
                    }
                }
                _ => {
                    return p(
                        "data",
                        "give either `path` (one file, split by `split`) or `train` + `test` (+ `valid`)".into(),
                    )
                }
            }
            if f.valid.is_some() && f.train.is_none() {
                return p("data.valid", "`valid` goes with `train` + `test`".into());
            }
            for (key, file) in f.files() {
                if file.is_dir() {
                    return p(
                        &format!("data.{key}"),
                        format!(
                            "data file {} is a directory; give the file inside it",
                            file.display()
                        ),
                    );
                }
                if !file.is_file() {
                    return p(
                        &format!("data.{key}"),
                        format!("data file {} does not exist", file.display()),
                    );
                }
            }
            if f.columns.is_some() && !matches!(config.data, DataConfig::Delimited(_)) {
                return p(
                    "data.columns",
                    "`columns` is for `delimited` files; MovieLens and adjacency files have fixed layouts"
                        .into(),
                );
            }
        }
        _ => {}
    }
    match &d.split {
        Some(SplitConfig::Random(r)) => {
            if !(0.0..1.0).contains(&r.test)
                || !(0.0..1.0).contains(&r.valid)
                || r.test + r.valid >= 1.0
            {
                return p(
                    "split",
                    format!(
                        "need 0 <= test, valid and test + valid < 1 (got test = {}, valid = {})",
                        r.test, r.valid
                    ),
                );
            }
        }
        Some(SplitConfig::LeaveLastOut(_)) | None => {}
    }
    Ok(())
}

/// The model's parameters, and that the model and the data belong to the domain's kind.
fn check_model(
    d: &DomainConfig,
    config: &DomainConfig,
) -> Result<crate::model::ModelConfig, Problem> {
    let p = |k: &str, m: String| Err((k.to_string(), m));
    let model = d.model();
    let init_std = match &model {
        crate::model::ModelConfig::Mf(m) | crate::model::ModelConfig::Embedding(m) => {
            Some(m.init_std)
        }
        crate::model::ModelConfig::Lightgcn(m) => Some(m.init_std),
        _ => None,
    };
    if let Some(init_std) = init_std.filter(|s| !(*s >= 0.0 && s.is_finite())) {
        return p("model.init_std", format!("must be >= 0 (got {init_std})"));
    }
    if let Some((k, m)) = model.problems().into_iter().next() {
        return p(&format!("model.{k}"), m);
    }
    let kind = d.kind.as_str();
    let domain = crate::domain::of(d.kind);
    if !model.domains().contains(&kind) {
        return p(
            "model.kind",
            format!(
                "{:?} is not a model of a {kind} domain; allowed: {}",
                model.name(),
                domain.models()
            ),
        );
    }
    if config.data.domain() != d.kind {
        return p(
            "data.format",
            format!(
                "{:?} is not data of a {kind} domain; allowed: {}",
                config.data.format(),
                domain.formats()
            ),
        );
    }
    if let Some(why) = domain.split_refused().filter(|_| d.split.is_some()) {
        return p("split", why.into());
    }
    Ok(model)
}

/// The loss axis: the domain's, `[train]`'s, or the domain's default for its model; each loss checked
/// and labelled once.
fn check_losses(
    d: &DomainConfig,
    train: &TrainConfig,
    model: &crate::model::ModelConfig,
) -> Result<Vec<LossEntry>, Problem> {
    let p = |k: &str, m: String| Err((k.to_string(), m));
    let domain = crate::domain::of(d.kind);
    let losses = match d.loss.as_ref().or(train.loss.as_ref()) {
        Some(l) => l.to_vec(),
        None => vec![domain.default_loss(model)],
    };
    if losses.is_empty() {
        return p("loss", "needs at least one loss".into());
    }
    let mut entries: Vec<LossEntry> = Vec::new();
    let default = domain.default_loss(model);
    for (n, l) in losses.iter().enumerate() {
        if let Some((k, m)) = l.problems().into_iter().next() {
            return p(&format!("loss[{n}].{k}"), m);
        }
        if l.needs_cosine()
            && model.kg().is_some_and(|(s, _)| {
                !matches!(
                    s,
                    crate::model::KgScore::DistMult | crate::model::KgScore::ComplEx
                )
            })
        {
            return p(
                &format!("loss[{n}]"),
                format!("ccl compares cosines of embeddings: {:?} scores by a distance, use a dot-product model (mf, distmult, complex)", model.name()),
            );
        }
        let named = losses.len() > 1 || *l != default;
        let label = named.then(|| make_filename_safe(&l.label()));
        if entries
            .iter()
            .any(|e| e.config == *l || (label.is_some() && e.label == label))
        {
            return p("loss", format!("loss {:?} is listed twice", l.label()));
        }
        entries.push(LossEntry {
            label,
            config: l.clone(),
        });
    }
    Ok(entries)
}

/// Early stopping needs a validation split and a metric the domain reports.
fn check_early_stopping(
    d: &DomainConfig,
    config: &DomainConfig,
    train: &TrainConfig,
) -> Result<(), Problem> {
    let p = |k: &str, m: String| Err((k.to_string(), m));
    let kind = d.kind.as_str();
    let domain = crate::domain::of(d.kind);
    if !domain.validates() && train.early_stopping.is_some() {
        return p(
            "train.early_stopping",
            format!("{kind} has no validation split (the evaluation is the test): remove train.early_stopping"),
        );
    }
    if let Some(es) = &train.early_stopping {
        let names = domain.early_stopping_metrics(&train.ks);
        if let Some(metric) = &es.metric {
            if !names.contains(metric) {
                return p(
                    "train.early_stopping.metric",
                    format!(
                        "{metric:?} is not reported in a {kind} domain; allowed: {}",
                        names.join(", ")
                    ),
                );
            }
        }
    }
    if train.early_stopping.is_some() {
        let has_valid = match (&config.data, &config.data.file_config(), &d.split) {
            (crate::data::DataConfig::SyntheticKg(c), _, _) => c.valid > 0.0,
            (
                crate::data::DataConfig::SyntheticGraph(_) | crate::data::DataConfig::EdgeList(_),
                _,
                _,
            ) => true,
            (_, Some(f), _) if f.is_given_split() => f.valid.is_some(),
            (_, _, Some(s)) => s.has_validation(),
            _ => false,
        };
        if !has_valid {
            return p(
                "split",
                "train.early_stopping needs a validation split: set `valid` in `split` (or a `valid` file)".into(),
            );
        }
    }
    Ok(())
}
