import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SupervisedWorker, WorkerRpc } from './worker-rpc.js';

// A worker built on the package's compiled serveWorker (as session-worker and ocr-worker are), with methods
// that misbehave on request: crash the thread, hang, throw with and without a code.
const WORKER = `
import { serveWorker } from ${JSON.stringify(new URL('../dist/worker-rpc.js', import.meta.url).href)};
let inits = 0;
let closedWhileRunning = false;
let running = 0;
serveWorker({
  async init(params) { inits += 1; if (params?.failInit) throw Object.assign(new Error('no model'), { code: 'failed_precondition' }); return { value: { inits } }; },
  async echo(x) { return { value: x }; },
  async slow(ms) { running += 1; await new Promise((r) => setTimeout(r, ms)); running -= 1; return { value: closedWhileRunning }; },
  async crash() { setTimeout(() => { throw new Error('native crash, say'); }, 10); return new Promise(() => {}); },
  async hang() { for (;;) {} },
  async fail() { throw new Error('plain failure'); },
  async poison() { throw Object.assign(new Error('bad input'), { code: 'invalid_argument' }); },
  async close() { if (running > 0) closedWhileRunning = true; return { value: undefined }; },
});
`;

let dir: string;
let url: URL;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'livelens-rpc-'));
  await writeFile(join(dir, 'worker.mjs'), WORKER);
  url = pathToFileURL(join(dir, 'worker.mjs'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('worker RPC', () => {
  it('keeps the worker-side code of an error, and calls a codeless error internal (never the input)', async () => {
    const rpc = new WorkerRpc(url, 'test');
    try {
      expect(await rpc.call('echo', { a: 1 })).toEqual({ a: 1 });
      await expect(rpc.call('poison', null)).rejects.toMatchObject({
        code: 'invalid_argument',
        retriable: false,
      });
      await expect(rpc.call('fail', null)).rejects.toMatchObject({
        code: 'internal',
        message: 'plain failure',
      });
    } finally {
      await rpc.terminate();
    }
  });

  it('answers calls in order, one at a time: close waits for a running call', async () => {
    const rpc = new WorkerRpc(url, 'test');
    const slow = rpc.call<boolean>('slow', 200);
    await rpc.terminate();
    // The close ran after the slow call finished (it saw nothing running); the slow call was answered.
    expect(await slow).toBe(false);
  });

  it('restarts a crashed worker on the next call, replaying init; a call in flight fails retriable', async () => {
    const { worker, ready } = await SupervisedWorker.start<unknown, { inits: number }>(url, 'test', {});
    try {
      expect(ready).toEqual({ inits: 1 });
      await expect(worker.call('crash', null)).rejects.toMatchObject({
        code: 'unavailable',
        retriable: true,
      });
      expect(await worker.call('echo', 'after')).toBe('after');
      expect(worker.restarts).toBe(1);
      expect(worker.failure).toBeUndefined();
    } finally {
      await worker.close();
    }
  });

  it('stops a call past its deadline (deadline_exceeded, retriable) and replaces the hung worker', async () => {
    const { worker } = await SupervisedWorker.start<unknown, unknown>(url, 'test', {});
    try {
      await expect(worker.call('hang', null, { timeoutMs: 300 })).rejects.toMatchObject({
        code: 'deadline_exceeded',
        retriable: true,
      });
      expect(await worker.call('echo', 'alive')).toBe('alive');
      expect(worker.restarts).toBe(1);
    } finally {
      await worker.close();
    }
  });

  it('gives up after its restart budget and reports the failure (for liveness)', async () => {
    const { worker } = await SupervisedWorker.start<unknown, unknown>(url, 'test', {}, { maxRestarts: 1 });
    try {
      await worker.call('hang', null, { timeoutMs: 100 }).catch(() => undefined);
      await worker.call('hang', null, { timeoutMs: 100 }).catch(() => undefined);
      await expect(worker.call('echo', 'x')).rejects.toMatchObject({ code: 'unavailable' });
      expect(worker.failure?.message).toMatch(/gave up after 1 restarts/);
    } finally {
      await worker.close();
    }
  });

  it('fails start with the worker error when init fails, leaving no worker behind', async () => {
    await expect(SupervisedWorker.start(url, 'test', { failInit: true })).rejects.toMatchObject({
      code: 'failed_precondition',
      message: 'no model',
    });
  });
});
