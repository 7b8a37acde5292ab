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

from visual_search.bootstrap import cli_runtime
from visual_search.cli.commands import _progress_bar
from visual_search.core import colour as colour_signature
from visual_search.core.errors import InvalidRequestError
from visual_search.core.settings import Settings


def run_eval(args, settings: Settings) -> int:
    colour_signature.check_colour_weight(args.colour)
    if args.shopper_sim is not None and (args.shopper_sim < 1 or args.queries):
        raise InvalidRequestError("--shopper-sim needs a number of queries of at least 1, and no --queries CSV")

    def skipped(line: str) -> None:
        print(f"skipped {line}", file=sys.stderr)

    evaluation = cli_runtime.evaluate_retrieval(
        settings,
        args.gallery,
        args.queries,
        k=args.k,
        resize=args.resize,
        shopper_sim=args.shopper_sim,
        seed=args.seed,
        colour=args.colour,
        progress=lambda total: _progress_bar(total, disabled=args.json),
        on_skipped=skipped,
    )
    scores = evaluation.scores
    shopper = args.shopper_sim is not None
    benchmark = f"shopper-sim (seed {args.seed})" if shopper else "category"
    if args.json:
        print(
            json.dumps(
                {
                    **scores.as_dict(),
                    "benchmark": benchmark,
                    "colour": args.colour,
                    "model": evaluation.model_id,
                    "resize": evaluation.resize,
                }
            )
        )
    else:
        print(
            f"{benchmark}: model {evaluation.model_id}, resize {evaluation.resize}, colour {args.colour:g}, "
            f"{scores.queries} queries"
        )
        print(
            f"recall@1 {scores.recall_at_1:.4f}  recall@{args.k} {scores.recall_at_k:.4f}  "
            f"mAP {scores.mean_average_precision:.4f}"
        )
    return 0 if scores.queries else 1
