#!/bin/sh
# Trainer container entry point (compose profile "train"): trains a model and publishes it
# as /artifacts/current, the directory the API serves and hot-reloads.
#
# SEQCAST_TRAIN_DATA  event log to train on (mounted into the container); unset: a synthetic
#                     demo log of SEQCAST_SYNTH_USERS shoppers (default 2000)
# SEQCAST_TRAIN_ARGS  extra `seqcast train` options, e.g. "--format taobao --preset default"
#
# Each run writes a new, complete directory /artifacts/<UTC time>, then seqcast-publish
# (publish.sh) swaps the symlink `current` to it: the API never sees a half-written artifact.
set -eu

artifacts=${SEQCAST_ARTIFACTS:-/artifacts}
version=$(date -u +%Y%m%dT%H%M%SZ)
data=${SEQCAST_TRAIN_DATA:-}
if [ -z "$data" ]; then
    data=$(mktemp -d)/synthetic.csv
    seqcast synth --users "${SEQCAST_SYNTH_USERS:-2000}" --out "$data"
    set -- --format taobao --preset tiny
fi
# shellcheck disable=SC2086  # SEQCAST_TRAIN_ARGS is a list of options on purpose
seqcast train --data "$data" --out "$artifacts/$version" "$@" ${SEQCAST_TRAIN_ARGS:-}
# publish.sh beside this file in the repository; seqcast-publish beside it in the image
publish="$(dirname "$0")/publish.sh"
[ -x "$publish" ] || publish="$(dirname "$0")/seqcast-publish"
"$publish" "$artifacts" "$version"
