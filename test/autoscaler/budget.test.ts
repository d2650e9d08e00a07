import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocateGpus, neededReplicas, type BudgetRequest } from '../../autoscaler/src/budget.ts';

function request(overrides: Partial<BudgetRequest> & { name: string }): BudgetRequest {
  return { priority: 0, value: 0, targetPerReplica: 10, gpusPerReplica: 1, minReplicas: 0, maxReplicas: 100, startingReplicas: 0, ...overrides };
}

test('budget needed replicas round up within bounds', () => {
  assert.equal(neededReplicas(25, 10, 0, 10), 3);
  assert.equal(neededReplicas(0, 10, 1, 10), 1);
  assert.equal(neededReplicas(500, 10, 0, 10), 10);
});

test('budget absent grants every need', () => {
  const result = allocateGpus(undefined, [request({ name: 'a', value: 45, gpusPerReplica: 2 })]);
  const a = result.grants.get('a')!;
  assert.equal(a.grantedReplicas, 5);
  assert.equal(a.cappedValue, 45);
  assert.equal(a.capped, false);
  assert.equal(result.requestedGpus, 10);
});

test('budget that fits leaves values unchanged', () => {
  const result = allocateGpus(8, [request({ name: 'a', value: 30 }), request({ name: 'b', value: 40 })]);
  assert.equal(result.grants.get('a')!.cappedValue, 30);
  assert.equal(result.grants.get('b')!.cappedValue, 40);
  assert.equal(result.allocatedGpus, 7);
});

test('budget splits in proportion to demand', () => {
  // Needs: a 6 replicas, b 2 replicas (1 GPU each); 4 GPUs: a gets 3, b gets 1.
  const result = allocateGpus(4, [request({ name: 'a', value: 60 }), request({ name: 'b', value: 20 })]);
  const a = result.grants.get('a')!;
  const b = result.grants.get('b')!;
  assert.equal(a.grantedReplicas, 3);
  assert.equal(b.grantedReplicas, 1);
  assert.equal(a.cappedValue, 30);
  assert.equal(b.cappedValue, 10);
  assert.equal(a.capped, true);
});

test('budget capped value never asks for more than the share', () => {
  const result = allocateGpus(7, [request({ name: 'a', value: 93, gpusPerReplica: 2, targetPerReplica: 7 }), request({ name: 'b', value: 50, gpusPerReplica: 1, targetPerReplica: 3 })]);
  let total = 0;
  for (const [name, grant] of result.grants) {
    const gpus = name === 'a' ? 2 : 1;
    const target = name === 'a' ? 7 : 3;
    const replicasAsked = Math.ceil(grant.cappedValue / target);
    assert.ok(replicasAsked * gpus <= grant.grantedGpus, `${name} asks ${replicasAsked} replicas for ${grant.grantedGpus} GPUs`);
    total += replicasAsked * gpus;
  }
  assert.ok(total <= 7);
});

test('budget serves higher priority first', () => {
  const result = allocateGpus(5, [request({ name: 'batch', value: 100, priority: 0 }), request({ name: 'chat', value: 40, priority: 10 })]);
  assert.equal(result.grants.get('chat')!.grantedReplicas, 4);
  assert.equal(result.grants.get('batch')!.grantedReplicas, 1);
  assert.equal(result.grants.get('chat')!.capped, false);
});

test('budget reserves minReplicas before extra demand', () => {
  const result = allocateGpus(4, [request({ name: 'hot', value: 100, priority: 10 }), request({ name: 'cold', value: 0, minReplicas: 1 })]);
  assert.equal(result.grants.get('cold')!.grantedReplicas, 1);
  assert.equal(result.grants.get('hot')!.grantedReplicas, 3);
});

test('budget keeps starting replicas as capacity on its way', () => {
  // b has 2 replicas starting; a higher-priority burst must not take their GPUs.
  const result = allocateGpus(4, [request({ name: 'a', value: 100, priority: 10 }), request({ name: 'b', value: 20, startingReplicas: 2 })]);
  assert.equal(result.grants.get('b')!.grantedReplicas, 2);
  assert.equal(result.grants.get('a')!.grantedReplicas, 2);
});

test('budget does not reserve starting replicas beyond need', () => {
  const result = allocateGpus(4, [request({ name: 'a', value: 100, priority: 10 }), request({ name: 'b', value: 5, startingReplicas: 3 })]);
  assert.equal(result.grants.get('b')!.grantedReplicas, 1);
  assert.equal(result.grants.get('a')!.grantedReplicas, 3);
});

test('budget of zero caps every value to zero', () => {
  const result = allocateGpus(0, [request({ name: 'a', value: 12 })]);
  assert.equal(result.grants.get('a')!.grantedReplicas, 0);
  assert.equal(result.grants.get('a')!.cappedValue, 0);
});

test('budget ignores models with unknown GPU count', () => {
  const result = allocateGpus(1, [request({ name: 'a', value: 50, gpusPerReplica: undefined }), request({ name: 'b', value: 50 })]);
  assert.equal(result.grants.get('a')!.capped, false);
  assert.equal(result.grants.get('a')!.cappedValue, 50);
  assert.equal(result.grants.get('b')!.grantedReplicas, 1);
});

test('budget hands rounding leftovers to the least covered model', () => {
  // 5 GPUs for two equal demands of 2-GPU replicas: shares 2.5 each, one replica each, 1 GPU left over.
  const result = allocateGpus(5, [request({ name: 'a', value: 50, gpusPerReplica: 2 }), request({ name: 'b', value: 50, gpusPerReplica: 2 })]);
  assert.equal(result.grants.get('a')!.grantedReplicas, 1);
  assert.equal(result.grants.get('b')!.grantedReplicas, 1);
  assert.equal(result.allocatedGpus, 4);
});

test('budget gives one replica to every model with demand', () => {
  // a needs 6 replicas, b needs 1; 4 GPUs. Served 0, b's HPA would never scale it up.
  const result = allocateGpus(4, [request({ name: 'a', value: 51 }), request({ name: 'b', value: 1 })]);
  const a = result.grants.get('a')!;
  const b = result.grants.get('b')!;
  assert.equal(b.grantedReplicas, 1);
  assert.equal(b.cappedValue, 1);
  assert.equal(b.capped, false);
  assert.equal(a.grantedReplicas, 3);
  assert.equal(a.cappedValue, 30);
  assert.equal(result.allocatedGpus, 4);
});

test('budget too small for every model picks larger demand', () => {
  const result = allocateGpus(1, [request({ name: 'a', value: 1 }), request({ name: 'b', value: 51 })]);
  assert.equal(result.grants.get('b')!.grantedReplicas, 1);
  assert.equal(result.grants.get('a')!.grantedReplicas, 0);
});

test('budget remainder goes to the lowest coverage', () => {
  // Needs 2, 4 and 7 replicas for 5 GPUs. One replica each, then 2 left: the demand split
  // gives c one, and the last goes to b, covered 1 of 4, rather than to c, covered 2 of 7.
  const result = allocateGpus(5, [
    request({ name: 'a', value: 2, targetPerReplica: 1 }),
    request({ name: 'b', value: 4, targetPerReplica: 1 }),
    request({ name: 'c', value: 7, targetPerReplica: 1 }),
  ]);
  assert.equal(result.grants.get('a')!.grantedReplicas, 1);
  assert.equal(result.grants.get('b')!.grantedReplicas, 2);
  assert.equal(result.grants.get('c')!.grantedReplicas, 2);
  assert.equal(result.allocatedGpus, 5);
});
