#!/usr/bin/env bash
# Set up everything explain-graph needs on a Debian/Ubuntu machine:
# system packages (Graphviz, cairo/pango headers for Manim, a CJK font,
# rsvg-convert and poppler for the slide deck, Chromium for the HTML tests,
# tesseract-ocr for the tests that read the video and the slides),
# then .venv/ with the package, all its extras and its dev tools.
# On Ubuntu, whose chromium package is a snap that does not run headless in
# containers, the tests use Playwright's own Chromium, downloaded once here.
# Idempotent: a second run only checks, and is quick.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# --- system packages --------------------------------------------------------
need_pkgs=()
distro="$( . /etc/os-release 2>/dev/null && echo "${ID:-}" )"
browser_pkg=chromium
[ "$distro" = "ubuntu" ] && browser_pkg=""
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
if command -v dpkg-query >/dev/null 2>&1; then
    for p in graphviz libcairo2-dev libpango1.0-dev pkg-config fonts-noto-cjk poppler-utils \
             librsvg2-bin python3-venv tesseract-ocr $browser_pkg; do
        have_pkg "$p" || need_pkgs+=("$p")
    done
    # python3-venv only matters for a Debian python; a pyenv/conda one has venv already.
    if python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        need_pkgs=("${need_pkgs[@]/python3-venv}")
    fi
    # drop empty entries left by the substitution above
    pkgs=(); for p in "${need_pkgs[@]}"; do [ -n "$p" ] && pkgs+=("$p"); done
    if [ "${#pkgs[@]}" -gt 0 ]; then
        say "installing system packages: ${pkgs[*]}"
        sudo_cmd=()
        if [ "$(id -u)" -ne 0 ]; then
            command -v sudo >/dev/null 2>&1 || { echo "error: need root or sudo to install: ${pkgs[*]}" >&2; exit 1; }
            sudo_cmd=(sudo)
        fi
        export DEBIAN_FRONTEND=noninteractive
        "${sudo_cmd[@]}" apt-get update -qq
        "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
    fi
else
    for tool in dot pkg-config; do
        command -v "$tool" >/dev/null 2>&1 || {
            echo "error: '$tool' not found. This script installs system packages on Debian/Ubuntu only;" \
                 "elsewhere install Graphviz, cairo and pango development headers, pkg-config and a CJK font (Noto Sans CJK) yourself, then run it again." >&2
            exit 1
        }
    done
fi

# --- python environment -----------------------------------------------------
py="${PYTHON:-python3}"
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
    echo "error: explain-graph needs Python >= 3.10; set PYTHON=/path/to/python3.10+ and run again." >&2; exit 1; }

stamp=".venv/.installed"
deps_hash="$(cat pyproject.toml constraints/dev.txt | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$deps_hash" ]; then
    exit 0
fi
if [ ! -x .venv/bin/python ]; then
    say "creating .venv/"
    "$py" -m venv .venv
fi
say "installing explain-graph and its dev dependencies into .venv/ (torch pinned by constraints/dev.txt)"
log=.venv/install.log
if ! { .venv/bin/python -m pip install -q --upgrade pip &&
       .venv/bin/python -m pip install -q -c constraints/dev.txt -e '.[dev]'; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "error: installing Python packages failed (log above, also in $log)" >&2
    exit 1
fi
if [ -z "$browser_pkg" ] && ! command -v chromium >/dev/null 2>&1; then
    say "installing Playwright's Chromium for the browser tests (Ubuntu's chromium is a snap)"
    .venv/bin/python -m playwright install --with-deps chromium >>"$log" 2>&1 || {
        echo "error: could not install a browser for the tests (log: $log): install Google Chrome or chromium yourself" >&2
        exit 1; }
fi
echo "$deps_hash" > "$stamp"
say "ready: .venv/bin/explain-graph"
