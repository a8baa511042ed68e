#!/usr/bin/env bash
# Called by meson.build: builds the plugin with cargo and copies the library to meson's output.
# Usage: meson-cargo-build.sh SOURCE_ROOT CARGO_PROFILE OUTPUT
set -euo pipefail
source_root=$1 profile=$2 output=$3
target_dir=${CARGO_TARGET_DIR:-$source_root/target}
cargo build --manifest-path "$source_root/Cargo.toml" -p gst-plugin-cfstream --lib \
  --profile "$profile" --target-dir "$target_dir"
profile_dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
cp "$target_dir/$profile_dir/libgstcfstream.so" "$output"
