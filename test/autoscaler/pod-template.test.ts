import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseKubeQuantity } from '../../autoscaler/src/kube/quantity-parse.ts';
import type { V1PodTemplateSpec } from '@kubernetes/client-node';
import { gpusInTemplate } from '../../autoscaler/src/kube/actuator.ts';

test('kube quantity parses suffixes', () => {
  assert.equal(parseKubeQuantity('2'), 2);
  assert.equal(parseKubeQuantity('500m'), 0.5);
  assert.equal(parseKubeQuantity('1k'), 1000);
  assert.equal(parseKubeQuantity('1Ki'), 1024);
  assert.equal(parseKubeQuantity('1e3'), 1000);
  assert.equal(parseKubeQuantity('.5'), 0.5);
});

test('kube quantity rejects garbage', () => {
  assert.throws(() => parseKubeQuantity('two'), /invalid quantity "two"/);
  assert.throws(() => parseKubeQuantity('-1'), RangeError);
  assert.throws(() => parseKubeQuantity('1 Gi'), RangeError);
});

test('pod template GPUs sum over containers', () => {
  const template: V1PodTemplateSpec = {
    spec: {
      containers: [
        { name: 'model', resources: { limits: { 'nvidia.com/gpu': '2', cpu: '4' } } },
        { name: 'sidecar', resources: { limits: { cpu: '100m' } } },
        { name: 'second', resources: { limits: { 'nvidia.com/gpu': '1' } } },
      ],
      initContainers: [{ name: 'warmup', resources: { limits: { 'nvidia.com/gpu': '4' } } }],
    },
  };
  assert.equal(gpusInTemplate(template), 3);
});

test('pod template without GPUs is zero', () => {
  assert.equal(gpusInTemplate({ spec: { containers: [{ name: 'cpu-only' }] } }), 0);
  assert.equal(gpusInTemplate(undefined), 0);
});
