/**
 * Deterministic record ids, as the proto comments define them. A replay of the same input produces the same
 * id, so consumers can drop repeats (at-least-once delivery, effectively-once effects).
 */
export const recordIds = {
  frame: (streamId: string, sessionEpoch: string, seq: bigint | number) =>
    `${streamId}/${sessionEpoch}/f/${seq}`,
  audioChunk: (streamId: string, sessionEpoch: string, seq: bigint | number) =>
    `${streamId}/${sessionEpoch}/a/${seq}`,
  streamEvent: (streamId: string, sessionEpoch: string, seq: bigint | number) =>
    `${streamId}/${sessionEpoch}/e/${seq}`,
  transcriptSegment: (streamId: string, sessionEpoch: string, startMs: bigint | number) =>
    `${streamId}/${sessionEpoch}/s/${startMs}`,
  tagEvent: (episodeId: string, revision: number) => `${episodeId}/${revision}`,
  deadLetter: (topic: string, partition: number, offset: bigint | number | string) =>
    `${topic}/${partition}/${offset}`,
} as const;
