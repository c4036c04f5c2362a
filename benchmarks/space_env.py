"""The Space as deployed: a fresh virtual env from ``spaces/detector/requirements.txt`` alone, then the Space's tests.

python -m benchmarks.space_env [--venv DIR] [--keep] [-- PYTEST_ARGS...]

A Space installs its ``requirements.txt`` with ``pip install -r`` and nothing else, so this does the same in a new
env (pip's own configuration applies, as for ``make setup``: on this machine kind torch comes from local disk). It
then checks the Space imports with what that file gave it, as it does on a Space (``app.py`` beside the project's
``dataset_script``, ``generation`` and ``modeling``, nothing installed from the project), before adding what only
the tests need (``TEST_ONLY``: pytest, the browser driver, and what the fixtures use to build a smoke mini and the
model card), and runs ``tests/test_space.py`` with that env's python. It prints the versions installed and the
result; the exit status is the tests'.

Not part of ``make test`` or ``make bench``: it installs a whole torch (several GB, a few minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPACE = ROOT / "spaces" / "detector"
REQUIREMENTS = SPACE / "requirements.txt"
TEST_ONLY = ["pytest>=8", "pytest-xdist>=3.5", "selenium>=4.20", "datasets>=4.0", "scikit-learn>=1.4"]
"""What tests/test_space.py needs beyond the Space: the runner and its xdist plugin (the project's pytest options ask
for workers), the browser test's driver, and what its fixtures import (the smoke mini's build, training's model
card and calibration). Never in requirements.txt."""
REPORTED = ["torch", "torchvision", "torchcodec", "av", "numpy", "facenet-pytorch", "timm", "transformers",
            "huggingface_hub", "safetensors", "gradio", "gradio_client", "matplotlib", "pillow", "pytest",
            "datasets"]  # fmt: skip
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
IMPORT_AS_ON_A_SPACE = (
    "import sys; sys.path[:0] = [{space!r}, {root!r}]; import app, clip_check, facenet_pytorch, torchcodec, av; "
    "print('the Space imports: app.py, MTCNN (facenet_pytorch), torchcodec, PyAV')"
)


def step(title: str, command: list[str], **kwargs) -> subprocess.CompletedProcess:
    print(f"\n== {title}\n$ {' '.join(command)}", flush=True)
    started = time.monotonic()
    done = subprocess.run(command, **kwargs)
    print(f"-- {time.monotonic() - started:.0f} s, exit {done.returncode}", flush=True)
    return done


def versions(python: Path) -> dict[str, str]:
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True,
                            check=True)  # fmt: skip
    installed = {row["name"].lower().replace("_", "-"): row["version"] for row in json.loads(listed.stdout)}
    return {name: installed.get(name.lower().replace("_", "-"), "-") for name in REPORTED}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, help="where to make the env (must not exist); default a temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the env afterwards (always kept with --venv)")
    parser.add_argument("pytest_args", nargs="*", help="after --: more pytest arguments, e.g. -k 'not browser'")
    args = parser.parse_args(argv)
    if args.venv is not None and args.venv.exists():
        parser.error(f"{args.venv} exists: the point is a fresh env, give a new folder")
    venv = args.venv or Path(tempfile.mkdtemp(prefix="space_env_")) / "venv"
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--progress-bar", "off"]
    # the project's packages importable as on a Space, where they sit beside app.py (the README's upload), also for
    # the app.py that the tests launch; nothing of the project is installed into the env
    env = {**os.environ, **OFFLINE, "PYTHONPATH": str(ROOT)}
    env.pop("VIRTUAL_ENV", None)
    started = time.monotonic()
    try:
        if step("fresh env", [sys.executable, "-m", "venv", str(venv)]).returncode:
            return 2
        step("pip as a Space has it", [*pip, "-q", "--upgrade", "pip"])
        if step("the Space's requirements.txt alone", [*pip, "-r", str(REQUIREMENTS)]).returncode:
            print("\nRESULT: requirements.txt does not install")
            return 1
        if step("import the Space with only that", [str(python), "-c", IMPORT_AS_ON_A_SPACE.format(
                space=str(SPACE), root=str(ROOT))], env=env, cwd=tempfile.gettempdir()).returncode:  # fmt: skip
            print("\nRESULT: the Space does not import with what requirements.txt installs")
            return 1
        space_versions = {name: version for name, version in versions(python).items() if version != "-"}
        if step("what only the tests need", [*pip, "-q", *TEST_ONLY]).returncode:
            print("\nRESULT: the test-only packages do not install beside the Space's")
            return 2
        tests = step("tests/test_space.py with that env's python",
                     [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_space.py",
                      *args.pytest_args], env=env, cwd=ROOT)  # fmt: skip
        final = versions(python)
        changed = {name: (old, final[name]) for name, old in space_versions.items() if final[name] != old}
        print(f"\n== versions (Python {sys.version.split()[0]}, {venv})")
        for name, version in final.items():
            source = REQUIREMENTS.relative_to(ROOT) if name in space_versions else "test-only"
            print(f"  {name:16} {version:10} {source}")
        if changed:
            print("  changed by the test-only packages (the tests did not run what the Space runs): "
                  + ", ".join(f"{name} {old} -> {new}" for name, (old, new) in changed.items()))  # fmt: skip
        verdict = "passed" if tests.returncode == 0 else f"FAILED (pytest exit {tests.returncode})"
        print(f"\nRESULT: tests/test_space.py {verdict} in the Space's env; {time.monotonic() - started:.0f} s in all")
        return tests.returncode
    finally:
        if args.venv is None and not args.keep:
            shutil.rmtree(venv.parent, ignore_errors=True)
        else:
            print(f"env kept: {venv}")


if __name__ == "__main__":
    sys.exit(main())
