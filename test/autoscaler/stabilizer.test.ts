import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../shared/src/clock.ts';
import { Stabilizer } from '../../autoscaler/src/stabilizer.ts';

function setup(scaleDownWindowSeconds = 300, idleToZeroSeconds = 600) {
  const clock = new ManualClock();
  const stabilizer = new Stabilizer(clock, { scaleDownWindowSeconds, idleToZeroSeconds });
  /** Feeds one sample per second for `seconds` seconds and returns the last result. */
  const feed = (demand: number | undefined, seconds = 1) => {
    let last = stabilizer.update(demand);
    for (let i = 1; i < seconds; i += 1) {
      clock.advance(1000);
      last = stabilizer.update(demand);
    }
    clock.advance(1000);
    return last;
  };
  return { clock, stabilizer, feed };
}

test('stabilizer rises at once on a burst', () => {
  const { feed } = setup();
  feed(2, 10);
  assert.equal(feed(80).value, 80);
});

test('stabilizer falls only to the window maximum', () => {
  const { feed } = setup(300);
  feed(80);
  const lull = feed(5, 60);
  assert.equal(lull.value, 80);
  assert.equal(lull.windowMax, 80);
});

test('stabilizer follows the second-largest sample after the peak leaves the window', () => {
  const { feed } = setup(60);
  feed(80);
  feed(30, 30);
  // 61 s after the peak it has left the 60 s window; the 30s remain in it.
  const later = feed(5, 31);
  assert.equal(later.value, 30);
  const end = feed(5, 60);
  assert.equal(end.value, 5);
});

test('stabilizer with a zero window serves the raw demand', () => {
  const { feed } = setup(0);
  feed(50);
  assert.equal(feed(3).value, 3);
});

test('stabilizer burst then idle reaches zero', () => {
  const { feed } = setup(300, 600);
  feed(100, 5);
  const beforeIdle = feed(0, 600);
  assert.equal(beforeIdle.idle, false);
  assert.equal(beforeIdle.value, 0, 'the peak left the 300 s window long ago');
  const idle = feed(0);
  assert.equal(idle.idle, true);
  assert.equal(idle.value, 0);
  assert.equal(idle.idleForMs, 600_000);
});

test('stabilizer idle overrides the window maximum', () => {
  const { feed } = setup(300, 60);
  feed(100);
  const idle = feed(0, 61);
  assert.equal(idle.idle, true);
  assert.equal(idle.value, 0);
});

test('stabilizer old peak does not return after idle', () => {
  const { feed } = setup(300, 60);
  feed(100);
  feed(0, 61);
  const after = feed(3);
  assert.equal(after.value, 3);
  assert.equal(after.idle, false);
});

test('stabilizer demand restarts the idle timer', () => {
  const { feed } = setup(10, 60);
  feed(0, 50);
  feed(1);
  const result = feed(0, 59);
  assert.equal(result.idle, false);
  assert.equal(result.idleForMs, 58_000);
  assert.equal(feed(0, 2).idle, true);
});

test('stabilizer stale data is unknown, not zero', () => {
  const { feed } = setup();
  feed(10);
  const stale = feed(undefined);
  assert.equal(stale.value, undefined);
  assert.equal(stale.stale, true);
  assert.equal(stale.windowMax, 10);
});

test('stabilizer stale data never makes a model idle', () => {
  const { feed } = setup(10, 60);
  feed(0, 50);
  const stale = feed(undefined, 100);
  assert.equal(stale.idle, false);
  assert.equal(stale.idleForMs, 0);
  // Fresh zeros after the outage must again last the full idle period.
  assert.equal(feed(0, 60).idle, false);
  assert.equal(feed(0).idle, true);
});

test('stabilizer rejects negative demand', () => {
  const { stabilizer } = setup();
  assert.throws(() => stabilizer.update(-1), RangeError);
});
