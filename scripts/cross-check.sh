#!/usr/bin/env bash
# `cargo check` of the whole workspace (every target: libs, bins, tests, benches) for the laptops
# that are not Linux: macOS on Apple silicon (aarch64-apple-darwin) and Windows
# (x86_64-pc-windows-gnu). Check only: nothing is linked, so no macOS SDK or Windows libraries.
#
# One C compiler per target is still needed: criterion (a dev-dependency) builds the `alloca`
# crate, whose build script compiles a small C file with cc-rs. Installed when missing (Debian):
# gcc-mingw-w64-x86-64 for Windows; clang for macOS, run with -ffreestanding so that only
# clang's own stddef.h/stdint.h are used (there is no macOS SDK here; without the flag clang's
# stdint.h pulls in glibc's).
#
# Environment:
#   CROSS_TARGETS  targets to check (default: "aarch64-apple-darwin x86_64-pc-windows-gnu")
# Exits non-zero if any target fails; every target is checked first (cargo --keep-going).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGETS=${CROSS_TARGETS:-aarch64-apple-darwin x86_64-pc-windows-gnu}
export DEBIAN_FRONTEND=noninteractive

log() { printf 'cross-check: %s\n' "$*" >&2; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

apt_install() {
    local missing=() p
    for p in "$@"; do installed "$p" || missing+=("$p"); done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]}"
        apt-get -o DPkg::Lock::Timeout=600 update -qq || log "warning: apt-get update reported errors"
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

for t in $TARGETS; do
    case "$t" in
        *-windows-gnu) apt_install gcc-mingw-w64-x86-64 ;;
        *-apple-darwin)
            apt_install clang
            v=$(echo "$t" | tr - _)
            export "CC_$v=clang" "CFLAGS_$v=-ffreestanding"
            ;;
    esac
done

# shellcheck disable=SC2086 # the target list is meant to split
rustup target add $TARGETS >/dev/null

cd "$ROOT"
failed=()
for t in $TARGETS; do
    log "cargo check --workspace --all-targets --target $t"
    start=$SECONDS
    if cargo check --workspace --all-targets --keep-going --target "$t"; then
        log "$t: ok ($((SECONDS - start)) s)"
    else
        log "$t: FAILED ($((SECONDS - start)) s)"
        failed+=("$t")
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    log "failed: ${failed[*]}"
    exit 1
fi
log "all targets check ($TARGETS)"
