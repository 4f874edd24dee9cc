//! The embedded interpreter: loads the user's class through `shim.py` and calls it per batch, with
//! nsbench's tensors wrapped as Python tensors of the same libtorch (`THPVariable_Wrap`).

use std::ffi::CString;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};
use rand::RngCore;
use tch::{Device, Kind, Tensor};

use super::context::{check_range, from_py, to_py, Context, Wrap};
use super::PythonConfig;
use crate::data::Dataset;
use crate::error::SamplerError;
use crate::sampler::{Batch, NegativeItems, Negatives, SampleContext, Sampler};

const SHIM: &str = include_str!("shim.py");

/// `THPVariable_Wrap(const at::TensorBase&)` of the loaded `libtorch_python`, after `import torch`.
static WRAP: pyo3::sync::PyOnceLock<Result<usize, String>> = pyo3::sync::PyOnceLock::new();

fn invalid(message: String) -> SamplerError {
    SamplerError::Invalid {
        sampler: "python",
        message,
    }
}

/// The error with its Python traceback.
fn traceback(py: Python<'_>, e: PyErr) -> SamplerError {
    let tb = e
        .traceback(py)
        .and_then(|t| t.format().ok())
        .unwrap_or_default();
    invalid(format!("{tb}{e}"))
}

/// Imports torch (from `NSBENCH_PYTHON_SITE`, the venv's site-packages, when set) and finds the
/// wrapping function in its `libtorch_python`.
fn wrap_fn(py: Python<'_>) -> Result<Wrap, SamplerError> {
    // A GIL-aware cell: a plain OnceLock deadlocks when one cell's thread waits on it holding the GIL
    // while another, inside `import torch`, waits for the GIL.
    let found = WRAP.get_or_init(py, || {
        let run = || -> PyResult<String> {
            if let Ok(site) = std::env::var("NSBENCH_PYTHON_SITE") {
                py.import("site")?.call_method1("addsitedir", (site,))?;
            }
            let torch = py.import("torch")?;
            let file: String = torch.getattr("__file__")?.extract()?;
            let version: String = torch.getattr("__version__")?.extract()?;
            if !version.starts_with("2.13.") {
                return Err(pyo3::exceptions::PyImportError::new_err(format!(
                    "torch {version}: nsbench's libtorch is 2.13, and the two must be one"
                )));
            }
            let dir = std::path::Path::new(&file)
                .parent()
                .unwrap_or(std::path::Path::new("."));
            Ok(dir.join("lib/libtorch_python.so").display().to_string())
        };
        let lib = run().map_err(|e| format!("{e}"))?;
        let c = CString::new(lib.clone()).map_err(|e| e.to_string())?;
        let symbol = CString::new("_Z16THPVariable_WrapRKN2at10TensorBaseE").expect("no NUL");
        // SAFETY: dlopen of a library `import torch` has loaded (RTLD_NOLOAD), and dlsym of a symbol it
        // exports; the handle stays open for the process.
        unsafe {
            let handle = libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
            if handle.is_null() {
                return Err(format!("{lib} is not loaded after import torch"));
            }
            let f = libc::dlsym(handle, symbol.as_ptr());
            if f.is_null() {
                return Err(format!("{lib} has no THPVariable_Wrap"));
            }
            Ok(f as usize)
        }
    });
    match found {
        // SAFETY: the address of THPVariable_Wrap(const at::TensorBase&), whose reference argument is
        // passed as a pointer by the C++ ABI.
        Ok(f) => Ok(unsafe { std::mem::transmute::<usize, Wrap>(*f) }),
        Err(e) => Err(invalid(format!(
            "cannot load torch in the embedded Python: {e}"
        ))),
    }
}

pub struct PythonSampler {
    shim: Py<PyModule>,
    instance: Py<PyAny>,
    pub(super) context: Py<Context>,
    n_items: i64,
}

impl PythonSampler {
    pub fn new(c: &PythonConfig, data: &Dataset) -> Result<PythonSampler, SamplerError> {
        Python::attach(|py| {
            let wrap = wrap_fn(py)?;
            let err = |e| traceback(py, e);
            let code = CString::new(SHIM).expect("no NUL");
            let shim =
                PyModule::from_code(py, &code, c"nsbench_shim.py", c"nsbench_shim").map_err(err)?;
            let params = PyDict::new(py);
            for (k, v) in &c.params {
                params
                    .set_item(k, pythonize(py, v).map_err(err)?)
                    .map_err(err)?;
            }
            let module = format!(
                "nsbench_user_{}",
                &c.source_sha256.get(..12).unwrap_or("sampler")
            );
            let path = c.path.display().to_string();
            let load = (path, c.class.clone(), params, data.n_items, module);
            let instance = shim.call_method1("load", load).map_err(err)?;
            let context = Context::new(py, wrap, data).map_err(err)?;
            Ok(PythonSampler {
                shim: shim.unbind(),
                instance: instance.unbind(),
                context: Py::new(py, context).map_err(err)?,
                n_items: data.n_items as i64,
            })
        })
    }
}

/// A TOML value as a Python object.
fn pythonize<'py>(py: Python<'py>, v: &toml::Value) -> PyResult<Bound<'py, PyAny>> {
    use pyo3::IntoPyObjectExt;
    Ok(match v {
        toml::Value::String(s) => s.into_bound_py_any(py)?,
        toml::Value::Integer(i) => i.into_bound_py_any(py)?,
        toml::Value::Float(f) => f.into_bound_py_any(py)?,
        toml::Value::Boolean(b) => b.into_bound_py_any(py)?,
        toml::Value::Array(a) => {
            let items: Vec<Bound<'py, PyAny>> = a
                .iter()
                .map(|x| pythonize(py, x))
                .collect::<PyResult<_>>()?;
            items.into_bound_py_any(py)?
        }
        other => other.to_string().into_bound_py_any(py)?,
    })
}

impl Sampler for PythonSampler {
    fn name(&self) -> &'static str {
        "python"
    }

    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        let seed = cx.rng.next_u64() >> 1;
        let cpu = |t: &Tensor| t.to_device(Device::Cpu);
        let (queries, positives) = (cpu(batch.queries_t), cpu(batch.positives_t));
        let answer = Python::attach(|py| -> PyResult<Answer> {
            let wrap = wrap_fn(py).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
            let context = self.context.bind(py);
            let _lent = context.get().lend(batch, cx);
            let args = (
                self.instance.bind(py),
                to_py(py, wrap, &queries)?,
                to_py(py, wrap, &positives)?,
                k,
                seed,
                context,
            );
            let returned = self.shim.bind(py).call_method1("call", args)?;
            Answer::read(&returned, self.n_items)
        })
        .map_err(|e| Python::attach(|py| traceback(py, e)))?;
        if let Some(e) = &answer.embeddings {
            // Only now, and only for embeddings: an image encoder's `items` draws augmentations.
            let dim = tch::no_grad(|| cx.model.items(&batch.positives_t.narrow(0, 0, 1)).size()[1]);
            if e.size()[2] != dim {
                return Err(invalid(format!(
                    "sample() returned embeddings of width {}, the model's is {dim}",
                    e.size()[2]
                )));
            }
        }
        Ok(answer.negatives(cx.device))
    }
}

/// What `shim.call` returns, read into nsbench's tensors (each a copy of B × k, or B × k × D).
struct Answer {
    ids: Option<Tensor>,
    embeddings: Option<Tensor>,
    origin: Option<Tensor>,
    weights: Option<Tensor>,
    log_q: Option<Tensor>,
    valid: Option<Tensor>,
}

impl Answer {
    /// The shim's tuple (ids, embeddings, origin, weights, log_q, valid), shapes and dtypes already
    /// checked there; ids checked here against the pool.
    fn read(returned: &Bound<'_, PyAny>, n_items: i64) -> PyResult<Answer> {
        let part = |at: usize, kind: Kind, what: &str| -> PyResult<Option<Tensor>> {
            let value = returned.get_item(at)?;
            if value.is_none() {
                return Ok(None);
            }
            from_py(&value, kind, what).map(Some)
        };
        let answer = Answer {
            ids: part(0, Kind::Int64, "sample()'s ids")?,
            embeddings: part(1, Kind::Float, "sample()'s embeddings")?,
            origin: part(2, Kind::Int64, "sample()'s origin")?,
            weights: part(3, Kind::Float, "sample()'s weights")?,
            log_q: part(4, Kind::Float, "sample()'s log_q")?,
            valid: part(5, Kind::Bool, "sample()'s valid")?,
        };
        for (ids, what) in [
            (&answer.ids, "sample()'s ids"),
            (&answer.origin, "sample()'s origin"),
        ] {
            if let Some(ids) = ids {
                check_range(ids, n_items, what)?;
            }
        }
        Ok(answer)
    }

    fn negatives(self, device: Device) -> Negatives {
        let on = |t: Option<Tensor>| t.map(|t| t.to_device(device));
        let mut negatives = match (on(self.ids), on(self.embeddings)) {
            (Some(ids), _) => Negatives::ids(ids),
            (None, embeddings) => Negatives {
                items: NegativeItems::Embeddings(embeddings.unwrap_or_else(Tensor::new)),
                origin: on(self.origin),
                ..Negatives::ids(Tensor::new())
            },
        };
        negatives.weights = on(self.weights);
        negatives.log_q = on(self.log_q);
        negatives.valid = on(self.valid);
        negatives
    }
}
