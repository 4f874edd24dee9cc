# Sourced by the side-by-side scripts: `python_env CHECK PACKAGES` sets PY to a Python interpreter that
# runs CHECK (e.g. "import torch, numpy"). NSBENCH_PYTHON names one to use as it is; otherwise the
# virtual environment NSBENCH_VENV (default .venv in the checkout) is created with PACKAGES from PyPI on
# first use. An existing directory that is not a virtual environment is never turned into one.
python_env() {
  local check="$1" packages="$2"
  if [ -n "${NSBENCH_PYTHON:-}" ]; then
    PY="$NSBENCH_PYTHON"
    "$PY" -c "$check" || { echo "NSBENCH_PYTHON=$PY cannot run: $check" >&2; exit 2; }
    return
  fi
  local venv="${NSBENCH_VENV:-$ROOT/.venv}"
  PY="$venv/bin/python"
  if ! "$PY" -c "$check" 2>/dev/null; then
    if [ -e "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ]; then
      echo "$venv exists and is not a Python virtual environment: set NSBENCH_VENV to a new directory," \
        "or NSBENCH_PYTHON to an interpreter that can run: $check" >&2
      exit 2
    fi
    echo "Creating $venv with $packages (once; torch is several GB)..."
    python3 -m venv "$venv"
    # shellcheck disable=SC2086 # the package list is meant to split
    "$venv/bin/pip" install -q $packages
  fi
}
