#!/usr/bin/env bash
# Creates (or reuses) the virtual environment of the CTranslate2 reference and prints its python:
#
#   py=$(bash packages/inference/reference/asr/setup.sh)
#
# The venv lives at ${LIVELENS_HOME:-<repo>/.livelens}/ct2-reference-venv (gitignored) and is rebuilt only when
# requirements.txt or the Python version changes (a stamp holding their hash is written last, so an
# interrupted install is redone). Only ct2_reference.py needs it, to remake the parity golden: never the tests.
#
# Environment:
#   LIVELENS_HOME    cache root (default: <repo>/.livelens)
#   LIVELENS_PYTHON  the interpreter to build the venv from (default: python3; 3.10–3.13 have wheels)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd "$here/../../../.." && pwd -P)"
home="${LIVELENS_HOME:-$repo/.livelens}"
venv="$home/ct2-reference-venv"
python="${LIVELENS_PYTHON:-python3}"
requirements="$here/requirements.txt"

log() { printf 'reference/asr/setup.sh: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

command -v "$python" >/dev/null 2>&1 || die "$python not found (set LIVELENS_PYTHON)"
version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
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
# A complete lock: nothing resolved (--no-deps), nothing compiled (--only-binary).
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  --no-deps --only-binary=:all: -r "$requirements" >&2
"$venv/bin/python" -W ignore -c 'import ctranslate2, numpy, yaml' >&2 ||
  die "the venv does not import; see the error above"
echo "$want" >"$stamp"
log "ready: $venv"
echo "$venv/bin/python"
