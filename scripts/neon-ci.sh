#!/usr/bin/env bash
# Cross-build the ouro-simd tests for aarch64-unknown-linux-gnu and run them under QEMU user mode
# as a Raspberry Pi 4 (cortex-a72: NEON, no dotprod), a Pi 5 (cortex-a76: NEON + dotprod) and
# QEMU's `max` CPU (dotprod + i8mm: the SMMLA tiles), asserting which kernel path dispatch
# selects on each.
# See shared/docs/neon-ci.md for the recipe and the libc trap it avoids.
#
# Installs what is missing (Debian: qemu-user-static, gcc-aarch64-linux-gnu,
# libc6-dev-arm64-cross; the aarch64 Rust std from rustup, or else Debian's rustc-web with its
# arm64 std unpacked as a sysroot). Idempotent: with everything installed it only builds and tests.
#
# Environment:
#   NEON_ROUTE       auto (default: rustup target, else Debian) | rustup | debian
#   NEON_TARGET_DIR  cargo target dir for the aarch64 build (default: <repo>/target/aarch64)
#   NEON_CPUS        QEMU CPU models to run (default: "cortex-a72 cortex-a76 max")
set -euo pipefail

T=aarch64-unknown-linux-gnu
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${NEON_TARGET_DIR:-$ROOT/target/aarch64}
ROUTE=${NEON_ROUTE:-auto}
CPUS=${NEON_CPUS:-cortex-a72 cortex-a76 max}
export DEBIAN_FRONTEND=noninteractive

log() { printf 'neon-ci: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

APT_UPDATED=0
apt_update() {
    if [ "$APT_UPDATED" = 0 ]; then
        # A failing third-party source must not stop us; a missing package fails the install below.
        apt-get -o DPkg::Lock::Timeout=600 update -qq || log "warning: apt-get update reported errors"
        APT_UPDATED=1
    fi
}
apt_install() {
    local missing=() p
    for p in "$@"; do installed "$p" || missing+=("$p"); done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]}"
        apt_update
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
            || die "apt-get install ${missing[*]} failed"
    fi
}

case "$ROUTE" in auto | rustup | debian) ;; *) die "NEON_ROUTE must be auto, rustup or debian, not '$ROUTE'" ;; esac

# 1. QEMU user mode and the cross linker with its C library (under /usr/aarch64-linux-gnu).
apt_install qemu-user-static gcc-aarch64-linux-gnu libc6-dev-arm64-cross

# 2. An aarch64 Rust std: rustup's, or Debian's rustc-web with its arm64 std as a sysroot.
use_rustup() {
    command -v rustup >/dev/null || return 1
    rustup target list --installed 2>/dev/null | grep -qx "$T" && return 0
    log "rustup target add $T"
    timeout 180 rustup target add "$T" >&2
}

CARGO=cargo
if [ "$ROUTE" != debian ] && use_rustup; then
    log "toolchain: rustup ($(rustc --version))"
elif [ "$ROUTE" = rustup ]; then
    die "rustup target add $T failed (NEON_ROUTE=rustup)"
else
    dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64; APT_UPDATED=0; }
    apt_install rustc-web cargo-web
    V=$(dpkg-query -W -f='${Version}' rustc-web)
    # Only the std rlibs are unpacked: installing libstd-rust-web-dev:arm64 would pull in the
    # multiarch libc6:arm64, whose ld.so/libc mix with the cross one hangs every pthread_create.
    SYSROOT=$TARGET_DIR/sysroot-$V
    if [ ! -e "$SYSROOT/.complete" ]; then
        log "unpacking libstd-rust-web-dev:arm64=$V into $SYSROOT"
        apt_update
        d=$(mktemp -d)
        (cd "$d" && apt-get download -qq "libstd-rust-web-dev:arm64=$V") \
            || die "apt-get download libstd-rust-web-dev:arm64=$V failed (amd64/arm64 versions out of step on the mirror? retry later)"
        rm -rf "$SYSROOT"
        mkdir -p "$SYSROOT"
        dpkg-deb -x "$d"/libstd-rust-web-dev_*_arm64.deb "$SYSROOT"
        rm -rf "$d"
        touch "$SYSROOT/.complete"
    fi
    CARGO=/usr/bin/cargo
    export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="--sysroot=$SYSROOT/usr"
    export RUSTDOCFLAGS="--sysroot=$SYSROOT/usr"
    log "toolchain: Debian ($($RUSTC --version)), sysroot $SYSROOT/usr"
fi

# 3. Linker and runner through the environment (no .cargo/config.toml: host builds stay untouched).
# If the multiarch libc6:arm64 is present, let its own /lib/ld-linux-aarch64.so.1 load it;
# otherwise point QEMU at the cross libc. Mixing the two hangs (neon-ci.md, "The trap").
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
if installed libc6:arm64; then
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64-static
else
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64-static -L /usr/aarch64-linux-gnu"
fi
export CARGO_TARGET_DIR=$TARGET_DIR
unset QEMU_CPU OURO_SIMD OURO_EXPECT_SIMD OURO_EXPECT_INIT_ERROR

cd "$ROOT"
TEST=("$CARGO" test -p ouro-simd --target "$T")

# 4. Test targets. neon_expect checks the path dispatch selected.
#    - gguf_py compares the scalar quantizers/dequantizers (path-independent) with gguf-py and
#      is slow under emulation: it runs on the first CPU model only.
#    - forced re-executes its own binary with OURO_SIMD set; qemu-user cannot exec an aarch64
#      child without binfmt_misc (the child just exits 127), so it is left to the host run;
#      step 6 below checks the same cases here through neon_expect.
ALL_TESTS=(--lib)
PATH_TESTS=(--lib)
for f in simd/tests/*.rs; do
    t=$(basename "$f" .rs)
    case "$t" in
        forced) ;;
        gguf_py) ALL_TESTS+=(--test "$t") ;;
        *) ALL_TESTS+=(--test "$t") PATH_TESTS+=(--test "$t") ;;
    esac
done

# The host clippy never sees the aarch64 modules: lint them here where a clippy exists
# (rustup; Debian's cargo-web has none).
if "$CARGO" clippy --version >/dev/null 2>&1; then
    log "cargo clippy -p ouro-simd --all-targets --target $T"
    "$CARGO" clippy -p ouro-simd --all-targets --target "$T" -- -D warnings
else
    log "no clippy for $CARGO: aarch64 lint skipped"
fi

log "building ouro-simd tests for $T"
"${TEST[@]}" "${ALL_TESTS[@]}" --no-run

# 5. The tests on each CPU model.
first=1
for cpu in $CPUS; do
    case "$cpu" in
        cortex-a72 | cortex-a53 | cortex-a57) want=neon ;;
        max) want=neon-i8mm ;;
        *) want=neon-dotprod ;;
    esac
    if [ "$first" = 1 ]; then targets=("${ALL_TESTS[@]}"); else targets=("${PATH_TESTS[@]}"); fi
    first=0
    log "QEMU_CPU=$cpu: ${targets[*]}, expecting path '$want'"
    QEMU_CPU=$cpu OURO_EXPECT_SIMD=$want "${TEST[@]}" "${targets[@]}"
done

# 6. Forcing a path the CPU lacks is a clear init() error, never a SIGILL; forcing a lower path
#    on a CPU with more selects it.
log "QEMU_CPU=cortex-a72 OURO_SIMD=dotprod: init() must refuse"
QEMU_CPU=cortex-a72 OURO_SIMD=dotprod OURO_EXPECT_INIT_ERROR=dotprod "${TEST[@]}" --test neon_expect
log "QEMU_CPU=cortex-a76 OURO_SIMD=neon: plain NEON must be selected"
QEMU_CPU=cortex-a76 OURO_SIMD=neon OURO_EXPECT_SIMD=neon "${TEST[@]}" --test neon_expect
log "QEMU_CPU=cortex-a76 OURO_SIMD=i8mm: init() must refuse"
QEMU_CPU=cortex-a76 OURO_SIMD=i8mm OURO_EXPECT_INIT_ERROR=i8mm "${TEST[@]}" --test neon_expect
log "QEMU_CPU=max OURO_SIMD=dotprod: the dotprod path must be selected"
QEMU_CPU=max OURO_SIMD=dotprod OURO_EXPECT_SIMD=neon-dotprod "${TEST[@]}" --test neon_expect

log "all aarch64 runs passed ($CPUS)"
