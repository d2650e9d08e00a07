// The in-flight list behind shutdown's abort of running calls: constant-time add and remove
// that keep every other item listed exactly once.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { InFlightList } from '../../gateway/src/scheduling/in-flight.ts';

interface Item {
  name: string;
  inFlightSlot: number | undefined;
}

const item = (name: string): Item => ({ name, inFlightSlot: undefined });
const names = (list: InFlightList<Item>): string[] => list.snapshot().map((entry) => entry.name).sort();

describe('in-flight list', () => {
  test('add lists an item once', () => {
    const list = new InFlightList<Item>();
    const a = item('a');
    list.add(a);
    list.add(a);
    assert.equal(list.size, 1);
    assert.deepEqual(names(list), ['a']);
  });

  test('remove keeps the other items', () => {
    const list = new InFlightList<Item>();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(item) as [Item, Item, Item, Item];
    for (const entry of [a, b, c, d]) list.add(entry);
    list.remove(b);
    assert.deepEqual(names(list), ['a', 'c', 'd']);
    assert.equal(b.inFlightSlot, undefined);
    list.remove(d);
    list.remove(a);
    assert.deepEqual(names(list), ['c']);
    assert.equal(c.inFlightSlot, 0);
  });

  test('removing an unlisted item changes nothing', () => {
    const list = new InFlightList<Item>();
    const a = item('a');
    const stranger = item('stranger');
    list.add(a);
    list.remove(stranger);
    stranger.inFlightSlot = 0;
    list.remove(stranger);
    assert.deepEqual(names(list), ['a']);
    assert.equal(a.inFlightSlot, 0);
  });

  test('snapshot survives removal during iteration', () => {
    const list = new InFlightList<Item>();
    for (const name of ['a', 'b', 'c']) list.add(item(name));
    const seen: string[] = [];
    for (const entry of list.snapshot()) {
      seen.push(entry.name);
      list.remove(entry);
    }
    assert.deepEqual(seen.sort(), ['a', 'b', 'c']);
    assert.equal(list.size, 0);
  });
});
