#!/usr/bin/env bash
# Installs everything playnext needs into ./.venv (idempotent). Sourced by demo.sh and test.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

python_bin="${PYTHON:-python3.11}"
command -v "$python_bin" >/dev/null 2>&1 || python_bin=python3
if ! "$python_bin" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
  echo "playnext needs Python 3.11; found $("$python_bin" --version 2>&1). Set PYTHON=/path/to/python3.11." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$python_bin" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev,spark,redis]"
# MovieLens-100K ships inside recbole's wheel; its own dependencies (torch extras, ray) are not needed to read it.
.venv/bin/python -m pip install --quiet --no-deps "recbole==1.2.1"

# Spark (the scaled-out pipeline engine, tested for parity with DuckDB) needs a JVM.
if ! command -v java >/dev/null 2>&1; then
  echo "installing a JDK for Spark (openjdk-17-jre-headless)…"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq && $sudo apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi
# Redis (the scaled-out online store; its tests start a real server on loopback).
if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server…"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq && $sudo apt-get install -y -qq redis-server >/dev/null
fi
# Chromium (the dashboard's browser test drives it through Playwright; no browser is ever downloaded).
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium…"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null
fi
export PATH="$root/.venv/bin:$PATH"
# implicit and numpy's BLAS oversubscribe two cores otherwise.
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
