# Shared set-up for the bin/ commands: build .venv on first use (or when the pins change) and point
# DAGSTER_HOME at the project-local instance. Sourced, not run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
STAMP=".venv/.ouroboros-installed"
WANT="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "==> building .venv (first run, or the pins changed)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -c constraints.txt -e '.[dev]'
  echo "$WANT" > "$STAMP"
fi
# the production profile: one variable switches every bin/ command to the stack that `bin/stack up` started
if [ "${OUROBOROS_PROFILE:-}" = stack ]; then
  [ -f "${OUROBOROS_STACK_DIR:-$ROOT/.stack}/env" ] || { echo "OUROBOROS_PROFILE=stack: run bin/stack up first" >&2; exit 1; }
  source "${OUROBOROS_STACK_DIR:-$ROOT/.stack}/env"
fi
export DAGSTER_HOME="${DAGSTER_HOME:-$ROOT/.dagster_home}"
mkdir -p "$DAGSTER_HOME"
[ -e "$DAGSTER_HOME/dagster.yaml" ] || ln -s "$ROOT/dagster.yaml" "$DAGSTER_HOME/dagster.yaml"
export PYTHONUNBUFFERED=1
