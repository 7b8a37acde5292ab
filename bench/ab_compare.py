"""Runs one benchmark script against a baseline source tree and against this one, alternating, in one run.

On a shared, noisy machine two benchmark runs an hour apart say little; alternating A, B, A, B... makes both
see the same load, and the ratio of their figures is what to read. The baseline is any checkout's `src`
folder (e.g. `git archive main src | tar -x -C /tmp/baseline`); it is put first on PYTHONPATH, which takes
precedence over this tree's editable install, for the benchmark process and every process it starts.

    .venv/bin/python bench/ab_compare.py --baseline /tmp/baseline/src --rounds 2 -- bench/bench_server_latency.py --requests 100

Prints one JSON document: {"baseline": [run JSON, ...], "candidate": [...], "rounds": n}. `--candidate` names
another src folder to compare instead of this tree (a snapshot, so that editing the tree cannot change a long run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(script_and_args: list[str], pythonpath: str | None) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    completed = subprocess.run(
        [sys.executable, *script_and_args], env=env, cwd=REPO, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise SystemExit(f"{script_and_args[0]} failed:\n{completed.stderr[-3000:]}")
    text = completed.stdout
    return json.loads(text[text.index("{") :])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the baseline's src folder")
    parser.add_argument(
        "--candidate", type=Path, help="the candidate's src folder (default: this tree, as it is while running)"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the bench script and its arguments")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not (args.baseline / "visual_search").is_dir():
        raise SystemExit(f"{args.baseline} holds no visual_search package")
    results: dict = {"baseline": [], "candidate": [], "rounds": args.rounds, "command": command}
    for _ in range(args.rounds):
        results["baseline"].append(run(command, str(args.baseline.resolve())))
        results["candidate"].append(run(command, str(args.candidate.resolve()) if args.candidate else None))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
