# Sourced by the scripts: create .venv if missing, install the pinned requirements when they
# changed since the last install, then activate it (msrun runs `python` from PATH).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
install_requirements() {
  local stamp="$VENV/.installed-$(cat "$@" | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "installing $* into $VENV ..."
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check $(printf -- '-r %s ' "$@")
    touch "$stamp"
  fi
}
# shellcheck disable=SC1091
source "$VENV/bin/activate"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export GLOG_v="${GLOG_v:-3}"
