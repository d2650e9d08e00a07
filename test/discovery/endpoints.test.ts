// Mapping EndpointSlices to endpoint observations: port choice, address formats,
// condition defaults and endpoints listed in several slices.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { endpointsFromSlices, parsePortSelector, sameSnapshot } from '../../gateway/src/discovery/kubernetes-endpoints.ts';
import { endpointSlice, type SliceSpec } from '../fake-kube/objects.ts';

function slice(spec: Partial<SliceSpec> & Pick<SliceSpec, 'endpoints'>): V1EndpointSlice {
  return endpointSlice({ name: 's', service: 'svc', ports: [{ name: 'http', port: 8000 }], ...spec }) as unknown as V1EndpointSlice;
}

describe('port selector', () => {
  test('digits select a number', () => {
    assert.deepEqual(parsePortSelector('8000'), { kind: 'number', port: 8000 });
  });

  test('letters select a name', () => {
    assert.deepEqual(parsePortSelector('http-alt'), { kind: 'name', name: 'http-alt' });
  });

  test('zero is rejected with the value', () => {
    assert.throws(() => parsePortSelector(0), /got 0/);
  });

  test('name longer than 15 characters is rejected', () => {
    assert.throws(() => parsePortSelector('a-very-long-port-name'), /"a-very-long-port-name"/);
  });

  test('double hyphen is rejected', () => {
    assert.throws(() => parsePortSelector('http--x'), /"http--x"/);
  });
});

describe('endpoints from slices', () => {
  test('selects the named port', () => {
    const slices = [slice({ ports: [{ name: 'metrics', port: 9400 }, { name: 'http', port: 8000 }], endpoints: [{ address: '10.0.0.1' }] })];
    assert.deepEqual(endpointsFromSlices(slices, parsePortSelector('http')).map((e) => e.id), ['10.0.0.1:8000']);
  });

  test('selects the numbered port', () => {
    const slices = [slice({ ports: [{ name: 'metrics', port: 9400 }, { name: 'http', port: 8000 }], endpoints: [{ address: '10.0.0.1' }] })];
    assert.deepEqual(endpointsFromSlices(slices, parsePortSelector(9400)).map((e) => e.id), ['10.0.0.1:9400']);
  });

  test('unnamed port matches the empty name only by number', () => {
    const slices = [slice({ ports: [{ port: 8000 }], endpoints: [{ address: '10.0.0.1' }] })];
    assert.deepEqual(endpointsFromSlices(slices, parsePortSelector('http')), []);
    assert.equal(endpointsFromSlices(slices, parsePortSelector(8000)).length, 1);
  });

  test('UDP port is ignored', () => {
    const slices = [slice({ ports: [{ name: 'http', port: 8000, protocol: 'UDP' }], endpoints: [{ address: '10.0.0.1' }] })];
    assert.deepEqual(endpointsFromSlices(slices, parsePortSelector('http')), []);
  });

  test('IPv6 address in brackets', () => {
    const [endpoint] = endpointsFromSlices([slice({ endpoints: [{ address: 'fd00::7' }] })], parsePortSelector('http'));
    assert.equal(endpoint?.id, '[fd00::7]:8000');
    assert.equal(endpoint?.url, 'http://[fd00::7]:8000');
  });

  test('FQDN address kept as a host name', () => {
    const [endpoint] = endpointsFromSlices([slice({ addressType: 'FQDN', endpoints: [{ address: 'model-0.model.ml.svc' }] })], parsePortSelector('http'));
    assert.equal(endpoint?.url, 'http://model-0.model.ml.svc:8000');
  });

  test('unset conditions mean ready', () => {
    const [endpoint] = endpointsFromSlices([slice({ endpoints: [{ address: '10.0.0.1' }] })], parsePortSelector('http'));
    assert.deepEqual(endpoint, { id: '10.0.0.1:8000', url: 'http://10.0.0.1:8000', ready: true, serving: true, terminating: false });
  });

  test('unset serving follows ready', () => {
    const [endpoint] = endpointsFromSlices([slice({ endpoints: [{ address: '10.0.0.1', ready: false }] })], parsePortSelector('http'));
    assert.equal(endpoint?.serving, false);
  });

  test('terminating endpoint is never ready', () => {
    // publishNotReadyAddresses makes the controller report ready: true on terminating pods.
    const [endpoint] = endpointsFromSlices([slice({ endpoints: [{ address: '10.0.0.1', ready: true, terminating: true }] })], parsePortSelector('http'));
    assert.equal(endpoint?.ready, false);
    assert.equal(endpoint?.terminating, true);
  });

  test('endpoint in two slices is reported once', () => {
    const slices = [slice({ name: 'a', endpoints: [{ address: '10.0.0.1' }] }), slice({ name: 'b', endpoints: [{ address: '10.0.0.1' }, { address: '10.0.0.2' }] })];
    assert.deepEqual(endpointsFromSlices(slices, parsePortSelector('http')).map((e) => e.id), ['10.0.0.1:8000', '10.0.0.2:8000']);
  });

  test('terminating copy wins over a ready copy', () => {
    const slices = [
      slice({ name: 'a', endpoints: [{ address: '10.0.0.1', ready: true }] }),
      slice({ name: 'b', endpoints: [{ address: '10.0.0.1', ready: false, serving: true, terminating: true }] }),
    ];
    const [endpoint] = endpointsFromSlices(slices, parsePortSelector('http'));
    assert.equal(endpoint?.terminating, true);
    assert.equal(endpoint?.ready, false);
    assert.equal(endpoint?.serving, true);
  });

  test('same snapshot compares conditions', () => {
    const a = endpointsFromSlices([slice({ endpoints: [{ address: '10.0.0.1' }] })], parsePortSelector('http'));
    const b = endpointsFromSlices([slice({ endpoints: [{ address: '10.0.0.1', ready: false }] })], parsePortSelector('http'));
    assert.equal(sameSnapshot(a, a), true);
    assert.equal(sameSnapshot(a, b), false);
  });
});
