/**
 * Word timings from cross-attention, after openai/whisper `timing.py` (`find_alignment`,
 * `merge_punctuations`, `add_word_timestamps`), which faster-whisper/CTranslate2 follow: the alignment heads'
 * attention over the audio, normalised, median-filtered, averaged, and aligned to the tokens by dynamic time
 * warping. One encoder frame is 20 ms.
 */

export const SECONDS_PER_FRAME = 0.02;

/** A word as the tokenizer splits a transcript (openai's split_to_word_tokens). */
export interface WordTokens {
  /** The word as decoded, with its leading space when it has one. */
  word: string;
  tokens: number[];
}

export interface TimedWord {
  word: string;
  /** Seconds from the start of the window. */
  start: number;
  end: number;
  /** Mean probability of the word's tokens. */
  probability: number;
}

/**
 * Dynamic time warping over a cost matrix [rows, cols] (row-major): the cheapest monotonic path from (0, 0)
 * to (rows − 1, cols − 1) with steps diagonal, down (next row) or right (next column), ties broken as
 * openai's `dtw_cpu` does. Returns the path as parallel row and column indices.
 */
export function dtw(
  cost: Float64Array,
  rows: number,
  cols: number,
): { rowIndices: number[]; colIndices: number[] } {
  const width = cols + 1;
  const acc = new Float64Array((rows + 1) * width).fill(Number.POSITIVE_INFINITY);
  const trace = new Int8Array((rows + 1) * width).fill(-1);
  acc[0] = 0;
  for (let j = 1; j <= cols; j += 1) {
    for (let i = 1; i <= rows; i += 1) {
      const c0 = acc[(i - 1) * width + (j - 1)] as number;
      const c1 = acc[(i - 1) * width + j] as number;
      const c2 = acc[i * width + (j - 1)] as number;
      let c: number;
      let t: number;
      if (c0 < c1 && c0 < c2) {
        c = c0;
        t = 0;
      } else if (c1 < c0 && c1 < c2) {
        c = c1;
        t = 1;
      } else {
        c = c2;
        t = 2;
      }
      acc[i * width + j] = (cost[(i - 1) * cols + (j - 1)] as number) + c;
      trace[i * width + j] = t;
    }
  }
  // Backtrace from the corner; the first row can only go left, the first column only up.
  for (let j = 0; j <= cols; j += 1) trace[j] = 2;
  for (let i = 0; i <= rows; i += 1) trace[i * width] = 1;
  let i = rows;
  let j = cols;
  const rowIndices: number[] = [];
  const colIndices: number[] = [];
  while (i > 0 || j > 0) {
    rowIndices.push(i - 1);
    colIndices.push(j - 1);
    const t = trace[i * width + j];
    if (t === 0) {
      i -= 1;
      j -= 1;
    } else if (t === 1) i -= 1;
    else if (t === 2) j -= 1;
    else throw new Error('dtw: unexpected trace');
  }
  rowIndices.reverse();
  colIndices.reverse();
  // Like openai's, the path may start with steps along the virtual first row or column (index −1).
  return { rowIndices, colIndices };
}

/** Median filter of odd `width` along each row, reflect-padded (scipy/openai `median_filter`); rows ≤ width/2 are left. */
export function medianFilterRows(
  matrix: Float64Array,
  rows: number,
  cols: number,
  width: number,
): Float64Array {
  const pad = Math.floor(width / 2);
  if (cols <= pad) return matrix;
  const out = new Float64Array(matrix.length);
  const window = new Float64Array(width);
  for (let r = 0; r < rows; r += 1) {
    const row = r * cols;
    for (let c = 0; c < cols; c += 1) {
      for (let k = -pad; k <= pad; k += 1) {
        let x = c + k;
        // Reflect without repeating the edge: -1 → 1, cols → cols - 2.
        if (x < 0) x = -x;
        if (x >= cols) x = 2 * (cols - 1) - x;
        window[k + pad] = matrix[row + x] as number;
      }
      window.sort();
      out[row + c] = window[pad] as number;
    }
  }
  return out;
}

export interface AlignmentInput {
  /**
   * Post-softmax cross-attention of each alignment head, [tokens, encoderFrames] row-major, over the whole
   * fed sequence `prompt + textTokens + [eot]`.
   */
  heads: readonly Float32Array[];
  tokenCount: number;
  encoderFrames: number;
  /** Mel frames of real audio in the window (the rest is padding); attention is cut at half of it. */
  melFrames: number;
  /** Length of the prompt (sot sequence including notimestamps). */
  promptLength: number;
  /** The words of the transcript, in order, covering exactly its text tokens. */
  words: readonly WordTokens[];
  /** Probability of each text token (softmax over the text vocabulary at its position). */
  tokenProbabilities: readonly number[];
}

/**
 * Each word's start and end within the window, from the alignment heads: attention cut to the real audio
 * and renormalised (the softmax of the truncated scores), standardised per head over tokens, median-filtered
 * (width 7) over time, averaged over heads; DTW on its negation; a word starts where the path enters its
 * first token's row.
 */
export function alignWords(input: AlignmentInput): TimedWord[] {
  const frames = Math.min(input.encoderFrames, Math.max(1, Math.floor(input.melFrames / 2)));
  const first = input.promptLength - 1; // the <|notimestamps|> row
  const last = input.tokenCount - 1; // exclusive: the eot row is dropped
  const rows = last - first;
  if (rows <= 0 || input.words.length === 0) return [];
  const mean = new Float64Array(rows * frames);
  for (const head of input.heads) {
    // Cut and renormalise each token's attention over the real frames.
    const m = new Float64Array(input.tokenCount * frames);
    for (let t = 0; t < input.tokenCount; t += 1) {
      let sum = 0;
      for (let f = 0; f < frames; f += 1) sum += head[t * input.encoderFrames + f] as number;
      for (let f = 0; f < frames; f += 1)
        m[t * frames + f] = sum > 0 ? (head[t * input.encoderFrames + f] as number) / sum : 0;
    }
    // Standardise over the token axis (population std), per frame.
    for (let f = 0; f < frames; f += 1) {
      let s = 0;
      for (let t = 0; t < input.tokenCount; t += 1) s += m[t * frames + f] as number;
      const mu = s / input.tokenCount;
      let v = 0;
      for (let t = 0; t < input.tokenCount; t += 1) v += ((m[t * frames + f] as number) - mu) ** 2;
      const sd = Math.sqrt(v / input.tokenCount);
      for (let t = 0; t < input.tokenCount; t += 1)
        m[t * frames + f] = sd > 0 ? ((m[t * frames + f] as number) - mu) / sd : 0;
    }
    const smooth = medianFilterRows(m, input.tokenCount, frames, 7);
    for (let r = 0; r < rows; r += 1)
      for (let f = 0; f < frames; f += 1)
        mean[r * frames + f] =
          (mean[r * frames + f] as number) +
          (smooth[(first + r) * frames + f] as number) / input.heads.length;
  }
  const cost = mean.map((v) => -v);
  const { rowIndices, colIndices } = dtw(cost, rows, frames);
  // Time of each row's first frame on the path ("jumps").
  const jumpTimes: number[] = [];
  for (let k = 0; k < rowIndices.length; k += 1)
    if (k === 0 || rowIndices[k] !== rowIndices[k - 1])
      jumpTimes.push((colIndices[k] as number) * SECONDS_PER_FRAME);
  const words: TimedWord[] = [];
  let boundary = 0;
  let tokenIndex = 0;
  for (const word of input.words) {
    const next = boundary + word.tokens.length;
    const probs = input.tokenProbabilities.slice(tokenIndex, tokenIndex + word.tokens.length);
    tokenIndex += word.tokens.length;
    words.push({
      word: word.word,
      start: jumpTimes[boundary] ?? 0,
      end: jumpTimes[next] ?? jumpTimes[jumpTimes.length - 1] ?? 0,
      probability: probs.length ? probs.reduce((a, b) => a + b, 0) / probs.length : 0,
    });
    boundary = next;
  }
  return clampLongWords(mergePunctuations(words));
}

const PREPEND = `"'“¿([{-`;
const APPEND = `"'.。,，!！?？:：”)]}、`;

/** Leading punctuation joins the next word, trailing punctuation the previous one (openai's merge_punctuations). */
export function mergePunctuations(words: readonly TimedWord[]): TimedWord[] {
  const out = words.map((w) => ({ ...w }));
  // Prepended: from the end, a word that is only prepend punctuation moves into the following word.
  for (let i = out.length - 2; i >= 0; i -= 1) {
    const w = out[i] as TimedWord;
    const next = out[i + 1] as TimedWord;
    if (w.word.startsWith(' ') && PREPEND.includes(w.word.trim())) {
      next.word = w.word + next.word;
      next.start = w.start;
      out.splice(i, 1);
    }
  }
  // Appended: from the start, a word that is only append punctuation moves into the preceding word.
  for (let i = 1; i < out.length; i += 1) {
    const w = out[i] as TimedWord;
    const previous = out[i - 1] as TimedWord;
    if (!previous.word.endsWith(' ') && APPEND.includes(w.word) && w.word !== '') {
      previous.word += w.word;
      previous.end = w.end;
      out.splice(i, 1);
      i -= 1;
    }
  }
  return out;
}

/**
 * Words longer than twice the median word duration (the median capped at 0.7 s) are cut at sentence ends
 * (openai's add_word_timestamps heuristic, for a word that swallowed a pause).
 */
function clampLongWords(words: TimedWord[]): TimedWord[] {
  const durations = words
    .map((w) => w.end - w.start)
    .filter((d) => d > 0)
    .sort((a, b) => a - b);
  if (durations.length === 0) return words;
  const median = Math.min(0.7, durations[Math.floor(durations.length / 2)] as number);
  const max = 2 * median;
  const sentenceEnd = '.。!！?？';
  for (let i = 1; i < words.length; i += 1) {
    const w = words[i] as TimedWord;
    const previous = words[i - 1] as TimedWord;
    if (w.end - w.start > max) {
      if (sentenceEnd.includes(w.word.trim())) w.start = w.end - max;
      else if (sentenceEnd.includes(previous.word.trim().slice(-1))) w.start = w.end - max;
    }
  }
  return words;
}
