"""`visual-search aws ...`: operator commands that work from a deployed stack's outputs.

visual-search aws publish-frontend --stack NAME   # config.json, sync frontend/ to its bucket, invalidate CloudFront
visual-search aws reindex --stack NAME            # every image again: after a manifest change or a model change
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from visual_search.core.settings import Settings


def register(sub, common: argparse.ArgumentParser) -> None:
    aws = sub.add_parser("aws", help="operate a deployed AWS stack (publish the UI, re-index)")
    commands = aws.add_subparsers(title="aws commands", metavar="COMMAND")
    stack = argparse.ArgumentParser(add_help=False)
    stack.add_argument("--stack", required=True, metavar="NAME", help="the CloudFormation stack `sam deploy` made")
    stack.add_argument("--region", help="the stack's region (default: AWS_REGION / the AWS CLI's configuration)")

    publish = commands.add_parser(
        "publish-frontend",
        parents=[stack],
        help="write config.json, sync the web UI to the stack's bucket, invalidate CloudFront",
    )
    publish.add_argument("--frontend-dir", metavar="DIR", help="the UI's folder (default: this checkout's frontend/)")
    publish.set_defaults(run=run_publish_frontend)

    reindex = commands.add_parser(
        "reindex",
        parents=[stack, common],
        help="index every image of the stack's bucket again (labels from metadata and manifest)",
    )
    reindex.set_defaults(run=run_reindex)
    # publish-frontend takes none of the index options main() reads; they default to unset.
    aws.set_defaults(
        run=lambda args, settings: (aws.print_help(), 2)[1],
        index_dir=None,
        model=None,
        threads=None,
        calibration_dir=None,
        follow_links_outside=False,
    )


def run_publish_frontend(args, settings: Settings) -> int:
    from visual_search.aws.frontend_publish import publish_frontend

    frontend_dir = Path(args.frontend_dir or settings.frontend_dir or _checkout_frontend())
    report = publish_frontend(args.stack, frontend_dir, region_name=args.region or settings.aws_region)
    print(
        f"uploaded {len(report.uploaded)} files to s3://{report.bucket} (deleted {len(report.deleted)} stale), "
        f"config.json: {report.config}"
    )
    print(f"CloudFront invalidation {report.invalidation_id} started (usually done in a minute or two): {report.url}")
    return 0


def run_reindex(args, settings: Settings) -> int:
    from visual_search.aws.stack_outputs import read_stack_outputs, required_outputs
    from visual_search.bootstrap.aws_runtime import build_event_indexer_runtime

    region = args.region or settings.aws_region
    outputs = read_stack_outputs(args.stack, region_name=region)
    bucket, index_url, endpoint = required_outputs(
        outputs, args.stack, "ImagesBucketName", "OpenSearchIndexUrl", "EmbeddingEndpointName"
    )
    settings = settings.with_overrides(
        index=index_url,
        embedder="sagemaker",
        sagemaker_endpoint=endpoint,
        image_store=f"s3://{bucket}",
        catalogue_manifest=outputs.get("CatalogueManifestKey") or None,
        opensearch_auth="sigv4",
        aws_region=region,
    )
    runtime = build_event_indexer_runtime(settings)
    try:
        report = runtime.reindex(bucket, outputs.get("ImagesPrefix", ""))
    finally:
        runtime.close()
    for failure in report.failed:
        print(f"visual-search: {failure.uri}: {failure.reason}", file=sys.stderr)
    print(
        f"indexed {report.indexed}, unchanged {report.unchanged}, failed {len(report.failed)} "
        f"({report.seconds:.1f} s) into {index_url}"
    )
    return 1 if report.failed and not (report.indexed or report.unchanged) else 0


def _checkout_frontend() -> Path:
    return Path(__file__).resolve().parents[3] / "frontend"
