#!/usr/bin/env bash
# Build allot's container image from the Containerfile, for linux and
# this machine's architecture (GOARCH to choose another).
#
#   scripts/image.sh v1.2.0 [TAG]           # TAG defaults to allot:v1.2.0
#   PODMAN="podman --root /tmp/r --runroot /tmp/rr" scripts/image.sh v1.2.0
#
# No base image is pulled: the context gets the static binary built here
# (with the flags of scripts/release.sh), this machine's CA certificates,
# and a passwd and group that name the allot user (65532).
set -euo pipefail
version=${1:?usage: scripts/image.sh VERSION [TAG]}
tag=${2:-allot:$version}
cd "$(dirname "$0")/.."
podman=${PODMAN:-podman}
cacerts=${CA_CERTIFICATES:-/etc/ssl/certs/ca-certificates.crt}

commit=${ALLOT_COMMIT:-}
if [ -z "$commit" ]; then
  commit=$(git rev-parse HEAD)
  if [ -n "$(git status --porcelain --untracked-files=normal)" ]; then commit="$commit-dirty"; fi
fi
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}
date=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
pkg=github.com/allot-dev/allot/internal/version
CGO_ENABLED=0 GOOS=linux GOARCH=${GOARCH:-$(go env GOARCH)} GOFLAGS=-mod=readonly \
  go build -trimpath -buildvcs=false -o "$ctx/allot" \
  -ldflags "-s -w -buildid= -X $pkg.version=$version -X $pkg.commit=$commit -X $pkg.date=$date" ./cmd/allot
cp "$cacerts" "$ctx/ca-certificates.crt"
cp LICENSE README.md Containerfile "$ctx/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nallot:x:65532:65532:allot:/data:/sbin/nologin\n' > "$ctx/passwd"
printf 'root:x:0:\nallot:x:65532:\n' > "$ctx/group"
mkdir "$ctx/data"
$podman build --file "$ctx/Containerfile" --tag "$tag" \
  --build-arg VERSION="$version" --build-arg REVISION="$commit" --build-arg CREATED="$date" "$ctx"
echo "== built $tag"
