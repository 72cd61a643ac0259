#!/usr/bin/env bash
# Give the database server's Python (PL/Python: Debian's python3) the numpy and scipy that the
# venv tests against, in a directory of its own that only the embedded cluster puts on its
# PYTHONPATH (src/tickfeatures/embedded.py). Debian bookworm's scipy 1.10 has the SLSQP that
# scipy 1.16 rewrote: on minute returns its GARCH fits stopped up to 7% of the log-likelihood
# per observation short of arch's maximum (which runs on the venv's scipy), so the kernels'
# fits in the database were not the reference's. Wheels only, pinned to the venv's versions.
# Idempotent: with the same versions in place it does nothing.
set -euo pipefail

BIN="${1:?usage: install-server-python.sh VENV_BIN [TARGET]}"
TARGET="${2:-${TICKFEATURES_SERVER_PYTHONPATH:-/usr/local/lib/tickfeatures/python}}"
log() { printf 'install-server-python: %s\n' "$*"; }

server=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
venv=$("$BIN/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
versions=$("$BIN/python" -c 'import numpy, scipy; print(f"numpy=={numpy.__version__} scipy=={scipy.__version__}")')
want="python $server: $versions"
if [ -f "$TARGET/.installed" ] && [ "$(cat "$TARGET/.installed")" = "$want" ]; then
    exit 0
fi
log "installing $versions for the server's Python $server into $TARGET"
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# shellcheck disable=SC2086
"$BIN/pip" install --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version "$server" --implementation cp --target "$tmp/python" $versions
echo "$want" > "$tmp/python/.installed"
chmod -R a+rX "$tmp/python"
as_root mkdir -p "$(dirname "$TARGET")"
as_root rm -rf "$TARGET"
as_root mv "$tmp/python" "$TARGET"
[ "$server" = "$venv" ] || log "note: the venv runs Python $venv, the server $server"
