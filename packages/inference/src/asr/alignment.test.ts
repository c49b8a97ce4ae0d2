import { describe, expect, it } from 'vitest';
import { alignWords, dtw, medianFilterRows, mergePunctuations, SECONDS_PER_FRAME } from './alignment.js';

describe('dynamic time warping', () => {
  it('follows the cheap diagonal band of a cost matrix, monotonically, corner to corner', () => {
    // 3 rows x 6 columns; row r is cheap on columns 2r and 2r + 1.
    const rows = 3;
    const cols = 6;
    const cost = new Float64Array(rows * cols).fill(1);
    for (let r = 0; r < rows; r += 1) {
      cost[r * cols + 2 * r] = 0;
      cost[r * cols + 2 * r + 1] = 0;
    }
    const { rowIndices, colIndices } = dtw(cost, rows, cols);
    expect(rowIndices.at(-1)).toBe(rows - 1);
    expect(colIndices.at(-1)).toBe(cols - 1);
    for (let k = 1; k < rowIndices.length; k += 1) {
      expect((rowIndices[k] as number) - (rowIndices[k - 1] as number)).toBeGreaterThanOrEqual(0);
      expect((colIndices[k] as number) - (colIndices[k - 1] as number)).toBeGreaterThanOrEqual(0);
    }
    // Where each row starts on the path.
    const starts = [0, 1, 2].map((r) => colIndices[rowIndices.indexOf(r)]);
    expect(starts).toEqual([0, 2, 4]);
  });
});

describe('median filter', () => {
  it('takes the median of 7 along each row with reflect padding, and removes a spike', () => {
    const row = Float64Array.from([0, 0, 0, 9, 0, 0, 0, 0]);
    expect(Array.from(medianFilterRows(row, 1, 8, 7))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    const ramp = Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    // Reflect: position 0 sees 4 3 2 1 2 3 4 → median 3.
    expect(medianFilterRows(ramp, 1, 8, 7)[0]).toBe(3);
  });
});

describe('word alignment', () => {
  it('times each word where the attention of its first token begins', () => {
    // Prompt of 4 tokens (…, notimestamps), then 3 text tokens in 2 words, then eot: 8 rows.
    // 100 encoder frames, 200 mel frames of real audio. Token k attends to frames [20k, 20k + 20).
    const promptLength = 4;
    const tokenCount = 8;
    const frames = 100;
    const head = new Float32Array(tokenCount * frames).fill(0.001);
    const band = (row: number, from: number, to: number) => {
      for (let f = from; f < to; f += 1) head[row * frames + f] = 1;
    };
    band(3, 0, 20); // notimestamps row: predicts text token 0
    band(4, 20, 40); // text token 0 row: predicts token 1
    band(5, 40, 60);
    band(6, 60, 80); // last text token: predicts eot
    const words = alignWords({
      heads: [head, head],
      tokenCount,
      encoderFrames: frames,
      melFrames: 200,
      promptLength,
      words: [
        { word: ' Use', tokens: [100] },
        { word: ' SAVE20', tokens: [101, 102] },
      ],
      tokenProbabilities: [0.9, 0.8, 0.6],
    });
    expect(words.map((w) => w.word)).toEqual([' Use', ' SAVE20']);
    expect(words[0]?.start).toBeCloseTo(0, 5);
    expect(words[0]?.end).toBeCloseTo(20 * SECONDS_PER_FRAME, 1);
    expect(words[1]?.start).toBeCloseTo(20 * SECONDS_PER_FRAME, 1);
    expect(words[1]?.end).toBeCloseTo(60 * SECONDS_PER_FRAME, 1);
    expect(words[1]?.probability).toBeCloseTo(0.7, 9);
  });

  it('merges leading punctuation into the next word and trailing punctuation into the previous one', () => {
    const w = (word: string, start: number, end: number) => ({ word, start, end, probability: 1 });
    const merged = mergePunctuations([
      w(' "', 0, 0.1),
      w('Buy', 0.1, 0.5),
      w(' now', 0.5, 0.9),
      w('!', 0.9, 1),
    ]);
    expect(merged.map((x) => [x.word, x.start, x.end])).toEqual([
      [' "Buy', 0, 0.5],
      [' now!', 0.5, 1],
    ]);
  });
});
