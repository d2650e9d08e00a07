import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Priority } from '../../shared/src/admin-state.ts';
import { ManualClock } from '../../shared/src/clock.ts';
import { AdmissionQueue } from '../../gateway/src/scheduling/queue.ts';
import { RateMeter } from '../../gateway/src/scheduling/rate.ts';

interface Item {
  name: string;
  priority: Priority;
  arrivedAt: number;
}

const item = (name: string, priority: Priority, arrivedAt = 0): Item => ({ name, priority, arrivedAt });
const names = (queue: AdmissionQueue<Item>): string[] => [...queue.entries()].map((entry) => entry.name);

describe('admission queue', () => {
  test('strict priority between classes, FIFO within', () => {
    const queue = new AdmissionQueue<Item>(10);
    queue.admit(item('s1', 'sheddable'));
    queue.admit(item('n1', 'standard'));
    queue.admit(item('c1', 'critical'));
    queue.admit(item('n2', 'standard'));
    queue.admit(item('c2', 'critical'));
    assert.deepEqual(names(queue), ['c1', 'c2', 'n1', 'n2', 's1']);
    assert.equal(queue.first()?.name, 'c1');
  });

  test('retries go ahead of fresh entries of their class only', () => {
    const queue = new AdmissionQueue<Item>(10);
    queue.admit(item('c1', 'critical'));
    queue.admit(item('n1', 'standard'));
    queue.requeue(item('retry', 'standard'));
    assert.deepEqual(names(queue), ['c1', 'retry', 'n1']);
    assert.equal(queue.size, 3);
  });

  test('full queue evicts the newest sheddable for standard work', () => {
    const queue = new AdmissionQueue<Item>(3);
    queue.admit(item('s1', 'sheddable'));
    queue.admit(item('s2', 'sheddable'));
    queue.admit(item('n1', 'standard'));
    const result = queue.admit(item('c1', 'critical'));
    assert.equal(result.admitted, true);
    assert.equal(result.admitted && result.evicted?.name, 's2');
    assert.deepEqual(names(queue), ['c1', 'n1', 's1']);
  });

  test('full queue rejects a sheddable newcomer', () => {
    const queue = new AdmissionQueue<Item>(1);
    queue.admit(item('s1', 'sheddable'));
    assert.deepEqual(queue.admit(item('s2', 'sheddable')), { admitted: false });
  });

  test('full queue without sheddable work rejects everyone', () => {
    const queue = new AdmissionQueue<Item>(1);
    queue.admit(item('n1', 'standard'));
    assert.deepEqual(queue.admit(item('c1', 'critical')), { admitted: false });
    assert.equal(queue.size, 1);
  });

  test('remove takes an entry from the middle', () => {
    const queue = new AdmissionQueue<Item>(5);
    const middle = item('n2', 'standard');
    queue.admit(item('n1', 'standard'));
    queue.admit(middle);
    queue.admit(item('n3', 'standard'));
    assert.equal(queue.remove(middle), true);
    assert.equal(queue.remove(middle), false);
    assert.deepEqual(names(queue), ['n1', 'n3']);
    assert.equal(queue.size, 2);
  });

  test('countAhead counts higher and equal classes', () => {
    const queue = new AdmissionQueue<Item>(10);
    queue.admit(item('c1', 'critical'));
    queue.admit(item('n1', 'standard'));
    queue.admit(item('n2', 'standard'));
    queue.admit(item('s1', 'sheddable'));
    assert.equal(queue.countAhead('critical'), 1);
    assert.equal(queue.countAhead('standard'), 3);
    assert.equal(queue.countAhead('sheddable'), 4);
  });

  test('oldestArrival looks across classes', () => {
    const queue = new AdmissionQueue<Item>(10);
    queue.admit(item('c1', 'critical', 50));
    queue.admit(item('s1', 'sheddable', 10));
    assert.equal(queue.oldestArrival(), 10);
  });

  test('maxSize below 1 is rejected', () => {
    assert.throws(() => new AdmissionQueue<Item>(0), /maxSize must be an integer >= 1, got 0/);
  });
});

describe('rate meter', () => {
  test('rate over a sliding window', () => {
    const clock = new ManualClock();
    const meter = new RateMeter(clock, 10);
    for (let i = 0; i < 20; i++) meter.record();
    clock.advance(2000);
    assert.equal(meter.perSecond(), 10);
    clock.advance(9000);
    assert.equal(meter.perSecond(), 0);
  });
});
