import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../shared/src/clock.ts';
import { ReplicaHealth, type HealthSettings } from '../../gateway/src/replicas/health.ts';

const SETTINGS: HealthSettings = { unhealthyThreshold: 2, healthyThreshold: 2, consecutiveFailures: 3, baseMs: 1000, maxMs: 4000 };

function healthy(clock: ManualClock, settings: HealthSettings = SETTINGS): ReplicaHealth {
  const health = new ReplicaHealth(clock, settings);
  for (let i = 0; i < settings.healthyThreshold; i++) health.recordProbe(true);
  return health;
}

describe('replica health state machine', () => {
  test('new replica admits only after healthyThreshold probes', () => {
    const health = new ReplicaHealth(new ManualClock(), SETTINGS);
    assert.equal(health.probeState, 'probing');
    assert.equal(health.admits(), false);
    health.recordProbe(true);
    assert.equal(health.admits(), false);
    health.recordProbe(true);
    assert.equal(health.probeState, 'healthy');
    assert.equal(health.admits(), true);
  });

  test('failed probes before the first pass keep probing', () => {
    const health = new ReplicaHealth(new ManualClock(), SETTINGS);
    health.recordProbe(false);
    health.recordProbe(false);
    health.recordProbe(false);
    assert.equal(health.probeState, 'probing');
  });

  test('unhealthyThreshold failures make it unhealthy, passes bring it back', () => {
    const health = healthy(new ManualClock());
    health.recordProbe(false);
    assert.equal(health.probeState, 'healthy');
    health.recordProbe(false);
    assert.equal(health.probeState, 'unhealthy');
    assert.equal(health.admits(), false);
    health.recordProbe(true);
    assert.equal(health.probeState, 'unhealthy');
    health.recordProbe(true);
    assert.equal(health.probeState, 'healthy');
  });

  test('consecutive failures eject for the base period', () => {
    const clock = new ManualClock();
    const health = healthy(clock);
    assert.equal(health.finishCall('failure', false), undefined);
    assert.equal(health.finishCall('failure', false), undefined);
    assert.equal(health.finishCall('failure', false), 'ejected');
    assert.equal(health.ejectedUntil, 1000);
    assert.equal(health.admits(), false);
    clock.advance(999);
    assert.equal(health.admits(), false);
    clock.advance(1);
    assert.equal(health.admits(), true);
  });

  test('a success resets the failure count', () => {
    const health = healthy(new ManualClock());
    health.finishCall('failure', false);
    health.finishCall('failure', false);
    health.finishCall('success', false);
    health.finishCall('failure', false);
    assert.equal(health.finishCall('failure', false), undefined);
    assert.equal(health.ejected, false);
  });

  test('neutral results neither count nor reset', () => {
    const health = healthy(new ManualClock());
    health.finishCall('failure', false);
    health.finishCall('failure', false);
    health.finishCall('neutral', false);
    assert.equal(health.finishCall('failure', false), 'ejected');
  });

  test('one trial request at a time after the period', () => {
    const clock = new ManualClock();
    const health = healthy(clock);
    for (let i = 0; i < 3; i++) health.finishCall('failure', false);
    clock.advance(1000);
    assert.equal(health.startCall(), true);
    assert.equal(health.admits(), false, 'no second call while the trial runs');
    assert.equal(health.finishCall('success', true), 'recovered');
    assert.equal(health.ejected, false);
    assert.equal(health.admits(), true);
  });

  test('failed trials double the period up to maxMs', () => {
    const clock = new ManualClock();
    const health = healthy(clock);
    for (let i = 0; i < 3; i++) health.finishCall('failure', false);
    const periods: number[] = [];
    for (let round = 0; round < 4; round++) {
      const until = health.ejectedUntil!;
      periods.push(until - clock.now());
      clock.advance(until - clock.now());
      assert.equal(health.startCall(), true);
      assert.equal(health.finishCall('failure', true), 'ejected');
    }
    assert.deepEqual(periods, [1000, 2000, 4000, 4000]);
  });

  test('passing probe does not end an ejection', () => {
    const clock = new ManualClock();
    const health = healthy(clock);
    for (let i = 0; i < 3; i++) health.finishCall('failure', false);
    health.recordProbe(true);
    health.recordProbe(true);
    assert.equal(health.ejected, true);
    assert.equal(health.admits(), false);
  });

  test('period restarts from base after a long healthy stretch', () => {
    const clock = new ManualClock();
    const health = healthy(clock);
    for (let i = 0; i < 3; i++) health.finishCall('failure', false);
    clock.advance(1000);
    health.startCall();
    health.finishCall('failure', true);
    clock.advance(2000);
    health.startCall();
    health.finishCall('success', true);
    clock.advance(5000);
    for (let i = 0; i < 3; i++) health.finishCall('failure', false);
    assert.equal(health.ejectedUntil! - clock.now(), 1000);
  });

  test('passive ejection off when consecutiveFailures is 0', () => {
    const health = healthy(new ManualClock(), { ...SETTINGS, consecutiveFailures: 0 });
    for (let i = 0; i < 10; i++) health.finishCall('failure', false);
    assert.equal(health.ejected, false);
  });

  test('longest cooldown wins', () => {
    const clock = new ManualClock();
    const health = healthy(clock);
    health.coolDown(5000);
    health.coolDown(1000);
    assert.equal(health.cooldownUntil, 5000);
    clock.advance(4999);
    assert.equal(health.admits(), false);
    clock.advance(1);
    assert.equal(health.admits(), true);
  });
});
