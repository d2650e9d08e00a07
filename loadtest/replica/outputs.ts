// Deterministic model outputs. Every output is a pure function of the request's content,
// so a test can compare a batched reply with the reply to the same input sent alone.
// The hash (FNV-1a) and generator (mulberry32) are written here because no installed
// package offers a seedable generator, and both are a few lines.

const WORDS = [
  'the', 'model', 'replica', 'returns', 'a', 'token', 'stream', 'for', 'each', 'request',
  'batch', 'queue', 'latency', 'gpu', 'kernel', 'prefill', 'decode', 'cache', 'and', 'then',
  'every', 'sequence', 'shares', 'memory', 'with', 'other', 'work', 'on', 'this', 'node',
  'while', 'clients', 'wait', 'in', 'order', 'to', 'see', 'results', 'arrive', 'quickly',
] as const;

const TOKEN_PATTERN = /\S+/g;

/** 32-bit FNV-1a hash of a string's UTF-16 code units. */
export function hashString(text: string, seed = 0x811c9dc5): number {
  let hash = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/** Returns a generator of uniform floats in [0, 1) seeded by a 32-bit integer (mulberry32). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Estimates the token count of a text as about four characters per token, at least one
 * per whitespace-separated word, and at least 1. Real tokenizers differ by model, so the
 * estimate only needs to grow with the text as theirs do.
 */
export function estimateTokens(text: string): number {
  const words = text.match(TOKEN_PATTERN)?.length ?? 0;
  return Math.max(1, words, Math.ceil(text.length / 4));
}

/**
 * Returns the output length for a prompt when the request sets no limit: log-uniform
 * from 16 to 512 tokens (median about 90), chosen by the prompt's hash.
 */
export function defaultOutputTokens(prompt: string): number {
  const uniform = seededRandom(hashString(prompt, 0x9e3779b9))();
  return Math.round(16 * 2 ** (5 * uniform));
}

/**
 * Returns the output as one text piece per token. The first piece has no leading space,
 * every later piece starts with one, so joining the pieces gives the text.
 */
export function generateTokens(prompt: string, count: number): string[] {
  const next = seededRandom(hashString(prompt));
  const pieces: string[] = [];
  for (let i = 0; i < count; i++) {
    const word = WORDS[Math.floor(next() * WORDS.length)] ?? 'token';
    pieces.push(i === 0 ? word : ` ${word}`);
  }
  return pieces;
}

/**
 * Returns a unit-length embedding of the text with the given number of dimensions.
 * Components are drawn from a generator seeded by the text, then normalised.
 */
export function embedText(text: string, dimensions: number): number[] {
  const next = seededRandom(hashString(text, 0x2545f491));
  const vector = new Array<number>(dimensions);
  let sumOfSquares = 0;
  for (let i = 0; i < dimensions; i++) {
    const value = next() * 2 - 1;
    vector[i] = value;
    sumOfSquares += value * value;
  }
  const norm = Math.sqrt(sumOfSquares) || 1;
  // Rounded to float32 so the float and base64 encodings carry the same values.
  return vector.map((value) => Math.fround(value / norm));
}

/** Encodes floats as little-endian float32 bytes in base64, like OpenAI's encoding_format: base64. */
export function encodeEmbeddingBase64(vector: readonly number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((value, index) => bytes.writeFloatLE(value, index * 4));
  return bytes.toString('base64');
}
