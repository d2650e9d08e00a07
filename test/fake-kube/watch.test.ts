// Watch behaviour of the fake Kubernetes API server: chunked events, replay from a
// resourceVersion, 410 Gone, bookmarks, timeoutSeconds, selectors and dropped watches.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { Watch } from '@kubernetes/client-node';
import { openRawWatch, waitFor, type RawWatch } from './helpers.ts';
import { FakeKubeServer, RESOURCES } from './server.ts';

const PATH = '/api/v1/namespaces/ml/configmaps';

describe('fake kube watch', () => {
  let server: FakeKubeServer;
  const watches: RawWatch[] = [];

  beforeEach(async () => {
    server = await FakeKubeServer.start();
  });
  afterEach(async () => {
    for (const watch of watches.splice(0)) watch.close();
    await server.close();
  });

  async function watch(params: Record<string, string> = {}): Promise<RawWatch> {
    const opened = await openRawWatch(server.url, PATH, params);
    watches.push(opened);
    return opened;
  }

  test('streams chunked JSON events', async () => {
    const stream = await watch({ resourceVersion: String(server.store.revision) });
    assert.equal(stream.status, 200);
    assert.equal(stream.headers['transfer-encoding'], 'chunked');
    server.create(RESOURCES.configMaps, 'ml', { metadata: { name: 'a' } });
    server.modify(RESOURCES.configMaps, 'ml', 'a', (o) => {
      o.data = { k: 'v' };
    });
    server.delete(RESOURCES.configMaps, 'ml', 'a');
    await waitFor(() => stream.events.length === 3, 'three events');
    assert.deepEqual(stream.events.map((e) => e.type), ['ADDED', 'MODIFIED', 'DELETED']);
  });

  test('deleted object carries a newer resourceVersion', async () => {
    const stream = await watch({ resourceVersion: String(server.store.revision) });
    const created = server.create(RESOURCES.configMaps, 'ml', { metadata: { name: 'a' } });
    server.delete(RESOURCES.configMaps, 'ml', 'a');
    await waitFor(() => stream.events.length === 2, 'two events');
    const deleted = stream.events[1];
    assert.ok(Number(deleted?.object.metadata.resourceVersion) > Number(created.metadata.resourceVersion));
  });

  test('replays changes after the given resourceVersion', async () => {
    server.create(RESOURCES.configMaps, 'ml', { metadata: { name: 'old' } });
    const from = server.store.revision;
    server.create(RESOURCES.configMaps, 'ml', { metadata: { name: 'new' } });
    server.delete(RESOURCES.configMaps, 'ml', 'old');
    const stream = await watch({ resourceVersion: String(from) });
    await waitFor(() => stream.events.length === 2, 'two replayed events');
    assert.deepEqual(stream.events.map((e) => `${e.type}:${(e.object.metadata as { name?: string }).name}`), ['ADDED:new', 'DELETED:old']);
  });

  test('without resourceVersion starts with the current objects', async () => {
    server.create(RESOURCES.configMaps, 'ml', { metadata: { name: 'a' } });
    server.create(RESOURCES.configMaps, 'other', { metadata: { name: 'b' } });
    const stream = await watch();
    await waitFor(() => stream.events.length === 1, 'one initial event');
    assert.equal(stream.events[0]?.type, 'ADDED');
  });

  test('compacted resourceVersion gets 410 Expired', async () => {
    server.create(RESOURCES.configMaps, 'ml', { metadata: { name: 'a' } });
    const from = server.store.revision - 1;
    server.store.compact();
    const stream = await watch({ resourceVersion: String(from) });
    await waitFor(() => stream.ended(), 'the watch to end');
    assert.equal(stream.events.length, 1);
    const [event] = stream.events;
    assert.equal(event?.type, 'ERROR');
    assert.equal((event?.object as { code: number }).code, 410);
    assert.equal((event?.object as { reason: string }).reason, 'Expired');
  });

  test('history limit expires old resourceVersions', async () => {
    await server.close();
    server = await FakeKubeServer.start({ historyLimit: 2 });
    const from = server.store.revision;
    for (const name of ['a', 'b', 'c']) server.create(RESOURCES.configMaps, 'ml', { metadata: { name } });
    const stream = await watch({ resourceVersion: String(from) });
    await waitFor(() => stream.ended(), 'the watch to end');
    assert.equal((stream.events[0]?.object as { code: number }).code, 410);
  });

  test('forced 410 applies to the next watch only', async () => {
    server.failNextWatchesWithGone(1);
    const first = await watch({ resourceVersion: String(server.store.revision) });
    await waitFor(() => first.ended(), 'the first watch to end');
    assert.equal(first.events[0]?.type, 'ERROR');
    const second = await watch({ resourceVersion: String(server.store.revision) });
    server.create(RESOURCES.configMaps, 'ml', { metadata: { name: 'a' } });
    await waitFor(() => second.events.length === 1, 'an event on the second watch');
    assert.equal(second.events[0]?.type, 'ADDED');
  });

  test('bookmarks only when allowed', async () => {
    const withBookmarks = await watch({ resourceVersion: String(server.store.revision), allowWatchBookmarks: 'true' });
    const without = await watch({ resourceVersion: String(server.store.revision) });
    server.create(RESOURCES.configMaps, 'elsewhere', { metadata: { name: 'x' } });
    server.bookmarkAll();
    await waitFor(() => withBookmarks.events.length === 1, 'a bookmark');
    const [bookmark] = withBookmarks.events;
    assert.equal(bookmark?.type, 'BOOKMARK');
    assert.equal(bookmark?.object.metadata.resourceVersion, String(server.store.revision));
    server.create(RESOURCES.configMaps, 'ml', { metadata: { name: 'after' } });
    await waitFor(() => without.events.length === 1, 'an event on the other watch');
    assert.equal(without.events[0]?.type, 'ADDED');
  });

  test('periodic bookmarks with an interval', async () => {
    await server.close();
    server = await FakeKubeServer.start({ bookmarkIntervalMs: 20 });
    const stream = await watch({ resourceVersion: String(server.store.revision), allowWatchBookmarks: 'true' });
    await waitFor(() => stream.events.length >= 2, 'two bookmarks');
    assert.ok(stream.events.every((e) => e.type === 'BOOKMARK'));
  });

  test('timeoutSeconds ends the watch', async () => {
    const stream = await watch({ resourceVersion: String(server.store.revision), timeoutSeconds: '1' });
    await waitFor(() => stream.ended(), 'the watch to time out');
    assert.equal(server.openWatches, 0);
  });

  test('label change across the selector becomes ADDED and DELETED', async () => {
    server.create(RESOURCES.configMaps, 'ml', { metadata: { name: 'a', labels: { role: 'x' } } });
    const stream = await watch({ resourceVersion: String(server.store.revision), labelSelector: 'role=y' });
    server.modify(RESOURCES.configMaps, 'ml', 'a', (o) => {
      o.metadata.labels = { role: 'y' };
    });
    server.modify(RESOURCES.configMaps, 'ml', 'a', (o) => {
      o.metadata.labels = { role: 'z' };
    });
    await waitFor(() => stream.events.length === 2, 'two events');
    assert.deepEqual(stream.events.map((e) => e.type), ['ADDED', 'DELETED']);
  });

  test('dropWatches ends open watches', async () => {
    const stream = await watch({ resourceVersion: String(server.store.revision) });
    await waitFor(() => server.openWatches === 1, 'the watch to register');
    assert.equal(server.dropWatches(), 1);
    await waitFor(() => stream.ended(), 'the watch to end');
    assert.equal(server.openWatches, 0);
  });

  test('client-node Watch receives events', async () => {
    const received: string[] = [];
    let doneError: unknown = 'not called';
    const controller = await new Watch(server.kubeConfig()).watch(
      PATH,
      { resourceVersion: String(server.store.revision) },
      (phase, object: { metadata: { name: string } }) => received.push(`${phase}:${object.metadata.name}`),
      (err) => (doneError = err),
    );
    try {
      server.create(RESOURCES.configMaps, 'ml', { metadata: { name: 'seen' } });
      await waitFor(() => received.length === 1, 'an event through client-node');
      assert.deepEqual(received, ['ADDED:seen']);
      server.dropWatches();
      await waitFor(() => doneError !== 'not called', 'done to be called');
      assert.equal(doneError, null);
    } finally {
      controller.abort();
    }
  });
});
