import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnReplica, type SpawnedReplica } from '../../loadtest/replica/spawn.ts';
import { getJson, postJson } from './helpers.ts';

const FAST = ['--exec-base-ms', '1', '--exec-per-item-ms', '0'];

function fp32Rows(rows: number[][]) {
  return { name: 'INPUT0', datatype: 'FP32', shape: [rows.length, rows[0]?.length ?? 0], data: rows };
}

describe('v2 protocol', () => {
  let replica: SpawnedReplica;
  let base: string;

  before(async () => {
    replica = await spawnReplica(['--port', '0', '--protocol', 'v2', '--model', 'ranker', '--max-batch', '4', ...FAST]);
    base = `${replica.url}/v2/models/ranker`;
  });
  after(async () => {
    await replica?.stop();
  });

  test('server metadata and health', async () => {
    const server = await getJson(`${replica.url}/v2`);
    assert.equal(server.status, 200);
    assert.equal(typeof server.body.name, 'string');
    assert.ok(Array.isArray(server.body.extensions));
    assert.equal((await fetch(`${replica.url}/v2/health/live`)).status, 200);
    assert.equal((await fetch(`${replica.url}/v2/health/ready`)).status, 200);
    assert.equal((await fetch(`${base}/ready`)).status, 200);
    assert.equal((await fetch(`${base}/versions/1/ready`)).status, 200);
  });

  test('model metadata and config', async () => {
    const metadata = await getJson(base);
    assert.equal(metadata.body.name, 'ranker');
    assert.deepEqual(metadata.body.versions, ['1']);
    assert.deepEqual(metadata.body.inputs[0], { name: 'INPUT0', datatype: 'FP32', shape: [-1, -1] });
    assert.deepEqual(metadata.body.outputs.map((output: { name: string }) => output.name), ['OUTPUT0', 'OUTPUT1']);
    assert.equal(metadata.body.max_batch_size, 4);
    const config = await getJson(`${base}/config`);
    assert.equal(config.body.max_batch_size, 4);
    const unknown = await getJson(`${replica.url}/v2/models/other`);
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error, /other/);
  });

  test('infer response shape', async () => {
    const response = await postJson(`${base}/infer`, { id: 'r-7', inputs: [fp32Rows([[1, 2, 3], [4, 5, 6]])] });
    assert.equal(response.status, 200);
    assert.equal(response.body.model_name, 'ranker');
    assert.equal(response.body.model_version, '1');
    assert.equal(response.body.id, 'r-7');
    const [echo, score] = response.body.outputs;
    assert.deepEqual(echo, { name: 'OUTPUT0', datatype: 'FP32', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] });
    assert.equal(score.name, 'OUTPUT1');
    assert.equal(score.datatype, 'FP32');
    assert.deepEqual(score.shape, [2, 1]);
    assert.equal(score.data.length, 2);
  });

  test('multi-row reply equals single rows', async () => {
    const rows = [[0.5, 1], [2, 3], [4, 5], [6, 7]];
    const batched = await postJson(`${base}/infer`, { inputs: [fp32Rows(rows), { name: 'TAGS', datatype: 'BYTES', shape: [4, 1], data: ['a', 'b', 'c', 'd'] }] });
    const tags = ['a', 'b', 'c', 'd'];
    for (const [index, row] of rows.entries()) {
      const single = await postJson(`${base}/infer`, {
        inputs: [fp32Rows([row]), { name: 'TAGS', datatype: 'BYTES', shape: [1, 1], data: [tags[index]] }],
      });
      assert.equal(single.body.outputs[1].data[0], batched.body.outputs[1].data[index], `row ${index}`);
    }
  });

  test('outputs field selects outputs', async () => {
    const response = await postJson(`${base}/infer`, { inputs: [fp32Rows([[1]])], outputs: [{ name: 'OUTPUT1' }] });
    assert.deepEqual(response.body.outputs.map((output: { name: string }) => output.name), ['OUTPUT1']);
    const unknown = await postJson(`${base}/infer`, { inputs: [fp32Rows([[1]])], outputs: [{ name: 'OUTPUT9' }] });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.error, /OUTPUT9/);
  });

  test('every datatype accepted', async () => {
    const cases: Array<[string, unknown[]]> = [
      ['BOOL', [true, false]],
      ['INT8', [-128, 127]],
      ['INT16', [-1, 2]],
      ['INT32', [1, 2]],
      ['INT64', [1, -2]],
      ['UINT8', [0, 255]],
      ['UINT16', [0, 65535]],
      ['UINT32', [0, 7]],
      ['UINT64', [0, 9]],
      ['FP32', [0.5, 1.5]],
      ['FP64', [0.25, -1]],
      ['BYTES', ['x', 'y']],
    ];
    for (const [datatype, data] of cases) {
      const response = await postJson(`${base}/infer`, { inputs: [{ name: 'X', datatype, shape: [2, 1], data }] });
      assert.equal(response.status, 200, `${datatype}: ${JSON.stringify(response.body)}`);
      assert.equal(response.body.outputs[0].datatype, datatype);
    }
  });

  test('invalid tensors get 400 with triton errors', async () => {
    const cases: Array<[string, unknown, RegExp]> = [
      ['element count', { inputs: [{ name: 'X', datatype: 'FP32', shape: [2, 2], data: [1, 2, 3] }] }, /needs 4, got 3/],
      ['batch over max', { inputs: [{ name: 'X', datatype: 'FP32', shape: [5, 1], data: [1, 2, 3, 4, 5] }] }, /batch-size must be <= 4/],
      ['datatype', { inputs: [{ name: 'X', datatype: 'FP16', shape: [1], data: [1] }] }, /FP16/],
      ['value range', { inputs: [{ name: 'X', datatype: 'UINT8', shape: [1], data: [300] }] }, /300/],
      ['shape', { inputs: [{ name: 'X', datatype: 'FP32', shape: [], data: [] }] }, /unexpected shape/],
      ['no inputs', { inputs: [] }, /at least 1 input/],
      [
        'batch mismatch',
        { inputs: [{ name: 'A', datatype: 'FP32', shape: [1], data: [1] }, { name: 'B', datatype: 'FP32', shape: [2], data: [1, 2] }] },
        /different batch sizes/,
      ],
    ];
    for (const [label, body, pattern] of cases) {
      const response = await postJson(`${base}/infer`, body);
      assert.equal(response.status, 400, label);
      assert.match(response.body.error, pattern, label);
    }
  });

  test('unknown model or version is 404', async () => {
    const model = await postJson(`${replica.url}/v2/models/nope/infer`, { inputs: [fp32Rows([[1]])] });
    assert.equal(model.status, 404);
    assert.match(model.body.error, /nope/);
    const version = await postJson(`${base}/versions/3/infer`, { inputs: [fp32Rows([[1]])] });
    assert.equal(version.status, 404);
    assert.match(version.body.error, /version 3/);
  });
});
