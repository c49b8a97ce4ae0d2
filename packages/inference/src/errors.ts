import { LiveLensError } from '@livelens/runtime';

/** A model that is missing, corrupted or cannot be fetched: names the model and says how to get it. */
export function modelError(
  modelId: string,
  message: string,
  options: {
    code?: 'not_found' | 'failed_precondition' | 'unavailable' | 'invalid_config';
    cause?: unknown;
  } = {},
): LiveLensError {
  return new LiveLensError(`model ${modelId}: ${message}`, {
    code: options.code ?? 'failed_precondition',
    cause: options.cause,
    retriable: options.code === 'unavailable',
    context: { modelId },
  });
}
