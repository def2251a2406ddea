# Shared by scripts/up and scripts/test: install what a fresh machine lacks.
# Sourced, not executed.

# System packages the build and the tests need (Debian names).
#   nodejs, npm  — the Clarinet SDK (vitest) suite in contracts/
#   pkg-config, clang, libclang-dev — C/C++ dependencies and their bindings
#   zbar-tools   — zbarimg, the real QR decoder the sharing tests read QR PNGs with
SYSTEM_PACKAGES=(pkg-config clang libclang-dev zbar-tools)

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
