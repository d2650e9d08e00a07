// Request bodies for the load drivers: chat prompts of a given token length, embeddings
// inputs and KServe V2 infer tensors.
import type { RequestSpec } from './http-client.ts';

// Short, common English words: BPE tokenizers of the GPT and Llama families encode each of
// them, with its leading space, as one token, so N words make a prompt of about N tokens.
const WORDS = [
  'the', 'of', 'and', 'to', 'in', 'is', 'it', 'for', 'on', 'with', 'as', 'at', 'by', 'from', 'this', 'that',
  'we', 'you', 'they', 'not', 'are', 'was', 'can', 'will', 'all', 'one', 'new', 'more', 'time', 'data', 'model', 'load',
  'queue', 'batch', 'token', 'node', 'test', 'run', 'set', 'get', 'put', 'use', 'make', 'work', 'part', 'plan', 'step', 'line',
  'file', 'code', 'list', 'map', 'key', 'value', 'size', 'rate', 'mean', 'peak', 'slow', 'fast', 'good', 'high', 'low', 'end',
];

/**
 * Returns text of about `tokens` tokens (one word per token, see WORDS). `seed` varies the
 * words so that prompts differ between requests, as real prompts do.
 */
export function synthesizePrompt(tokens: number, seed: number): string {
  const count = Math.max(1, Math.floor(tokens));
  const words = new Array<string>(count);
  // A 32-bit linear congruential generator: deterministic per seed and cheap, which is all
  // that varying filler text needs.
  let state = (seed >>> 0) ^ 0x9e3779b9;
  for (let index = 0; index < count; index++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    words[index] = WORDS[state % WORDS.length] as string;
  }
  return words.join(' ');
}

export interface ChatRequestOptions {
  model: string;
  promptTokens: number;
  maxTokens: number;
  stream: boolean;
  seed: number;
  requestId: string;
  /** Extra headers such as x-priority. */
  headers?: Record<string, string>;
}

export function chatRequest(options: ChatRequestOptions): RequestSpec {
  const body = {
    model: options.model,
    messages: [{ role: 'user', content: synthesizePrompt(options.promptTokens, options.seed) }],
    max_tokens: Math.max(1, options.maxTokens),
    stream: options.stream,
  };
  return {
    method: 'POST',
    path: '/v1/chat/completions',
    body: JSON.stringify(body),
    headers: { 'x-request-id': options.requestId, ...options.headers },
    stream: options.stream,
  };
}

export function embeddingsRequest(model: string, inputs: number, seed: number, requestId: string): RequestSpec {
  const input = Array.from({ length: Math.max(1, inputs) }, (_, index) => synthesizePrompt(16, seed * 31 + index));
  return {
    method: 'POST',
    path: '/v1/embeddings',
    body: JSON.stringify({ model, input }),
    headers: { 'x-request-id': requestId },
  };
}

/** A V2 infer request with one FP32 input tensor of shape [rows, width]. */
export function v2InferRequest(model: string, rows: number, width: number, seed: number, requestId: string): RequestSpec {
  const data = Array.from({ length: rows * width }, (_, index) => ((seed + index) % 97) / 97);
  const body = {
    id: requestId,
    inputs: [{ name: 'input', shape: [rows, width], datatype: 'FP32', data }],
  };
  return {
    method: 'POST',
    path: `/v2/models/${encodeURIComponent(model)}/infer`,
    body: JSON.stringify(body),
    headers: { 'x-request-id': requestId },
  };
}
