/**
 * The second output channel: ffmpeg writes PCM to `unix:<path>` and Node listens on that path.
 *
 * Why a unix socket: fluent-ffmpeg spawns with fixed stdio (no extra fds), so stdout carries the JPEGs and the
 * audio needs another way out. ffmpeg's `unix` protocol connects as a client (checked on ffmpeg 5.1: it opens
 * the output after the input is probed, before the first packet). A FIFO would also work but opening one
 * blocks until both ends exist (Node's fs would pin a libuv thread, or need O_NONBLOCK dances), and a FIFO
 * gives no "the writer is gone" signal beyond EOF; a socket connects, streams with backpressure, and closes.
 *
 * Security: the socket lives in a fresh `mkdtemp` directory (mode 0700), so only this user can connect, and
 * exactly one connection is accepted: the server stops listening on the first one and destroys any other.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LiveLensError, type Logger } from '@livelens/runtime';

/** sun_path is 108 bytes on Linux, including the NUL. */
const MAX_SOCKET_PATH = 107;

export interface AudioSocket {
  /** The socket path (ffmpeg's output is `unix:<path>`). */
  readonly path: string;
  /** The private directory holding it. */
  readonly dir: string;
  /** True once ffmpeg has connected. */
  readonly connected: boolean;
  /** Resolves when ffmpeg's connection has closed, or on `close()`. */
  readonly closed: Promise<void>;
  /** Stops listening, destroys the connection if any, removes the directory. Idempotent. */
  close(): Promise<void>;
}

export async function openAudioSocket(
  onData: (data: Buffer) => void,
  logger: Logger,
  parentDir: string = tmpdir(),
): Promise<AudioSocket> {
  const dir = await mkdtemp(join(parentDir, 'livelens-ffmpeg-'));
  try {
    await chmod(dir, 0o700); // mkdtemp already makes it 0700; this states the requirement.
    const path = join(dir, 'audio.sock');
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
      throw new LiveLensError(`audio socket path is longer than ${MAX_SOCKET_PATH} bytes: ${path}`, {
        code: 'invalid_config',
      });
    }
    let connection: Socket | undefined;
    let resolveClosed: () => void = () => undefined;
    const closed = new Promise<void>((resolve) => {
      resolveClosed = resolve;
    });
    const server: Server = createServer({ pauseOnConnect: false }, (socket) => {
      if (connection) {
        logger.warn({ dir }, 'second connection to the audio socket refused');
        socket.destroy();
        return;
      }
      connection = socket;
      server.close(); // one connection only; also unlinks the socket file
      socket.on('data', onData);
      socket.on('error', (err) => logger.warn({ err }, 'audio socket error'));
      socket.on('close', () => resolveClosed());
    });
    server.on('error', (err) => logger.warn({ err }, 'audio socket server error'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    let closing: Promise<void> | undefined;
    return {
      path,
      dir,
      get connected() {
        return connection !== undefined;
      },
      closed,
      close() {
        closing ??= (async () => {
          if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
          connection?.destroy();
          resolveClosed();
          await rm(dir, { recursive: true, force: true });
        })();
        return closing;
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw LiveLensError.from(error, { code: 'internal' });
  }
}
