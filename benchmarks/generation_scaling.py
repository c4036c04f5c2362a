"""generate.py across processes: wall time of the same jobs with one process (torch threads on every core)
against ``accelerate launch --multi_gpu --num_processes N`` on the CPU (one thread each), in one run, on mini
inputs with the warp backend (no checkpoint needed). Each run starts from an empty output folder.

python -m benchmarks.generation_scaling [--processes 2] [--actions 4] [--frames 24]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dataset_script.schema import ACTIONS
from generation.mini.generation_inputs import write_generation_inputs

ROOT = Path(__file__).resolve().parent.parent


def run(inputs: Path, out: Path, processes: int) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    launcher = [sys.executable]
    if processes > 1:
        env["OMP_NUM_THREADS"] = "1"
        launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                    str(processes), "--num_machines", "1", "--mixed_precision", "no",
                    "--dynamo_backend", "no"]  # fmt: skip
    command = [*launcher, str(ROOT / "generation" / "generate.py"), "--backend", "warp", "--sources",
               str(inputs / "sources"), "--driving", str(inputs / "driving"), "--output_dir", str(out), "--cpu",
               "--no_progress"]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--actions", type=int, default=4, help="driving videos, one per action")
    parser.add_argument("--frames", type=int, default=24, help="frames per driving video")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        inputs = write_generation_inputs(Path(folder) / "inputs", ACTIONS[: args.actions], frames=args.frames).root
        seconds, busy = {}, {}
        for processes in (1, args.processes):
            out = Path(folder) / f"out{processes}"
            seconds[processes] = run(inputs, out, processes)
            records = [json.loads(p.read_text()) for p in (out / ".generation" / "records").rglob("*.json")]
            per_process: dict[int, float] = {}
            for record in records:
                per_process[record["process"]] = per_process.get(record["process"], 0.0) + record["seconds"]
            busy[processes] = max(per_process.values())  # the job time of the busiest process: no start-up
            print(f"{processes} process(es): {len(records)} jobs in {seconds[processes]:.1f} s wall, "
                  f"{busy[processes]:.1f} s in jobs for the busiest process")  # fmt: skip
    print(
        f"ratio {seconds[1] / seconds[args.processes]:.2f} in wall time, {busy[1] / busy[args.processes]:.2f} "
        f"in job time ({args.processes} processes against 1, same jobs; start-up is the difference)"
    )


if __name__ == "__main__":
    main()
