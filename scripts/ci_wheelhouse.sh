#!/usr/bin/env bash
# Fills a folder with the wheels of the packages a bundle's requirements pin (the
# versions installed in the virtualenv), from the package index, so that the test
# that builds a fresh environment offline from a bundle runs for real. Usage:
#   scripts/ci_wheelhouse.sh .venv DIR
set -euo pipefail
venv=$1 dest=$2
mkdir -p "$dest"
pins=$("$venv/bin/pip" freeze 2>/dev/null \
  | grep -iE '^(numpy|pandas|scipy|scikit-learn|skops|lightgbm|pyarrow|starlette|uvicorn|click|anyio)==')
# shellcheck disable=SC2086
"$venv/bin/pip" download --quiet --disable-pip-version-check -d "$dest" $pins
# ...and every runtime dependency of workbench, pinned to the installed versions, so the
# offline installer kit's test (`workbench offline-kit --from`) has a complete wheelhouse.
"$venv/bin/python" -c 'from workbench.cli.offline_kit import requirements as r
print("\n".join(f"{n}=={v}" for n, v in sorted(r().items())))' >"$dest/kit-pins.txt"
"$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  -d "$dest" -r "$dest/kit-pins.txt"
