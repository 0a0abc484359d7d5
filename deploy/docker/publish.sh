#!/bin/sh
# Publishes a complete artifact directory as the one the service serves:
#     publish.sh ARTIFACTS_DIR VERSION
# points ARTIFACTS_DIR/current at ARTIFACTS_DIR/VERSION (a relative symlink, so it resolves in
# every container that mounts the volume, wherever) with one rename: a reader sees the old
# model or the new one, never a mix. The service notices the new manifest and hot-reloads it.
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 ARTIFACTS_DIR VERSION" >&2
    exit 2
fi
artifacts=$1
version=$2
if [ ! -f "$artifacts/$version/manifest.json" ]; then
    echo "seqcast-publish: $artifacts/$version has no manifest.json; current is unchanged" >&2
    exit 1
fi
link="$artifacts/.current.$$"
ln -s "$version" "$link"
mv -T "$link" "$artifacts/current"
echo "seqcast: published $artifacts/$version as $artifacts/current" >&2
