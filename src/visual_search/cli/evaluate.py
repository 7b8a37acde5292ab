"""`visual-search eval`: retrieval quality of the configured model on your photos, on two kinds of benchmark.

- category (default): leave-one-out over the labelled gallery, or a labelled queries CSV against it; a hit is
  right when it shares the query's label;
- `--shopper-sim N`: N synthetic shopper photos (services/shopper_sim.py, seeded by `--seed`) of gallery items
  against the untouched gallery; a hit is right only when it is the exact item.
`--colour W` scores with the colour weight a search would use (0: appearance only, as searches default to).
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from visual_search import bootstrap
from visual_search.cli.commands import _progress_bar
from visual_search.core import colour as colour_signature
from visual_search.core.catalogue_csv import read_catalogue_csv
from visual_search.core.errors import InvalidRequestError
from visual_search.core.images import decode_image
from visual_search.core.settings import Settings
from visual_search.services.evaluation import score_retrieval
from visual_search.services.indexing import IndexItem
from visual_search.services.shopper_sim import shopper_queries


def run_eval(args, settings: Settings) -> int:
    colour_signature.check_colour_weight(args.colour)
    if args.shopper_sim is not None and (args.shopper_sim < 1 or args.queries):
        raise InvalidRequestError("--shopper-sim needs a number of queries of at least 1, and no --queries CSV")
    embedder = bootstrap.build_embedder(settings, bulk=True)
    if args.resize:
        embedder.spec = replace(embedder.spec, resize=args.resize)
    shopper = args.shopper_sim is not None
    # The shopper benchmark needs no labels: each gallery photo is its own item.
    gallery = [entry for entry in read_catalogue_csv(args.gallery) if entry.label or shopper]
    queries = [entry for entry in read_catalogue_csv(args.queries) if entry.label] if args.queries else None

    def embed_all(items: list[IndexItem], name: str, scratch: str) -> tuple[np.ndarray, list[int]]:
        service = bootstrap.build_indexing_service(
            settings.with_overrides(index=str(Path(scratch) / name)), embedder=embedder
        )
        with _progress_bar(len(items), disabled=args.json) as progress:
            report = service.index_items(items, progress=progress.update)
        for failure in report.failed:
            print(f"skipped {failure.uri}: {failure.reason}", file=sys.stderr)
        try:
            vectors = {i: service.index.get_vector(item.key) for i, item in enumerate(items)}
        finally:
            service.index.close()
        kept = [i for i, vector in vectors.items() if vector is not None]
        if not kept:
            raise InvalidRequestError(f"none of the {len(items)} images of the {name} could be embedded")
        return np.stack([vectors[i] for i in kept]), kept

    def items_of(entries) -> list[IndexItem]:
        return [IndexItem(str(i), str(e.path), e.path.read_bytes, e.label) for i, e in enumerate(entries)]

    with tempfile.TemporaryDirectory(prefix="visual-search-eval-") as scratch:
        gallery_vectors, kept = embed_all(items_of(gallery), "gallery", scratch)
        gallery = [gallery[i] for i in kept]
        gallery_labels = [str(i) for i in range(len(gallery))] if shopper else [e.label for e in gallery]
        query_vectors = query_labels = None
        if shopper:
            made = shopper_queries(
                args.shopper_sim,
                len(gallery),
                lambda i: decode_image(gallery[i].path.read_bytes()).image,
                seed=args.seed,
            )
            items = [
                IndexItem(f"q{n}", f"shopper photo {n} of {gallery[q.source].path}", (lambda q=q: q.jpeg))
                for n, q in enumerate(made)
            ]
            query_vectors, kept = embed_all(items, "queries", scratch)
            query_labels = [str(made[i].source) for i in kept]
        elif queries is not None:
            query_vectors, kept = embed_all(items_of(queries), "queries", scratch)
            query_labels = [queries[i].label for i in kept]
    leave_one_out = query_vectors is None
    scores = score_retrieval(
        gallery_vectors,
        gallery_labels,
        _weighted(gallery_vectors if leave_one_out else query_vectors, embedder.model_id, args.colour),
        gallery_labels if leave_one_out else query_labels,
        k=args.k,
        same_items=leave_one_out,
    )
    benchmark = f"shopper-sim (seed {args.seed})" if shopper else "category"
    if args.json:
        print(
            json.dumps(
                {
                    **scores.as_dict(),
                    "benchmark": benchmark,
                    "colour": args.colour,
                    "model": embedder.model_id,
                    "resize": embedder.spec.resize,
                }
            )
        )
    else:
        print(
            f"{benchmark}: model {embedder.model_id}, resize {embedder.spec.resize}, colour {args.colour:g}, "
            f"{scores.queries} queries"
        )
        print(
            f"recall@1 {scores.recall_at_1:.4f}  recall@{args.k} {scores.recall_at_k:.4f}  "
            f"mAP {scores.mean_average_precision:.4f}"
        )
    return 0 if scores.queries else 1


def _weighted(vectors: np.ndarray, model_id: str, weight: float) -> np.ndarray:
    """Query rows as a search makes them from stored vectors: the colour part weighted by `weight`."""
    colour_dimension = colour_signature.colour_dimension_of(model_id)
    if not colour_dimension:
        if weight:
            raise InvalidRequestError(f"--colour needs a model with a colour descriptor; {model_id} has none")
        return vectors
    return np.stack([colour_signature.query_vector(row, colour_dimension, weight) for row in vectors])
