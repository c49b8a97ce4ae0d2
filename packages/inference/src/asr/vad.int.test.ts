import { createLogger } from '@livelens/runtime';
import {
  audibleSpans,
  composeSpeechClip,
  renderLavfiAudio,
  type TimedSpeechClip,
  type TimedSpeechLine,
  toPcm16,
} from '@livelens/test-support/media';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findModel, loadManifest } from '../manifest.js';
import { defaultCacheDir, resolveModel } from '../resolve.js';
import {
  AudioRing,
  SileroVad,
  type SpeechSegment,
  VAD_CONTEXT_SAMPLES,
  VAD_WINDOW_SAMPLES,
  type VadInput,
  type VadOptions,
  type VadResult,
  vadAudioCapacity,
} from './vad.js';

const logger = createLogger({ service: 'vad-test', level: 'silent' });
const cacheDir = defaultCacheDir({
  LIVELENS_HOME: new URL('../../../../.livelens', import.meta.url).pathname,
});
const RATE = 16_000;
const ms = (samples: number) => Math.round((samples / RATE) * 1000);
const TOLERANCE = (150 * RATE) / 1000;

// Live-commerce lines in several espeak-ng voices and rates, each starting at a known time.
const LINES: TimedSpeechLine[] = [
  { text: 'Welcome back everyone, today we have a flash sale.', atS: 1 },
  { text: 'Use code SAVE twenty at checkout.', atS: 6, voice: 'en-gb-x-rp', wordsPerMinute: 150 },
  { text: 'Only nine ninety nine, link in my bio.', atS: 10.3, voice: 'en-us+f3', wordsPerMinute: 185 },
  { text: 'Message me on WhatsApp for the wholesale price.', atS: 15.1, voice: 'en-029' },
];

let modelPath: string;
let uid = 0;
/** A unique stream id per use, so that no test sees another's state. */
const streamId = (name: string) => `${name}-${process.pid}-${++uid}`;

/** Splits PCM into chunks of `chunkSamples` (the last may be shorter); 0 = one chunk. */
function chunks(pcm: Int16Array, chunkSamples: number): Int16Array[] {
  if (chunkSamples <= 0) return [pcm];
  const out: Int16Array[] = [];
  for (let at = 0; at < pcm.length; at += chunkSamples) out.push(pcm.slice(at, at + chunkSamples));
  return out;
}

/** Feeds one stream chunk by chunk (one call each, as a service does), then flushes; returns everything. */
async function runStream(
  vad: SileroVad,
  pcm: Int16Array,
  chunkSamples: number,
): Promise<{ segments: SpeechSegment[]; probabilities: number[]; results: VadResult[]; ratio: number }> {
  const id = streamId('stream');
  const results: VadResult[] = [];
  for (const chunk of chunks(pcm, chunkSamples))
    results.push(...(await vad.process([{ streamId: id, pcm: chunk }])));
  const flushed = await vad.flush(id);
  return {
    segments: [...results.flatMap((r) => r.segments), ...flushed.segments],
    probabilities: results.flatMap((r) => Array.from(r.probabilities)),
    results,
    ratio: flushed.speechRatio,
  };
}

const describeSegments = (segments: readonly SpeechSegment[]) =>
  segments.map((s) => `${ms(s.speechStart)}-${ms(s.speechEnd)} ms (${s.reason})`).join(', ');

describe('Silero VAD v5 on synthesized speech', () => {
  let vad: SileroVad;
  let clean: TimedSpeechClip;
  let noisy: TimedSpeechClip;

  beforeAll(async () => {
    modelPath = await resolveModel(findModel(await loadManifest(), 'silero-vad-v5'), {
      cacheDir,
      fetch: true,
    });
    vad = await SileroVad.create(modelPath, {}, logger);
    clean = await composeSpeechClip({ durationS: 20, lines: LINES });
    noisy = await composeSpeechClip({
      durationS: 20,
      lines: LINES,
      noise: { color: 'pink', amplitude: 0.02 },
    });
  }, 300_000);
  afterAll(() => vad?.close());

  for (const [name, clip] of [
    ['clean', () => clean],
    ['pink noise at -34 dBFS peak', () => noisy],
  ] as const) {
    it(`finds each line within 150 ms of where its sound starts and ends (${name})`, async () => {
      const { utterances } = clip();
      const { segments, ratio } = await runStream(vad, clip().pcm, RATE);
      const truth = utterances.map((u) => `${ms(u.speech.start)}-${ms(u.speech.end)} ms`).join(', ');
      console.info(
        `[vad ${name}] segments ${describeSegments(segments)}\n  truth ${truth}; speech ratio ${ratio.toFixed(3)}`,
      );
      expect(segments).toHaveLength(utterances.length);
      for (const [i, u] of utterances.entries()) {
        const s = segments[i] as SpeechSegment;
        expect(Math.abs(s.speechStart - u.speech.start), `start of "${u.text}"`).toBeLessThanOrEqual(
          TOLERANCE,
        );
        expect(Math.abs(s.speechEnd - u.speech.end), `end of "${u.text}"`).toBeLessThanOrEqual(TOLERANCE);
        expect(s.reason).toBe('silence');
        // Padding: 200 ms each side (the lines are far apart, so nothing clips it).
        expect(s.speechStart - s.start).toBe(3200);
        expect(s.end - s.speechEnd).toBe(3200);
      }
      const speech = utterances.reduce((sum, u) => sum + u.speech.end - u.speech.start, 0);
      expect(Math.abs(ratio - speech / clip().pcm.length)).toBeLessThan(0.03);
    });
  }

  it('computes the same probabilities as silero’s own loop (64 samples of context, state carried)', async () => {
    // The reference: silero-vad's OnnxWrapper, one stream, one 512-sample window at a time, in this thread.
    const session = await ort.InferenceSession.create(modelPath);
    const expected: number[] = [];
    let state: ort.Tensor = new ort.Tensor('float32', new Float32Array(256), [2, 1, 128]);
    let context = new Float32Array(VAD_CONTEXT_SAMPLES);
    const samples = noisy.samples;
    for (let at = 0; at + VAD_WINDOW_SAMPLES <= samples.length; at += VAD_WINDOW_SAMPLES) {
      const input = new Float32Array(VAD_CONTEXT_SAMPLES + VAD_WINDOW_SAMPLES);
      input.set(context, 0);
      input.set(samples.subarray(at, at + VAD_WINDOW_SAMPLES), VAD_CONTEXT_SAMPLES);
      const out = await session.run({
        input: new ort.Tensor('float32', input, [1, input.length]),
        state,
        sr: new ort.Tensor('int64', BigInt64Array.from([16000n]), []),
      });
      const { output, stateN } = out;
      if (!output || !stateN) throw new Error('the model has no output/stateN');
      expected.push((output.data as Float32Array)[0] as number);
      state = stateN;
      context = input.slice(-VAD_CONTEXT_SAMPLES);
    }
    await session.release();
    // Odd chunks (not multiples of the window) exercise the carried context and partial windows.
    const { probabilities } = await runStream(vad, noisy.pcm, 777);
    expect(probabilities).toHaveLength(expected.length);
    let worst = 0;
    for (const [i, p] of probabilities.entries())
      worst = Math.max(worst, Math.abs(p - (expected[i] as number)));
    expect(worst).toBeLessThan(1e-5);
  });

  it('gives the same segments fed in 1 s chunks, 320 ms chunks, odd chunks or all at once', async () => {
    const runs = await Promise.all(
      [RATE, 5120, 1234, 0].map(async (size) => ({ size, ...(await runStream(vad, noisy.pcm, size)) })),
    );
    const [first, ...others] = runs;
    for (const other of others) {
      expect(other.segments, `chunks of ${other.size}`).toEqual(first?.segments);
      expect(other.probabilities).toEqual(first?.probabilities);
    }
    expect(first?.segments).toHaveLength(LINES.length);
  });

  it('takes PCM as s16le bytes (a protobuf field, at any offset) and places a stream on its own timeline', async () => {
    const reference = await runStream(vad, noisy.pcm, RATE);
    const id = streamId('bytes');
    const offset = 100 * RATE;
    vad.open(id, { startSample: offset });
    expect(() => vad.open(id)).toThrow(/already open/);
    const segments: SpeechSegment[] = [];
    for (const chunk of chunks(noisy.pcm, RATE)) {
      const bytes = new Uint8Array(chunk.byteLength + 1);
      bytes.set(new Uint8Array(chunk.buffer), 1);
      const [result] = await vad.process([{ streamId: id, pcm: bytes.subarray(1) }]);
      segments.push(...(result?.segments ?? []));
    }
    // An odd byte count is refused, and the stream is left as it was.
    await expect(vad.process([{ streamId: id, pcm: new Uint8Array(3) }])).rejects.toMatchObject({
      code: 'invalid_argument',
    });
    const flushed = await vad.flush(id);
    segments.push(...flushed.segments);
    expect(flushed.receivedEnd).toBe(offset + noisy.pcm.length);
    expect(segments).toEqual(
      reference.segments.map((s) => ({
        ...s,
        start: s.start + offset,
        end: s.end + offset,
        speechStart: s.speechStart + offset,
        speechEnd: s.speechEnd + offset,
      })),
    );
  });

  it('keeps streams apart: interleaved and batched, each stream gets what it gets alone', async () => {
    const other = await composeSpeechClip({
      durationS: 14,
      lines: [
        { text: 'Hello and thanks for joining the live stream.', atS: 0.5, voice: 'en-gb-scotland' },
        { text: 'This blender is forty percent off tonight.', atS: 7.2, voice: 'en-us+f3' },
      ],
      noise: { color: 'white', amplitude: 0.005 },
    });
    const streams = [
      { id: streamId('a'), pcm: clean.pcm },
      { id: streamId('b'), pcm: other.pcm },
      { id: streamId('c'), pcm: noisy.pcm },
    ];
    const alone = await Promise.all(streams.map((s) => runStream(vad, s.pcm, RATE)));
    // One call per second of audio carrying every stream's chunk (a batch of 3, then 2 when b ends); every
    // third call also carries a stream's next chunk twice over (two chunks of one stream in one call).
    const segments = new Map<string, SpeechSegment[]>(streams.map((s) => [s.id, []]));
    const split = streams.map((s) => chunks(s.pcm, RATE));
    const cursor = streams.map(() => 0);
    for (let call = 0; cursor.some((c, i) => c < (split[i] as Int16Array[]).length); call++) {
      const inputs: VadInput[] = [];
      for (const [i, s] of streams.entries()) {
        const take = call % 3 === 2 && i === 0 ? 2 : 1;
        for (let k = 0; k < take && (cursor[i] as number) < (split[i] as Int16Array[]).length; k++) {
          inputs.push({ streamId: s.id, pcm: (split[i] as Int16Array[])[cursor[i] as number] as Int16Array });
          cursor[i] = (cursor[i] as number) + 1;
        }
      }
      for (const result of await vad.process(inputs)) segments.get(result.streamId)?.push(...result.segments);
    }
    for (const [i, s] of streams.entries()) {
      segments.get(s.id)?.push(...(await vad.flush(s.id)).segments);
      expect(segments.get(s.id), `stream ${i}`).toEqual(alone[i]?.segments);
    }
    expect(alone.map((a) => a.segments.length)).toEqual([4, 2, 4]);
    expect(vad.streamCount).toBe(0);
  });

  it('flush closes the segment still open when the stream ends mid-sentence', async () => {
    const u = clean.utterances[3];
    if (!u) throw new Error('no fourth line');
    const cut = Math.round((u.speech.start + u.speech.end) / 2);
    const id = streamId('cut');
    const results = await vad.process(
      chunks(clean.pcm.slice(0, cut), RATE).map((pcm) => ({ streamId: id, pcm })),
    );
    const last = results[results.length - 1] as VadResult;
    expect(results.flatMap((r) => r.segments)).toHaveLength(3);
    expect(last.open).toBeDefined();
    expect(Math.abs((last.open?.speechStart ?? 0) - u.speech.start)).toBeLessThanOrEqual(TOLERANCE);
    expect(last.receivedEnd).toBe(cut);
    const flushed = await vad.flush(id);
    expect(flushed.segments).toHaveLength(1);
    const [segment] = flushed.segments as [SpeechSegment];
    expect(segment.reason).toBe('flush');
    expect(segment.start).toBe(last.open?.start);
    expect(cut - segment.speechEnd).toBeLessThanOrEqual(TOLERANCE);
    expect(segment.end).toBeLessThanOrEqual(cut);
    expect(vad.has(id)).toBe(false);
  });
});

describe('Silero VAD v5 on audio without speech', () => {
  let vad: SileroVad;
  beforeAll(async () => {
    modelPath ??= await resolveModel(findModel(await loadManifest(), 'silero-vad-v5'), {
      cacheDir,
      fetch: true,
    });
    vad = await SileroVad.create(modelPath, {}, logger);
  }, 300_000);
  afterAll(() => vad?.close());

  // ffmpeg aevalsrc music: a chord progression and a melody with a few harmonics and piano-like decay, a kick
  // and hi-hat beat, all of them together (a backing track), an organ chord. `\,` escapes the graph parser.
  const pick = (stepS: number, values: number[]) => {
    let e = String(values[values.length - 1]);
    for (let i = values.length - 2; i >= 0; i--) {
      e = `if(lt(mod(t\\,${stepS * values.length})\\,${stepS * (i + 1)})\\,${values[i]}\\,${e})`;
    }
    return e;
  };
  const piano = (f: string, amp: number, noteS: number) =>
    `${amp}*(sin(2*PI*${f}*t)+0.5*sin(4*PI*${f}*t)+0.25*sin(6*PI*${f}*t)+0.12*sin(8*PI*${f}*t))*exp(-3*mod(t\\,${noteS}))`;
  const progression = [
    [261.63, 329.63, 392.0],
    [196, 246.94, 293.66],
    [220, 261.63, 329.63],
    [174.61, 220, 261.63],
  ];
  const chords = [0, 1, 2]
    .map((k) =>
      piano(
        pick(
          1,
          progression.map((c) => c[k] as number),
        ),
        0.07,
        1,
      ),
    )
    .join('+');
  const melody = piano(
    pick(0.25, [523.25, 587.33, 659.25, 783.99, 659.25, 587.33, 523.25, 392.0]),
    0.12,
    0.25,
  );
  const beat =
    '0.5*sin(2*PI*(50+120*exp(-30*mod(t\\,0.5)))*mod(t\\,0.5))*exp(-10*mod(t\\,0.5))' +
    '+0.15*(random(0)-0.5)*exp(-60*mod(t+0.25\\,0.5))';
  const organ = [261.63, 329.63, 392].map((f) => `0.08*(sin(2*PI*${f}*t)+0.5*sin(4*PI*${f}*t))`).join('+');
  const cases: [string, () => Promise<Float32Array>][] = [
    ['digital silence', async () => new Float32Array(10 * RATE)],
    [
      'white noise at -34 dBFS peak',
      () => renderLavfiAudio('anoisesrc=color=white:amplitude=0.02:seed=3', 10),
    ],
    ['pink noise at -26 dBFS peak', () => renderLavfiAudio('anoisesrc=color=pink:amplitude=0.05:seed=3', 10)],
    [
      'brown noise at -20 dBFS peak',
      () => renderLavfiAudio('anoisesrc=color=brown:amplitude=0.1:seed=3', 10),
    ],
    ['chord progression', () => renderLavfiAudio(`aevalsrc=exprs='${chords}'`, 12)],
    ['melody', () => renderLavfiAudio(`aevalsrc=exprs='${melody}'`, 12)],
    ['drum beat', () => renderLavfiAudio(`aevalsrc=exprs='${beat}'`, 12)],
    [
      'backing track (chords + melody + beat)',
      () => renderLavfiAudio(`aevalsrc=exprs='${chords}+${melody}+${beat}'`, 12),
    ],
    ['organ chord', () => renderLavfiAudio(`aevalsrc=exprs='${organ}'`, 12)],
  ];
  for (const [name, make] of cases) {
    it(`finds no speech in ${name}`, async () => {
      const { segments, probabilities, results, ratio } = await runStream(vad, toPcm16(await make()), RATE);
      const peak = Math.max(...probabilities);
      console.info(
        `[vad no-speech] ${name}: highest window probability ${peak.toFixed(3)}, segments ${segments.length}`,
      );
      expect(segments).toEqual([]);
      expect(
        results.every((r) => r.open === undefined || r.open.analysedEnd - r.open.speechStart < 4000),
      ).toBe(true);
      expect(ratio).toBe(0);
    });
  }
});

describe('Silero VAD v5: long utterances, bounded memory, throughput', () => {
  let vad: SileroVad;
  const options: VadOptions = { maxSegmentMs: 5000 };
  beforeAll(async () => {
    modelPath ??= await resolveModel(findModel(await loadManifest(), 'silero-vad-v5'), {
      cacheDir,
      fetch: true,
    });
    vad = await SileroVad.create(modelPath, { vad: options }, logger);
  }, 300_000);
  afterAll(() => vad?.close());

  it('splits an utterance longer than maxSegment at its pauses, into pieces that cover it', async () => {
    // ~12 s of talk: clauses with short pauses (espeak-ng's commas, ~200 ms: below minSilence).
    const clip = await composeSpeechClip({
      durationS: 20,
      lines: [
        {
          text:
            'So here is the deal, this jacket is waterproof, it comes in three colours, red, blue and black, ' +
            'sizes small to extra large, and if you order in the next ten minutes, shipping is free, ' +
            'and you get a second one at half price, just type yes in the chat.',
          atS: 1,
        },
      ],
    });
    const [u] = clip.utterances;
    if (!u) throw new Error('no utterance');
    const { segments } = await runStream(vad, clip.pcm, RATE);
    console.info(
      `[vad max 5 s] ${ms(u.speech.end - u.speech.start)} ms of talk → ${describeSegments(segments)}`,
    );
    expect(u.speech.end - u.speech.start).toBeGreaterThan(10 * RATE);
    expect(segments.length).toBeGreaterThanOrEqual(3);
    for (const [i, s] of segments.entries()) {
      expect(s.end - s.start).toBeLessThanOrEqual(5 * RATE);
      if (i < segments.length - 1) expect(s.reason).toBe('max_length');
      if (i > 0) expect(s.start).toBeGreaterThanOrEqual((segments[i - 1] as SpeechSegment).end);
    }
    expect(Math.abs((segments[0] as SpeechSegment).speechStart - u.speech.start)).toBeLessThanOrEqual(
      TOLERANCE,
    );
    expect(
      Math.abs((segments[segments.length - 1] as SpeechSegment).speechEnd - u.speech.end),
    ).toBeLessThanOrEqual(TOLERANCE);
    // The cuts fall in pauses of the synthesized audio (its quiet gaps of 80 ms or more, within 2 windows),
    // not inside words.
    const sounds = audibleSpans(clip.samples, { minGapMs: 80 });
    const slack = 2 * VAD_WINDOW_SAMPLES;
    for (const [i, s] of segments.slice(0, -1).entries()) {
      const resume = (segments[i + 1] as SpeechSegment).speechStart;
      const inPause = sounds.some((sound, k) => {
        const next = sounds[k + 1];
        return (
          next !== undefined &&
          s.speechEnd >= sound.end - slack &&
          s.speechEnd <= next.start &&
          resume >= sound.end &&
          resume <= next.start + slack
        );
      });
      expect(inPause, `cut ${ms(s.speechEnd)}-${ms(resume)} ms`).toBe(true);
    }
  });

  it('keeps per-stream memory bounded: a 10-minute stream through a fixed ring, every segment sliceable', async () => {
    const clip = await composeSpeechClip({
      durationS: 20,
      lines: [
        { text: 'Welcome back everyone, today we have a flash sale.', atS: 1 },
        { text: 'Use code SAVE twenty at checkout.', atS: 9 },
      ],
      noise: { color: 'pink', amplitude: 0.01 },
    });
    const config = vad.config;
    const ring = new AudioRing(vadAudioCapacity(config, RATE));
    const id = streamId('long');
    let segments = 0;
    for (let loop = 0; loop < 30; loop++) {
      for (const chunk of chunks(clip.pcm, RATE)) {
        ring.append(chunk);
        const [result] = await vad.process([{ streamId: id, pcm: chunk }]);
        for (const s of result?.segments ?? []) {
          expect(ring.slice(s.start, s.end)).toHaveLength(s.end - s.start);
          segments++;
        }
        expect(result?.retainFromSample).toBeGreaterThanOrEqual(ring.startSample);
      }
    }
    const flushed = await vad.flush(id);
    expect(segments + flushed.segments.length).toBe(60);
    expect(flushed.receivedEnd).toBe(30 * clip.pcm.length);
    expect(ring.capacity).toBe(vadAudioCapacity(config, RATE));
  });

  it('measures throughput: audio seconds per CPU second, one stream and 8 streams batched', async () => {
    const clip = await composeSpeechClip({
      durationS: 60,
      lines: [0, 1, 2, 3, 4, 5].map((k) => ({
        text: 'Use code SAVE twenty at checkout, only today.',
        atS: 2 + k * 10,
      })),
      noise: { color: 'pink', amplitude: 0.01 },
    });
    const split = chunks(clip.pcm, RATE);
    const measure = async (streams: number) => {
      const ids = Array.from({ length: streams }, () => streamId('bench'));
      const cpu = process.cpuUsage();
      const started = performance.now();
      for (const chunk of split) await vad.process(ids.map((id) => ({ streamId: id, pcm: chunk })));
      const wallS = (performance.now() - started) / 1000;
      const used = process.cpuUsage(cpu);
      const cpuS = (used.user + used.system) / 1e6;
      for (const id of ids) await vad.flush(id);
      const audioS = (streams * clip.pcm.length) / RATE;
      return { audioS, cpuS, wallS, perCpuS: audioS / cpuS, perWallS: audioS / wallS };
    };
    await measure(1); // warm-up
    const one = await measure(1);
    const eight = await measure(8);
    for (const [name, m] of [
      ['1 stream', one],
      ['8 streams batched', eight],
    ] as const) {
      console.info(
        `[vad throughput] ${name}, 1 s chunks: ${m.audioS} s of audio in ${m.cpuS.toFixed(2)} CPU s ` +
          `(${m.perCpuS.toFixed(0)} audio s per CPU s; ${m.perWallS.toFixed(0)} per wall s; worker + main thread)`,
      );
    }
    // Loose floors (a shared CI machine): the VAD must be far faster than real time.
    expect(one.perCpuS).toBeGreaterThan(20);
    expect(eight.perCpuS).toBeGreaterThan(one.perCpuS);
  }, 120_000);
});
