import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../shared/src/clock.ts';

test('manual clock fires timers in due order', () => {
  const clock = new ManualClock();
  const fired: string[] = [];
  clock.setTimer(30, () => fired.push('c'));
  clock.setTimer(10, () => fired.push('a'));
  clock.setTimer(10, () => fired.push('b'));
  clock.advance(20);
  assert.deepEqual(fired, ['a', 'b']);
  assert.equal(clock.now(), 20);
  clock.advance(10);
  assert.deepEqual(fired, ['a', 'b', 'c']);
});

test('manual clock skips cancelled timers', () => {
  const clock = new ManualClock();
  let fired = 0;
  const handle = clock.setTimer(5, () => fired++);
  handle.cancel();
  clock.advance(10);
  assert.equal(fired, 0);
  assert.equal(clock.pendingTimers, 0);
});

test('manual clock fires timers set by timers', () => {
  const clock = new ManualClock();
  const times: number[] = [];
  clock.setTimer(5, () => {
    times.push(clock.now());
    clock.setTimer(5, () => times.push(clock.now()));
  });
  clock.advance(12);
  assert.deepEqual(times, [5, 10]);
});
