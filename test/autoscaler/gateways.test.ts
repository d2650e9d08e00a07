// The gateway list from the EndpointSlices of the gateway admin Service.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../shared/src/logger.ts';
import { systemClock } from '../../shared/src/clock.ts';
import { FakeKubeServer, RESOURCES } from '../fake-kube/server.ts';
import { endpointSlice } from '../fake-kube/objects.ts';
import { waitFor } from '../fake-kube/helpers.ts';
import { createGatewayList, type GatewayList } from '../../autoscaler/src/gateways.ts';

const logger = createLogger({ service: 'autoscaler-test', level: 'silent' });
let kube: FakeKubeServer;
let list: GatewayList;

before(async () => {
  kube = await FakeKubeServer.start();
});

after(async () => {
  await list?.stop();
  await kube.close();
});

test('gateway list follows the admin Service endpoints', async () => {
  kube.create(
    RESOURCES.endpointSlices,
    'infergate',
    endpointSlice({
      name: 'gw-admin-abc',
      service: 'gw-admin',
      ports: [{ name: 'admin', port: 9090 }],
      endpoints: [{ address: '127.0.0.2' }, { address: '127.0.0.3', ready: false, serving: true, terminating: true }, { address: '127.0.0.4', ready: false, serving: false }],
    }),
  );
  list = createGatewayList({ kubernetes: { namespace: 'infergate', service: 'gw-admin', port: 'admin' } }, { logger, clock: systemClock, kubeConfig: kube.kubeConfig() });
  await list.start();
  assert.deepEqual(list.urls(), ['http://127.0.0.2:9090', 'http://127.0.0.3:9090']);
  assert.equal(list.healthy(), true);

  kube.modify(RESOURCES.endpointSlices, 'infergate', 'gw-admin-abc', (slice) => {
    (slice as unknown as { endpoints: unknown[] }).endpoints = [{ addresses: ['127.0.0.5'], conditions: {} }];
  });
  await waitFor(() => list.urls().length === 1 && list.urls()[0] === 'http://127.0.0.5:9090', 'the list to follow the slice');
  assert.deepEqual(list.urls(), ['http://127.0.0.5:9090']);
});

test('gateway list static strips trailing slashes', async () => {
  const fixed = createGatewayList({ static: ['http://127.0.0.1:9090/', 'http://127.0.0.1:9091'] }, { logger, clock: systemClock });
  await fixed.start();
  assert.deepEqual(fixed.urls(), ['http://127.0.0.1:9090', 'http://127.0.0.1:9091']);
});

test('gateway list static drops repeated URLs', async () => {
  const fixed = createGatewayList({ static: ['http://127.0.0.1:9090/', 'http://127.0.0.1:9091', 'http://127.0.0.1:9090'] }, { logger, clock: systemClock });
  await fixed.start();
  assert.deepEqual(fixed.urls(), ['http://127.0.0.1:9090', 'http://127.0.0.1:9091']);
});
