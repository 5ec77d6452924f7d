#!/bin/sh
# Turns a copy of the workspace into its dependency skeleton, for the Dockerfile's cached
# dependency layer: every crates/*/ (and benches/*/ workspace member) keeps its Cargo.toml, its target roots (src/lib.rs,
# src/main.rs, build.rs) become empty stubs and every other file goes. The skeleton only
# changes when a manifest does, so editing a .rs file does not rebuild the dependencies.
# Usage: skeleton.sh DIR (DIR holds Cargo.toml, Cargo.lock, crates/ and benches/). POSIX sh: the
# build image's /bin/sh is dash. scripts/check-deploy.sh runs it too, with cargo metadata
# --locked on the result.
set -eu
cd "$1"
for manifest in crates/*/Cargo.toml benches/*/Cargo.toml; do
  [ -f "$manifest" ] || continue
  crate=$(dirname "$manifest")
  has_lib=0 has_main=0 has_build=0
  if [ -f "$crate/src/lib.rs" ]; then has_lib=1; fi
  if [ -f "$crate/src/main.rs" ]; then has_main=1; fi
  if [ -f "$crate/build.rs" ]; then has_build=1; fi
  find "$crate" -mindepth 1 ! -name Cargo.toml -delete
  mkdir -p "$crate/src"
  # A stub per target keeps each crate's targets, so cargo resolves the same graph,
  # and a stub build.rs still makes cargo compile the build-dependencies.
  if [ "$has_lib" = 1 ]; then : >"$crate/src/lib.rs"; fi
  if [ "$has_main" = 1 ]; then echo 'fn main() {}' >"$crate/src/main.rs"; fi
  if [ "$has_build" = 1 ]; then echo 'fn main() {}' >"$crate/build.rs"; fi
done
