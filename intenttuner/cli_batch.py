"""``python -m intenttuner batch``: a saved workflow run on one or several ComfyUI servers, with
overrides and sweeps of its inputs and a summary of the scores per run.

    python -m intenttuner batch workflows/full_pipeline.json --server http://127.0.0.1:8188 \\
        --server http://127.0.0.1:8189 --set KSampler.steps=20 \\
        --sweep IntentTunerLoRATrain.rank=4,8 --out output/batch [--resume] [--timeout S]

Exit status 0 when every run succeeded, 1 otherwise (one line per failed run).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "run a saved workflow on ComfyUI servers, with --set overrides and --sweep values"
NODE_HELP = ("NODE is a node id, a node title or a node type only one node has; INPUT one of "
             "its inputs")


def add_parser(sub) -> None:
    batch = sub.add_parser("batch", help=HELP, description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    batch.add_argument("workflow", type=Path, metavar="WORKFLOW.json",
                       help="a workflow saved from ComfyUI: UI format (Save; converted with "
                            "the first server's node types) or API format (Export (API))")
    batch.add_argument("--server", action="append", required=True, metavar="URL",
                       help="a ComfyUI server, http://HOST:PORT; repeat it to spread the runs "
                            "over several (one run at a time on each)")
    batch.add_argument("--set", action="append", default=[], dest="sets",
                       metavar="NODE.INPUT=VALUE", help=f"set an input in every run; {NODE_HELP}")
    batch.add_argument("--sweep", action="append", default=[], dest="sweeps",
                       metavar="NODE.INPUT=A,B,C",
                       help="one run per value (several --sweep: every combination)")
    batch.add_argument("--out", type=Path, required=True, metavar="DIR",
                       help="the results: runs/<run id>/ (result.json, prompt.json, output "
                            "files) and summary.csv / summary.md / summary.png")
    batch.add_argument("--resume", action="store_true",
                       help="keep the runs an earlier call into --out finished with the same "
                            "prompt; run the others")
    batch.add_argument("--timeout", type=float, default=3600, metavar="S",
                       help="seconds one run may take before it is stopped (default "
                            "%(default)g)")
    batch.add_argument("--quiet", action="store_true",
                       help="no progress lines, only warnings and the result")


def main(args) -> int:
    from .batch import run_batch

    result = run_batch(args.workflow, args.server, args.sets, args.sweeps, args.out,
                       resume=args.resume, timeout=args.timeout, progress=not args.quiet)
    # The command's own report goes to stdout (the progress lines went to the log).
    lines = [f"server {url} left the batch: {one_line(why)}"
             for url, why in result.dropped_servers.items()]
    done = len(result.runs) - len(result.failures)
    lines.append(f"{done} of {len(result.runs)} run(s) succeeded; summary: {result.summary_md} "
                 f"({result.summary_csv.name}, {result.summary_png.name})")
    for run in result.failures:
        where = f" on {run.server}" if run.server else ""
        lines.append(f"failed: {run.run_id}{where}: {one_line(run.error or 'no reason given')}")
    print("\n".join(lines))
    return 0 if not result.failures else 1


def one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())
