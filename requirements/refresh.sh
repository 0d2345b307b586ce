#!/usr/bin/env bash
# Re-pin every dependency with hashes after a change to pyproject.toml:
#   bash requirements/refresh.sh            (keeps pins that still fit)
#   bash requirements/refresh.sh --upgrade  (takes the newest releases that fit)
set -euo pipefail
cd "$(dirname "$0")"
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools" && "$tools/bin/pip" install -q pip-tools
compile=("$tools/bin/pip-compile" -q --generate-hashes --no-emit-index-url --no-emit-find-links
         --strip-extras --allow-unsafe "$@")
"${compile[@]}" -o app.lock ../pyproject.toml build.in
"${compile[@]}" --extra test -o test.lock ../pyproject.toml build.in
echo "requirements/app.lock and requirements/test.lock are up to date; commit them with pyproject.toml"
