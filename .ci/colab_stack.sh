#!/usr/bin/env bash
# The course on a stack shaped like Google Colab's, with the OLDEST torch the package declares:
# Python 3.12, IPython 7.34.0, ipywidgets 7.7.1, ipykernel 6.17.1, torch 2.4.1 + torchvision 0.19.1.
# Builds a fresh venv (default /tmp/colab-venv, or $COLAB_VENV), installs that pinned stack and the
# project, then runs every notebook top to bottom with nbval-lax: any error fails, output differences
# do not (05 and 06 train on RESNET_EDU_SUBSET=2000 images). Second runs install from pip's cache.
# COLAB_STACK_TESTS=1 also runs the package tests (tests/) there: 2-5 more minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${COLAB_VENV:-/tmp/colab-venv}
STACK=(torch==2.4.1 torchvision==0.19.1
       ipython==7.34.0 ipywidgets==7.7.1 ipykernel==6.17.1
       jupyter_client nbclient nbval pytest matplotlib tqdm torchinfo numpy pillow)

PY=""
if command -v pyenv >/dev/null 2>&1; then
    for p in "$(pyenv root)"/versions/3.12*/bin/python3.12; do [ -x "$p" ] && PY=$p; done
fi
if [ -z "$PY" ]; then
    for p in "$HOME"/.pyenv/versions/3.12*/bin/python3.12; do [ -x "$p" ] && PY=$p; done
fi
if [ -z "$PY" ] && command -v python3.12 >/dev/null 2>&1; then PY=$(command -v python3.12); fi
if [ -z "$PY" ]; then
    echo "colab_stack: no Python 3.12 found (looked in \$(pyenv root)/versions/3.12*, ~/.pyenv/versions/3.12*" \
         "and python3.12 on PATH); install one, e.g. 'pyenv install 3.12'" >&2
    exit 2
fi

echo "== colab_stack: building $VENV with $PY"
t0=$SECONDS
rm -rf "$VENV"
"$PY" -m venv "$VENV"
# One resolver call: the pins keep torch at 2.4.1 while the project's own lower bounds are resolved.
"$VENV/bin/pip" install -q "${STACK[@]}" -e ".[notebooks]"
"$VENV/bin/python" - <<'EOF'
import sys, torch, torchvision, IPython, ipywidgets, ipykernel
got = {"python": sys.version.split()[0][:4], "torch": torch.__version__.split("+")[0],
       "torchvision": torchvision.__version__.split("+")[0], "IPython": IPython.__version__,
       "ipywidgets": ipywidgets.__version__, "ipykernel": ipykernel.__version__}
want = {"python": "3.12", "torch": "2.4.1", "torchvision": "0.19.1", "IPython": "7.34.0",
        "ipywidgets": "7.7.1", "ipykernel": "6.17.1"}
print("colab_stack:", " ".join(f"{k} {v}" for k, v in got.items()))
bad = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
sys.exit(f"colab_stack: wrong versions (got, wanted): {bad}" if bad else 0)
EOF
echo "== colab_stack: install took $((SECONDS - t0)) s"

t1=$SECONDS
# PYDEVD_DISABLE_FILE_VALIDATION: quiets debugpy's "frozen modules" note on every kernel start.
RESNET_EDU_SUBSET=2000 PYDEVD_DISABLE_FILE_VALIDATION=1 \
    "$VENV/bin/python" -m pytest -o addopts="" -p no:cacheprovider --nbval-lax --nbval-current-env -q notebooks/
echo "== colab_stack: notebooks took $((SECONDS - t1)) s"
if [ "${COLAB_STACK_TESTS:-0}" = 1 ]; then
    t2=$SECONDS
    PYDEVD_DISABLE_FILE_VALIDATION=1 "$VENV/bin/python" -m pytest -o addopts="" -p no:cacheprovider -q tests/
    echo "== colab_stack: package tests took $((SECONDS - t2)) s"
fi
