//! The grid: `Suite` → cells, in a fixed nesting order (domains, then samplers, then ratios, then seeds:
//! the seed varies fastest), each with a stable, filename-safe run id and its own random streams.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Domain, SamplerEntry, Suite};
use crate::train::{LossConfig, TrainConfig};

/// One cell of the grid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSpec {
    pub suite: String,
    pub domain: Domain,
    pub sampler: SamplerEntry,
    /// The loss the cell trains under.
    pub loss: LossConfig,
    /// How the id names the loss (`None`: the domain's single default loss, unnamed).
    #[serde(skip)]
    pub loss_label: Option<String>,
    /// Negatives per positive; `ALL` (0) for a sampler that takes every candidate (shown as `all`).
    pub ratio: u32,
    pub seed: u64,
    pub train: TrainConfig,
    /// The device the cell trains on (after `--device`), normalised (`cuda` is `cuda:0`).
    pub device: String,
}

/// The ratio of a ratio-free sampler (every candidate is a negative), shown as `all`.
pub const ALL: u32 = 0;

/// A ratio as ids, tables and plots show it: the number, or `all`.
pub fn ratio_label(ratio: u32) -> String {
    if ratio == ALL {
        "all".into()
    } else {
        ratio.to_string()
    }
}

/// domains × losses × samplers × ratios × seeds, in that nesting order, on the suite's device. A ratio-free
/// sampler (`full`) gets one cell per seed, with ratio `all`, instead of identical cells per ratio.
pub fn expand(s: &Suite) -> Vec<RunSpec> {
    expand_on(s, &s.device)
}

/// `expand` with the cells placed on `device` (the `--device` flag wins over the suite).
pub fn expand_on(s: &Suite, device: &str) -> Vec<RunSpec> {
    let device = normalise_device(device);
    let mut cells =
        Vec::with_capacity(s.domains.len() * s.samplers.len() * s.ratios.len() * s.seeds.len());
    let mut train = s.train.clone();
    // Each cell carries its own loss: the axis itself is not part of any cell's configuration.
    train.loss = None;
    for domain in &s.domains {
        for (nth_loss, loss) in domain.losses.iter().enumerate() {
            for sampler in &s.samplers {
                // A sampler that brings its own loss runs once per domain, unnamed by the axis.
                let own_loss = sampler.config.info().own_loss.is_some();
                if own_loss && nth_loss > 0 {
                    continue;
                }
                let loss_label = if own_loss { None } else { loss.label.clone() };
                let ratios = if sampler.config.ratio_free_under(&loss.config) {
                    vec![ALL]
                } else {
                    s.ratios.clone()
                };
                for &ratio in &ratios {
                    for seed in seeds_of(s, &domain.name, &sampler.label, &loss_label, ratio) {
                        cells.push(RunSpec {
                            suite: s.name.clone(),
                            domain: domain.clone(),
                            sampler: sampler.clone(),
                            loss: loss.config.clone(),
                            loss_label: loss_label.clone(),
                            ratio,
                            seed,
                            train: train.clone(),
                            device: device.clone(),
                        });
                    }
                }
            }
        }
    }
    cells
}

/// The seeds of one (domain, sampler, loss, k): the suite's, then any extra ones it got
/// (`--until-decided`), in order, once each.
fn seeds_of(s: &Suite, domain: &str, sampler: &str, loss: &Option<String>, ratio: u32) -> Vec<u64> {
    let mut seeds = s.seeds.clone();
    for e in &s.extra_seeds {
        if e.domain == domain && e.sampler == sampler && e.loss == *loss && e.ratio == ratio {
            seeds.extend(e.seeds.iter().filter(|x| !s.seeds.contains(x)));
        }
    }
    let mut seen = std::collections::HashSet::new();
    seeds.retain(|x| seen.insert(*x));
    seeds
}

/// `cuda` and `cuda:0` are one device; everything else as given.
fn normalise_device(device: &str) -> String {
    if device == "cuda" {
        "cuda:0".into()
    } else {
        device.into()
    }
}

impl RunSpec {
    /// `<domain kind>-<domain>-<sampler>[-<loss>]-r<ratio>-s<seed>`, e.g.
    /// `rec-synthetic-popularity-r16-s3` or `kg-nations-uniform-nssa-r4-s0` (`-rall-` for a ratio-free
    /// sampler). The loss is named when the domain has several, or one that is not its default.
    pub fn id(&self) -> String {
        let loss = self
            .loss_label
            .as_ref()
            .map(|l| format!("-{l}"))
            .unwrap_or_default();
        format!(
            "{}-{}-{}{loss}-r{}-s{}",
            self.domain.config.kind.as_str(),
            self.domain.name,
            self.sampler.label,
            ratio_label(self.ratio),
            self.seed
        )
    }

    /// The cell's model (the domain's, resolved at validation).
    pub fn model(&self) -> crate::model::ModelConfig {
        self.domain.config.model()
    }

    /// The behaviour versions of every piece of code that shapes this cell's results. Each is bumped
    /// when a change alters behaviour, so stored cells of the old code run again and others stay.
    pub fn behaviour(&self) -> String {
        let c = &self.domain.config;
        format!(
            "sampler {} v{}; model {} v{}; loss {} v{}; train v{}; eval v{}; data {} v{}; split v{}",
            self.sampler.config.kind(),
            self.sampler.config.info().version,
            self.model().name(),
            self.model().version(),
            self.loss.kind(),
            crate::loss::VERSION,
            crate::train::version(&self.train),
            crate::metrics::version(c.kind.as_str()),
            c.data.format(),
            c.data.version(),
            crate::data::SPLIT_VERSION,
        )
    }

    /// The seed of one named random stream. The data, the model's initialisation and the batch order
    /// depend on (suite, domain, seed) only, so every sampler and ratio of a seed starts from the same
    /// data, the same initial model and the same batches (paired comparisons); the sampler's stream
    /// depends on the whole cell.
    pub fn stream_seed(&self, stream: &str) -> u64 {
        let scope = match stream {
            "sampler" => self.id(),
            _ => format!("{}-{}", self.domain.config.kind.as_str(), self.domain.name),
        };
        let digest = Sha256::digest(format!(
            "nsbench/{}/{}/{}/{}",
            self.suite, scope, self.seed, stream
        ));
        u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
    }

    /// Digest of everything that determines the cell's results: the configuration (with the device it
    /// trains on), the behaviour versions of the code, and the data's bytes (`data_fingerprint`), but not
    /// how a data path is spelled. A stored cell with another hash is run again.
    pub fn config_hash(&self, data_fingerprint: &str) -> String {
        self.config_hash_with(data_fingerprint, &self.behaviour())
    }

    /// `config_hash` with the behaviour versions given (tests change them).
    pub fn config_hash_with(&self, data_fingerprint: &str, behaviour: &str) -> String {
        let mut value = serde_json::to_value(self).expect("RunSpec serialises");
        if let Some(data) = value
            .pointer_mut("/domain/config/data")
            .and_then(|d| d.as_object_mut())
        {
            // The files enter through their bytes (the fingerprint), not their paths: every key the data
            // reads files from goes, a list of paths (text's `similarity`) as well as one (vision's
            // `labels`). A generator's `valid` and `test` are shares, read from no file: they stay.
            for (key, _) in self.domain.config.data.files() {
                data.remove(key);
            }
        }
        let digest = Sha256::digest(format!("{value}\n{behaviour}\n{data_fingerprint}"));
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::SuiteFile;
    use std::path::Path;

    fn suite(text: &str) -> Suite {
        SuiteFile::parse(text, Path::new("t.toml"))
            .unwrap()
            .check(Path::new("t.toml"))
            .unwrap()
    }

    const GRID_2X2X2X2: &str = r#"
        suite = { name = "t", seeds = [0, 1], ratios = [1, 4] }
        [[domain]]
        kind = "rec"
        name = "a"
        data = { format = "synthetic" }
        [[domain]]
        kind = "rec"
        name = "b"
        data = { format = "synthetic", users = 10 }
        [[sampler]]
        kind = "uniform"
        [[sampler]]
        kind = "popularity"
    "#;

    #[test]
    fn expands_in_the_documented_order() {
        let ids: Vec<String> = expand(&suite(GRID_2X2X2X2))
            .iter()
            .map(|c| c.id())
            .collect();
        let mut expected = Vec::new();
        for d in ["a", "b"] {
            for s in ["uniform", "popularity"] {
                for r in [1, 4] {
                    for seed in [0, 1] {
                        expected.push(format!("rec-{d}-{s}-r{r}-s{seed}"));
                    }
                }
            }
        }
        assert_eq!(ids, expected);
    }

    #[test]
    fn streams_are_shared_where_documented_and_distinct_elsewhere() {
        let cells = expand(&suite(GRID_2X2X2X2));
        let (a0, a1, pop) = (&cells[0], &cells[1], &cells[4]);
        assert_eq!(
            a0.stream_seed("data"),
            pop.stream_seed("data"),
            "same domain and seed: same data"
        );
        assert_ne!(
            a0.stream_seed("data"),
            a1.stream_seed("data"),
            "another seed: other data"
        );
        assert_ne!(a0.stream_seed("sampler"), pop.stream_seed("sampler"));
        assert_ne!(a0.stream_seed("data"), a0.stream_seed("init"));
        assert_eq!(
            a0.stream_seed("sampler"),
            expand(&suite(GRID_2X2X2X2))[0].stream_seed("sampler")
        );
    }

    #[test]
    fn the_hash_changes_with_the_configuration_and_the_data() {
        let cells = expand(&suite(GRID_2X2X2X2));
        let h = cells[0].config_hash("x");
        assert_eq!(h, cells[0].config_hash("x"));
        assert_ne!(h, cells[0].config_hash("y"));
        let mut changed = cells[0].clone();
        changed.train.epochs += 1;
        assert_ne!(h, changed.config_hash("x"));
    }

    #[test]
    fn the_hash_covers_the_device_used_and_not_how_a_data_path_is_spelled() {
        let s = suite(GRID_2X2X2X2);
        let (cpu, cuda) = (expand_on(&s, "cpu"), expand_on(&s, "cuda"));
        assert_ne!(cpu[0].config_hash("x"), cuda[0].config_hash("x"));
        assert_eq!(
            cuda[0].config_hash("x"),
            expand_on(&s, "cuda:0")[0].config_hash("x")
        );
        let with_path = |p: &str| {
            let text = format!(
                "suite = {{ name = \"t\", seeds = [0], ratios = [1] }}\n[[domain]]\nkind = \"rec\"\n\
                 name = \"d\"\ndata = {{ format = \"movielens\", path = \"{p}\" }}\n\
                 [[sampler]]\nkind = \"uniform\"\n"
            );
            let file = SuiteFile::parse(&text, Path::new("t.toml")).unwrap();
            // Validation resolves the path against the suite's folder; the hash must not see it.
            let mut spec = expand(&Suite {
                domains: vec![crate::suite::Domain {
                    name: "d".into(),
                    config: file.domains[0].clone(),
                    losses: s.domains[0].losses.clone(),
                }],
                ..s.clone()
            })
            .remove(0);
            spec.sampler = s.samplers[0].clone();
            spec
        };
        assert_eq!(
            with_path("suites/u.data").config_hash("bytes"),
            with_path("./suites/../suites/u.data").config_hash("bytes")
        );
    }

    #[test]
    fn lists_of_files_and_label_files_enter_the_hash_by_their_bytes_not_their_spelling() {
        let cell = |data: &str, kind: &str| {
            let text = format!(
                "suite = {{ name = \"t\", seeds = [0], ratios = [1] }}\n[[domain]]\nkind = \"{kind}\"\n\
                 name = \"d\"\ndata = {data}\n[[sampler]]\nkind = \"uniform\"\n"
            );
            let file = SuiteFile::parse(&text, Path::new("t.toml")).unwrap();
            let mut spec = expand(&suite(GRID_2X2X2X2)).remove(0);
            spec.domain.config = file.domains[0].clone();
            spec.config_hash("bytes")
        };
        let corpus = |p: &str| {
            format!("{{ format = \"corpus\", path = \"c.txt\", similarity = [\"{p}ws.tsv\", \"{p}sl.txt\"] }}")
        };
        assert_eq!(cell(&corpus(""), "text"), cell(&corpus("./x/../"), "text"));
        let images = |p: &str| {
            format!("{{ format = \"images\", path = \"x.npy\", height = 8, width = 8, labels = \"{p}y.npy\" }}")
        };
        assert_eq!(cell(&images(""), "vision"), cell(&images("./"), "vision"));
    }

    #[test]
    fn a_behaviour_version_bump_changes_only_the_cells_it_concerns() {
        let cells = expand(&suite(GRID_2X2X2X2));
        let (uniform, popularity) = (&cells[0], &cells[4]);
        assert!(uniform.behaviour().contains("sampler uniform v"));
        let bumped = |c: &RunSpec, kind: &str| {
            let b = c.behaviour();
            let v = crate::sampler::info(kind).unwrap().version;
            let from = format!("sampler {kind} v{v};");
            c.config_hash_with(
                "x",
                &b.replace(&from, &format!("sampler {kind} v{};", v + 1)),
            )
        };
        assert_ne!(
            bumped(popularity, "popularity"),
            popularity.config_hash("x")
        );
        assert_eq!(bumped(uniform, "popularity"), uniform.config_hash("x"));
    }

    #[test]
    fn a_ratio_free_sampler_runs_once_per_seed_with_ratio_all() {
        let text = GRID_2X2X2X2.replace("kind = \"popularity\"", "kind = \"full\"");
        let ids: Vec<String> = expand(&suite(&text)).iter().map(|c| c.id()).collect();
        assert_eq!(ids.len(), 2 * (4 + 2));
        assert!(ids.contains(&"rec-a-full-rall-s1".to_string()), "{ids:?}");
        assert!(!ids.iter().any(|id| id.contains("full-r1")));
    }

    #[test]
    fn a_list_of_losses_is_an_axis_named_in_ids_and_the_whole_batch_is_ratio_free_under_softmax() {
        let text = GRID_2X2X2X2
            .replace("kind = \"popularity\"", "kind = \"in-batch\"")
            .replace(
                "suite = { name = \"t\", seeds = [0, 1], ratios = [1, 4] }",
                "suite = { name = \"t\", seeds = [0, 1], ratios = [1, 4] }\n[train]\nloss = [\"bpr\", { kind = \"softmax\", temperature = 0.1 }]",
            );
        let cells = expand(&suite(&text));
        let ids: Vec<String> = cells.iter().map(|c| c.id()).collect();
        // Per domain: bpr (uniform 4 + in-batch 4) and softmax (uniform 4 + in-batch once per seed).
        assert_eq!(ids.len(), 2 * (8 + 4 + 2), "{ids:?}");
        assert!(
            ids.contains(&"rec-a-uniform-bpr-r4-s1".to_string()),
            "{ids:?}"
        );
        assert!(
            ids.contains(&"rec-a-in-batch-softmax-t0.1-rall-s0".to_string()),
            "{ids:?}"
        );
        assert!(!ids.iter().any(|id| id.contains("in-batch-softmax-t0.1-r1")));
        // Paired: the data, initialisation and batches do not depend on the loss; the sampler's stream does.
        let by_id = |id: &str| cells.iter().find(|c| c.id() == id).unwrap();
        let (bpr, softmax) = (
            by_id("rec-a-uniform-bpr-r4-s1"),
            by_id("rec-a-uniform-softmax-t0.1-r4-s1"),
        );
        assert_eq!(bpr.stream_seed("init"), softmax.stream_seed("init"));
        assert_ne!(bpr.stream_seed("sampler"), softmax.stream_seed("sampler"));
        assert_ne!(bpr.config_hash("x"), softmax.config_hash("x"));
        // A sampler that brings its own loss (the debiased loss) runs once, whatever the axis.
        let own = expand(&suite(
            &text.replace("kind = \"uniform\"", "kind = \"debiased\""),
        ));
        let debiased: Vec<String> = own
            .iter()
            .map(|c| c.id())
            .filter(|id| id.contains("debiased"))
            .collect();
        assert_eq!(debiased.len(), 2 * 2 * 2, "{debiased:?}");
        assert!(
            debiased.contains(&"rec-b-debiased-r4-s0".to_string()),
            "{debiased:?}"
        );
        // A single default loss is not named: the ids of a plain suite do not change.
        assert!(expand(&suite(GRID_2X2X2X2))[0].id() == "rec-a-uniform-r1-s0");
    }
}
