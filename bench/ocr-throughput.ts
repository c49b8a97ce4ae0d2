// OCR throughput per core: our PP-OCRv4 pipeline (@livelens/inference) against the Python reference
// (packages/inference/reference/ocr_reference.py: RapidOCR 1.4.4, same models and settings), same frames,
// same run.
//
//   npm run bench:ocr [-- --batches 1,2,4,8 --rounds 4 --busy-frames 16 --threads 1 --providers cpu]
//
// Frames: the 12 frames of ocrAccuracySuite() (1280x720 JPEG, 2-4 overlay lines each), plus one "busy" frame
// (12 lines: a chat column, banners; --busy-frames 0 leaves it out). Frames are decoded once, before timing:
// both sides are measured from decoded pixels to lines.
//
// Ours: PaddleOcr with `--threads` ONNX Runtime intra-op threads per model (default 1) and `--providers`
// (tried in order, falling back). For each batch size, a fresh PaddleOcr, one untimed pass over the frames,
// then rounds x frames frames in batches of that size (frames taken in order, cyclically, so every batch
// is full). Measured: wall time, CPU time of the whole process (process.cpuUsage covers the main thread, the
// session workers and ONNX Runtime's threads), each recognize() call's latency, the event-loop delay of the
// main thread during the timed batches (monitorEventLoopDelay: what work on the main thread costs
// everything else there), and the highest VmRSS sampled while that batch size ran.
//
// Reference: ocr_reference.py --threads N in a child Python, which runs one image at a time. Its CPU time
// comes from getrusage(RUSAGE_SELF) at its exit (every thread; a small wrapper prints it), taken
// differentially: one run with --repeat 1 and one with --repeat 1+R on the same frames, so that the
// interpreter's start, the imports, the model loads and the warm-up cancel out, leaving R x frames frames
// (R = rounds for the suite, --busy-frames for the busy frame). Its memory is its VmHWM.
// The script's decode_ms (Pillow decoding the JPEG, single-threaded) is taken off both its wall and its CPU
// figures, as ours starts from decoded frames. Latency per frame is the script's total_ms - decode_ms.
//
// The ratios use frames/s per core (CPU). Prints a Markdown table and writes bench/results/ocr-throughput.json.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import {
  type DecodedImage,
  decodeImage,
  defaultCacheDir,
  type ExecutionProvider,
  findModel,
  loadManifest,
  PaddleOcr,
  resolveModel,
} from '@livelens/inference';
import { createLogger } from '@livelens/runtime';
import { repoRoot } from '@livelens/test-support';
import { generateTextFrame, ocrAccuracySuite, type TextFrameSpec } from '@livelens/test-support/media';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? (args[i + 1] as string) : fallback;
};
const batches = arg('batches', '1,2,4,8')
  .split(',')
  .map(Number)
  .sort((a, b) => a - b);
const rounds = Number(arg('rounds', '4'));
const busyFrames = Number(arg('busy-frames', '16'));
const threads = Number(arg('threads', '1'));
const providers = arg('providers', 'cpu').split(',') as ExecutionProvider[];
for (const [name, value] of Object.entries({ rounds, threads })) {
  if (!(Number.isInteger(value) && value >= 1)) throw new Error(`--${name} must be an integer >= 1`);
}
if (!batches.every((b) => Number.isInteger(b) && b >= 1)) throw new Error('--batches must be integers >= 1');
if (!(Number.isInteger(busyFrames) && busyFrames >= 0))
  throw new Error('--busy-frames must be an integer >= 0');

const round = (value: number, digits: number) => +value.toFixed(digits);
/** Nearest-rank percentile. */
function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
}
const mean = (values: readonly number[]) => values.reduce((s, v) => s + v, 0) / Math.max(1, values.length);
/** VmRSS (now) or VmHWM (the process's high-water mark) of this process, MB. */
function rssMb(field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) / 1024 : 0;
}

/**
 * A busier frame than the suite's: 12 lines over ffmpeg's testsrc2 pattern, like a live sale with a chat
 * column (recognition grows with the lines; detection does not).
 */
const busySpec: TextFrameSpec = {
  name: 'busy-chat-testsrc2',
  background: 'testsrc2',
  lines: [
    { text: '限时秒杀 全场包邮', font: 'wqy-microhei', sizePx: 48, x: 60, y: 40, box: true },
    {
      text: '$29.99 today only',
      font: 'dejavu-sans-bold',
      sizePx: 40,
      color: '#ffd700',
      x: 760,
      y: 40,
      box: true,
    },
    { text: 'anna: how much is shipping?', font: 'dejavu-sans', sizePx: 20, x: 60, y: 180, box: true },
    { text: 'mike88: 想要这个颜色', font: 'wqy-microhei', sizePx: 20, x: 60, y: 230, box: true },
    { text: 'joy: is it waterproof', font: 'dejavu-sans', sizePx: 20, x: 60, y: 280, box: true },
    { text: 'lee: 已下单 谢谢', font: 'wqy-microhei', sizePx: 20, x: 60, y: 330, box: true },
    { text: 'sam: link please', font: 'dejavu-sans', sizePx: 20, x: 60, y: 380, box: true },
    { text: 'kim: 还有货吗', font: 'wqy-microhei', sizePx: 20, x: 60, y: 430, box: true },
    { text: 'tom: does it come in blue', font: 'dejavu-sans', sizePx: 20, x: 60, y: 480, box: true },
    { text: 'zoe: 多少钱', font: 'wqy-microhei', sizePx: 20, x: 60, y: 530, box: true },
    { text: 'shop.example.com/deal Code SAVE20', font: 'dejavu-sans', sizePx: 24, x: 640, y: 600, box: true },
    {
      text: '@livedeals',
      font: 'dejavu-sans-mono',
      sizePx: 24,
      color: '#ffd700',
      x: 1040,
      y: 660,
      box: true,
    },
  ],
};

interface Frame {
  name: string;
  path: string;
  image: DecodedImage;
}
interface FrameSet {
  label: string;
  frames: Frame[];
  /** Frames timed per batch size (ours) and per image repeats (reference: perPhase / frames). */
  perPhase: number;
}
type Row = Record<string, number | string>;

async function frameSet(label: string, specs: TextFrameSpec[], perPhase: number): Promise<FrameSet> {
  const frames: Frame[] = [];
  for (const spec of specs) {
    const made = await generateTextFrame(spec);
    frames.push({ name: spec.name, path: made.path, image: await decodeImage(made.bytes) });
  }
  return { label, frames, perPhase };
}

// ---------------------------------------------------------------------------------------------- ours

interface OursResult {
  batch: number;
  frames: number;
  wallS: number;
  cpuS: number;
  latencyMs: number[];
  detMs: number;
  recMs: number;
  loopP99Ms: number;
  loopMaxMs: number;
  /** Highest VmRSS sampled every 100 ms while this batch size ran (its own PaddleOcr, models included). */
  peakRssMb: number;
  provider: string;
  /** Text lines per frame name (from the untimed pass). */
  texts: Map<string, string[]>;
}

/**
 * The event-loop delay monitor wakes every 2 ms: blocks much shorter than that go unseen, and the wake-ups
 * cost about 1 % of a core, which is charged to ours (10 ms would hide the blocks this is meant to show).
 */
const LOOP_RESOLUTION_MS = 2;

/**
 * One batch size on a fresh PaddleOcr (its own session workers, as a service configured with that batch
 * size would have), closed afterwards, so that one batch size's memory is not charged to the next.
 */
async function runOurs(create: () => Promise<PaddleOcr>, set: FrameSet, batch: number): Promise<OursResult> {
  let peakRss = rssMb('VmRSS');
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rssMb('VmRSS'));
  }, 100);
  const ocr = await create();
  try {
    return { ...(await timeBatches(ocr, set, batch)), peakRssMb: Math.max(peakRss, rssMb('VmRSS')) };
  } finally {
    clearInterval(sampler);
    await ocr.close();
  }
}

async function timeBatches(
  ocr: PaddleOcr,
  set: FrameSet,
  batch: number,
): Promise<Omit<OursResult, 'peakRssMb'>> {
  const n = set.frames.length;
  const texts = new Map<string, string[]>();
  // Untimed pass: ONNX Runtime's first runs of a new input shape (batch size) are slow.
  for (let start = 0; start < Math.max(n, batch); start += batch) {
    const members = Array.from({ length: batch }, (_, k) => set.frames[(start + k) % n] as Frame);
    const { lines } = await ocr.recognize(members.map((f) => f.image));
    for (const [k, f] of members.entries())
      texts.set(
        f.name,
        (lines[k] ?? []).map((l) => l.text),
      );
  }
  const calls = Math.ceil(set.perPhase / batch);
  const latencyMs: number[] = [];
  let detMs = 0;
  let recMs = 0;
  const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loop.enable();
  const cpuStart = process.cpuUsage();
  const wallStart = performance.now();
  for (let c = 0; c < calls; c += 1) {
    const images = Array.from({ length: batch }, (_, k) => (set.frames[(c * batch + k) % n] as Frame).image);
    const start = performance.now();
    const result = await ocr.recognize(images);
    latencyMs.push(performance.now() - start);
    detMs += result.detMs;
    recMs += result.recMs;
  }
  const wallS = (performance.now() - wallStart) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  loop.disable();
  return {
    batch,
    frames: calls * batch,
    wallS,
    cpuS: (cpu.user + cpu.system) / 1e6,
    latencyMs,
    detMs,
    recMs,
    // The histogram holds the time between timer wake-ups; the delay is what exceeds the interval.
    loopP99Ms: Math.max(0, loop.percentile(99) / 1e6 - LOOP_RESOLUTION_MS),
    loopMaxMs: Math.max(0, loop.max / 1e6 - LOOP_RESOLUTION_MS),
    provider: ocr.provider,
    texts,
  };
}

// ----------------------------------------------------------------------------------------- reference

interface ReferenceOutput {
  reference: Record<string, unknown>;
  results: {
    image: string;
    lines: { text: string }[];
    decode_ms: number;
    det_ms: number;
    rec_ms: number;
    total_ms: number;
    runs?: { decode_ms: number; det_ms: number; rec_ms: number; total_ms: number }[];
  }[];
}
interface Rusage {
  utimeS: number;
  stimeS: number;
  maxRssKb: number;
}

// Runs the script under runpy and prints getrusage(RUSAGE_SELF) (all threads) and VmHWM on stderr at its
// exit, whatever the exit.
const RUSAGE_WRAPPER = `
import json, resource, runpy, sys
script, sys.argv = sys.argv[1], sys.argv[1:]
code = 0
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as exit:
    if isinstance(exit.code, str):
        print(exit.code, file=sys.stderr)
    code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
finally:
    sys.stdout.flush()
    r = resource.getrusage(resource.RUSAGE_SELF)
    # Not ru_maxrss: Linux carries the parent's high-water mark across fork and exec (it would read Node's).
    with open("/proc/self/status") as status:
        hwm = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
    print("ocr-bench-rusage " + json.dumps({"utimeS": r.ru_utime, "stimeS": r.ru_stime, "maxRssKb": hwm}), file=sys.stderr, flush=True)
sys.exit(code)
`;

function execute(command: string, argv: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${command} ${argv.slice(0, 3).join(' ')} … exited with ${code}:\n${stderr}`));
    });
  });
}

async function runReference(
  python: string,
  models: { det: string; rec: string; keys: string },
  frames: readonly Frame[],
  repeat: number,
): Promise<{ output: ReferenceOutput; rusage: Rusage; wallS: number }> {
  const start = performance.now();
  const { stdout, stderr } = await execute(python, [
    '-c',
    RUSAGE_WRAPPER,
    join(repoRoot, 'packages/inference/reference/ocr_reference.py'),
    '--det-model',
    models.det,
    '--rec-model',
    models.rec,
    '--keys',
    models.keys,
    '--threads',
    String(threads),
    '--repeat',
    String(repeat),
    '--warmup',
    '2',
    ...frames.map((f) => f.path),
  ]);
  const wallS = (performance.now() - start) / 1000;
  const line = stderr.split('\n').find((l) => l.startsWith('ocr-bench-rusage '));
  if (!line) throw new Error(`ocr_reference.py printed no rusage:\n${stderr}`);
  return {
    output: JSON.parse(stdout) as ReferenceOutput,
    rusage: JSON.parse(line.slice('ocr-bench-rusage '.length)) as Rusage,
    wallS,
  };
}

interface ReferenceResult {
  frames: number;
  /** Per frame, decode excluded. */
  cpuS: number;
  cpuSWithDecode: number;
  latencyMs: number[];
  detMs: number;
  recMs: number;
  decodeMs: number;
  peakRssMb: number;
  texts: Map<string, string[]>;
  version: Record<string, unknown>;
}

async function measureReference(
  python: string,
  models: { det: string; rec: string; keys: string },
  set: FrameSet,
): Promise<ReferenceResult> {
  const extra = Math.max(1, Math.round(set.perPhase / set.frames.length));
  const short = await runReference(python, models, set.frames, 1);
  const long = await runReference(python, models, set.frames, 1 + extra);
  const cpu = (r: Rusage) => r.utimeS + r.stimeS;
  const frames = extra * set.frames.length;
  const runs = long.output.results.flatMap((r) => r.runs ?? []);
  const decodeMs = mean(runs.map((r) => r.decode_ms));
  const cpuSWithDecode = (cpu(long.rusage) - cpu(short.rusage)) / frames;
  return {
    frames,
    cpuS: cpuSWithDecode - decodeMs / 1000,
    cpuSWithDecode,
    latencyMs: runs.map((r) => r.total_ms - r.decode_ms),
    detMs: mean(runs.map((r) => r.det_ms)),
    recMs: mean(runs.map((r) => r.rec_ms)),
    decodeMs,
    peakRssMb: long.rusage.maxRssKb / 1024,
    texts: new Map(
      long.output.results.map((r, i) => [(set.frames[i] as Frame).name, r.lines.map((l) => l.text)]),
    ),
    version: long.output.reference,
  };
}

// ---------------------------------------------------------------------------------------------- main

function oursRow(set: FrameSet, r: OursResult, provider: string): Row {
  return {
    frames: set.label,
    implementation: `ours (onnxruntime-node, ${provider})`,
    batch: r.batch,
    'frames/s (wall)': round(r.frames / r.wallS, 2),
    'frames/s per core (CPU)': round(r.frames / r.cpuS, 2),
    'cores used': round(r.cpuS / r.wallS, 2),
    'latency p50 ms': round(percentile(r.latencyMs, 50), 0),
    'latency p95 ms': round(percentile(r.latencyMs, 95), 0),
    'latency p99 ms': round(percentile(r.latencyMs, 99), 0),
    'det ms/frame': round(r.detMs / r.frames, 1),
    'rec ms/frame': round(r.recMs / r.frames, 1),
    'peak RSS MB': round(r.peakRssMb, 0),
    'event loop p99/max ms': `${round(r.loopP99Ms, 1)} / ${round(r.loopMaxMs, 1)}`,
  };
}

function referenceRow(set: FrameSet, r: ReferenceResult): Row {
  const wallPerFrameMs = mean(r.latencyMs);
  return {
    frames: set.label,
    implementation: 'reference (RapidOCR, Python)',
    batch: 1,
    'frames/s (wall)': round(1000 / wallPerFrameMs, 2),
    'frames/s per core (CPU)': round(1 / r.cpuS, 2),
    'cores used': round((r.cpuS * 1000) / wallPerFrameMs, 2),
    'latency p50 ms': round(percentile(r.latencyMs, 50), 0),
    'latency p95 ms': round(percentile(r.latencyMs, 95), 0),
    'latency p99 ms': round(percentile(r.latencyMs, 99), 0),
    'det ms/frame': round(r.detMs, 1),
    'rec ms/frame': round(r.recMs, 1),
    'peak RSS MB': round(r.peakRssMb, 0),
    'event loop p99/max ms': 'n/a',
  };
}

async function main() {
  const logger = createLogger({ service: 'bench-ocr', level: 'warn' });
  const loadBefore = loadavg();
  const manifest = await loadManifest();
  const cacheDir = defaultCacheDir({
    ...process.env,
    LIVELENS_HOME: process.env.LIVELENS_HOME ?? join(repoRoot, '.livelens'),
  });
  const model = (id: string) => resolveModel(findModel(manifest, id), { cacheDir, fetch: true });
  const models = {
    det: await model('ppocrv4-det'),
    rec: await model('ppocrv4-rec'),
    keys: await model('ppocr-keys-v1'),
  };
  const setup = await execute('bash', [join(repoRoot, 'packages/inference/reference/setup.sh')]);
  const python = setup.stdout.trim().split('\n').pop() ?? '';

  const suite = ocrAccuracySuite();
  const sets = [await frameSet(`suite (${suite.length} frames)`, suite, rounds * suite.length)];
  if (busyFrames > 0)
    sets.push(await frameSet(`busy (1 frame, ${busySpec.lines.length} lines)`, [busySpec], busyFrames));

  const create = () =>
    PaddleOcr.create(
      { detPath: models.det, recPath: models.rec, dictPath: models.keys },
      { intraOpThreads: threads, executionProviders: providers },
      logger,
    );
  const rssBeforeMb = rssMb('VmRSS');
  const rows: Row[] = [];
  const ratios: Row[] = [];
  const agreement: string[] = [];
  const raw: unknown[] = [];
  let referenceVersion: Record<string, unknown> = {};
  let suiteBest = 1;
  let provider = '';
  for (const [index, set] of sets.entries()) {
    // The busy frame runs at batch 1 and at the suite's best batch size.
    const sizes = index === 0 ? batches : [...new Set([1, suiteBest])];
    const reference = await measureReference(python, models, set);
    referenceVersion = reference.version;
    const referenceRowValue = referenceRow(set, reference);
    console.error(JSON.stringify(referenceRowValue));
    const ours: OursResult[] = [];
    for (const batch of sizes) {
      const result = await runOurs(create, set, batch);
      provider = result.provider;
      ours.push(result);
      const row = oursRow(set, result, result.provider);
      console.error(JSON.stringify(row));
      rows.push(row);
    }
    rows.push(referenceRowValue);

    const refFps = Number(referenceRowValue['frames/s per core (CPU)']);
    const refWall = Number(referenceRowValue['frames/s (wall)']);
    const byCpu = [...ours].sort((a, b) => b.frames / b.cpuS - a.frames / a.cpuS);
    if (index === 0) suiteBest = byCpu[0]?.batch ?? 1;
    const pick = (label: string, r: OursResult | undefined) =>
      r && {
        frames: set.label,
        ours: label,
        'ours/reference, frames/s per core (CPU)': round(r.frames / r.cpuS / refFps, 2),
        'ours/reference, frames/s (wall)': round(r.frames / r.wallS / refWall, 2),
      };
    for (const r of [
      pick(
        'batch 1',
        ours.find((o) => o.batch === 1),
      ),
      pick(`best batch (${byCpu[0]?.batch})`, byCpu[0]),
    ])
      if (r) ratios.push(r);

    // Sanity: the same text lines as the reference, at every batch size. Batching pools the recognizer's
    // crops across frames, so a crop may be padded to another frame's widest line; the reference never
    // mixes frames. A difference here is a finding, not a bench failure.
    const differing = (o: OursResult) =>
      set.frames.filter(
        (f) => JSON.stringify(o.texts.get(f.name)) !== JSON.stringify(reference.texts.get(f.name)),
      );
    agreement.push(
      `${set.label}, frames whose lines equal the reference's: ${ours
        .map((o) => {
          const differ = differing(o);
          const names = differ.length ? ` (differ: ${differ.map((f) => f.name).join(', ')})` : '';
          return `batch ${o.batch} ${set.frames.length - differ.length}/${set.frames.length}${names}`;
        })
        .join('; ')}`,
    );
    raw.push({
      set: set.label,
      frameNames: set.frames.map((f) => f.name),
      ours: ours.map(({ texts, ...r }) => ({ ...r, texts: Object.fromEntries(texts) })),
      reference: { ...reference, texts: Object.fromEntries(reference.texts), version: undefined },
    });
  }

  const table = (list: Row[]) => {
    const headers = Object.keys(list[0] ?? {});
    return [
      `| ${headers.join(' | ')} |`,
      `|${headers.map(() => '---').join('|')}|`,
      ...list.map((r) => `| ${headers.map((h) => r[h]).join(' | ')} |`),
    ].join('\n');
  };
  const loadAfter = loadavg();
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`;
  const versions = `onnxruntime-node ${readPackageVersion('onnxruntime-node')} (${provider}) vs ${String(referenceVersion.engine)} on Python onnxruntime ${String(referenceVersion.onnxruntime)} (Python ${String(referenceVersion.python)})`;
  const load = `load average ${loadBefore[0]?.toFixed(2)} before, ${loadAfter[0]?.toFixed(2)} after (1 min)`;
  console.log(
    `\nOCR throughput, PP-OCRv4 det+rec on 1280x720 frames, ${threads} intra-op thread(s) per model, ` +
      `${rounds} rounds (${machine}; ${versions}; ${load})\n\n${table(rows)}\n\nRatios (same run):\n\n${table(ratios)}\n\n` +
      `Output check:\n${agreement.map((a) => `- ${a}`).join('\n')}`,
  );
  mkdirSync(join(repoRoot, 'bench/results'), { recursive: true });
  writeFileSync(
    join(repoRoot, 'bench/results/ocr-throughput.json'),
    JSON.stringify(
      {
        date: new Date().toISOString(),
        machine,
        versions,
        reference: referenceVersion,
        settings: { batches, rounds, busyFrames, threads, providers, provider },
        memory: { rssBeforeOcrMb: rssBeforeMb, processPeakRssMb: rssMb('VmHWM') },
        loadAverage: { before: loadBefore, after: loadAfter },
        rows,
        ratios,
        agreement,
        raw,
      },
      null,
      2,
    ),
  );
}

function readPackageVersion(name: string): string {
  try {
    const path = join(repoRoot, 'node_modules', name, 'package.json');
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
