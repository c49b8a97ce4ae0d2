#!/usr/bin/env python3
"""The reference speech recognition for LiveLens: faster-whisper 1.2.1 (CTranslate2 4.8.5) on the CTranslate2
Whisper weights our converter reads, for the ASR parity goldens (see README.md).

    python asr_reference.py transcribe --model-dir DIR [--threads 2] [--repeat 2] [--language zh] CLIP.wav...
    python asr_reference.py features [--n-mels 80] [--columns 0,1,-1] CLIP.wav...
    python asr_reference.py tokenizer --model-dir DIR --cases cases.json

Each prints one JSON object on stdout; logs go to stderr. CLIP.wav is a 16 kHz mono s16 WAV (what
generateSpeechClip writes); the samples are fed as float32 `pcm / 32768`, never decoded by PyAV.

transcribe: WhisperModel(DIR, device="cpu", compute_type="float32") -- the float16 weights computed in
float32, what the ONNX graphs do -- and for every clip and for without_timestamps False and True:
`transcribe(audio, beam_size=1, best_of=1, temperature=0.0, condition_on_previous_text=False,
vad_filter=False, word_timestamps=True, without_timestamps=...)`, every other option at faster-whisper's
default (suppress_blank, suppress_tokens=[-1], max_initial_timestamp 1.0, no_speech_threshold 0.6,
log_prob_threshold -1.0, compression_ratio_threshold 2.4: with a single temperature there is no fallback,
but a window whose no_speech_prob > 0.6 and avg_logprob < -1 is still skipped). The language is detected
for a multilingual model (first 30 s window, language_detection_threshold 0.5) and "en" for an .en one,
unless --language gives it.
Per segment: seek, start, end, text, tokens (timestamps included), avg_logprob, no_speech_prob,
compression_ratio, temperature and the words (word, start, end, probability). --repeat N runs everything N
times and fails unless the runs agree exactly.

features: faster-whisper's FeatureExtractor(feature_size=N)(audio) -- padding=160, what the non-batched
transcribe computes once per file -- summarised (the array itself is not stored): shape, sha256 of the
float32 bytes, min/max/mean/std, the mean of each frame and of each mel bin, and whole columns at chosen
frames; and the same recipe recomputed in float64 (numpy's float64 FFT; the float32 Hann window and mel
filters faster-whisper holds) to show how far faster-whisper's float32 arithmetic is from the exact value:
`float64.max_abs_diff`, with the float64 columns. Means and columns are rounded to 1e-9. Also the sha256 of
the mel filterbanks (float32, zeros as +0.0).

tokenizer: the `tokenizers` library (what faster-whisper uses) and faster_whisper.tokenizer.Tokenizer on the
model's tokenizer.json: special token ids, language tokens, sot sequences, non_speech_tokens, the suppress
list (get_suppressed_tokens([-1])), CT2 config.json's suppress_ids / suppress_ids_begin, and for every case
string: encode ids, decode, each id decoded alone and every prefix decoded (to pin how UTF-8 split across
tokens decodes), decode_with_timestamps of the ids between two timestamps, and split_to_word_tokens.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import wave
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 16000


def log(message: str) -> None:
    print(f"asr_reference: {message}", file=sys.stderr, flush=True)


def read_clip(path: str) -> tuple[np.ndarray, str]:
    """A 16 kHz mono s16 WAV as float32 (pcm / 32768), and the sha256 of its PCM bytes."""
    with wave.open(path, "rb") as w:
        if w.getframerate() != SAMPLE_RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise SystemExit(f"{path}: expected 16 kHz mono s16, got {w.getframerate()} Hz, "
                             f"{w.getnchannels()} ch, {8 * w.getsampwidth()} bit")
        pcm = w.readframes(w.getnframes())
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    return audio, hashlib.sha256(pcm).hexdigest()


def versions() -> dict[str, str]:
    return {
        "faster_whisper": metadata.version("faster-whisper"),
        "ctranslate2": metadata.version("ctranslate2"),
        "tokenizers": metadata.version("tokenizers"),
        "numpy": np.__version__,
        "python": sys.version.split()[0],
    }


# ---- transcribe -------------------------------------------------------------------------------------

TRANSCRIBE_OPTIONS: dict[str, Any] = {
    "beam_size": 1,
    "best_of": 1,
    "temperature": 0.0,
    "condition_on_previous_text": False,
    "vad_filter": False,
    "word_timestamps": True,
}


def transcribe(args: argparse.Namespace) -> dict[str, Any]:
    from faster_whisper import WhisperModel

    started = time.perf_counter()
    model = WhisperModel(args.model_dir, device="cpu", compute_type="float32",
                         cpu_threads=args.threads, num_workers=1)
    log(f"loaded {args.model_dir} in {time.perf_counter() - started:.2f} s "
        f"(multilingual={model.model.is_multilingual}, n_mels={model.model.n_mels})")
    clips = [(path, *read_clip(path)) for path in args.clips]

    def run_all() -> list[dict[str, Any]]:
        results = []
        for path, audio, sha256 in clips:
            for without_timestamps in (False, True):
                t0 = time.perf_counter()
                segments, info = model.transcribe(audio, language=args.language,
                                                  without_timestamps=without_timestamps,
                                                  **TRANSCRIBE_OPTIONS)
                segments = list(segments)
                elapsed = time.perf_counter() - t0
                top = sorted(info.all_language_probs or [], key=lambda lp: -lp[1])[:5]
                result = {
                    "clip": path,
                    "sha256": sha256,
                    "without_timestamps": without_timestamps,
                    "language_forced": args.language is not None,
                    "language": info.language,
                    "language_probability": float(info.language_probability),
                    "top_languages": [[code, float(p)] for code, p in top],
                    "duration": float(info.duration),
                    "text": "".join(s.text for s in segments).strip(),
                    "segments": [
                        {
                            "seek": int(s.seek),
                            "start": float(s.start),
                            "end": float(s.end),
                            "text": s.text,
                            "tokens": [int(t) for t in s.tokens],
                            "avg_logprob": float(s.avg_logprob),
                            "no_speech_prob": float(s.no_speech_prob),
                            "compression_ratio": float(s.compression_ratio),
                            "temperature": float(s.temperature),
                            "words": [
                                {"word": w.word, "start": float(w.start), "end": float(w.end),
                                 "probability": float(w.probability)}
                                for w in (s.words or [])
                            ],
                        }
                        for s in segments
                    ],
                    "seconds": elapsed,
                }
                log(f"{Path(path).name} ts={'off' if without_timestamps else 'on'}: "
                    f"[{info.language} {info.language_probability:.2f}] {result['text']!r} ({elapsed:.2f} s)")
                results.append(result)
        return results

    runs = [run_all() for _ in range(args.repeat)]
    strip = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]  # noqa: E731
    for i, other in enumerate(runs[1:], start=2):
        if strip(other) != strip(runs[0]):
            raise SystemExit(f"run {i} differs from run 1: the reference is not deterministic")
    results = runs[0]
    for i, r in enumerate(results):
        r["seconds_runs"] = [run[i]["seconds"] for run in runs]
        del r["seconds"]
    return {
        "reference": {
            **versions(),
            "device": "cpu",
            "compute_type": "float32",
            "cpu_threads": args.threads,
            "options": {**TRANSCRIBE_OPTIONS, "without_timestamps": [False, True]},
            "multilingual": bool(model.model.is_multilingual),
            "repeat": args.repeat,
        },
        "results": results,
    }


# ---- features ---------------------------------------------------------------------------------------

def logmel_float64(audio: np.ndarray, mel_filters: np.ndarray, padding: int = 160) -> np.ndarray:
    """faster-whisper's recipe in float64 (its float32 Hann window and filters, float64 arithmetic)."""
    x = np.pad(audio.astype(np.float64), (0, padding))
    window = np.hanning(401)[:-1].astype(np.float32).astype(np.float64)
    padded = np.pad(x, (200, 200), mode="reflect")
    n_frames = 1 + (len(padded) - 400) // 160
    frames = np.lib.stride_tricks.sliding_window_view(padded, 400)[::160][:n_frames]
    spectrum = np.fft.rfft(frames * window, axis=-1)
    power = (spectrum.real ** 2 + spectrum.imag ** 2)[:-1].T  # drop the last frame: [201, frames]
    mel = mel_filters.astype(np.float64) @ power
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


def r9(values: np.ndarray) -> list[float]:
    """Rounded to 1e-9 (far below any tolerance the tests use) to keep the golden small."""
    return [round(float(v), 9) for v in values]


def column_indexes(n_frames: int, spec: str) -> list[int]:
    out = []
    for item in spec.split(","):
        item = item.strip()
        if item.endswith("%"):
            index = int(n_frames * float(item[:-1]) / 100)
        else:
            index = int(item)
            if index < 0:
                index += n_frames
        if 0 <= index < n_frames and index not in out:
            out.append(index)
    return out


def features(args: argparse.Namespace) -> dict[str, Any]:
    from faster_whisper.feature_extractor import FeatureExtractor

    extractor = FeatureExtractor(feature_size=args.n_mels)
    results = []
    for path in args.clips:
        audio, sha256 = read_clip(path)
        t0 = time.perf_counter()
        feats = extractor(audio)  # what WhisperModel.transcribe computes: padding=160
        elapsed = time.perf_counter() - t0
        feats = np.ascontiguousarray(feats, dtype=np.float32)
        exact = logmel_float64(audio, extractor.mel_filters)
        if exact.shape != feats.shape:
            raise SystemExit(f"{path}: float64 recipe gives {exact.shape}, faster-whisper {feats.shape}")
        n_mels, n_frames = feats.shape
        columns = column_indexes(n_frames, args.columns)
        f64 = feats.astype(np.float64)
        results.append({
            "clip": path,
            "sha256": sha256,
            "samples": int(audio.shape[0]),
            "shape": [n_mels, n_frames],
            "content_frames": n_frames - 1,
            "float32_sha256": hashlib.sha256(feats.astype("<f4").tobytes()).hexdigest(),
            "min": float(f64.min()),
            "max": float(f64.max()),
            "mean": float(f64.mean()),
            "std": float(f64.std()),
            "frame_means": r9(f64.mean(axis=0)),
            "bin_means": r9(f64.mean(axis=1)),
            "columns": {str(c): r9(feats[:, c]) for c in columns},
            "float64": {
                "max_abs_diff": float(np.abs(exact - f64).max()),
                "mean_abs_diff": float(np.abs(exact - f64).mean()),
                "columns": {str(c): r9(exact[:, c]) for c in columns},
                "frame_means": r9(exact.mean(axis=0)),
            },
            "ms": elapsed * 1000,
        })
        log(f"{Path(path).name}: {feats.shape}, {elapsed * 1000:.1f} ms, float32 vs float64 max abs diff "
            f"{results[-1]['float64']['max_abs_diff']:.3g}")
    # `+ 0.0` turns the one -0.0 numpy's SIMD maximum leaves in the 80-bin bank into +0.0: the sign of a zero
    # weight means nothing, and which one np.maximum(0, -0.0) returns depends on the code path it takes.
    banks = {n: FeatureExtractor.get_mel_filters(SAMPLE_RATE, 400, n).astype("<f4") + np.float32(0)
             for n in (80, 128)}
    filters = {str(n): hashlib.sha256(bank.tobytes()).hexdigest() for n, bank in banks.items()}
    return {
        "reference": {**versions(), "feature_extractor": f"FeatureExtractor(feature_size={args.n_mels})",
                      "padding": 160},
        "mel_filters_float32_sha256": filters,
        "results": results,
    }


# ---- tokenizer --------------------------------------------------------------------------------------

def tokenizer_goldens(args: argparse.Namespace) -> dict[str, Any]:
    import tokenizers
    from faster_whisper.tokenizer import _LANGUAGE_CODES, Tokenizer
    from faster_whisper.transcribe import get_suppressed_tokens

    model_dir = Path(args.model_dir)
    hf = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    config = json.loads((model_dir / "config.json").read_text())
    vocabulary = model_dir / "vocabulary.json"
    vocab_size = (len(json.loads(vocabulary.read_text())) if vocabulary.exists()
                  else len((model_dir / "vocabulary.txt").read_text(encoding="utf-8").splitlines()))
    multilingual = vocab_size >= 51865  # openai's rule, and CT2's is_multilingual
    cases = json.loads(Path(args.cases).read_text())
    en = Tokenizer(hf, multilingual, task="transcribe", language="en")
    # Every <|xx|> token between sot and translate (tiny.en's file says <|iw|> for Hebrew where the
    # multilingual one says <|he|>), and the faster-whisper language codes the vocabulary lacks.
    languages = {hf.id_to_token(i)[2:-2]: i for i in range(en.sot + 1, en.translate)}
    missing_codes = [code for code in _LANGUAGE_CODES if hf.token_to_id(f"<|{code}|>") is None]

    out: dict[str, Any] = {
        "reference": versions(),
        "vocabulary_size": vocab_size,
        "multilingual": multilingual,
        "special": {
            "eot": en.eot, "sot": en.sot, "sot_prev": en.sot_prev, "sot_lm": en.sot_lm,
            "translate": en.translate, "transcribe": en.transcribe, "no_speech": en.no_speech,
            "no_timestamps": en.no_timestamps, "timestamp_begin": en.timestamp_begin,
        },
        "languages": languages,
        "faster_whisper_codes_missing": missing_codes,
        "sot_sequences": {},
        "non_speech_tokens": list(en.non_speech_tokens),
        "suppressed_tokens": list(get_suppressed_tokens(en, [-1])),
        "config_suppress_ids": config.get("suppress_ids"),
        "config_suppress_ids_begin": config.get("suppress_ids_begin"),
        "encode_space": en.encode(" "),
        "encode": [],
        "decode_with_timestamps": [],
        "split_to_word_tokens": [],
    }
    if multilingual:
        for language, task in (("en", "transcribe"), ("zh", "transcribe"), ("zh", "translate")):
            out["sot_sequences"][f"{language}/{task}"] = Tokenizer(hf, True, task=task,
                                                                  language=language).sot_sequence
    else:
        out["sot_sequences"]["en/transcribe"] = en.sot_sequence

    for text in cases["strings"]:
        ids = hf.encode(text, add_special_tokens=False).ids
        out["encode"].append({
            "text": text,
            "ids": ids,
            "decode": hf.decode(ids),
            "decode_each": [hf.decode([i]) for i in ids],
            "decode_prefixes": [hf.decode(ids[:n]) for n in range(1, len(ids) + 1)],
        })
    tb = en.timestamp_begin
    for text in cases["timestamped"]:
        ids = [tb + 0, *hf.encode(text, add_special_tokens=False).ids, tb + 57, tb + 57, en.eot]
        out["decode_with_timestamps"].append({
            "ids": ids, "text": en.decode_with_timestamps(ids), "decode": en.decode(ids),
        })
    for case in cases["words"]:
        ids = [*hf.encode(case["text"], add_special_tokens=False).ids, en.eot]
        if multilingual or case["language"] == "en":
            tok = Tokenizer(hf, multilingual, task="transcribe", language=case["language"])
        else:
            tok = Tokenizer(hf, False)
            tok.language_code = case["language"]  # what split_to_word_tokens looks at
        words, word_tokens = tok.split_to_word_tokens(ids)
        out["split_to_word_tokens"].append({
            "language": case["language"], "ids": ids, "words": words, "tokens": word_tokens,
        })
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("transcribe")
    p.add_argument("--model-dir", required=True, help="a CTranslate2 Whisper directory")
    p.add_argument("--threads", type=int, default=2, help="CTranslate2 cpu_threads")
    p.add_argument("--repeat", type=int, default=1, help="runs that must agree exactly")
    p.add_argument("--language", default=None, help="a language code instead of detection")
    p.add_argument("clips", nargs="+")
    p = sub.add_parser("features")
    p.add_argument("--n-mels", type=int, default=80)
    p.add_argument("--columns", default="0,1,2,25%,50%,75%,-2,-1",
                   help="frames whose whole column is stored: indexes (negative from the end) or percentages")
    p.add_argument("clips", nargs="+")
    p = sub.add_parser("tokenizer")
    p.add_argument("--model-dir", required=True)
    p.add_argument("--cases", required=True, help="JSON: {strings: [...], timestamped: [...], words: [...]}")
    args = parser.parse_args()
    if args.command == "transcribe" and not 1 <= args.threads <= (os.cpu_count() or 1):
        parser.error(f"--threads must be 1..{os.cpu_count()}")
    run = {"transcribe": transcribe, "features": features, "tokenizer": tokenizer_goldens}[args.command]
    json.dump(run(args), sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
