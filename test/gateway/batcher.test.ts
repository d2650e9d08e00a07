import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { embeddingsBatchKey, flattenTensorData, mergeEmbeddings, mergeV2, shareOut, splitEmbeddings, splitV2, v2BatchKey, type V2InferBody } from '../../gateway/src/scheduling/batcher.ts';

const v2 = (rows: number, columns: number, start: number, extra: Partial<V2InferBody> = {}): V2InferBody => ({
  inputs: [{ name: 'x', shape: [rows, columns], datatype: 'FP32', data: Array.from({ length: rows * columns }, (_, i) => start + i) }],
  ...extra,
});

describe('V2 batching rules', () => {
  test('flatten keeps order within the depth', () => {
    assert.deepEqual(flattenTensorData([[1, 2], [3, [4, 5]]], 3), [1, 2, 3, 4, 5]);
    assert.deepEqual(flattenTensorData([1, 2, 3], 1), [1, 2, 3]);
    assert.deepEqual(flattenTensorData([[], [1]], 2), [1]);
  });

  test('flatten rejects deeper nesting', () => {
    assert.equal(flattenTensorData([[1], [2]], 1), undefined);
    let deep: unknown[] = [1];
    for (let level = 0; level < 100_000; level++) deep = [deep];
    assert.equal(flattenTensorData(deep, 4), undefined);
    assert.equal(flattenTensorData(deep, 200_000)?.length, 1);
  });


  test('key ignores dimension 0 only', () => {
    assert.equal(v2BatchKey('m', undefined, v2(1, 4, 0)), v2BatchKey('m', undefined, v2(7, 4, 0)));
    assert.notEqual(v2BatchKey('m', undefined, v2(1, 4, 0)), v2BatchKey('m', undefined, v2(1, 3, 0)));
    assert.notEqual(v2BatchKey('m', '1', v2(1, 4, 0)), v2BatchKey('m', '2', v2(1, 4, 0)));
    assert.notEqual(v2BatchKey('m', undefined, v2(1, 4, 0)), v2BatchKey('m', undefined, v2(1, 4, 0, { outputs: [{ name: 'y' }] })));
    assert.notEqual(v2BatchKey('m', undefined, v2(1, 4, 0)), v2BatchKey('m', undefined, v2(1, 4, 0, { parameters: { p: 1 } })));
  });

  test('merge concatenates rows and flattens nested data', () => {
    const nested: V2InferBody = { inputs: [{ name: 'x', shape: [2, 2], datatype: 'FP32', data: [[10, 11], [12, 13]] }] };
    const merged = mergeV2([v2(1, 2, 0), nested]);
    assert.deepEqual(merged.inputs[0]!.shape, [3, 2]);
    assert.deepEqual(merged.inputs[0]!.data, [0, 1, 10, 11, 12, 13]);
  });

  test('split returns each request its rows and id', () => {
    const bodies = [v2(1, 2, 0, { id: 'one' }), v2(2, 2, 0)];
    const response = { model_name: 'm', id: 'merged', outputs: [{ name: 'y', shape: [3, 2], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] }] };
    const [first, second] = splitV2(bodies, response) as { id?: string; outputs: { shape: number[]; data: number[] }[] }[];
    assert.equal(first!.id, 'one');
    assert.deepEqual(first!.outputs[0]!.shape, [1, 2]);
    assert.deepEqual(first!.outputs[0]!.data, [1, 2]);
    assert.equal(second!.id, undefined);
    assert.deepEqual(second!.outputs[0]!.shape, [2, 2]);
    assert.deepEqual(second!.outputs[0]!.data, [3, 4, 5, 6]);
  });

  test('split rejects an output without the batch dimension', () => {
    const response = { outputs: [{ name: 'y', shape: [1], datatype: 'FP32', data: [1] }] };
    assert.throws(() => splitV2([v2(1, 2, 0), v2(1, 2, 0)], response), /expected dimension 0 = 2/);
  });
});

describe('embeddings batching rules', () => {
  test('key separates encoding, dimensions and input kind', () => {
    const base = embeddingsBatchKey({ model: 'e', input: 'a' });
    assert.equal(base, embeddingsBatchKey({ model: 'e', input: ['b', 'c'] }));
    assert.notEqual(base, embeddingsBatchKey({ model: 'e', input: 'a', dimensions: 8 }));
    assert.notEqual(base, embeddingsBatchKey({ model: 'e', input: 'a', encoding_format: 'base64' }));
    assert.notEqual(base, embeddingsBatchKey({ model: 'e', input: [1, 2] }));
  });

  test('merge and split re-index from 0 and share usage', () => {
    const bodies = [
      { model: 'e', input: 'aaaa' },
      { model: 'e', input: ['bbbbbbbbbbbb', 'cccc'] },
    ];
    assert.deepEqual(mergeEmbeddings(bodies).input, ['aaaa', 'bbbbbbbbbbbb', 'cccc']);
    const response = {
      object: 'list',
      model: 'e',
      data: [2, 0, 1].map((index) => ({ object: 'embedding', index, embedding: [index] })),
      usage: { prompt_tokens: 10, total_tokens: 10 },
    };
    const [first, second] = splitEmbeddings(bodies, response) as { data: { index: number; embedding: number[] }[]; usage: { prompt_tokens: number } }[];
    assert.deepEqual(first!.data, [{ object: 'embedding', index: 0, embedding: [0] }]);
    assert.deepEqual(
      second!.data.map((item) => [item.index, item.embedding[0]]),
      [
        [0, 1],
        [1, 2],
      ],
    );
    assert.equal(first!.usage.prompt_tokens + second!.usage.prompt_tokens, 10);
    assert.equal(first!.usage.prompt_tokens, 2);
  });

  test('split keeps every usage count field', () => {
    const bodies = [
      { model: 'e', input: 'aaaa' },
      { model: 'e', input: 'aaaaaaaaaaaa' },
    ];
    const response = {
      object: 'list',
      data: [0, 1].map((index) => ({ object: 'embedding', index, embedding: [index] })),
      usage: { prompt_tokens: 8, total_tokens: 8, completion_tokens: 0, prompt_tokens_details: null, extra: { cached_tokens: 4 } },
    };
    const [first, second] = splitEmbeddings(bodies, response) as { usage: Record<string, unknown> }[];
    assert.deepEqual(first!.usage, { prompt_tokens_details: null, prompt_tokens: 2, total_tokens: 2, completion_tokens: 0 });
    assert.deepEqual(second!.usage, { prompt_tokens_details: null, prompt_tokens: 6, total_tokens: 6, completion_tokens: 0 });
  });

  test('split rejects a wrong item count', () => {
    assert.throws(() => splitEmbeddings([{ model: 'e', input: ['a', 'b'] }, { model: 'e', input: 'c' }], { data: [{ index: 0, embedding: [] }] }), /1 items for 3 inputs/);
  });

  test('shareOut keeps the total', () => {
    assert.deepEqual(shareOut(10, [1, 1, 1]), [4, 3, 3]);
    assert.deepEqual(shareOut(0, [5, 5]), [0, 0]);
    assert.deepEqual(shareOut(7, [0, 0]), [7, 0]);
  });
});
