//! The grid: `Suite` → cells, in a fixed nesting order (domains, then samplers, then ratios, then seeds:
//! the seed varies fastest), each with a stable, filename-safe run id and its own random streams.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Domain, SamplerEntry, Suite};
use crate::train::TrainConfig;

/// One cell of the grid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSpec {
    pub suite: String,
    pub domain: Domain,
    pub sampler: SamplerEntry,
    pub ratio: u32,
    pub seed: u64,
    pub train: TrainConfig,
    pub device: String,
}

/// domains × samplers × ratios × seeds, in that nesting order.
pub fn expand(s: &Suite) -> Vec<RunSpec> {
    let mut cells =
        Vec::with_capacity(s.domains.len() * s.samplers.len() * s.ratios.len() * s.seeds.len());
    for domain in &s.domains {
        for sampler in &s.samplers {
            for &ratio in &s.ratios {
                for &seed in &s.seeds {
                    cells.push(RunSpec {
                        suite: s.name.clone(),
                        domain: domain.clone(),
                        sampler: sampler.clone(),
                        ratio,
                        seed,
                        train: s.train.clone(),
                        device: s.device.clone(),
                    });
                }
            }
        }
    }
    cells
}

impl RunSpec {
    /// `<domain kind>-<domain>-<sampler>-r<ratio>-s<seed>`, e.g. `rec-synthetic-popularity-r16-s3`.
    pub fn id(&self) -> String {
        format!(
            "{}-{}-{}-r{}-s{}",
            self.domain.config.kind.as_str(),
            self.domain.name,
            self.sampler.label,
            self.ratio,
            self.seed
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

    /// Digest of everything that determines the cell's results (configuration and data bytes, given as
    /// `data_fingerprint`); a stored cell with another hash is re-run.
    pub fn config_hash(&self, data_fingerprint: &str) -> String {
        let json = serde_json::to_string(self).expect("RunSpec serialises");
        let digest = Sha256::digest(format!("{json}\n{data_fingerprint}"));
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
}
