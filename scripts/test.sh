#!/usr/bin/env bash
# The test command: set up .venv (runtime + test-only requirements) and run the fast tests.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m slow` for the slow ones).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
install_requirements requirements.txt requirements-test.txt requirements-deploy.txt
python -m pytest tests "$@"
