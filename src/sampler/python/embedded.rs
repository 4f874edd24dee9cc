//! The embedded interpreter: loads the user's class through `shim.py` and calls it per batch, with
//! nsbench's tensors wrapped as Python tensors of the same libtorch (`THPVariable_Wrap`).

use std::ffi::{c_void, CString};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};
use rand::RngCore;
use tch::{Kind, Tensor};

use super::PythonConfig;
use crate::data::Dataset;
use crate::error::SamplerError;
use crate::model::Similarity;
use crate::sampler::{Batch, Negatives, SampleContext, Sampler};

const SHIM: &str = include_str!("shim.py");

type Wrap = unsafe extern "C" fn(*const c_void) -> *mut pyo3::ffi::PyObject;

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

/// `t` as a Python tensor sharing its storage.
fn to_py<'py>(py: Python<'py>, wrap: Wrap, t: &Tensor) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: a tch tensor pointer is a `torch::Tensor*`, an `at::TensorBase` by single inheritance;
    // THPVariable_Wrap returns a new reference (or null with a Python error set).
    unsafe {
        let obj = wrap(t.as_ptr() as *const c_void);
        Bound::from_owned_ptr_or_err(py, obj)
    }
}

pub struct PythonSampler {
    shim: Py<PyModule>,
    instance: Py<PyAny>,
    known: Tensor,
    n_items: i64,
}

impl PythonSampler {
    pub fn new(c: &PythonConfig, data: &Dataset) -> Result<PythonSampler, SamplerError> {
        let mut keys: Vec<i64> = Vec::new();
        for q in 0..data.n_queries {
            keys.extend(
                data.train_by_query
                    .items(q)
                    .iter()
                    .map(|&i| q as i64 * data.n_items as i64 + i as i64),
            );
        }
        keys.sort_unstable();
        Python::attach(|py| {
            wrap_fn(py)?;
            let code = CString::new(SHIM).expect("no NUL");
            let shim = PyModule::from_code(py, &code, c"nsbench_shim.py", c"nsbench_shim")
                .map_err(|e| traceback(py, e))?;
            let params = PyDict::new(py);
            for (k, v) in &c.params {
                let value = pythonize(py, v).map_err(|e| traceback(py, e))?;
                params.set_item(k, value).map_err(|e| traceback(py, e))?;
            }
            let module = format!(
                "nsbench_user_{}",
                &c.source_sha256.get(..12).unwrap_or("sampler")
            );
            let instance = shim
                .call_method1(
                    "load",
                    (
                        c.path.display().to_string(),
                        c.class.clone(),
                        params,
                        data.n_items,
                        module,
                    ),
                )
                .map_err(|e| traceback(py, e))?;
            Ok(PythonSampler {
                shim: shim.unbind(),
                instance: instance.unbind(),
                known: Tensor::from_slice(&keys),
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

fn similarity_name(s: Similarity) -> &'static str {
    match s {
        Similarity::Dot => "dot",
        Similarity::NegL1 => "l1",
        Similarity::NegL2 => "l2",
        _ => "modulus",
    }
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
        let rows = batch.len() as i64;
        let seed = cx.rng.next_u64() >> 1;
        let (queries_emb, items_emb) = tch::no_grad(|| {
            (
                cx.model.queries(batch.queries_t).detach(),
                cx.model.all_items().detach(),
            )
        });
        let cpu = |t: &Tensor| t.to_device(tch::Device::Cpu);
        let ids = Tensor::zeros([rows, k as i64], (Kind::Int64, tch::Device::Cpu));
        let weights = Tensor::ones([rows, k as i64], (Kind::Float, tch::Device::Cpu));
        let log_q = Tensor::zeros([rows, k as i64], (Kind::Float, tch::Device::Cpu));
        let (has_weights, has_log_q) =
            Python::attach(|py| -> Result<(bool, bool), SamplerError> {
                let wrap = wrap_fn(py)?;
                let err = |e| traceback(py, e);
                let shim = self.shim.bind(py);
                let context = shim
                    .getattr("Context")
                    .and_then(|c| {
                        c.call1((
                            to_py(py, wrap, &cpu(&queries_emb))?,
                            to_py(py, wrap, &cpu(&items_emb))?,
                            similarity_name(cx.model.similarity()),
                            to_py(py, wrap, &self.known)?,
                            self.n_items,
                        ))
                    })
                    .map_err(err)?;
                shim.call_method1(
                    "call",
                    (
                        self.instance.bind(py),
                        to_py(py, wrap, &cpu(batch.queries_t)).map_err(err)?,
                        to_py(py, wrap, &cpu(batch.positives_t)).map_err(err)?,
                        k,
                        seed,
                        context,
                        to_py(py, wrap, &ids).map_err(err)?,
                        to_py(py, wrap, &weights).map_err(err)?,
                        to_py(py, wrap, &log_q).map_err(err)?,
                    ),
                )
                .and_then(|r| r.extract())
                .map_err(err)
            })?;
        let mut negatives = Negatives::ids(ids.to_device(cx.device));
        if has_weights {
            negatives = negatives.with_weights(weights.to_device(cx.device));
        }
        if has_log_q {
            negatives = negatives.with_log_q(Some(log_q.to_device(cx.device)));
        }
        Ok(negatives)
    }
}
