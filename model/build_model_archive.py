"""Builds model.tar.gz for the SageMaker embedding endpoint from the same ONNX model the laptop uses.

    python model/build_model_archive.py -o model.tar.gz   # lite2-fp32, the product's default model
    aws s3 cp model.tar.gz s3://MY-BUCKET/visual-search/model.tar.gz   # then deploy with ModelDataUrl=that URL

Layout (what SageMaker's PyTorch inference container expects):
    model.onnx, endpoint_model.json          the model, built by the core library's model builder
    code/inference.py, code/requirements.txt from model/code/
    code/visual_search/                      the core library, copied from src/ now (never committed twice)
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LIBRARY = REPO_ROOT / "src" / "visual_search"
CODE = Path(__file__).resolve().parent / "code"


def build_archive(model_name: str, output: Path, *, calibration_dir: Path | None = None) -> str:
    """Writes the archive to `output` and returns the model_id it serves."""
    from visual_search.embedders.onnx.registry import resolve_model
    from visual_search.embedders.sagemaker.model_directory import save_endpoint_model

    model = resolve_model(model_name, calibration_dir=calibration_dir)
    with tempfile.TemporaryDirectory() as staging:
        staging = Path(staging)
        save_endpoint_model(model, staging)
        with tarfile.open(output, "w:gz") as archive:
            for path in sorted(staging.iterdir()):
                archive.add(path, arcname=path.name, filter=_normalised)
            for name in ("inference.py", "requirements.txt"):
                archive.add(CODE / name, arcname=f"code/{name}", filter=_normalised)
            for source in sorted(LIBRARY.rglob("*")):
                if source.is_file() and "__pycache__" not in source.parts and source.suffix in (".py", ".typed"):
                    archive.add(source, arcname=f"code/visual_search/{source.relative_to(LIBRARY).as_posix()}",
                                filter=_normalised)
    return model.model_id


def _normalised(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # Same bytes in, same archive out: no build machine's owner names or timestamps.
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lite2-fp32", help="lite2-fp32 (default), lite2-int8 or a model .json")
    parser.add_argument("--calibration-dir", type=Path, help="photos to calibrate lite2-int8 on (as for the CLI)")
    parser.add_argument("-o", "--output", type=Path, default=Path("model.tar.gz"))
    args = parser.parse_args(argv)
    model_id = build_archive(args.model, args.output, calibration_dir=args.calibration_dir)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB) serving {model_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
