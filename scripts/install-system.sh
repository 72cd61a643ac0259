#!/usr/bin/env bash
# Install what tickfeatures needs from the OS, and only what is missing:
# Debian packages, then TimescaleDB built from Debian's source package.
# Idempotent: a second run does no network access and takes about a second.
set -euo pipefail

PG_MAJOR=15
TSDB_VERSION=2.19.3
TSDB_SUITE=trixie
CACHE_DIR="${TICKFEATURES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tickfeatures}"
PACKAGES=(
    "postgresql-$PG_MAJOR"
    "postgresql-plpython3-$PG_MAJOR"
    "postgresql-server-dev-$PG_MAJOR"
    "postgresql-$PG_MAJOR-cron"
    python3-numpy
    python3-scipy
    cmake
    build-essential
    dpkg-dev
    xz-utils
)

log() { printf 'install-system: %s\n' "$*"; }
die() { printf 'install-system: error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_debian_packages() {
    local missing=() pkg
    for pkg in "${PACKAGES[@]}"; do
        if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "Debian packages present"
        return
    fi
    log "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

# The Debian mirror this machine already uses, read from its own apt sources,
# so that no address is hard-coded here.
debian_mirror() {
    local uri
    uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '{print $2}' | grep -E '/debian/?$' | head -n 1 || true)
    if [ -z "$uri" ]; then
        uri=$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
            | grep -E '/debian/?$' | head -n 1 || true)
    fi
    [ -n "$uri" ] || die "no Debian mirror found in /etc/apt/sources*; cannot fetch the TimescaleDB source"
    printf '%s\n' "${uri%/}"
}

timescaledb_installed() {
    local sharedir libdir
    sharedir=$("/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" --sharedir)
    libdir=$("/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" --pkglibdir)
    [ -f "$sharedir/extension/timescaledb--$TSDB_VERSION.sql" ] \
        && [ -f "$libdir/timescaledb-$TSDB_VERSION.so" ]
}

build_timescaledb() {
    if timescaledb_installed; then
        log "TimescaleDB $TSDB_VERSION present"
        return
    fi
    local apt_dir="$CACHE_DIR/apt" src_dir="$CACHE_DIR/src"
    mkdir -p "$apt_dir/etc/sources.list.d" "$apt_dir/etc/preferences.d" \
        "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial" "$src_dir"
    printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' \
        "$(debian_mirror)" "$TSDB_SUITE" >"$apt_dir/etc/sources.list"
    local apt_opts=(
        -o "Dir::Etc::SourceList=$apt_dir/etc/sources.list"
        -o "Dir::Etc::SourceParts=$apt_dir/etc/sources.list.d"
        -o "Dir::Etc::Preferences=$apt_dir/etc/preferences"
        -o "Dir::Etc::PreferencesParts=$apt_dir/etc/preferences.d"
        -o "Dir::State=$apt_dir/state"
        -o "Dir::Cache=$apt_dir/cache"
        -o "APT::Sandbox::User=root"
    )
    local tree
    tree=$(find "$src_dir" -maxdepth 1 -type d -name "timescaledb-$TSDB_VERSION*" | head -n 1)
    if [ -z "$tree" ]; then
        log "fetching the timescaledb $TSDB_VERSION source package ($TSDB_SUITE) into $src_dir"
        apt-get "${apt_opts[@]}" -qq update
        local version
        version=$(apt-cache "${apt_opts[@]}" showsrc timescaledb \
            | awk -v v="$TSDB_VERSION" '$1 == "Version:" && index($2, v "+") == 1 {print $2; exit}')
        [ -n "$version" ] || die "the $TSDB_SUITE sources carry no timescaledb $TSDB_VERSION"
        (cd "$src_dir" && apt-get "${apt_opts[@]}" -qq source "timescaledb=$version" >/dev/null)
        tree=$(find "$src_dir" -maxdepth 1 -type d -name "timescaledb-$TSDB_VERSION*" | head -n 1)
        [ -n "$tree" ] || die "apt-get source left no timescaledb-$TSDB_VERSION tree in $src_dir"
    fi
    log "building TimescaleDB $TSDB_VERSION (Apache-2 edition) against PostgreSQL $PG_MAJOR"
    # The same options as Debian's own package (debian/rules).
    cmake -S "$tree" -B "$tree/build-$PG_MAJOR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DPG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" \
        -DSEND_TELEMETRY_DEFAULT=OFF -DUSE_TELEMETRY=OFF -DAPACHE_ONLY=1 \
        -DREGRESS_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF >"$tree/cmake.log" 2>&1 \
        || die "cmake failed; see $tree/cmake.log"
    make -C "$tree/build-$PG_MAJOR" -j"$(nproc)" >"$tree/make.log" 2>&1 \
        || die "build failed; see $tree/make.log"
    as_root make -C "$tree/build-$PG_MAJOR" install >"$tree/install.log" 2>&1 \
        || die "install failed; see $tree/install.log"
    timescaledb_installed || die "TimescaleDB $TSDB_VERSION is still not installed after the build"
    log "TimescaleDB $TSDB_VERSION installed"
}

install_debian_packages
build_timescaledb
