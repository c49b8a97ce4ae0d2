"""CTranslate2 reference for the Whisper converter's parity golden.

    py=$(bash packages/inference/reference/asr/setup.sh)
    $py packages/inference/reference/asr/ct2_reference.py            # writes test/golden/whisper-ct2-parity.json

1. Speaks a fixed sentence with espeak-ng, resamples it to 16 kHz mono with ffmpeg and computes Whisper's
   log-mel features in numpy (openai's recipe: periodic Hann 400, hop 160, reflect padding, Slaney mel,
   log10, max - 8, (x + 4) / 4). The features are rounded to float16 and stored in the golden, so the
   TypeScript test feeds exactly the same numbers (it needs neither espeak-ng nor a mel implementation).
2. For base and tiny.en, loads the CTranslate2 files of the model cache (checked against models.json's
   sha256) in CTranslate2 itself (compute_type float32, CPU) and records, for the features padded with 0.0 in
   the log-mel domain to 3000 frames and to 1000 frames (the converter's dynamic encoder axis):
   - the encoder output: statistics over the whole tensor and values at fixed frames and dimensions;
   - greedy decoding without suppression from the model's transcription prompt, with the raw logits of
     every step (top 5, the generated token's, and every 1021st vocabulary entry);
   - for the multilingual model, detect_language's top languages.
The golden carries the recipe and tolerances; the test (src/asr/convert-whisper.int.test.ts) recomputes it
with the converted ONNX graphs on ONNX Runtime. Python is needed only to remake it.
"""

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import ctranslate2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = os.path.abspath(os.path.join(HERE, "..", ".."))
REPO = os.path.abspath(os.path.join(PACKAGE, "..", ".."))

SENTENCE = "Use code SAVE20 for twenty percent off today, and the link is in my bio."
VOICE = "en-us"
WORDS_PER_MINUTE = 150
FRAME_CASES = [3000, 1000]
ENCODER_FRAMES = [0, 1, 7, 99, 150, 151, 283, 499, 777, 1499]
ENCODER_DIM_STRIDE = 8
LOGIT_STRIDE = 1021
MAX_NEW_TOKENS = 40

MODELS = [
    {
        "name": "base",
        "parts": ["whisper-base-ct2-model-part1", "whisper-base-ct2-model-part2"],
        "config": "whisper-base-ct2-config",
        "vocabulary": "whisper-base-ct2-vocabulary",
        "onnx": {"encoder": "whisper-base-onnx-encoder", "decoder": "whisper-base-onnx-decoder"},
        # sot, <|en|>, <|transcribe|>, <|notimestamps|>
        "prompt": [50258, 50259, 50359, 50363],
    },
    {
        "name": "tiny.en",
        "parts": ["whisper-tiny-en-ct2-model"],
        "config": "whisper-tiny-en-ct2-config",
        "vocabulary": "whisper-tiny-en-ct2-vocabulary",
        "onnx": {"encoder": "whisper-tiny-en-onnx-encoder", "decoder": "whisper-tiny-en-onnx-decoder"},
        # sot, <|notimestamps|>
        "prompt": [50257, 50362],
    },
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cached(manifest, cache, model_id):
    entry = next(m for m in manifest["models"] if m["id"] == model_id)
    path = os.path.join(cache, entry["id"], entry["version"], entry["file"])
    if not os.path.exists(path):
        sys.exit(f"{model_id}: not in {cache}; run `npm run models` first")
    if sha256(path) != entry["sha256"]:
        sys.exit(f"{model_id}: {path} does not match the manifest's sha256; run `npm run models`")
    return entry, path


def speak():
    """The sentence as 16 kHz mono float32 (espeak-ng → ffmpeg)."""
    wav = subprocess.run(
        ["espeak-ng", "-v", VOICE, "-s", str(WORDS_PER_MINUTE), "--stdout", SENTENCE],
        check=True,
        capture_output=True,
    ).stdout
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", "pipe:0", "-ac", "1", "-ar", "16000", "-f", "f32le", "pipe:1"],
        input=wav,
        check=True,
        capture_output=True,
    ).stdout
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip()
    return np.frombuffer(pcm, dtype=np.float32).copy(), version


def mel_filters(sr=16000, n_fft=400, n_mels=80):
    """librosa.filters.mel(sr, n_fft, n_mels) defaults: Slaney mel scale and Slaney area normalisation."""
    def hz_to_mel(f):
        f = np.asanyarray(f, dtype=np.float64)
        f_sp = 200.0 / 3
        mels = f / f_sp
        min_log_hz = 1000.0
        min_log_mel = min_log_hz / f_sp
        logstep = np.log(6.4) / 27.0
        return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep, mels)

    def mel_to_hz(m):
        m = np.asanyarray(m, dtype=np.float64)
        f_sp = 200.0 / 3
        freqs = f_sp * m
        min_log_hz = 1000.0
        min_log_mel = min_log_hz / f_sp
        logstep = np.log(6.4) / 27.0
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)

    fftfreqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    weights = np.zeros((n_mels, 1 + n_fft // 2))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels])
    return weights * enorm[:, None]


def log_mel(audio):
    """openai whisper.audio.log_mel_spectrogram in numpy (float64 inside): [80, len(audio) // 160]."""
    n_fft, hop = 400, 160
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    padded = np.pad(audio.astype(np.float64), (n_fft // 2, n_fft // 2), mode="reflect")
    frames = 1 + (len(padded) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    spectrum = np.fft.rfft(padded[idx] * window, axis=1)
    power = (np.abs(spectrum) ** 2)[:-1].T  # drop the last frame
    mel = mel_filters() @ power
    logspec = np.log10(np.maximum(mel, 1e-10))
    logspec = np.maximum(logspec, logspec.max() - 8.0)
    return ((logspec + 4.0) / 4.0).astype(np.float32)


def byte_decoder():
    """GPT-2's byte-level BPE alphabet, reversed (for the golden's human-readable text)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def detokenize(vocabulary, ids):
    decoder = byte_decoder()
    text = "".join(vocabulary[i] for i in ids)
    return bytes(decoder[c] for c in text if c in decoder).decode("utf-8", errors="replace")


def read_vocabulary(path):
    if path.endswith(".json"):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def r(x, digits=6):
    return float(f"{float(x):.{digits}g}")


def encoder_summary(out):
    frames = [f for f in ENCODER_FRAMES if f < out.shape[1]]
    dims = list(range(0, out.shape[2], ENCODER_DIM_STRIDE))
    values = out[0][np.ix_(frames, dims)]
    o = out.astype(np.float64)
    return {
        "shape": list(out.shape),
        "mean": r(o.mean(), 8),
        "meanAbs": r(np.abs(o).mean(), 8),
        "rms": r(np.sqrt((o**2).mean()), 8),
        "maxAbs": r(np.abs(o).max(), 8),
        "frames": frames,
        "dimStride": ENCODER_DIM_STRIDE,
        "values": [[r(v) for v in row] for row in values],
    }


def step_summary(logits, token):
    lse = np.log(np.exp(logits.astype(np.float64) - logits.max()).sum()) + logits.max()
    top = np.argsort(-logits, kind="stable")[:5]
    return {
        "token": int(token),
        "tokenLogit": r(logits[token]),
        "logsumexp": r(lse, 8),
        "top": [[int(i), r(logits[i])] for i in top],
        "sampled": [r(v) for v in logits[::LOGIT_STRIDE]],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", default=os.path.join(os.environ.get("LIVELENS_HOME", os.path.join(REPO, ".livelens")), "models"))
    parser.add_argument("--out", default=os.path.join(PACKAGE, "test", "golden", "whisper-ct2-parity.json"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with open(os.path.join(PACKAGE, "models.json"), encoding="utf-8") as f:
        manifest = json.load(f)

    audio, espeak_version = speak()
    features = log_mel(audio)
    # Rounded to float16 once: these exact values are stored and fed to both runtimes.
    features16 = features.astype(np.float16)
    content = features16.astype(np.float32)
    n_frames = content.shape[1]
    print(f"clip: {len(audio) / 16000:.2f} s, {n_frames} frames ({espeak_version})", file=sys.stderr)

    golden = {
        "generator": "packages/inference/reference/asr/ct2_reference.py",
        "reference": {"ctranslate2": ctranslate2.__version__, "device": "cpu", "computeType": "float32"},
        "clip": {"sentence": SENTENCE, "voice": VOICE, "wordsPerMinute": WORDS_PER_MINUTE, "espeak": espeak_version, "samples": int(len(audio))},
        "features": {
            "recipe": "openai log-mel (numpy), rounded to float16; each case pads with 0.0 (log-mel domain) to its frames",
            "shape": [80, n_frames],
            "float16Base64": base64.b64encode(features16.astype("<f2").tobytes()).decode("ascii"),
        },
        "encoderSamples": "values[i][j] = last_hidden_state[0, frames[i], j * dimStride]",
        "logitSamples": "sampled[k] = logits[k * logitStride]",
        "logitStride": LOGIT_STRIDE,
        # Both runtimes compute in float32 from the same float16 weights; only the order of float32
        # operations differs. Measured with onnxruntime-node 1.30 on x86-64: encoder <= 5e-5, logits
        # <= 1.1e-4 (README, "Speech models"); the tolerances leave about 10x for other CPUs and versions.
        "tolerances": {"encoderMaxAbs": 1e-3, "encoderStatsRelative": 1e-4, "logitsMaxAbs": 1e-3},
        "models": [],
    }

    with tempfile.TemporaryDirectory() as tmp:
        for spec in MODELS:
            model_dir = os.path.join(tmp, spec["name"])
            os.makedirs(model_dir)
            sources = {}
            with open(os.path.join(model_dir, "model.bin"), "wb") as dst:
                for part in spec["parts"]:
                    entry, path = cached(manifest, args.cache, part)
                    sources[part] = entry["sha256"]
                    with open(path, "rb") as src:
                        dst.write(src.read())
            for key in ("config", "vocabulary"):
                entry, path = cached(manifest, args.cache, spec[key])
                sources[spec[key]] = entry["sha256"]
                os.symlink(path, os.path.join(model_dir, entry["file"]))
            vocabulary = read_vocabulary(os.path.join(model_dir, next(f for f in os.listdir(model_dir) if f.startswith("vocabulary"))))
            model = ctranslate2.models.Whisper(model_dir, device="cpu", compute_type="float32", intra_threads=args.threads)
            result = {"name": spec["name"], "ct2Sources": sources, "onnx": spec["onnx"], "prompt": spec["prompt"], "cases": []}
            for frames in FRAME_CASES:
                x = np.zeros((1, 80, frames), dtype=np.float32)
                x[0, :, : min(n_frames, frames)] = content[:, :frames]
                sv = ctranslate2.StorageView.from_array(x)
                encoded = np.array(model.encode(sv, to_cpu=True))
                gen = model.generate(
                    sv,
                    [spec["prompt"]],
                    beam_size=1,
                    max_length=len(spec["prompt"]) + MAX_NEW_TOKENS,
                    return_logits_vocab=True,
                    suppress_blank=False,
                    suppress_tokens=[],
                )[0]
                tokens = gen.sequences_ids[0]
                steps = [np.array(s) for s in gen.logits[0]]
                eot = spec["prompt"][0] - 1  # <|endoftext|> precedes <|startoftranscript|>
                chosen = tokens + ([eot] if len(steps) > len(tokens) else [])
                case = {
                    "frames": frames,
                    "encoder": encoder_summary(encoded),
                    "tokens": tokens,
                    "text": detokenize(vocabulary, tokens),
                    "steps": [step_summary(s, t) for s, t in zip(steps, chosen)],
                }
                if model.is_multilingual:
                    langs = model.detect_language(sv)[0][:3]
                    case["languages"] = [[lang, r(p)] for lang, p in langs]
                print(f"{spec['name']} @ {frames} frames: {case['text']!r}", file=sys.stderr)
                result["cases"].append(case)
            golden["models"].append(result)

    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(golden, f, indent=1, ensure_ascii=False)
        f.write("\n")
    # The repository's formatter owns JSON layout (biome ci checks it).
    subprocess.run(["npx", "biome", "format", "--write", args.out], cwd=REPO, check=True, capture_output=True)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
