#!/usr/bin/env python3
"""The reference side of bench/asr-throughput.ts: faster-whisper 1.2.1 (CTranslate2 4.8.5) timed on the audio
and the VAD segments the bench gives it, in one process, with CPU taken from getrusage around each timed part
(model load and warm-up excluded).

    python asr_bench.py --model-dir DIR --pcm AUDIO.s16 --segments SEGMENTS.json
        [--beams 1,5] [--threads 1] [--language en] [--vad-rounds 3] [--full-beams 1] [--whole-beams 1]

AUDIO.s16 is raw PCM s16le, 16 kHz mono (fed as float32 `pcm / 32768`, as asr_reference.py does);
SEGMENTS.json is a list of [start, end) sample pairs (our VAD's segments). Prints one JSON object on stdout;
logs go to stderr.

- vad: faster-whisper's own Silero VAD (`get_speech_timestamps` with `VadOptions()` defaults; the model is
  its bundled silero_vad_v6.onnx, run offline over the whole audio in one batch) --vad-rounds times.
- segments: for each beam size, every segment transcribed on its own, as ours does:
  `transcribe(segment, language, beam_size=B, best_of=1, temperature=0.0, without_timestamps=True,
  word_timestamps=True, condition_on_previous_text=False, vad_filter=False)`, the rest at faster-whisper's
  defaults, and only its first window taken (`next()` on the lazy segment generator: features, one encoder
  pass, decoding, word alignment), which is the work ours does per segment. One untimed warm-up call per beam
  size first.
- full (--full-beams): the same calls with every window consumed (`list()`), i.e. faster-whisper's
  transcribe() as it is. With word timestamps and no timestamp tokens it seeks back to the last word's end
  after each window and decodes what follows as a new window (openai/whisper does the same): on a VAD
  segment that is the trailing padding, an extra 30 s encoder pass, and sometimes a hallucinated phrase.
  `windows` counts the windows decoded (one segment each, without timestamps; a window skipped as
  no-speech is not counted).
- whole: for each --whole-beams size, the whole audio the way a faster-whisper user would run it:
  `transcribe(audio, language, beam_size=B, temperature=0.0, vad_filter=True, word_timestamps=True,
  condition_on_previous_text=False)`: faster-whisper concatenates the speech it finds and decodes it in 30 s
  windows (so it runs fewer encoder windows than one per segment), its VAD included in the time.

CPU is ru_utime + ru_stime of RUSAGE_SELF (every thread: CTranslate2's, ONNX Runtime's for the VAD, numpy's)
before and after each timed part; memory is VmHWM at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from importlib import metadata
from typing import Any

import numpy as np

SAMPLE_RATE = 16000


def log(message: str) -> None:
    print(f"asr_bench: {message}", file=sys.stderr, flush=True)


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def vm_hwm_mb() -> float:
    # Not ru_maxrss: Linux carries the parent's high-water mark across fork and exec (it would read Node's).
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


class Timed:
    """Wall and CPU seconds of a block."""

    def __enter__(self) -> "Timed":
        self.cpu0, self.wall0 = cpu_s(), time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.cpu = cpu_s() - self.cpu0
        self.wall = time.perf_counter() - self.wall0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", required=True, help="a CTranslate2 Whisper directory")
    parser.add_argument("--pcm", required=True, help="raw s16le 16 kHz mono")
    parser.add_argument("--segments", required=True, help="JSON: [[start, end], ...] in samples")
    parser.add_argument("--beams", default="1,5")
    parser.add_argument("--threads", type=int, default=1, help="CTranslate2 cpu_threads")
    parser.add_argument("--language", default="en")
    parser.add_argument("--vad-rounds", type=int, default=3)
    parser.add_argument("--full-beams", default="1", help="beam sizes of the full transcribe() run ('' for none)")
    parser.add_argument("--whole-beams", default="1", help="beam sizes of the vad_filter=True run ('' for none)")
    args = parser.parse_args()
    beams = [int(b) for b in args.beams.split(",") if b]
    full_beams = [int(b) for b in args.full_beams.split(",") if b]
    whole_beams = [int(b) for b in args.whole_beams.split(",") if b]
    if not 1 <= args.threads <= (os.cpu_count() or 1):
        parser.error(f"--threads must be 1..{os.cpu_count()}")

    from faster_whisper import WhisperModel
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    audio = np.fromfile(args.pcm, dtype="<i2").astype(np.float32) / 32768.0
    with open(args.segments) as f:
        spans = [(int(s), int(e)) for s, e in json.load(f)]
    if not spans:
        raise SystemExit("no segments")
    segments = [audio[s:e] for s, e in spans]

    load0 = time.perf_counter()
    model = WhisperModel(args.model_dir, device="cpu", compute_type="float32",
                         cpu_threads=args.threads, num_workers=1)
    log(f"loaded {args.model_dir} in {time.perf_counter() - load0:.2f} s")

    def transcribe(samples: np.ndarray, beam: int, first_window: bool = False,
                   **extra: Any) -> tuple[str, int]:
        """The text and the count of segments yielded (= windows decoded, without timestamps)."""
        out, _info = model.transcribe(samples, language=args.language, beam_size=beam, best_of=1,
                                      temperature=0.0, word_timestamps=True,
                                      condition_on_previous_text=False, **extra)
        if first_window:
            first = next(iter(out), None)
            out.close()  # the generator stops here: no further window is encoded
            parts = [first] if first is not None else []
        else:
            parts = list(out)
        return "".join(p.text for p in parts).strip(), len(parts)

    # ---- VAD (warm-up loads the model: get_vad_model is cached)
    get_speech_timestamps(audio[: SAMPLE_RATE * 2], VadOptions())
    vad_chunks: list[dict[str, int]] = []
    with Timed() as vad:
        for _ in range(args.vad_rounds):
            vad_chunks = get_speech_timestamps(audio, VadOptions())
    log(f"vad: {len(vad_chunks)} chunks, {vad.cpu:.3f} CPU s for {args.vad_rounds} rounds")

    # ---- our segments, one transcribe each: first window only, then (full) every window
    def per_segment(beam: int, first_window: bool) -> dict[str, Any]:
        transcribe(segments[0], beam, first_window, without_timestamps=True, vad_filter=False)
        texts, latency_ms, windows = [], [], 0
        with Timed() as run:
            for samples in segments:
                t0 = time.perf_counter()
                text, count = transcribe(samples, beam, first_window, without_timestamps=True,
                                         vad_filter=False)
                latency_ms.append((time.perf_counter() - t0) * 1000)
                texts.append(text)
                windows += count
        log(f"segments beam {beam} ({'first window' if first_window else 'full'}): {run.cpu:.2f} CPU s, "
            f"{run.wall:.2f} s wall, {windows} windows")
        return {"beam": beam, "cpu_s": run.cpu, "wall_s": run.wall, "latency_ms": latency_ms,
                "texts": texts, "windows": windows}

    results = [per_segment(beam, True) for beam in beams]
    full = [per_segment(beam, False) for beam in full_beams]

    # ---- the whole audio with faster-whisper's own VAD (packed windows)
    whole: list[dict[str, Any]] = []
    for beam in whole_beams:
        transcribe(audio[: SAMPLE_RATE * 5], beam, vad_filter=True)
        with Timed() as run:
            text, count = transcribe(audio, beam, vad_filter=True)
        log(f"whole beam {beam}: {run.cpu:.2f} CPU s, {run.wall:.2f} s wall, {count} segments")
        whole.append({"beam": beam, "cpu_s": run.cpu, "wall_s": run.wall, "text": text, "segments": count})

    json.dump({
        "reference": {
            "faster_whisper": metadata.version("faster-whisper"),
            "ctranslate2": metadata.version("ctranslate2"),
            "onnxruntime": metadata.version("onnxruntime"),
            "python": sys.version.split()[0],
            "cpu_threads": args.threads,
            "compute_type": "float32",
            "multilingual": bool(model.model.is_multilingual),
        },
        "audio_s": audio.shape[0] / SAMPLE_RATE,
        "vad": {"rounds": args.vad_rounds, "cpu_s": vad.cpu, "wall_s": vad.wall,
                "chunks": [[c["start"], c["end"]] for c in vad_chunks]},
        "segments": results,
        "full": full,
        "whole": whole,
        "peak_rss_mb": vm_hwm_mb(),
    }, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
