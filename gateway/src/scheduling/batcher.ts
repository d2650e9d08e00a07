// Pure batching rules: which requests may share one upstream call, how their rows merge
// into one body and how the merged response splits back into one response per request.
import { preview } from '../http/errors.ts';

// ---------- OpenAI embeddings ----------

export interface EmbeddingsBody {
  model: string;
  input: string | string[] | number[] | number[][];
  encoding_format?: string;
  dimensions?: number;
  user?: string;
}

export type EmbeddingInputKind = 'text' | 'tokens';

/** Splits an embeddings input into rows: one per string or token array. */
export function embeddingRows(input: EmbeddingsBody['input']): { kind: EmbeddingInputKind; rows: (string | number[])[] } {
  if (typeof input === 'string') return { kind: 'text', rows: [input] };
  if (input.length > 0 && typeof input[0] === 'number') return { kind: 'tokens', rows: [input as number[]] };
  if (input.length > 0 && Array.isArray(input[0])) return { kind: 'tokens', rows: input as number[][] };
  return { kind: 'text', rows: input as string[] };
}

/** Requests merge when model, input kind, encoding_format and dimensions are all equal. */
export function embeddingsBatchKey(body: EmbeddingsBody): string {
  const { kind } = embeddingRows(body.input);
  return JSON.stringify(['emb', body.model, kind, body.encoding_format ?? 'float', body.dimensions ?? null]);
}

export function mergeEmbeddings(bodies: readonly EmbeddingsBody[]): EmbeddingsBody {
  const first = bodies[0];
  if (first === undefined) throw new Error('mergeEmbeddings needs at least one request');
  const rows = bodies.flatMap((body) => embeddingRows(body.input).rows);
  const merged: EmbeddingsBody = { model: first.model, input: rows as string[] | number[][] };
  if (first.encoding_format !== undefined) merged.encoding_format = first.encoding_format;
  if (first.dimensions !== undefined) merged.dimensions = first.dimensions;
  return merged;
}

interface EmbeddingsResponse {
  object?: string;
  data: { index: number; object?: string; embedding: unknown }[];
  model?: string;
  usage?: { prompt_tokens?: number; total_tokens?: number; [key: string]: unknown };
  [key: string]: unknown;
}

/**
 * Splits a merged embeddings response back per request, each re-indexed from 0. The
 * replica reports usage for the whole call only, so every token count in it is shared out
 * in proportion to each request's input size (characters or tokens). The parts are an
 * estimate that sums to the reported total. Null fields are kept, and nested objects (such
 * as prompt_tokens_details) are left out, because they describe the whole call.
 */
export function splitEmbeddings(bodies: readonly EmbeddingsBody[], response: unknown): unknown[] {
  const parsed = response as EmbeddingsResponse;
  if (parsed === null || typeof parsed !== 'object' || !Array.isArray(parsed.data)) {
    throw new Error(`embeddings response has no data array: ${preview(response)}`);
  }
  const byIndex = [...parsed.data].sort((a, b) => a.index - b.index);
  const rowCounts = bodies.map((body) => embeddingRows(body.input).rows.length);
  const total = rowCounts.reduce((sum, n) => sum + n, 0);
  if (byIndex.length !== total) throw new Error(`embeddings response has ${byIndex.length} items for ${total} inputs`);

  const weights = bodies.map((body) => embeddingRows(body.input).rows.reduce<number>((sum, row) => sum + Math.max(1, row.length), 0));
  const usageParts = splitUsage(parsed.usage ?? {}, weights);

  const results: unknown[] = [];
  let offset = 0;
  for (const [i, count] of rowCounts.entries()) {
    const data = byIndex.slice(offset, offset + count).map((item, index) => ({ ...item, index }));
    offset += count;
    results.push({ ...parsed, data, usage: usageParts[i] });
  }
  return results;
}

/** Shares out each numeric usage field by weights; prompt_tokens and total_tokens are always present. */
function splitUsage(usage: NonNullable<EmbeddingsResponse['usage']>, weights: readonly number[]): Record<string, unknown>[] {
  const parts: Record<string, unknown>[] = weights.map(() => ({}));
  const counts: Record<string, number> = { prompt_tokens: 0, total_tokens: usage.prompt_tokens ?? 0 };
  for (const [key, value] of Object.entries(usage)) {
    if (typeof value === 'number') counts[key] = value;
    else if (value === null) for (const part of parts) part[key] = null;
  }
  for (const [key, total] of Object.entries(counts)) {
    const shares = shareOut(total, weights);
    parts.forEach((part, index) => (part[key] = shares[index] ?? 0));
  }
  return parts;
}

/** Divides total into integer parts proportional to weights (largest remainder method). */
export function shareOut(total: number, weights: readonly number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  if (sum <= 0) return weights.map((_, i) => (i === 0 ? total : 0));
  const exact = weights.map((w) => (total * w) / sum);
  const parts = exact.map(Math.floor);
  let left = total - parts.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0]);
  for (const [, i] of order) {
    if (left <= 0) break;
    parts[i] = (parts[i] ?? 0) + 1;
    left--;
  }
  return parts;
}

// ---------- KServe V2 infer ----------

export interface V2Tensor {
  name: string;
  shape: number[];
  datatype: string;
  parameters?: Record<string, unknown>;
  data: unknown[];
}

export interface V2InferBody {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs: V2Tensor[];
  outputs?: { name: string; parameters?: Record<string, unknown> }[];
}

/** Rows of a V2 request: dimension 0 of its inputs, which validation made equal. */
export function v2Rows(body: V2InferBody): number {
  return body.inputs[0]?.shape[0] ?? 1;
}

/**
 * Requests merge when model, version, input names, datatypes, shapes apart from dimension 0,
 * input parameters, requested outputs and request parameters are all equal.
 */
export function v2BatchKey(model: string, version: string | undefined, body: V2InferBody): string {
  const inputs = body.inputs.map((t) => [t.name, t.datatype, t.shape.slice(1), t.parameters ?? null]);
  return JSON.stringify(['v2', model, version ?? null, inputs, body.outputs ?? null, body.parameters ?? null]);
}

/**
 * Flattens tensor data nested at most maxDepth levels deep, or returns undefined when it is
 * nested deeper. It walks the arrays with its own stack instead of recursing (as
 * Array.prototype.flat does), so a small body nested thousands of levels deep cannot
 * overflow the call stack.
 */
export function flattenTensorData(data: readonly unknown[], maxDepth: number): unknown[] | undefined {
  const values: unknown[] = [];
  const pending: { array: readonly unknown[]; next: number }[] = [{ array: data, next: 0 }];
  while (pending.length > 0) {
    const top = pending[pending.length - 1] as { array: readonly unknown[]; next: number };
    if (top.next >= top.array.length) {
      pending.pop();
      continue;
    }
    const item = top.array[top.next++];
    if (!Array.isArray(item)) {
      values.push(item);
      continue;
    }
    if (pending.length >= maxDepth) return undefined;
    pending.push({ array: item, next: 0 });
  }
  return values;
}

/** Flattens tensor data that validation already bounded to the tensor's rank. */
function flatData(tensor: V2Tensor): unknown[] {
  const flat = flattenTensorData(tensor.data ?? [], Math.max(1, tensor.shape.length));
  if (flat === undefined) throw new Error(`V2 tensor ${JSON.stringify(tensor.name)} has data nested deeper than its shape ${JSON.stringify(tensor.shape)}`);
  return flat;
}

export function mergeV2(bodies: readonly V2InferBody[]): V2InferBody {
  const first = bodies[0];
  if (first === undefined) throw new Error('mergeV2 needs at least one request');
  const inputs = first.inputs.map((tensor, index): V2Tensor => {
    const rows = bodies.reduce((sum, body) => sum + (body.inputs[index]?.shape[0] ?? 0), 0);
    const data = bodies.flatMap((body) => {
      const input = body.inputs[index];
      return input === undefined ? [] : flatData(input);
    });
    const merged: V2Tensor = { name: tensor.name, shape: [rows, ...tensor.shape.slice(1)], datatype: tensor.datatype, data };
    if (tensor.parameters !== undefined) merged.parameters = tensor.parameters;
    return merged;
  });
  const merged: V2InferBody = { inputs };
  if (first.parameters !== undefined) merged.parameters = first.parameters;
  if (first.outputs !== undefined) merged.outputs = first.outputs;
  return merged;
}

interface V2InferResponse {
  model_name?: string;
  model_version?: string;
  id?: string;
  parameters?: Record<string, unknown>;
  outputs: V2Tensor[];
}

/** Splits a merged V2 response by each request's dimension 0, in request order. */
export function splitV2(bodies: readonly V2InferBody[], response: unknown): unknown[] {
  const parsed = response as V2InferResponse;
  if (parsed === null || typeof parsed !== 'object' || !Array.isArray(parsed.outputs)) {
    throw new Error(`V2 infer response has no outputs array: ${preview(response)}`);
  }
  const rowCounts = bodies.map(v2Rows);
  const total = rowCounts.reduce((sum, n) => sum + n, 0);
  const outputs = parsed.outputs.map((tensor) => {
    if (!Array.isArray(tensor.shape) || tensor.shape[0] !== total) {
      throw new Error(`V2 output ${JSON.stringify(tensor.name)} has shape ${JSON.stringify(tensor.shape)}, expected dimension 0 = ${total}`);
    }
    const flat = Array.isArray(tensor.data) ? flatData(tensor) : [];
    const perRow = tensor.shape.slice(1).reduce((product, n) => product * n, 1);
    if (flat.length !== total * perRow) throw new Error(`V2 output ${JSON.stringify(tensor.name)} has ${flat.length} values for shape ${JSON.stringify(tensor.shape)}`);
    return { tensor, flat, perRow };
  });

  const results: unknown[] = [];
  let row = 0;
  for (const [i, count] of rowCounts.entries()) {
    const body = bodies[i];
    const split: V2InferResponse = {
      ...parsed,
      outputs: outputs.map(({ tensor, flat, perRow }) => ({
        ...tensor,
        shape: [count, ...tensor.shape.slice(1)],
        data: flat.slice(row * perRow, (row + count) * perRow),
      })),
    };
    if (body?.id === undefined) delete split.id;
    else split.id = body.id;
    results.push(split);
    row += count;
  }
  return results;
}
