"""`visual-search eval`: retrieval quality of the configured model on your photos, on two kinds of benchmark.

- category (default): leave-one-out over the labelled gallery, or a labelled queries CSV against it; a hit is
  right when it shares the query's label;
- `--shopper-sim N`: N synthetic shopper photos (services/shopper_sim.py, seeded by `--seed`) of gallery items
  against the untouched gallery; a hit is right only when it is the exact item.
`--colour W` scores with the colour weight a search would use (0: appearance only, as searches default to).
"""

from __future__ import annotations

import functools
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from visual_search import bootstrap
from visual_search.cli.commands import _progress_bar
from visual_search.core import colour as colour_signature
from visual_search.core.catalogue_csv import read_catalogue_csv
from visual_search.core.centre import Centre, fit_centre, project
from visual_search.core.errors import InvalidRequestError
from visual_search.core.images import decode_image
from visual_search.core.settings import Settings
from visual_search.services.adaptation import PhotoSource, embed_photos
from visual_search.services.evaluation import RetrievalScores, score_retrieval
from visual_search.services.indexing import IndexItem
from visual_search.services.shopper_sim import shopper_queries


def run_eval(args, settings: Settings) -> int:
    colour_signature.check_colour_weight(args.colour)
    if args.shopper_sim is not None and (args.shopper_sim < 1 or args.queries):
        raise InvalidRequestError("--shopper-sim needs a number of queries of at least 1, and no --queries CSV")
    adapt_sim = getattr(args, "adapt_sim", None)
    if adapt_sim is not None and (args.shopper_sim is None or adapt_sim < 1):
        raise InvalidRequestError("--adapt-sim M needs --shopper-sim N and M of at least 1")
    adapt_paths = getattr(args, "adapt", None)
    embedder = bootstrap.build_embedder(settings, bulk=True, resize=args.resize)
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

    adapt_sources = _adaptation_sources(adapt_paths, gallery if queries is None and not shopper else queries or [])
    centre: Centre | None = None
    with tempfile.TemporaryDirectory(prefix="visual-search-eval-") as scratch:
        gallery_vectors, kept = embed_all(items_of(gallery), "gallery", scratch)
        gallery = [gallery[i] for i in kept]
        gallery_labels = [str(i) for i in range(len(gallery))] if shopper else [e.label for e in gallery]
        query_vectors = query_labels = None
        if shopper:
            made = shopper_queries(
                args.shopper_sim,
                len(gallery),
                functools.partial(_gallery_image, gallery),
                seed=args.seed,
            )
            items = [
                IndexItem(f"q{n}", f"shopper photo {n} of {gallery[q.source].path}", functools.partial(bytes, q.jpeg))
                for n, q in enumerate(made)
            ]
            query_vectors, kept = embed_all(items, "queries", scratch)
            query_labels = [str(made[i].source) for i in kept]
            if adapt_sim:
                adapt_sources = _simulated_adaptation(adapt_sim, gallery, {q.source for q in made}, args.seed)
        elif queries is not None:
            query_vectors, kept = embed_all(items_of(queries), "queries", scratch)
            query_labels = [str(queries[i].label) for i in kept]  # queries without a label were left out
    colour_dimension = colour_signature.colour_dimension_of(embedder.model_id)
    adapted_on = 0
    if adapt_sources:
        adapt_vectors, skipped = embed_photos(embedder, adapt_sources, max_pixels=settings.max_pixels)
        for name, reason in skipped:
            print(f"skipped adaptation photo {name}: {reason}", file=sys.stderr)
        if not len(adapt_vectors):
            raise InvalidRequestError("none of the adaptation photos could be used")
        centre, adapted_on = fit_centre(adapt_vectors, colour_dimension), len(adapt_vectors)
    leave_one_out = query_vectors is None

    def scored(centre: Centre | None) -> RetrievalScores:
        gallery_space = project(gallery_vectors, centre, colour_dimension)
        query_space = project(gallery_vectors if query_vectors is None else query_vectors, centre, colour_dimension)
        return score_retrieval(
            gallery_space,
            gallery_labels,  # type: ignore[arg-type]  # labelled entries only (filtered when read)
            _weighted(query_space, embedder.model_id, args.colour),
            gallery_labels if leave_one_out else query_labels,  # type: ignore[arg-type]
            k=args.k,
            same_items=leave_one_out,
        )

    scores = scored(None)
    adapted = scored(centre) if centre is not None else None
    benchmark = f"shopper-sim (seed {args.seed})" if shopper else "category"
    if args.json:
        extra = {}
        if adapted is not None and centre is not None:
            extra = {"adapted": adapted.as_dict(), "adapted_on_photos": adapted_on, "centre_id": centre.centre_id}
        print(
            json.dumps(
                {
                    **scores.as_dict(),
                    "benchmark": benchmark,
                    "colour": args.colour,
                    "model": embedder.model_id,
                    "resize": embedder.spec.resize,
                    **extra,
                }
            )
        )
    else:
        print(
            f"{benchmark}: model {embedder.model_id}, resize {embedder.spec.resize}, colour {args.colour:g}, "
            f"{scores.queries} queries"
        )
        for name, result in (("without a centre" if adapted else "", scores), ("with the centre", adapted)):
            if result is None:
                continue
            print(
                f"recall@1 {result.recall_at_1:.4f}  recall@{args.k} {result.recall_at_k:.4f}  "
                f"mAP {result.mean_average_precision:.4f}" + (f"  ({name})" if name else "")
            )
        if centre is not None:
            print(f"centre {centre.centre_id} fitted on {adapted_on} photos that are not evaluation queries")
    return 0 if scores.queries else 1


def _adaptation_sources(paths: list[str] | None, queries) -> list[PhotoSource]:
    """The --adapt photos; InvalidRequestError when one of them is an evaluation query (that would score the
    centre on the photos it was fitted on)."""
    if not paths:
        return []
    from visual_search.cli.adapt_command import photo_sources

    sources = photo_sources(paths)
    if not sources:
        raise InvalidRequestError(f"no image files found in {', '.join(paths)}")
    query_paths = {str(Path(entry.path).resolve()) for entry in queries}
    for source in sources:
        if str(Path(source.name).resolve()) in query_paths:
            raise InvalidRequestError(
                f"--adapt photo {source.name} is one of the evaluation queries: fit the centre on other photos"
            )
    return sources


def _simulated_adaptation(count: int, gallery, query_sources: set[int], seed: int) -> list[PhotoSource]:
    """`count` synthetic shopper photos, made with seed + 1, of gallery items that no evaluation query shows."""
    pool = [i for i in range(len(gallery)) if i not in query_sources]
    if not pool:
        raise InvalidRequestError(
            "--adapt-sim needs gallery items that no --shopper-sim query shows: use fewer queries"
        )
    made = shopper_queries(
        count, len(pool), lambda i: decode_image(gallery[pool[i]].path.read_bytes()).image, seed=seed + 1
    )
    return [
        PhotoSource(f"simulated shopper photo of {gallery[pool[q.source]].path}", functools.partial(bytes, q.jpeg))
        for q in made
    ]


def _weighted(vectors: np.ndarray, model_id: str, weight: float) -> np.ndarray:
    """Query rows as a search makes them from stored vectors: the colour part weighted by `weight`."""
    colour_dimension = colour_signature.colour_dimension_of(model_id)
    if not colour_dimension:
        if weight:
            raise InvalidRequestError(f"--colour needs a model with a colour descriptor; {model_id} has none")
        return vectors
    return np.stack([colour_signature.query_vector(row, colour_dimension, weight) for row in vectors])


def _gallery_image(gallery: list, index: int) -> Image.Image:
    """The decoded photo of gallery entry `index`: what a simulated shopper photo is made from."""
    return decode_image(gallery[index].path.read_bytes()).image
