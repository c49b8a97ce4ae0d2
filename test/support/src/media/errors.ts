/** What went wrong while making a media fixture. */
export type MediaFixtureErrorCode =
  /** ffmpeg, ffprobe, espeak-ng or nginx is not installed (run `deploy/local/stack.sh up`). */
  | 'missing_tool'
  /** A tool ran and failed (non-zero exit); `stderr` holds the end of its output. */
  | 'tool_failed'
  /** A server or source did not become ready in time, or died while starting. */
  | 'not_ready'
  /** The options asked for something impossible (a speech line after the end of the clip, ...). */
  | 'invalid_options';

/** The one error the media fixtures throw; foreign errors (spawn, fs) are wrapped as `cause`. */
export class MediaFixtureError extends Error {
  override readonly name = 'MediaFixtureError';
  readonly code: MediaFixtureErrorCode;
  /** Never: a fixture that failed once fails again with the same inputs; fix the machine or the options. */
  readonly retriable = false;
  /** The tool that failed, when one did. */
  readonly tool: string | undefined;
  /** The last lines the tool wrote to stderr. */
  readonly stderr: string | undefined;

  constructor(
    message: string,
    options: { code: MediaFixtureErrorCode; cause?: unknown; tool?: string; stderr?: string },
  ) {
    super(
      options.stderr ? `${message}\n--- ${options.tool ?? 'tool'} stderr ---\n${options.stderr}` : message,
      {
        cause: options.cause,
      },
    );
    this.code = options.code;
    this.tool = options.tool;
    this.stderr = options.stderr;
  }

  /** Converts anything thrown by a spawn or fs call into a MediaFixtureError (kept as is when it already is one). */
  static from(
    error: unknown,
    context: { code?: MediaFixtureErrorCode; tool?: string } = {},
  ): MediaFixtureError {
    if (error instanceof MediaFixtureError) return error;
    const errno = (error as NodeJS.ErrnoException | undefined)?.code;
    if (errno === 'ENOENT' && context.tool) {
      return new MediaFixtureError(
        `${context.tool} not found on PATH; install the media packages with: bash deploy/local/stack.sh up`,
        { code: 'missing_tool', cause: error, tool: context.tool },
      );
    }
    const message = error instanceof Error ? error.message : String(error);
    return new MediaFixtureError(message, {
      code: context.code ?? 'tool_failed',
      cause: error,
      tool: context.tool,
    });
  }
}
