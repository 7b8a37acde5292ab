"""Builds model.tar.gz for the SageMaker embedding endpoint from the same ONNX model the laptop uses.

    python model/build_model_archive.py -o model.tar.gz   # lite2-fp32, the product's default model
    aws s3 cp model.tar.gz s3://MY-BUCKET/visual-search/model.tar.gz   # then deploy with ModelDataUrl=that URL

Layout (what SageMaker's PyTorch inference container expects):
    model.onnx, endpoint_model.json          the model, built by the core library's model builder
    code/inference.py                        from model/code/
    code/visual_search/                      the library's core and embedders, copied from src/ now (never committed
                                             twice); not its server, CLI, AWS handlers or index adapters
    code/lib/                                onnxruntime and its dependencies, unpacked from the wheels pinned (with
                                             hashes) in model/endpoint-requirements.txt for the container's Python
There is no code/requirements.txt: the container installs nothing at start. The wheels are downloaded once
into a cache folder (--wheel-dir) and verified against the pinned hashes; later builds work offline.
The archive is byte-reproducible: the same inputs give the same bytes (sorted entries, no owners, every time
stamp 0 including the gzip header's, normalised modes), so its digest says whether a deploy changes the model.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LIBRARY = REPO_ROOT / "src" / "visual_search"
CODE = Path(__file__).resolve().parent / "code"
# What model/code/inference.py imports, directly or not: core and embedders import nothing else of the library
# (tests/aws/test_model_archive.py checks that the packed copy starts and embeds on its own).
ENDPOINT_LIBRARY = ("__init__.py", "py.typed", "core", "embedders")
ENDPOINT_REQUIREMENTS = Path(__file__).resolve().parent / "endpoint-requirements.txt"
# The container's interpreter and platform (SageMaker's PyTorch CPU inference image, py311, x86_64).
TARGET = ["--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"]


def default_wheel_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "visual-search" / "endpoint-wheels"


def endpoint_wheels(wheel_dir: Path, requirements: Path = ENDPOINT_REQUIREMENTS) -> list[Path]:
    """The pinned wheels for the container, hash-checked by pip: from `wheel_dir` alone when they are there
    (offline), else downloaded from the package index into it."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        "--require-hashes",
        *TARGET,
        "-r",
        str(requirements),
        "-d",
        str(wheel_dir),
    ]
    offline = subprocess.run([*command, "--no-index", "--find-links", str(wheel_dir)], capture_output=True, text=True)
    if offline.returncode != 0:
        online = subprocess.run(command, capture_output=True, text=True)
        if online.returncode != 0:
            raise SystemExit(f"could not get the endpoint's wheels ({requirements.name}):\n{online.stderr.strip()}")
    pins = [
        line.split("--hash")[0].strip()
        for line in requirements.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    wheels = []
    for pin in pins:
        name, version = pin.split("==")
        pattern = re.compile(rf"{re.escape(name.replace('-', '_'))}-{re.escape(version)}-.*\.whl", re.IGNORECASE)
        found = [path for path in wheel_dir.glob("*.whl") if pattern.fullmatch(path.name)]
        if len(found) != 1:
            raise SystemExit(f"expected one wheel for {pin} in {wheel_dir}, found {[p.name for p in found]}")
        wheels.append(found[0])
    return wheels


def unpack_wheel(wheel: Path, target: Path) -> None:
    """What an installer does for a wheel's importable files: its purelib/platlib go to `target` (scripts and
    headers are not needed), with the executable bits of native libraries kept."""
    with zipfile.ZipFile(wheel) as archive:
        for entry in archive.infolist():
            name = entry.filename
            if name.split("/", 1)[0].endswith(".data"):
                parts = name.split("/", 2)
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue
                name = parts[2]
            if entry.is_dir() or not name:
                continue
            destination = target / name
            if not destination.resolve().is_relative_to(target.resolve()):
                raise SystemExit(f"{wheel.name} holds a path outside its folder: {entry.filename}")
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(archive.read(entry))
            mode = entry.external_attr >> 16
            if mode:
                destination.chmod(mode & 0o755 | 0o644)


def build_archive(
    model_name: str, output: Path, *, calibration_dir: Path | None = None, wheel_dir: Path | None = None
) -> str:
    """Writes the archive to `output` and returns the model_id it serves."""
    from visual_search.embedders.onnx.endpoint_archive import save_endpoint_model
    from visual_search.embedders.onnx.resolver import resolve_model

    model = resolve_model(model_name, calibration_dir=calibration_dir)
    wheels = endpoint_wheels(wheel_dir or default_wheel_dir())
    with tempfile.TemporaryDirectory() as staging, tempfile.TemporaryDirectory() as lib:
        staging, lib = Path(staging), Path(lib)
        save_endpoint_model(model, staging)
        for wheel in wheels:
            unpack_wheel(wheel, lib)
        entries = [(path, path.relative_to(staging).as_posix()) for path in _files(staging)]
        entries.append((CODE / "inference.py", "code/inference.py"))
        entries += [(path, f"code/lib/{path.relative_to(lib).as_posix()}") for path in _files(lib)]
        entries += [(path, f"code/visual_search/{path.relative_to(LIBRARY).as_posix()}") for path in _library_files()]
        # gzip writes the time into its header unless told otherwise: mtime=0 (and no file name) keeps it fixed.
        with open(output, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as compressed:
            with tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive:
                for path, name in sorted(entries, key=lambda entry: entry[1]):
                    archive.add(path, arcname=name, recursive=False, filter=_normalised)
    return model.model_id


def _files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def _library_files() -> list[Path]:
    """The library modules the endpoint runs (ENDPOINT_LIBRARY), without caches."""
    found = []
    for name in ENDPOINT_LIBRARY:
        root = LIBRARY / name
        for path in [root] if root.is_file() else _files(root):
            if "__pycache__" not in path.parts and path.suffix in (".py", ".typed"):
                found.append(path)
    return found


def _normalised(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # Same bytes in, same archive out: no build machine's owner names, time stamps or umask.
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.mode = 0o755 if info.mode & 0o111 else 0o644
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lite2-fp32", help="lite2-fp32 (default), lite2-int8 or a model .json")
    parser.add_argument("--calibration-dir", type=Path, help="photos to calibrate lite2-int8 on (as for the CLI)")
    parser.add_argument("-o", "--output", type=Path, default=Path("model.tar.gz"))
    parser.add_argument(
        "--wheel-dir", type=Path, help=f"cache of the endpoint's wheels (default: {default_wheel_dir()})"
    )
    args = parser.parse_args(argv)
    model_id = build_archive(args.model, args.output, calibration_dir=args.calibration_dir, wheel_dir=args.wheel_dir)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB) serving {model_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
