//! The `context` a Python sampler gets: the current model and the data, served from Rust. The heavy
//! primitives (scoring candidates, drawing uniform candidates without the known positives, looking up
//! known positives) run in nsbench's own code, the one the built-ins use, so a Python sampler built on
//! them pays little more than the built-in does.
//!
//! One `Context` lives as long as its sampler; each `sample()` call lends it the batch and the
//! sampling context (`Lending`), and takes them back when the call returns, however it returns. A
//! method called outside a call raises.

use std::ffi::c_void;
use std::sync::Mutex;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use tch::{Device, Kind, Tensor};

use crate::data::Dataset;
use crate::model::Similarity;
use crate::sampler::{Batch, SampleContext, Uniform, UniformConfig};

/// `THPVariable_Wrap(const at::TensorBase&)` of the loaded `libtorch_python`.
pub(super) type Wrap = unsafe extern "C" fn(*const c_void) -> *mut pyo3::ffi::PyObject;

/// `t` as a Python tensor sharing its storage.
pub(super) fn to_py<'py>(py: Python<'py>, wrap: Wrap, t: &Tensor) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: a tch tensor pointer is a `torch::Tensor*`, an `at::TensorBase` by single inheritance;
    // THPVariable_Wrap returns a new reference (or null with a Python error set).
    unsafe {
        let obj = wrap(t.as_ptr() as *const c_void);
        Bound::from_owned_ptr_or_err(py, obj)
    }
}

/// A Python tensor's memory as a contiguous CPU buffer of one kind, readable in place for as long as
/// the view lives (it holds the tensor, or the converted copy torch made of it).
pub(super) struct HostView<'py> {
    _tensor: Bound<'py, PyAny>,
    ptr: usize,
    pub shape: Vec<i64>,
    kind: Kind,
}

impl<'py> HostView<'py> {
    /// `obj` as a contiguous CPU buffer of `kind` (a no-op for a tensor already so); `what` names it in
    /// errors. Integer and bool kinds refuse floating-point input rather than truncate it.
    pub fn of(obj: &Bound<'py, PyAny>, kind: Kind, what: &str) -> PyResult<HostView<'py>> {
        let py = obj.py();
        let torch = py.import("torch")?;
        if !obj.is_instance(&torch.getattr("Tensor")?)? {
            return Err(PyTypeError::new_err(format!(
                "{what} is a {}, expected a torch.Tensor",
                obj.get_type().name()?
            )));
        }
        let floating: bool = obj
            .getattr("dtype")?
            .getattr("is_floating_point")?
            .extract()?;
        if floating && kind != Kind::Float {
            return Err(PyTypeError::new_err(format!(
                "{what} has dtype {}, expected an integer dtype",
                obj.getattr("dtype")?
            )));
        }
        let dtype = torch.getattr(match kind {
            Kind::Float => "float32",
            Kind::Bool => "bool",
            _ => "int64",
        })?;
        let tensor = obj
            .call_method1("to", ("cpu", dtype))?
            .call_method0("contiguous")?;
        Ok(HostView {
            shape: tensor.getattr("shape")?.extract()?,
            ptr: tensor.call_method0("data_ptr")?.extract()?,
            _tensor: tensor,
            kind,
        })
    }

    fn numel(&self) -> usize {
        self.shape.iter().product::<i64>().max(0) as usize
    }

    /// The elements, when the view holds int64.
    pub fn i64s(&self) -> &[i64] {
        assert_eq!(self.kind, Kind::Int64, "an int64 view");
        if self.numel() == 0 {
            return &[];
        }
        // SAFETY: a contiguous CPU int64 tensor of numel elements, held alive by `_tensor`.
        unsafe { std::slice::from_raw_parts(self.ptr as *const i64, self.numel()) }
    }

    /// A copy owned by nsbench.
    pub fn to_tensor(&self) -> PyResult<Tensor> {
        if self.numel() == 0 {
            return Ok(Tensor::zeros(&self.shape, (self.kind, Device::Cpu)));
        }
        // SAFETY: as in `i64s`, for the view's own kind.
        let view = unsafe {
            Tensor::f_from_blob(
                self.ptr as *const u8,
                &self.shape,
                &[],
                self.kind,
                Device::Cpu,
            )
        }
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(view.copy())
    }
}

/// A copy of the Python tensor `obj` as a contiguous CPU tensor of `kind`.
pub(super) fn from_py(obj: &Bound<'_, PyAny>, kind: Kind, what: &str) -> PyResult<Tensor> {
    HostView::of(obj, kind, what)?.to_tensor()
}

/// What one `sample()` call lends the context.
#[derive(Clone, Copy)]
struct Lent {
    batch: *const Batch<'static>,
    cx: *mut SampleContext<'static>,
}

// SAFETY: the pointers are dereferenced only while lent, by the lending thread, which holds the GIL
// through the whole call (`Lending` takes them back before `sample` returns).
unsafe impl Send for Lent {}

#[pyclass(frozen, name = "Context", module = "nsbench")]
pub(super) struct Context {
    lent: Mutex<Option<Lent>>,
    /// Candidate ids as u32, reused from call to call.
    scratch: Mutex<Vec<u32>>,
    wrap: Wrap,
    /// Uniform draws with the known positives redrawn; its known positives serve `is_known`.
    uniform: Uniform,
    n_items: i64,
    n_queries: i64,
    known_keys: Py<PyAny>,
    item_counts: Py<PyAny>,
}

/// Lends a batch to the context for one call; takes it back when dropped.
pub(super) struct Lending<'c> {
    context: &'c Context,
}

impl Drop for Lending<'_> {
    fn drop(&mut self) {
        *self.context.lent.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

fn runtime(message: &str) -> PyErr {
    PyRuntimeError::new_err(message.to_string())
}

impl Context {
    pub(super) fn new(py: Python<'_>, wrap: Wrap, data: &Dataset) -> PyResult<Context> {
        let n = data.n_items;
        let mut keys: Vec<i64> = Vec::new();
        let mut counts = vec![0i64; n];
        for q in 0..data.n_queries {
            for &i in data.train_by_query.items(q) {
                keys.push((q * n + i as usize) as i64);
                counts[i as usize] += 1;
            }
        }
        keys.sort_unstable();
        let exclude = UniformConfig {
            exclude_positives: true,
        };
        Ok(Context {
            lent: Mutex::new(None),
            scratch: Mutex::new(Vec::new()),
            wrap,
            uniform: Uniform::new(&exclude, data),
            n_items: n as i64,
            n_queries: data.n_queries as i64,
            known_keys: to_py(py, wrap, &Tensor::from_slice(&keys))?.unbind(),
            item_counts: to_py(py, wrap, &Tensor::from_slice(&counts))?.unbind(),
        })
    }

    /// Lends `batch` and `cx` until the returned guard drops.
    pub(super) fn lend<'c>(&'c self, batch: &Batch, cx: &mut SampleContext) -> Lending<'c> {
        let lent = Lent {
            batch: (batch as *const Batch).cast::<Batch<'static>>(),
            cx: (cx as *mut SampleContext).cast::<SampleContext<'static>>(),
        };
        *self.lent.lock().unwrap_or_else(|e| e.into_inner()) = Some(lent);
        Lending { context: self }
    }

    fn with_lent<R>(
        &self,
        f: impl FnOnce(&Batch, &mut SampleContext) -> PyResult<R>,
    ) -> PyResult<R> {
        let guard = self
            .lent
            .try_lock()
            .map_err(|_| runtime("the context was called from inside one of its own calls"))?;
        let lent = guard
            .as_ref()
            .ok_or_else(|| runtime("the context is valid only inside sample()"))?;
        // SAFETY: lent by `lend` for the call in progress on this thread (see `Lent`); the lock makes
        // this the only reference while `f` runs.
        let (batch, cx) = unsafe { (&*lent.batch, &mut *lent.cx) };
        f(batch, cx)
    }

    /// The candidate ids of `view`, (rows, M) or (rows), checked to name candidates of the pool and
    /// written as u32 into `out`; returns M.
    fn candidate_ids(
        &self,
        view: &HostView,
        rows: usize,
        what: &str,
        out: &mut Vec<u32>,
    ) -> PyResult<usize> {
        let shape = &view.shape;
        if shape.first() != Some(&(rows as i64)) || shape.len() > 2 {
            return Err(PyValueError::new_err(format!(
                "{what} has shape {shape:?}, expected ({rows}, M): one row per positive of the batch"
            )));
        }
        out.clear();
        let n = self.n_items;
        for &id in view.i64s() {
            if !(0..n).contains(&id) {
                return Err(PyValueError::new_err(format!(
                    "{what} holds the id {id}, outside the pool 0..{n}"
                )));
            }
            out.push(id as u32);
        }
        Ok(shape.get(1).copied().unwrap_or(1) as usize)
    }

    fn cpu_to_py<'py>(&self, py: Python<'py>, t: &Tensor) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, self.wrap, &t.detach().to_device(Device::Cpu))
    }
}

/// Every id of `ids` within 0..n.
pub(super) fn check_range(ids: &Tensor, n: i64, what: &str) -> PyResult<()> {
    if ids.numel() == 0 {
        return Ok(());
    }
    let (low, high) = (i64::try_from(ids.min()), i64::try_from(ids.max()));
    match (low, high) {
        (Ok(low), Ok(high)) if low >= 0 && high < n => Ok(()),
        (Ok(low), Ok(high)) => Err(PyValueError::new_err(format!(
            "{what} holds ids {low}..={high}, outside the pool 0..{n}"
        ))),
        _ => Err(PyValueError::new_err(format!(
            "{what}: cannot read its ids"
        ))),
    }
}

fn similarity_name(s: Similarity) -> &'static str {
    match s {
        Similarity::Dot => "dot",
        Similarity::NegL1 => "l1",
        Similarity::NegL2 => "l2",
        _ => "modulus",
    }
}

#[pymethods]
impl Context {
    /// The pool size: candidate ids are 0..n_items.
    #[getter]
    fn n_items(&self) -> i64 {
        self.n_items
    }

    /// How the model scores a query against a candidate: "dot", "l1", "l2" or "modulus".
    #[getter]
    fn similarity(&self) -> PyResult<&'static str> {
        self.with_lent(|_, cx| Ok(similarity_name(cx.model.similarity())))
    }

    /// query * n_items + item of every training pair, sorted (int64).
    #[getter]
    fn known_keys(&self, py: Python<'_>) -> Py<PyAny> {
        self.known_keys.clone_ref(py)
    }

    /// Training positives per candidate, (n_items) int64.
    #[getter]
    fn item_counts(&self, py: Python<'_>) -> Py<PyAny> {
        self.item_counts.clone_ref(py)
    }

    /// The current epoch (from 1), the epochs the training runs, and the steps taken so far.
    #[getter]
    fn epoch(&self) -> PyResult<u32> {
        self.with_lent(|_, cx| Ok(cx.epoch))
    }

    #[getter]
    fn epochs(&self) -> PyResult<u32> {
        self.with_lent(|_, cx| Ok(cx.epochs))
    }

    #[getter]
    fn step(&self) -> PyResult<u64> {
        self.with_lent(|_, cx| Ok(cx.step))
    }

    /// The batch's query embeddings under the current model, (B, D); computed at each access.
    #[getter]
    fn query_embeddings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.with_lent(|batch, cx| {
            let t = tch::no_grad(|| cx.model.queries(batch.queries_t));
            self.cpu_to_py(py, &t)
        })
    }

    /// Every candidate's embedding under the current model, (N, D); computed at each access.
    #[getter]
    fn item_embeddings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.with_lent(|_, cx| {
            let t = tch::no_grad(|| cx.model.all_items());
            self.cpu_to_py(py, &t)
        })
    }

    /// The model's score of each row's query against candidate ids (B, M) → (B, M) float32.
    fn score<'py>(
        &self,
        py: Python<'py>,
        candidates: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.with_lent(|batch, cx| {
            let what = "score()'s candidates";
            let view = HostView::of(candidates, Kind::Int64, what)?;
            let mut ids = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
            let width = self.candidate_ids(&view, batch.len(), what, &mut ids)?;
            let scores = match cx.model.host_tables() {
                // Straight from the embedding tables, as the built-in candidate samplers score.
                Some(tables) => {
                    let scores = Tensor::empty(
                        [batch.len() as i64, width as i64],
                        (Kind::Float, Device::Cpu),
                    );
                    // SAFETY: a fresh contiguous CPU tensor of B·M f32s that nothing else references.
                    let out = unsafe {
                        std::slice::from_raw_parts_mut(scores.data_ptr() as *mut f32, ids.len())
                    };
                    let rows = ids
                        .chunks_exact(width.max(1))
                        .zip(out.chunks_exact_mut(width.max(1)));
                    for (&q, (row, row_out)) in batch.queries.iter().zip(rows) {
                        tables.score_row(q as usize, row, row_out);
                    }
                    scores
                }
                None => {
                    let ids = view.to_tensor()?.view([batch.len() as i64, width as i64]);
                    let _no_grad = tch::no_grad_guard();
                    cx.model
                        .score_candidates(batch.queries_t, &ids.to_device(cx.device))
                        .map_err(|e| PyRuntimeError::new_err(format!("score(): {e}")))?
                }
            };
            self.cpu_to_py(py, &scores)
        })
    }

    /// m candidates per row (B, m) int64, uniform over the pool with the row's known positives
    /// redrawn, from the cell's sampler stream: the draw the built-in candidate samplers start from.
    fn uniform<'py>(&self, py: Python<'py>, m: usize) -> PyResult<Bound<'py, PyAny>> {
        self.with_lent(|batch, cx| {
            let ids = self.uniform.draw(batch, m, cx);
            self.cpu_to_py(py, &ids)
        })
    }

    /// Whether each candidate (B, M) is a training positive of its row's query (B), as bool (B, M).
    fn is_known<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        candidates: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let queries = HostView::of(queries, Kind::Int64, "is_known()'s queries")?;
        if queries.shape.len() != 1 {
            return Err(PyValueError::new_err(
                "is_known()'s queries must be one-dimensional",
            ));
        }
        let what = "is_known()'s candidates";
        let view = HostView::of(candidates, Kind::Int64, what)?;
        let mut ids = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        let width = self.candidate_ids(&view, queries.shape[0] as usize, what, &mut ids)?;
        let known = self.uniform.known().expect("built with exclude_positives");
        let flags: Vec<bool> = ids
            .chunks_exact(width.max(1))
            .zip(queries.i64s())
            .flat_map(|(row, &q)| {
                let ok = (0..self.n_queries).contains(&q);
                row.iter()
                    .map(move |&i| ok && known.contains(q as usize, i))
            })
            .collect();
        to_py(
            py,
            self.wrap,
            &Tensor::from_slice(&flags).view(view.shape.as_slice()),
        )
    }
}
