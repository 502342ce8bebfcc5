#!/usr/bin/env bash
# Build allot's release: static, -trimpath binaries for linux/amd64,
# linux/arm64, darwin/amd64 and darwin/arm64, each in a .tar.gz with the
# LICENSE and the README, and SHA256SUMS over the archives.
#
#   scripts/release.sh v1.2.0                          # into dist/
#   OUT=/tmp/rel TARGETS=linux/amd64 scripts/release.sh v1.2.0
#
# Building one commit twice, with the same Go, gives the same bytes: no
# path, build id, time or owner of the machine gets into a binary or an
# archive. The version is linked in with -X; the commit and its time come
# from git (or ALLOT_COMMIT and SOURCE_DATE_EPOCH, for a tree without git).
# Needs GNU tar and gzip.
set -euo pipefail
version=${1:?usage: scripts/release.sh VERSION (for example v1.2.0)}
cd "$(dirname "$0")/.."
out=${OUT:-dist}
targets=${TARGETS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64}

commit=${ALLOT_COMMIT:-}
if [ -z "$commit" ]; then
  commit=$(git rev-parse HEAD)
  # A build of uncommitted changes says so (dist/ is ignored).
  if [ -n "$(git status --porcelain --untracked-files=normal)" ]; then commit="$commit-dirty"; fi
fi
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}
date=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)

pkg=github.com/allot-dev/allot/internal/version
ldflags="-s -w -buildid= -X $pkg.version=$version -X $pkg.commit=$commit -X $pkg.date=$date"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$out"
archives=()
for target in $targets; do
  os=${target%/*} arch=${target#*/}
  name=allot_${version}_${os}_${arch}
  mkdir -p "$stage/$name"
  echo "== $name"
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch GOFLAGS=-mod=readonly \
    go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$stage/$name/allot" ./cmd/allot
  cp LICENSE README.md "$stage/$name/"
  # Fixed order, times, owners and modes; gzip -n leaves out the name and time.
  tar --format=gnu --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
    --mode='u=rwX,go=rX' -C "$stage" -cf - "$name" | gzip -9 -n > "$out/$name.tar.gz"
  archives+=("$name.tar.gz")
done
(cd "$out" && sha256sum "${archives[@]}" > SHA256SUMS)
echo "== $out/SHA256SUMS"
cat "$out/SHA256SUMS"
