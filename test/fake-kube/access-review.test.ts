// SubjectAccessReview on the fake Kubernetes API server, driven through
// @kubernetes/client-node's AuthorizationV1Api as the autoscaler drives it.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { ApiException, AuthorizationV1Api, type V1SubjectAccessReviewSpec } from '@kubernetes/client-node';
import { request } from 'undici';
import { ACCESS_REVIEW_PATH, FakeKubeServer } from './server.ts';

describe('fake kube SubjectAccessReview', () => {
  let server: FakeKubeServer;
  let api: AuthorizationV1Api;

  async function allowed(spec: V1SubjectAccessReviewSpec): Promise<boolean> {
    const review = await api.createSubjectAccessReview({ body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec } });
    return review.status?.allowed ?? false;
  }

  const metric = (namespace: string, verb = 'list') => ({ group: 'external.metrics.k8s.io', version: 'v1beta1', resource: 'infergate_demand', namespace, verb });

  before(async () => {
    server = await FakeKubeServer.start();
    api = server.kubeConfig().makeApiClient(AuthorizationV1Api);
  });
  beforeEach(() => {
    server.accessReviews.clearRules();
    server.failAccessReviews(undefined);
  });
  after(async () => {
    await server.close();
  });

  test('nothing is allowed without a rule', async () => {
    assert.equal(await allowed({ user: 'alice', resourceAttributes: metric('ml') }), false);
  });

  test('user rule limits access', async () => {
    server.accessReviews.allow({ users: ['alice'], verbs: ['list'], apiGroups: ['external.metrics.k8s.io'], resources: ['infergate_demand'], namespaces: ['ml'] });
    assert.equal(await allowed({ user: 'alice', resourceAttributes: metric('ml') }), true);
    assert.equal(await allowed({ user: 'alice', resourceAttributes: metric('other') }), false);
    assert.equal(await allowed({ user: 'alice', resourceAttributes: metric('ml', 'delete') }), false);
    assert.equal(await allowed({ user: 'bob', resourceAttributes: metric('ml') }), false);
    assert.equal(await allowed({ user: 'alice', resourceAttributes: { ...metric('ml'), group: 'apps' } }), false);
  });

  test('group rule and wildcards', async () => {
    server.accessReviews.allow({ groups: ['readers'], verbs: ['*'], apiGroups: ['*'], resources: ['*'] });
    assert.equal(await allowed({ user: 'carol', groups: ['readers'], resourceAttributes: metric('any', 'get') }), true);
    assert.equal(await allowed({ user: 'carol', groups: ['writers'], resourceAttributes: metric('any') }), false);
  });

  test('non-resource rules match paths', async () => {
    server.accessReviews.allow({ groups: ['system:authenticated'], verbs: ['get'], nonResourceURLs: ['/apis', '/apis/*'] });
    const groups = ['system:authenticated'];
    assert.equal(await allowed({ user: 'd', groups, nonResourceAttributes: { path: '/apis', verb: 'get' } }), true);
    assert.equal(await allowed({ user: 'd', groups, nonResourceAttributes: { path: '/apis/external.metrics.k8s.io/v1beta1', verb: 'get' } }), true);
    assert.equal(await allowed({ user: 'd', groups, nonResourceAttributes: { path: '/metrics', verb: 'get' } }), false);
    assert.equal(await allowed({ user: 'd', groups, nonResourceAttributes: { path: '/apis', verb: 'post' } }), false);
    // A non-resource rule never allows a resource request.
    assert.equal(await allowed({ user: 'd', groups, resourceAttributes: metric('ml') }), false);
  });

  test('review echoed and recorded', async () => {
    server.accessReviews.allow({ users: ['eve'], verbs: ['get'], nonResourceURLs: ['/apis'] });
    const before = server.accessReviews.reviews.length;
    const spec = { user: 'eve', groups: ['g'], extra: { scopes: ['x'] }, nonResourceAttributes: { path: '/apis', verb: 'get' } };
    const review = await api.createSubjectAccessReview({ body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec } });
    assert.equal(review.status?.allowed, true);
    assert.match(review.status?.reason ?? '', /fake access rule 0/);
    // The client returns class instances; compare the plain data.
    assert.deepEqual(JSON.parse(JSON.stringify(review.spec)), spec);
    assert.deepEqual(server.accessReviews.reviews[before], spec);
    assert.equal(server.requestsMatching({ method: 'POST', pathIncludes: 'subjectaccessreviews' }).at(-1)?.status, 201);
  });

  test('invalid spec gets 422', async () => {
    const post = async (spec: object) => {
      const response = await request(`${server.url}${ACCESS_REVIEW_PATH}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'SubjectAccessReview', spec }) });
      return { status: response.statusCode, body: (await response.body.json()) as { reason: string; message: string } };
    };
    const noSubject = await post({ resourceAttributes: metric('ml') });
    assert.equal(noSubject.status, 422);
    assert.match(noSubject.body.message, /at least one of user or group/);
    const both = await post({ user: 'a', resourceAttributes: metric('ml'), nonResourceAttributes: { path: '/apis', verb: 'get' } });
    assert.equal(both.status, 422);
    const neither = await post({ user: 'a' });
    assert.equal(neither.body.reason, 'Invalid');
  });

  test('GET and invalid rules rejected', async () => {
    const response = await request(`${server.url}${ACCESS_REVIEW_PATH}`);
    await response.body.dump();
    assert.equal(response.statusCode, 405);
    assert.throws(() => server.accessReviews.allow({ verbs: ['get'], nonResourceURLs: ['/apis'] }), /users or groups/);
    assert.throws(() => server.accessReviews.allow({ users: ['a'], verbs: ['get'], resources: ['x'], nonResourceURLs: ['/apis'] }), /exactly one/);
  });

  test('failAccessReviews fails until cleared', async () => {
    server.accessReviews.allow({ users: ['frank'], verbs: ['get'], nonResourceURLs: ['/apis'] });
    server.failAccessReviews(500);
    await assert.rejects(
      allowed({ user: 'frank', nonResourceAttributes: { path: '/apis', verb: 'get' } }),
      (error: unknown) => error instanceof ApiException && error.code === 500,
    );
    server.failAccessReviews(undefined);
    assert.equal(await allowed({ user: 'frank', nonResourceAttributes: { path: '/apis', verb: 'get' } }), true);
  });
});
