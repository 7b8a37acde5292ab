#!/usr/bin/env bash
# Runs every benchmark in bench/ on this machine and keeps their JSON in artifacts/bench/ (figures for
# docs/BENCHMARKS.md). Needs a quiet machine: each reports the load average it started with. OpenSearch's
# benchmark needs a node (scripts/opensearch.sh start); it is skipped with a message when none answers.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
out=artifacts/bench
mkdir -p "$out"
run() { local name=$1; shift; echo "== $name" >&2; "$BIN/python" "$@" > "$out/$name.out" || echo "$name failed" >&2; }
clothing=${CLOTHING_DIR:-../shared/datasets/clothing}

run embedding bench/bench_embedding.py
run pipeline bench/bench_pipeline.py
run knn bench/bench_knn.py
run server-latency bench/bench_server_latency.py
run load bench/load_test.py
if [ -d "$clothing/images" ]; then
  # Retrieval quality of the issue-12 techniques on two benchmarks, with their cost (~20 min on 2 cores).
  run quality bench/bench_quality.py --dataset "$clothing" --photos 2000 --queries 500 --out "$out/quality.json"
fi
# The 100k case of the scale benchmark (the 1M case: --vectors 1000000, ~5 GB of test vectors under var/scale/).
rm -rf var/scale/index-100000
run scale bench/bench_scale.py --vectors 100000 --json
if scripts/opensearch.sh status >/dev/null 2>&1; then
  if [ -d "$clothing/images" ]; then
    # The real vectors of every clothing photo, from the product's own indexing command.
    "$BIN/python" bench/clothing_csv.py --dataset "$clothing" --out var/clothing.csv
    "$BIN/visual-search" index "$clothing/images" --labels var/clothing.csv --index-dir var/clothing-index --quiet
    "$BIN/python" bench/export_vectors.py var/clothing-index var/clothing-vectors
    run opensearch bench/bench_opensearch.py --vectors var/clothing-vectors.npy --labels var/clothing-vectors.labels.txt
    run opensearch-scale bench/bench_scale.py --vectors 100000 --backend opensearch --json
  else
    run opensearch bench/bench_opensearch.py
  fi
else
  echo "opensearch: skipped; start a node with scripts/opensearch.sh start" >&2
fi
echo "results in $out/" >&2
