#!/usr/bin/env bash
# Re-vendors hls.js (the web UI's HLS player for live streams) at the pinned
# version from the npm registry: rusty-node/ui/vendor/hls.min.js, its
# licence, and SHA256SUMS. `--check` only verifies the committed files
# against SHA256SUMS. The UI embeds the files in the binary; nothing is
# fetched at build or run time.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=1.6.19
dest=rusty-node/ui/vendor

if [ "${1:-}" = "--check" ]; then
  (cd "$dest" && sha256sum --check --quiet SHA256SUMS)
  echo "vendored hls.js matches SHA256SUMS"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "hls.js@$VERSION" >/dev/null && tar xzf "hls.js-$VERSION.tgz")
cp "$tmp/package/dist/hls.min.js" "$dest/hls.min.js"
cp "$tmp/package/LICENSE" "$dest/hls.js.LICENSE"
echo "$VERSION" > "$dest/hls.js.VERSION"
(cd "$dest" && sha256sum hls.min.js hls.js.LICENSE > SHA256SUMS)
echo "vendored hls.js $VERSION into $dest"
