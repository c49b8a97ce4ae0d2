// What global setup provides to every test file (vitest's typed provide/inject).
declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string[];
    redisUrl: string;
  }
}

export {};
