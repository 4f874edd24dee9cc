//! `[[sampler]] kind = "python"`: a sampler written in Python with PyTorch, measured like the built-ins.
//!
//! The class at `path` (`class`, default `Sampler`) is built once per cell with `params` and the pool
//! size, `n_items`; each batch it gets the queries and positives (int64 tensors), k, a `torch.Generator`
//! seeded from the cell's sampler stream, and a `context` (`context.rs`) that serves, from nsbench's own
//! code, uniform candidates without the known positives, the model's scores of candidates, known-positive
//! lookups, the embeddings and the training clock. It returns (B, k) ids, or a dict with `ids` or
//! `embeddings` and, optionally, `weights`, `log_q`, `valid` and `origin` (`shim.py` checks them). Tensors
//! cross without copies: Rust's tensors are wrapped as Python tensors of the same libtorch (nsbench and
//! the Python torch 2.13 share one libtorch in one process); the answer is copied into Rust-owned tensors
//! of B × k (a few kB).
//!
//! A sampler that breaks the contract (`contract.rs`) never enters a grid: the runner checks it first.
//!
//! The file's bytes (`source_sha256`, filled by the suite check) and the parameters enter the cell's
//! configuration hash. Errors in the user's Python fail the cell with the Python traceback.
//!
//! Built only with `--features python` (`scripts/setup-python.sh`): without it, a suite with a Python
//! sampler stops before training and says how to build it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape, ALL_DOMAINS};
use super::Sampler;
use crate::data::Dataset;
use crate::error::SamplerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PythonConfig {
    /// The Python file (relative to the suite file).
    pub path: PathBuf,
    /// The class in it.
    pub class: String,
    /// Keyword arguments of the class.
    #[serde(skip_serializing_if = "toml::Table::is_empty")]
    pub params: toml::Table,
    /// SHA-256 of the file's bytes (the suite check fills it: a changed file reruns its cells).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source_sha256: String,
}

impl Default for PythonConfig {
    fn default() -> Self {
        PythonConfig {
            path: PathBuf::new(),
            class: "Sampler".into(),
            params: toml::Table::new(),
            source_sha256: String::new(),
        }
    }
}

impl DeclaredSampler for PythonConfig {
    const INFO: SamplerInfo = SamplerInfo {
        kind: "python",
        family: "user",
        needs: "what the Python class reads (embeddings, scores, known positives)",
        description: "a sampler written in Python with PyTorch (built with --features python); \
                      path = the file, class = Sampler, params = its keyword arguments",
        version: 2,
        same_at_k1: None,
        ratio_free: false,
        domains: ALL_DOMAINS,
        own_loss: None,
        per_pair: true,
        cost: Cost {
            at_k1: 1.5,
            per_extra_negative: 0.3,
        },
    };

    fn tag(&self) -> String {
        format!("py-{}", self.class.to_lowercase())
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        if self.path.as_os_str().is_empty() {
            return vec![("path", "give the Python file of the sampler".into())];
        }
        if self.class.is_empty() {
            return vec![("class", "give the class in the file".into())];
        }
        Vec::new()
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        build(self, data)
    }

    /// What the Python class holds is its own; nsbench adds the per-batch ids.
    fn memory(&self, _: &Shape) -> Vec<(String, f64)> {
        Vec::new()
    }
}

impl PythonConfig {
    /// The config with its path resolved against `dir` and the file's digest filled in.
    pub fn resolved(&self, dir: &std::path::Path) -> Result<PythonConfig, String> {
        use sha2::{Digest, Sha256};
        let path = crate::data::resolve_path(dir, &self.path);
        let bytes = std::fs::read(&path)
            .map_err(|e| format!("cannot read the Python file {}: {e}", path.display()))?;
        Ok(PythonConfig {
            path,
            source_sha256: format!("{:x}", Sha256::digest(&bytes)),
            ..self.clone()
        })
    }
}

#[cfg(not(feature = "python"))]
fn build(c: &PythonConfig, _: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
    Err(SamplerError::Invalid {
        sampler: "python",
        message: format!(
            "{}: this nsbench was built without Python samplers; run scripts/setup-python.sh, \
             which builds it with --features python",
            c.path.display()
        ),
    })
}

#[cfg(feature = "python")]
fn build(c: &PythonConfig, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
    embedded::PythonSampler::new(c, data).map(|s| Box::new(s) as Box<dyn Sampler>)
}

#[cfg(feature = "python")]
mod context;
#[cfg(feature = "python")]
mod embedded;
#[cfg(all(test, feature = "python"))]
mod tests;
