#!/usr/bin/env python3
"""The reference OCR for LiveLens: RapidOCR (rapidocr_onnxruntime 1.4.4, a faithful port of PaddleOCR's
predict_system) run with our model files and our settings, for parity goldens and benchmarks.

    python ocr_reference.py --det-model DET.onnx --rec-model REC.onnx --keys ppocr_keys_v1.txt \
        [--threads 1] [--repeat N] [--warmup 1] IMAGE...

Prints one JSON object on stdout: {"reference": {...versions and settings...}, "results": [per image]}, each
result {image, sha256, width, height, det_input: [w, h], lines: [{box: [[x, y] * 4], text, confidence}],
decode_ms, det_ms, rec_ms, total_ms}; with --repeat N > 1 the times are medians and `runs` holds every run's times. Logs go to
stderr. See README.md.

What RapidOCR 1.4.4 does to an image, step by step (what our TypeScript pipeline must mirror):

1. Load: PIL.Image.open -> numpy RGB (JPEG decoded by Pillow's bundled libjpeg-turbo, default ISLOW DCT
   and fancy upsampling) -> cv2.cvtColor RGB2BGR. Every later step works on BGR uint8.
2. "Global" preprocessing (RapidOCR's own, not PaddleOCR's): an image whose longer side exceeds
   max_side_len (default 2000) is shrunk, one whose shorter side is below min_side_len (default 30) is
   enlarged, both to multiples of 32; an image whose height <= min_height (default 30) or whose w/h exceeds
   width_height_ratio (default 8) is letterboxed with black rows above and below. None of this touches a
   1280x720 frame with the defaults; we switch all of it off anyway (max_side_len huge, min_side_len 0,
   min_height 0, width_height_ratio -1) so the detector sees the decoded image as is, whatever its size.
3. Detection input: DetPreProcess.resize. With limit_type "max": ratio = limit / max(h, w) when the longer
   side exceeds the limit, else 1; then resize_h = int(round(int(h * ratio) / 32) * 32), same for w, with
   Python's round (half to even: 22.5 -> 22, where JavaScript's Math.round gives 23), and cv2.resize with
   the default INTER_LINEAR. Stock RapidOCR 1.4.4 IGNORES limit_side_len in "max" mode and picks 960 / 1500
   / 2000 from the image's longer side (< 960 / < 1500 / else), so a 1280x720 frame would go in at
   1280x704 (720/32 = 22.5 rounds down). We replace get_preprocess so that the configured limit holds, as in
   PaddleOCR's DetResizeForTest: 1280x720 with limit 960 -> ratio 0.75 -> 960x540 -> 960x544
   (--det-limit rapidocr keeps the stock behaviour).
   Normalisation: (pixel / 255 - mean) / std per channel in B, G, R plane order, NCHW float32. RapidOCR's
   config uses mean = std = 0.5; PaddleOCR's PP-OCRv4 det config (and ours) uses ImageNet statistics
   mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225] applied to the B, G, R planes in that order. We
   pass PaddleOCR's (--det-norm rapidocr gives RapidOCR's).
4. DB post-processing: map = output[0, 0]; bitmap = map > thresh (0.3); cv2.dilate with a 2x2 kernel of
   ones (use_dilation); cv2.findContours(RETR_LIST, CHAIN_APPROX_SIMPLE); at most 1000 contours; for each:
   minAreaRect -> 4 points ordered (get_mini_boxes), skip if its shorter side < 3; score = mean of the map
   inside the box polygon filled with cv2.fillPoly on int32 points over the clipped bounding rectangle
   ("fast" mode); skip if score < box_thresh (0.5); unclip with pyclipper (JT_ROUND, ET_CLOSEDPOLYGON,
   distance = area * unclip_ratio (1.6) / perimeter, shapely area/length); minAreaRect again, skip if its
   shorter side < 5; scale to the image with np.round(x / map_w * img_w) (half to even again), clip to
   [0, img_w] / [0, img_h], astype int32. Then order_points_clockwise (tl, tr, br, bl by x then y), clip to
   [0, w-1] x [0, h-1] (as int), drop boxes whose int(norm(p0-p1)) or int(norm(p0-p3)) is <= 3.
   Reading order: sort by (top-left y, top-left x), then one bubble pass that swaps neighbours whose
   top-left y differ by < 10 px when the later one is left of the earlier one.
5. Crop (get_rotate_crop_image): w = int(max(|p0-p1|, |p2-p3|)), h = int(max(|p0-p3|, |p1-p2|)) (float32
   points); cv2.getPerspectiveTransform(points -> [[0,0],[w,0],[w,h],[0,h]]) and cv2.warpPerspective to
   (w, h) with INTER_CUBIC and BORDER_REPLICATE; a crop with h / w >= 1.5 is turned by np.rot90 (a quarter
   turn counter-clockwise). No angle classifier (use_cls False).
6. Recognition: crops sorted by w / h ascending (np.argsort, not stable: quicksort), in batches of
   rec_batch_num (6) in that order; per batch max_wh_ratio = max(320 / 48, each w / h); batch width
   W = int(48 * max_wh_ratio); each crop resized with cv2.resize INTER_LINEAR to (min(W, ceil(48 * w / h)),
   48), scaled (x / 255 - 0.5) / 0.5 in B, G, R plane order, and right-padded with 0.0 to W. Output
   [N, T, 6625] softmax; greedy CTC: argmax per step, drop repeats then blanks (index 0); characters =
   ["blank"] + keys file lines + [" "]; confidence = mean of the kept steps' max probabilities (0 when
   none are kept).
7. Lines whose confidence < text_score (0.5) are dropped; boxes are reported in image pixels.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

# pkg_resources-style deprecation noise from dependencies is not ours to fix; keep stderr readable.
warnings.filterwarnings("ignore", category=DeprecationWarning)

import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402
from rapidocr_onnxruntime import RapidOCR  # noqa: E402
from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess  # noqa: E402

PADDLE_DET_MEAN = [0.485, 0.456, 0.406]
PADDLE_DET_STD = [0.229, 0.224, 0.225]

# Our settings (packages/inference/src/ocr): mirrored here, printed in the output.
SETTINGS: dict[str, Any] = {
    "det_limit_type": "max",
    "det_limit_side_len": 960,
    "det_thresh": 0.3,
    "det_box_thresh": 0.5,
    "det_unclip_ratio": 1.6,
    "det_use_dilation": True,
    "det_score_mode": "fast",
    "det_max_candidates": 1000,
    "use_cls": False,
    "text_score": 0.5,
    "rec_batch_num": 6,
    "rec_img_shape": [3, 48, 320],
}


def log(message: str) -> None:
    print(f"ocr_reference: {message}", file=sys.stderr, flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--det-model", required=True, help="PP-OCRv4 det ONNX (ch_PP-OCRv4_det_infer.onnx)")
    parser.add_argument("--rec-model", required=True, help="PP-OCRv4 rec ONNX (ch_PP-OCRv4_rec_infer.onnx)")
    parser.add_argument("--keys", required=True, help="the recognizer's dictionary (ppocr_keys_v1.txt)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads per model")
    parser.add_argument("--repeat", type=int, default=1, help="run each image N times; times are medians")
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed runs of the first image before any timing (ONNX Runtime's first run is slow)",
    )
    parser.add_argument(
        "--det-norm",
        choices=["paddle", "rapidocr"],
        default="paddle",
        help="detector normalisation: PaddleOCR's ImageNet mean/std (ours) or RapidOCR's 0.5/0.5",
    )
    parser.add_argument(
        "--det-limit",
        choices=["fixed", "rapidocr"],
        default="fixed",
        help="honour det_limit_side_len (PaddleOCR, ours) or RapidOCR 1.4.4's 960/1500/2000 by image size",
    )
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, ...)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    if not 1 <= args.threads <= (os.cpu_count() or 1):
        parser.error(f"--threads must be 1..{os.cpu_count()} (RapidOCR ignores other values)")
    return args


def create_engine(args: argparse.Namespace) -> RapidOCR:
    mean, std = (PADDLE_DET_MEAN, PADDLE_DET_STD) if args.det_norm == "paddle" else ([0.5] * 3, [0.5] * 3)
    # RapidOCR(**kwargs): det_* keys go to the Det section without the prefix, rec_model_path becomes
    # Rec.model_path while rec_keys_path / rec_batch_num / rec_img_shape keep their names (which is what
    # TextRecognizer reads); anything else is Global, and Global's *_op_num_threads are copied into every
    # section. The Cls model (bundled) is still loaded but never run (use_cls False).
    engine = RapidOCR(
        # Global: switch RapidOCR's own resizing and letterboxing off (see step 2 in the module doc).
        max_side_len=1_000_000,
        min_side_len=0,
        min_height=0,
        width_height_ratio=-1,
        use_cls=SETTINGS["use_cls"],
        text_score=SETTINGS["text_score"],
        intra_op_num_threads=args.threads,
        inter_op_num_threads=1,
        det_model_path=str(Path(args.det_model).resolve()),
        det_limit_type=SETTINGS["det_limit_type"],
        det_limit_side_len=SETTINGS["det_limit_side_len"],
        det_thresh=SETTINGS["det_thresh"],
        det_box_thresh=SETTINGS["det_box_thresh"],
        det_unclip_ratio=SETTINGS["det_unclip_ratio"],
        det_use_dilation=SETTINGS["det_use_dilation"],
        det_score_mode=SETTINGS["det_score_mode"],
        det_max_candidates=SETTINGS["det_max_candidates"],
        det_mean=mean,
        det_std=std,
        rec_model_path=str(Path(args.rec_model).resolve()),
        rec_keys_path=str(Path(args.keys).resolve()),
        rec_batch_num=SETTINGS["rec_batch_num"],
        rec_img_shape=SETTINGS["rec_img_shape"],
    )
    det = engine.text_det
    if args.det_limit == "fixed":
        # TextDetector.get_preprocess replaces the configured limit by 960/1500/2000 in "max" mode; keep
        # the configured one, as PaddleOCR does (step 3 in the module doc).
        engine.text_det.get_preprocess = lambda _max_wh: DetPreProcess(
            det.limit_side_len, det.limit_type, det.mean, det.std
        )
    check_settings(engine)
    return engine


def check_settings(engine: RapidOCR) -> None:
    """Fails when a setting did not reach the engine (RapidOCR's kwargs are easy to misspell)."""
    det, post, rec = engine.text_det, engine.text_det.postprocess_op, engine.text_rec
    actual = {
        "det_limit_type": det.limit_type,
        "det_limit_side_len": det.limit_side_len,
        "det_thresh": post.thresh,
        "det_box_thresh": post.box_thresh,
        "det_unclip_ratio": post.unclip_ratio,
        "det_use_dilation": post.dilation_kernel is not None,
        "det_score_mode": post.score_mode,
        "det_max_candidates": post.max_candidates,
        "use_cls": engine.use_cls,
        "text_score": engine.text_score,
        "rec_batch_num": rec.rec_batch_num,
        "rec_img_shape": list(rec.rec_image_shape),
    }
    wrong = {k: (v, SETTINGS[k]) for k, v in actual.items() if v != SETTINGS[k]}
    if wrong:
        raise SystemExit(f"ocr_reference: settings did not reach RapidOCR (actual, wanted): {wrong}")
    globals_ = {
        "max_side_len": engine.max_side_len,
        "min_side_len": engine.min_side_len,
        "min_height": engine.min_height,
        "width_height_ratio": engine.width_height_ratio,
    }
    if globals_ != {"max_side_len": 1_000_000, "min_side_len": 0, "min_height": 0, "width_height_ratio": -1}:
        raise SystemExit(f"ocr_reference: RapidOCR's global preprocessing is not off: {globals_}")
    for name, session in (("det", det.infer.session), ("rec", rec.session.session)):
        log(f"{name}: {session._model_path} providers={session.get_providers()}")


class Timer:
    """Wraps the engine's steps to time them; RapidOCR's own elapse leaves out cropping and rec resizing."""

    def __init__(self, engine: RapidOCR) -> None:
        self.ms: dict[str, float] = {}
        self._wrap(engine, "load_img", "decode_ms")
        self._wrap(engine, "auto_text_det", "det_ms")
        self._wrap(engine, "get_crop_img_list", "crop_ms")
        self._wrap(engine, "text_rec", "rec_infer_ms")

    def _wrap(self, engine: RapidOCR, attribute: str, key: str) -> None:
        inner = getattr(engine, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.ms[key] = self.ms.get(key, 0.0) + (time.perf_counter() - start) * 1000

        setattr(engine, attribute, timed)

    def reset(self) -> None:
        self.ms = {}


class DetInputSize:
    """Records the detector's input size (after DetPreProcess's resize to multiples of 32)."""

    def __init__(self, engine: RapidOCR) -> None:
        self.size: tuple[int, int] | None = None
        inner = engine.text_det.infer

        def infer(tensor: np.ndarray) -> Any:
            self.size = (int(tensor.shape[3]), int(tensor.shape[2]))
            return inner(tensor)

        engine.text_det.infer = infer


def number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(float(value), 3)


def run_once(
    engine: RapidOCR, timer: Timer, det_input: DetInputSize, path: str
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    timer.reset()
    det_input.size = None
    start = time.perf_counter()
    result, _elapse = engine(path)
    total_ms = (time.perf_counter() - start) * 1000
    lines = [
        {
            "box": [[number(x), number(y)] for x, y in box],
            "text": text,
            "confidence": round(float(confidence), 6),
        }
        for box, text, confidence in (result or [])
    ]
    ms = timer.ms
    times = {
        "decode_ms": ms.get("decode_ms", 0.0),
        "det_ms": ms.get("det_ms", 0.0),
        # Recognition as our pipeline counts it: cropping, resizing, inference and decoding.
        "rec_ms": ms.get("crop_ms", 0.0) + ms.get("rec_infer_ms", 0.0),
        "total_ms": total_ms,
    }
    return lines, times


def main() -> int:
    args = parse_args()
    log(
        f"onnxruntime {onnxruntime.__version__}, intra_op_num_threads={args.threads} inter_op_num_threads=1, "
        f"det-norm={args.det_norm}, det-limit={args.det_limit}, repeat={args.repeat}, warmup={args.warmup}"
    )
    engine = create_engine(args)
    timer = Timer(engine)
    det_input = DetInputSize(engine)
    for _ in range(args.warmup):
        engine(args.images[0])
    results = []
    for path in args.images:
        data = Path(path).read_bytes()
        runs = []
        lines: list[dict[str, Any]] = []
        for i in range(args.repeat):
            these, times = run_once(engine, timer, det_input, path)
            if i == 0:
                lines = these
            elif these != lines:
                raise SystemExit(f"ocr_reference: {path} gave different lines on run {i + 1}")
            runs.append(times)
        height, width = engine.load_img(path).shape[:2]
        median = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
        result: dict[str, Any] = {
            "image": path,
            "sha256": hashlib.sha256(data).hexdigest(),
            "width": int(width),
            "height": int(height),
            # What the detector saw: [width, height], multiples of 32.
            "det_input": list(det_input.size) if det_input.size else None,
            "lines": lines,
            **median,
        }
        if args.repeat > 1:
            result["runs"] = [{k: round(v, 3) for k, v in r.items()} for r in runs]
        log(f"{path}: {len(lines)} lines, det {median['det_ms']} ms, rec {median['rec_ms']} ms")
        results.append(result)
    output = {
        "reference": {
            "engine": f"rapidocr_onnxruntime {metadata.version('rapidocr_onnxruntime')}",
            "onnxruntime": onnxruntime.__version__,
            "opencv": metadata.version("opencv-python-headless"),
            "numpy": np.__version__,
            "pillow": metadata.version("Pillow"),
            "python": sys.version.split()[0],
            "threads": args.threads,
            "repeat": args.repeat,
            "warmup": args.warmup,
            "det_norm": args.det_norm,
            "det_mean": PADDLE_DET_MEAN if args.det_norm == "paddle" else [0.5] * 3,
            "det_std": PADDLE_DET_STD if args.det_norm == "paddle" else [0.5] * 3,
            "det_limit": args.det_limit,
            "settings": SETTINGS,
        },
        "results": results,
    }
    json.dump(output, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
