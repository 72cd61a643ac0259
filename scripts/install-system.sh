#!/usr/bin/env bash
# Install what tickfeatures needs from the OS, and only what is missing:
# Debian packages, then TimescaleDB built from Debian trixie's source package (bookworm has
# none) and pg_cron built from the upstream tarball in Debian's pool (bookworm's 1.4.2 cannot
# run a job every few seconds; 1.5 can).
# Idempotent: a second run does no network access and takes about a second.
set -euo pipefail

PG_MAJOR=15
TSDB_VERSION=2.19.3
# trixie's pg-cron source package is 1.6.5, but the mirror this machine kind reaches serves
# neither its .dsc nor its tarballs (404); of the pg-cron upstream tarballs in Debian's pool it
# serves 1.6.7's, pinned here by its sha256.
PG_CRON_VERSION=1.6.7
PG_CRON_SHA256=d950bc29155f31017567e23a31d268ff672e98276c0e9d062512fb7870351f03
SOURCE_SUITE=trixie
CACHE_DIR="${TICKFEATURES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tickfeatures}"
PACKAGES=(
    "postgresql-$PG_MAJOR"
    "postgresql-plpython3-$PG_MAJOR"
    "postgresql-server-dev-$PG_MAJOR"
    python3-numpy
    python3-scipy
    cmake
    curl
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
    [ -n "$uri" ] || die "no Debian mirror found in /etc/apt/sources*; cannot fetch source packages"
    printf '%s\n' "${uri%/}"
}

timescaledb_installed() {
    local sharedir libdir
    sharedir=$("/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" --sharedir)
    libdir=$("/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" --pkglibdir)
    [ -f "$sharedir/extension/timescaledb--$TSDB_VERSION.sql" ] \
        && [ -f "$libdir/timescaledb-$TSDB_VERSION.so" ]
}

# The unpacked tree of Debian source package $1 at upstream version $2, fetched once into the
# cache through a private apt configuration (its own sources list and state directory):
# the machine's apt sources are never touched.
debian_source() {
    local package=$1 upstream=$2
    local apt_dir="$CACHE_DIR/apt" src_dir="$CACHE_DIR/src"
    mkdir -p "$apt_dir/etc/sources.list.d" "$apt_dir/etc/preferences.d" \
        "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial" "$src_dir"
    local tree
    tree=$(find "$src_dir" -maxdepth 1 -type d -name "$package-$upstream*" | head -n 1)
    if [ -n "$tree" ]; then
        printf '%s\n' "$tree"
        return
    fi
    printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' \
        "$(debian_mirror)" "$SOURCE_SUITE" >"$apt_dir/etc/sources.list"
    local apt_opts=(
        -o "Dir::Etc::SourceList=$apt_dir/etc/sources.list"
        -o "Dir::Etc::SourceParts=$apt_dir/etc/sources.list.d"
        -o "Dir::Etc::Preferences=$apt_dir/etc/preferences"
        -o "Dir::Etc::PreferencesParts=$apt_dir/etc/preferences.d"
        -o "Dir::State=$apt_dir/state"
        -o "Dir::Cache=$apt_dir/cache"
        -o "APT::Sandbox::User=root"
    )
    log "fetching the $package $upstream source package ($SOURCE_SUITE) into $src_dir" >&2
    apt-get "${apt_opts[@]}" -qq update
    local version
    version=$(apt-cache "${apt_opts[@]}" showsrc "$package" \
        | awk -v v="$upstream" '$1 == "Version:" && (index($2, v "+") == 1 || index($2, v "-") == 1) {print $2; exit}')
    [ -n "$version" ] || die "the $SOURCE_SUITE sources carry no $package $upstream"
    (cd "$src_dir" && apt-get "${apt_opts[@]}" -qq source "$package=$version" >/dev/null)
    tree=$(find "$src_dir" -maxdepth 1 -type d -name "$package-$upstream*" | head -n 1)
    [ -n "$tree" ] || die "apt-get source left no $package-$upstream tree in $src_dir"
    printf '%s\n' "$tree"
}

build_timescaledb() {
    if timescaledb_installed; then
        log "TimescaleDB $TSDB_VERSION present"
        return
    fi
    local tree
    tree=$(debian_source timescaledb "$TSDB_VERSION")
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

pg_cron_installed() {
    local sharedir
    sharedir=$("/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" --sharedir)
    grep -qs "default_version = '${PG_CRON_VERSION%.*}'" "$sharedir/extension/pg_cron.control" \
        && [ -f "$("/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" --pkglibdir)/pg_cron.so" ] \
        && [ -f "$CACHE_DIR/pg_cron-$PG_CRON_VERSION.installed" ]
}

build_pg_cron() {
    if pg_cron_installed; then
        log "pg_cron $PG_CRON_VERSION present"
        return
    fi
    # bookworm's 1.4.2 package owns the same files: remove it rather than overwrite them
    if [ "$(dpkg-query -W -f='${Status}' "postgresql-$PG_MAJOR-cron" 2>/dev/null)" = "install ok installed" ]; then
        log "removing bookworm's postgresql-$PG_MAJOR-cron (pg_cron 1.4.2)"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq "postgresql-$PG_MAJOR-cron" >/dev/null
    fi
    local src_dir="$CACHE_DIR/src" tarball="pg-cron_$PG_CRON_VERSION.orig.tar.gz"
    local tree="$src_dir/pg_cron-$PG_CRON_VERSION"
    if [ ! -d "$tree" ]; then
        mkdir -p "$src_dir"
        log "fetching $tarball from Debian's pool into $src_dir"
        curl -fsSL -o "$src_dir/$tarball.part" "$(debian_mirror)/pool/main/p/pg-cron/$tarball" \
            || die "cannot fetch $(debian_mirror)/pool/main/p/pg-cron/$tarball"
        echo "$PG_CRON_SHA256  $src_dir/$tarball.part" | sha256sum -c --quiet - \
            || die "$tarball does not have the sha256 pinned in $0"
        mv "$src_dir/$tarball.part" "$src_dir/$tarball"
        tar -xzf "$src_dir/$tarball" -C "$src_dir"
        [ -d "$tree" ] || die "$tarball holds no pg_cron-$PG_CRON_VERSION directory"
    fi
    log "building pg_cron $PG_CRON_VERSION against PostgreSQL $PG_MAJOR (PGXS)"
    make -C "$tree" PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" -j"$(nproc)" \
        >"$tree/make.log" 2>&1 || die "build failed; see $tree/make.log"
    as_root make -C "$tree" PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" install \
        >"$tree/install.log" 2>&1 || die "install failed; see $tree/install.log"
    touch "$CACHE_DIR/pg_cron-$PG_CRON_VERSION.installed"
    pg_cron_installed || die "pg_cron $PG_CRON_VERSION is still not installed after the build"
    log "pg_cron $PG_CRON_VERSION installed (a running cluster loads it at its next start)"
}

# Our own extension (native/): the float8 <-> bytea conversions of the bar families' kernels.
# Built from the project's sources with PGXS in the cache (the tree stays clean), again
# whenever they change (the stamp holds their checksum).
build_native() {
    local src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/native"
    local sum
    sum="$(cat "$src"/Makefile "$src"/*.c "$src"/*.control "$src"/*.sql | sha256sum | cut -c1-16)"
    local stamp="$CACHE_DIR/tickfeatures_native-$sum.installed"
    local pkglibdir
    pkglibdir="$("/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" --pkglibdir)"
    if [ -f "$stamp" ] && [ -f "$pkglibdir/tickfeatures_native.so" ]; then
        log "tickfeatures_native present"
        return
    fi
    local tree="$CACHE_DIR/src/tickfeatures_native"
    rm -rf "$tree" && mkdir -p "$tree" && cp "$src"/Makefile "$src"/*.c "$src"/*.control "$src"/*.sql "$tree"/
    log "building tickfeatures_native against PostgreSQL $PG_MAJOR (PGXS)"
    make -C "$tree" PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" >"$tree/make.log" 2>&1 \
        || die "building tickfeatures_native failed; see $tree/make.log"
    as_root make -C "$tree" PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" install \
        >"$tree/install.log" 2>&1 || die "installing tickfeatures_native failed; see $tree/install.log"
    rm -f "$CACHE_DIR"/tickfeatures_native-*.installed
    touch "$stamp"
    log "tickfeatures_native installed"
}

install_debian_packages
build_timescaledb
build_pg_cron
build_native
