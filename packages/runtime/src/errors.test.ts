import { ContractError } from '@livelens/contracts';
import { describe, expect, it } from 'vitest';
import { isRetriable, LiveLensError } from './errors.js';

describe('LiveLensError', () => {
  it('derives retriability from the code unless told', () => {
    expect(new LiveLensError('x', { code: 'unavailable' }).retriable).toBe(true);
    expect(new LiveLensError('x', { code: 'invalid_argument' }).retriable).toBe(false);
    expect(new LiveLensError('x', { code: 'internal', retriable: true }).retriable).toBe(true);
  });

  it('converts foreign errors at the boundary, keeping message and cause', () => {
    const cause = new TypeError('boom');
    const converted = LiveLensError.from(cause, { code: 'unavailable' });
    expect(converted.code).toBe('unavailable');
    expect(converted.message).toBe('boom');
    expect(converted.cause).toBe(cause);
    expect(LiveLensError.from('text').code).toBe('internal');
    expect(LiveLensError.from(converted)).toBe(converted);
    expect(isRetriable(converted)).toBe(true);
  });

  it('turns a contract violation into a non-retriable invalid_message', () => {
    const converted = LiveLensError.from(new ContractError('bad frame', { code: 'decode_failed' }));
    expect(converted.code).toBe('invalid_message');
    expect(converted.retriable).toBe(false);
  });
});
