// Stream density of ingest: how many live streams (1 fps frames + continuous audio) one core carries.
//
//   npm run bench:ingest [-- --streams 1,4,8 --seconds 15]
//
// For each N it measures, over the same window and on the same RTMP inputs (nginx-rtmp, N publishers
// looping a generated 1280x720 25 fps H.264/AAC clip with -c copy):
//   baseline: N plain `ffmpeg -i rtmp://... -f null -` decoders: the cost of decoding alone;
//   ingest:   the ingest service (built dist/main.js, its own process) pulling the N streams into Kafka.
// CPU comes from /proc/<pid>/stat (utime+stime) deltas, memory from VmRSS. Publishers are not counted.
// Prints a Markdown table (ratios ingest/baseline from the same run) and writes bench/results/ingest-density.json.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { IngestService } from '@livelens/contracts';
import { createGrpcClient } from '@livelens/runtime';
import { repoRoot, resolveInfrastructure, uniqueName } from '@livelens/test-support';
import { generateClip, publishRtmp, startRtmpServer } from '@livelens/test-support/media';
import { childrenOf, cpuSeconds, rssMb } from './proc.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? (args[i + 1] as string) : fallback;
};
const counts = arg('streams', '1,4,8').split(',').map(Number);
const seconds = Number(arg('seconds', '15'));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** CPU seconds used by `pids` over `ms`, and their summed RSS at the end. */
async function measure(pids: () => number[], ms: number) {
  const start = new Map(pids().map((p) => [p, cpuSeconds(p)]));
  await sleep(ms);
  const now = pids();
  let cpu = 0;
  for (const pid of now) cpu += cpuSeconds(pid) - (start.get(pid) ?? cpuSeconds(pid));
  return {
    cpuPercent: (cpu / (ms / 1000)) * 100,
    rssMb: now.reduce((sum, p) => sum + rssMb(p), 0),
    processes: now.length,
  };
}

async function main() {
  const infra = await resolveInfrastructure(() => undefined);
  const clip = await generateClip({
    durationS: 10,
    width: 1280,
    height: 720,
    fps: 25,
    speech: [{ text: 'buy now', atS: 2 }],
  });
  const rtmp = await startRtmpServer();
  const max = Math.max(...counts);
  const publishers = [];
  for (let i = 0; i < max; i += 1)
    publishers.push(await publishRtmp(clip.path, rtmp.url(`bench-${i}`), { loop: true }));
  const rows: Record<string, number | string>[] = [];
  try {
    for (const n of counts) {
      // Baseline: decoding alone.
      const decoders: ChildProcess[] = [];
      for (let i = 0; i < n; i += 1) {
        decoders.push(
          spawn(
            'ffmpeg',
            ['-nostdin', '-loglevel', 'error', '-i', rtmp.url(`bench-${i}`), '-f', 'null', '-'],
            { stdio: 'ignore' },
          ),
        );
      }
      await sleep(3_000);
      const baseline = await measure(() => decoders.map((d) => d.pid ?? 0), seconds * 1000);
      for (const d of decoders) d.kill('SIGKILL');
      await sleep(500);

      // Ingest: the built service, its own process.
      const prefix = `${uniqueName('bench')}.`;
      const ingest = spawn(process.execPath, [join(repoRoot, 'services/ingest/dist/main.js')], {
        env: {
          ...process.env,
          KAFKA_BROKERS: infra.kafkaBrokers.join(','),
          REDIS_URL: infra.redisUrl,
          KAFKA_TOPIC_PREFIX: prefix,
          INGEST_REDIS_KEY_PREFIX: `${prefix}{ingest}:`,
          INGEST_GRPC_HOST: '127.0.0.1',
          INGEST_GRPC_PORT: '0',
          METRICS_PORT: '0',
          INGEST_ALLOWED_CIDRS: '127.0.0.0/8',
          INGEST_MAX_STREAMS: String(n),
          LOG_LEVEL: 'info',
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const port = await new Promise<number>((resolve, reject) => {
        let buffer = '';
        ingest.stdout?.on('data', (chunk: Buffer) => {
          buffer += chunk.toString();
          const line = buffer.split('\n').find((l) => l.includes('ingest serving'));
          if (line) resolve((JSON.parse(line) as { port: number }).port);
        });
        ingest.once('exit', (code) => reject(new Error(`ingest exited with ${code}`)));
      });
      const client = createGrpcClient(IngestService, `127.0.0.1:${port}`);
      for (let i = 0; i < n; i += 1) {
        await client.startStream({
          sourceUrl: rtmp.url(`bench-${i}`),
          streamId: `bench-${i}`,
          options: { frameRateFps: 1 },
        });
      }
      await sleep(4_000);
      const pid = ingest.pid ?? 0;
      const before = await client.listStreams({});
      const framesBefore = before.streams.reduce((s, x) => s + Number(x.framesPublished), 0);
      const [node, ffmpeg] = await Promise.all([
        measure(() => [pid], seconds * 1000),
        measure(() => childrenOf(pid, 'ffmpeg'), seconds * 1000),
      ]);
      const after = await client.listStreams({});
      const framesAfter = after.streams.reduce((s, x) => s + Number(x.framesPublished), 0);
      client.close();
      ingest.kill('SIGTERM');
      await new Promise((resolve) => ingest.once('exit', resolve));

      const perStream = (ffmpeg.cpuPercent + node.cpuPercent) / n;
      const row = {
        streams: n,
        'ffmpeg CPU %/stream': +(ffmpeg.cpuPercent / n).toFixed(1),
        'node CPU % (all)': +node.cpuPercent.toFixed(1),
        'ingest CPU %/stream': +perStream.toFixed(1),
        'decode-only CPU %/stream (baseline)': +(baseline.cpuPercent / n).toFixed(1),
        'ingest/baseline': +(perStream / (baseline.cpuPercent / n)).toFixed(2),
        'streams per core': +(100 / perStream).toFixed(1),
        'ffmpeg RSS MB/stream': +(ffmpeg.rssMb / n).toFixed(0),
        'node RSS MB': +node.rssMb.toFixed(0),
        'frames/s published': +((framesAfter - framesBefore) / seconds).toFixed(2),
      };
      rows.push(row);
      console.error(JSON.stringify(row));
    }
  } finally {
    for (const p of publishers) await p.stop();
    await rtmp.stop();
  }
  const headers = Object.keys(rows[0] ?? {});
  const table = [
    `| ${headers.join(' | ')} |`,
    `|${headers.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${headers.map((h) => r[h]).join(' | ')} |`),
  ].join('\n');
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`;
  console.log(
    `\nIngest density, ${seconds} s windows, 1280x720 25 fps H.264/AAC over RTMP, 1 fps + audio (${machine})\n\n${table}`,
  );
  mkdirSync(join(repoRoot, 'bench/results'), { recursive: true });
  writeFileSync(
    join(repoRoot, 'bench/results/ingest-density.json'),
    JSON.stringify({ machine, seconds, rows }, null, 2),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
