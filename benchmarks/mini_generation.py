"""Wall time of ``python -m generation.mini`` at smoke and default size (targets: <= 40 s and <= 160 s).

Since the real clips are filmed as whole frames and cut by MTCNN's face crop (``generation.mini.filming``), MTCNN on
each clip's key frames, the originals' encoding and decoding are most of the time added to what the renderer and
the animator take."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"smoke": 40.0, "default": 160.0}


def main(sizes=("smoke", "default")) -> None:
    print("mini generation (2 cores, fresh output folder, including interpreter start-up)")
    for size in sizes:
        out = Path(tempfile.mkdtemp(prefix=f"dfmp-bench-mini-{size}-"))
        try:
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "generation.mini", "--output_dir", str(out), "--size", size, "--seed",
                            "0", "--no_progress"], check=True, capture_output=True)  # fmt: skip
            elapsed = time.perf_counter() - started
            clips = len(list(out.rglob("*.mp4")))
            print(f"  {size:<8} {clips:4d} clips in {elapsed:6.1f} s (target <= {TARGETS[size]:.0f} s; "
                  f"ratio to target {elapsed / TARGETS[size]:.2f})")  # fmt: skip
        finally:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
