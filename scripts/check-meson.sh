#!/usr/bin/env bash
# Builds the plugin through meson (as a distribution would) and checks that GStreamer loads all
# three elements from the result.
set -euo pipefail
cd "$(dirname "$0")/.."

builddir=target/meson
[ -f "$builddir/build.ninja" ] || meson setup "$builddir" --buildtype=debug >/dev/null
meson compile -C "$builddir" >/dev/null
for element in cfrtmpsrc cfsrtsrc gopvalidate cfhlssink; do
  GST_PLUGIN_PATH="$PWD/$builddir" gst-inspect-1.0 "$element" >/dev/null \
    || { echo "check-meson: $element not found in $builddir/libgstcfstream.so" >&2; exit 1; }
done
echo "check-meson: libgstcfstream.so from meson provides cfrtmpsrc, cfsrtsrc, gopvalidate and cfhlssink"
