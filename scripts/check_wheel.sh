#!/usr/bin/env bash
# Build the wheel as a user's pip would, install it (not editable) into a fresh virtual
# environment and fill a line with the embedded model from outside the checkout.
#
# Fails when the build prints a warning, when the wheel lacks the default model or a module (or
# carries the tests), when an installed module does not import or comes from the checkout, or when
# the fill fails. Dependencies are not downloaded again: the fresh environment sees .venv's
# site-packages through a .pth file (after its own; .venv's .pth files, the editable install's
# finder among them, are not run), so pip resolves the wheel's requirements against what .venv
# holds (torch 2.13.0 from this machine's disk) and installs only the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
started=$SECONDS
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. Build from a copy of the files git tracks or would track: a stale build/ never leaks in.
mkdir "$work/src"
git ls-files --cached --others --exclude-standard -z \
    | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -cf - -T - | tar -xf - -C "$work/src"
if ! .venv/bin/python -m pip wheel --no-deps -w "$work/dist" "$work/src" >"$work/build.log" 2>&1
then
    cat "$work/build.log"
    echo "check_wheel: the wheel does not build" >&2
    exit 1
fi
# Backend warnings (pip shows them for a local build), not the machine's pip configuration
# (local package folders that are empty).
if grep -v "^WARNING: Location '" "$work/build.log" | grep -i "warning"; then
    echo "check_wheel: building the wheel printed the warning(s) above" >&2
    exit 1
fi
wheel=$(ls "$work"/dist/infill_lsp-*.whl)

# 2. What the wheel holds: the default model, every module of infill_lsp/ and of training/ (under
# the name the `infill-train` script imports), none of the tests or scripts.
.venv/bin/python scripts/wheel_contents.py "$wheel" "$work/src"

# 3. A fresh environment, the wheel installed into it (not editable), run from elsewhere.
venv="$work/venv"
python3 -m venv --without-pip "$venv" # a venv's own old setuptools would shadow .venv's
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' >"$site/_deps.pth"
.venv/bin/python -m pip --python "$venv/bin/python" install -qq --no-index "$wheel"
mkdir "$work/elsewhere"
cd "$work/elsewhere"
"$venv/bin/python" "$repo/scripts/wheel_contents.py" --imports "$venv"
printf 'def mean(values):\n    total = sum(values)\n    return \n' >sample.py
version=$("$venv/bin/infill-lsp" --version)
"$venv/bin/infill-train" --help >/dev/null
filled=$("$venv/bin/infill-lsp" fill sample.py --at 3:12 --json)
text=$(printf '%s' "$filled" | "$venv/bin/python" -c '
import json, sys
result = json.load(sys.stdin)
if result["mode"] != "infill" or not result["text"].strip() or result["steps"] < 1:
    sys.exit(f"check_wheel: the fill came back empty: {result}")
print(repr(result["text"]))')
echo "check_wheel: $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KB), $version, filled" \
    "sample.py at 3:12 with $text from outside the checkout, in $((SECONDS - started)) s"
