#!/usr/bin/env bash
# One-time setup: a CPU-only libtorch 2.13.0 (the version tch 0.26 expects) in <repo>/.libtorch, built
# from PyPI wheels because download.pytorch.org is not always reachable. Idempotent; needs python3 + pip.
# Skipped when the user points LIBTORCH at a libtorch of their own (e.g. a CUDA build).
#
# The PyPI torch wheel is a CUDA build: libtorch_cpu.so links libcudart.so.13 and libcupti.so.13, so those
# two small NVIDIA runtime libraries (~5 MB) are taken as well; no libtorch_cuda*, so tch links CPU only.
set -euo pipefail
VER=2.13.0
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${LIBTORCH_DEST:-$ROOT/.libtorch}"
if [[ -n "${LIBTORCH:-}" && "${LIBTORCH}" != "$DEST" ]]; then
  echo "LIBTORCH=$LIBTORCH is set: using that libtorch, nothing to install."; exit 0
fi
if [[ "$(cat "$DEST/build-version" 2>/dev/null)" == "$VER" && -e "$DEST/lib/libtorch_cpu.so" ]]; then
  exit 0
fi
echo "Installing a CPU libtorch $VER into $DEST from PyPI wheels (about 530 MB to download, once)..."
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
python3 -m pip download --no-deps -q -d "$TMP" "torch==$VER" \
  "nvidia-cuda-runtime==13.0.96.*" "nvidia-cuda-cupti==13.0.85.*"
rm -rf "$DEST.partial"; mkdir -p "$DEST.partial/lib"
python3 - "$TMP" "$DEST.partial" <<'PY'
import glob, os, shutil, sys, zipfile
tmp, dest = sys.argv[1:]
want = {"torch/lib/" + n: "lib/" + n for n in ("libc10.so", "libtorch_cpu.so", "libgomp.so.1")}
want.update({"nvidia/cu13/lib/" + n: "lib/" + n for n in ("libcudart.so.13", "libcupti.so.13")})
for whl in glob.glob(os.path.join(tmp, "*.whl")):
    with zipfile.ZipFile(whl) as z:
        for m in z.namelist():
            out = want.get(m) or ("include/" + m[len("torch/include/"):] if m.startswith("torch/include/") else None)
            if out and not m.endswith("/"):
                os.makedirs(os.path.dirname(os.path.join(dest, out)), exist_ok=True)
                with z.open(m) as src, open(os.path.join(dest, out), "wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.chmod(os.path.join(dest, out), 0o755 if out.startswith("lib/") else 0o644)
PY
# The wheel's libtorch.so needs libtorch_cuda.so: alias the CPU library instead.
ln -sf libtorch_cpu.so "$DEST.partial/lib/libtorch.so"
ln -sf libgomp.so.1 "$DEST.partial/lib/libgomp.so"
echo -n "$VER" > "$DEST.partial/build-version"
rm -rf "$DEST"; mv "$DEST.partial" "$DEST"
echo "CPU libtorch $VER ready in $DEST ($(du -sh "$DEST" | cut -f1))."
