//! Error types of each layer. Each message names the file, the key or line, what was wrong and what is
//! allowed, so the user can fix the input without reading the code.

use std::path::PathBuf;

/// A suite file that cannot be read, parsed or validated. Always the user's input: exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("cannot read suite file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path} [{key}]: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// A data file that is missing or malformed. Always the user's input: exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read data file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
}

/// A sampler that cannot be built or cannot draw.
#[derive(Debug, thiserror::Error)]
pub enum SamplerError {
    #[error("sampler {sampler}: {message}")]
    Invalid {
        sampler: &'static str,
        message: String,
    },
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// Stored results that cannot be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Polars {
        path: PathBuf,
        source: polars::error::PolarsError,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// Another process holds the results directory: the user's to resolve (exit code 2).
    #[error("{message}")]
    Busy { path: PathBuf, message: String },
}

/// Training that cannot go on: the cell is recorded as failed, with the epoch.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("diverged at epoch {epoch}: {what}")]
    Diverged { epoch: u32, what: String },
    /// An evaluation gave a metric that is no number: never stored as a result.
    #[error("the {split} evaluation at epoch {epoch} gave {metric} = {value}: a non-finite metric is no result")]
    NonFiniteMetric {
        epoch: u32,
        split: &'static str,
        metric: String,
        value: f64,
    },
}

/// A grid that cannot fit in memory: refused before anything trains (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ResourceError {
    pub message: String,
}

/// True when the error (or anything in its chain) is bad user input rather than a failure of nsbench:
/// such errors exit with code 2.
pub fn is_user_error(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.is::<SuiteError>()
            || e.is::<DataError>()
            || e.is::<ResourceError>()
            || matches!(
                e.downcast_ref::<StoreError>(),
                Some(StoreError::Invalid { .. } | StoreError::Busy { .. })
            )
            || matches!(
                e.downcast_ref::<SamplerError>(),
                Some(SamplerError::Invalid { .. })
            )
    })
}
