// A fake Kubernetes API server for tests: real HTTP on loopback that @kubernetes/client-node
// talks to through an ordinary KubeConfig. It serves list, get, create, update, patch,
// delete and watch for any namespaced resource, the scale subresource of apps/v1
// Deployments and StatefulSets, and fault controls (dropped watches, outages, forced
// 410 Gone, delays). Objects live in an ObjectStore; tests change them through the
// methods here or through the HTTP API.
//
// It is hand-written because no npm package provides an in-process API server. The real
// kube-apiserver needs etcd and binaries that the test machines do not have.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeConfig } from '@kubernetes/client-node';
import { kubeConfigForServer } from '../../shared/src/kube.ts';
import { applyPatch, PATCH_TYPES, type PatchType } from './patch.ts';
import { formatMatchLabels, parseFieldSelector, parseLabelSelector, SelectorError } from './selectors.ts';
import { apiVersionOf, kindOf, notFound, ObjectStore, StatusError, type KubeObject, type ResourceRef } from './store.ts';
import { failureStatus, WatchStream } from './watch.ts';
import { ACCESS_REVIEW_PATH, AccessReviewer } from './access-review.ts';

export { ObjectStore, StatusError, type KubeObject, type ResourceRef } from './store.ts';
export { ACCESS_REVIEW_PATH, AccessReviewer, type AccessRule, type ReviewSpec } from './access-review.ts';

/** Resources the project's code uses, for the test helpers. */
export const RESOURCES = {
  endpointSlices: { group: 'discovery.k8s.io', version: 'v1', resource: 'endpointslices' },
  deployments: { group: 'apps', version: 'v1', resource: 'deployments' },
  statefulSets: { group: 'apps', version: 'v1', resource: 'statefulsets' },
  events: { group: '', version: 'v1', resource: 'events' },
  eventsV1: { group: 'events.k8s.io', version: 'v1', resource: 'events' },
  pods: { group: '', version: 'v1', resource: 'pods' },
  services: { group: '', version: 'v1', resource: 'services' },
  configMaps: { group: '', version: 'v1', resource: 'configmaps' },
} as const satisfies Record<string, ResourceRef>;

export interface FakeKubeOptions {
  /** Bearer token every request must carry; when unset, requests need no credentials. */
  token?: string;
  /** Changes kept for watch replay (default 1000). */
  historyLimit?: number;
  /** Interval of BOOKMARK events on watches that allow them; 0 (the default) sends them only on bookmarkAll(). */
  bookmarkIntervalMs?: number;
  /** Whether a scale change also sets status.replicas, readyReplicas and availableReplicas, as if the pods came up at once (default true). */
  mirrorScaleToStatus?: boolean;
}

export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  watch: boolean;
  status: number;
  at: number;
}

/** How requests fail during a simulated outage: refused connections, or 503 responses. */
export type OutageMode = 'refuse' | 'unavailable';

interface ParsedPath {
  ref: ResourceRef;
  namespace: string | undefined;
  name: string | undefined;
  subresource: string | undefined;
}

const SCALABLE = new Set(['apps/deployments', 'apps/statefulsets']);

export class FakeKubeServer {
  readonly store: ObjectStore;
  /** Every request the server received, oldest first. */
  readonly requests: RequestRecord[] = [];
  /** Rule table that decides POST /apis/authorization.k8s.io/v1/subjectaccessreviews, set by tests. */
  readonly accessReviews = new AccessReviewer();
  #accessReviewFailure: number | undefined;
  readonly #server: Server;
  readonly #options: Required<Omit<FakeKubeOptions, 'token'>> & { token: string | undefined };
  readonly #watches = new Set<WatchStream>();
  readonly #sockets = new Set<Socket>();
  #port = 0;
  #host = '127.0.0.1';
  #outage: OutageMode | undefined;
  #forcedGone = 0;
  #delayMs = 0;
  #bookmarkTimer: NodeJS.Timeout | undefined;
  #unsubscribe: () => void;

  private constructor(options: FakeKubeOptions) {
    this.#options = {
      token: options.token,
      historyLimit: options.historyLimit ?? 1000,
      bookmarkIntervalMs: options.bookmarkIntervalMs ?? 0,
      mirrorScaleToStatus: options.mirrorScaleToStatus ?? true,
    };
    this.store = new ObjectStore({ historyLimit: this.#options.historyLimit });
    this.#unsubscribe = this.store.subscribe((event) => {
      for (const watch of this.#watches) watch.deliver(event);
    });
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) sendStatus(res, 500, 'InternalError', `fake API server failed: ${(err as Error).message}`);
        else res.destroy();
      });
    });
    this.#server.on('connection', (socket) => {
      if (this.#outage === 'refuse') {
        socket.destroy();
        return;
      }
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  /** Starts a server on 127.0.0.1 (or the given loopback host) on a free port. */
  static async start(options: FakeKubeOptions = {}, host = '127.0.0.1'): Promise<FakeKubeServer> {
    const server = new FakeKubeServer(options);
    server.#host = host;
    await server.#listen(0);
    if (server.#options.bookmarkIntervalMs > 0) {
      server.#bookmarkTimer = setInterval(() => server.bookmarkAll(), server.#options.bookmarkIntervalMs);
      server.#bookmarkTimer.unref();
    }
    return server;
  }

  /** Base URL, such as http://127.0.0.1:41234. */
  get url(): string {
    const host = this.#host.includes(':') ? `[${this.#host}]` : this.#host;
    return `http://${host}:${this.#port}`;
  }

  /** Builds a KubeConfig whose current context points at this server, with the server's token. */
  kubeConfig(): KubeConfig {
    return kubeConfigForServer(this.url, this.#options.token);
  }

  /** Number of watch requests currently open. */
  get openWatches(): number {
    return [...this.#watches].filter((watch) => !watch.closed).length;
  }

  /** Requests made so far that match a filter, for assertions. */
  requestsMatching(filter: { method?: string; pathIncludes?: string; watch?: boolean }): RequestRecord[] {
    return this.requests.filter(
      (r) =>
        (filter.method === undefined || r.method === filter.method) &&
        (filter.pathIncludes === undefined || r.path.includes(filter.pathIncludes)) &&
        (filter.watch === undefined || r.watch === filter.watch),
    );
  }

  // ---- object helpers for tests ----

  create(ref: ResourceRef, namespace: string, object: KubeObject): KubeObject {
    return this.store.create(ref, namespace, object);
  }

  /** Changes an object in place through a function; the store bumps its resourceVersion and notifies watches. */
  modify(ref: ResourceRef, namespace: string, name: string, change: (object: KubeObject) => KubeObject | void): KubeObject {
    return this.store.modify(ref, namespace, name, change);
  }

  delete(ref: ResourceRef, namespace: string, name: string): KubeObject {
    return this.store.delete(ref, namespace, name);
  }

  get(ref: ResourceRef, namespace: string, name: string): KubeObject | undefined {
    return this.store.get(ref, namespace, name);
  }

  list(ref: ResourceRef, namespace?: string): KubeObject[] {
    return this.store.list(ref, namespace);
  }

  /** Core v1 and events.k8s.io/v1 Events, oldest first. */
  events(namespace?: string): KubeObject[] {
    const all = [...this.store.list(RESOURCES.events, namespace), ...this.store.list(RESOURCES.eventsV1, namespace)];
    return all.sort((a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion));
  }

  // ---- fault controls ----

  /** Closes every open watch: cleanly (the chunked body ends) or abruptly (the connection breaks). */
  dropWatches(options: { abrupt?: boolean } = {}): number {
    let dropped = 0;
    for (const watch of this.#watches) {
      if (watch.closed) continue;
      dropped++;
      if (options.abrupt === true) watch.destroy();
      else watch.end();
    }
    return dropped;
  }

  /**
   * Starts an outage: every open connection breaks, and until endOutage() new connections
   * are refused ('refuse': the listening socket is closed) or get 503 responses ('unavailable').
   */
  async startOutage(mode: OutageMode): Promise<void> {
    this.#outage = mode;
    this.dropWatches({ abrupt: true });
    for (const socket of this.#sockets) socket.destroy();
    if (mode === 'refuse') await this.#closeListener();
  }

  async endOutage(): Promise<void> {
    const mode = this.#outage;
    this.#outage = undefined;
    if (mode === 'refuse') await this.#listen(this.#port);
  }

  /** Makes the next `count` watch requests fail with 410 Gone, whatever their resourceVersion. */
  failNextWatchesWithGone(count = 1): void {
    this.#forcedGone += count;
  }

  /** Makes every SubjectAccessReview fail with this HTTP status until called with undefined. */
  failAccessReviews(code: number | undefined): void {
    this.#accessReviewFailure = code;
  }

  /** Delays every response by ms (0 turns the delay off). */
  setDelay(ms: number): void {
    this.#delayMs = ms;
  }

  /** Sends a BOOKMARK with the current resourceVersion to every watch that allows bookmarks. */
  bookmarkAll(): void {
    for (const watch of this.#watches) watch.bookmark(this.store.revision);
  }

  async close(): Promise<void> {
    if (this.#bookmarkTimer !== undefined) clearInterval(this.#bookmarkTimer);
    this.#unsubscribe();
    this.dropWatches({ abrupt: true });
    for (const socket of this.#sockets) socket.destroy();
    await this.#closeListener();
  }

  // ---- HTTP ----

  async #listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, this.#host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  async #closeListener(): Promise<void> {
    if (!this.#server.listening) return;
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams);
    const watch = query.watch === 'true' || query.watch === '1';
    const record: RequestRecord = { method: req.method ?? 'GET', path: url.pathname, query, watch, status: 0, at: Date.now() };
    this.requests.push(record);
    res.on('finish', () => (record.status = res.statusCode));
    res.on('close', () => {
      if (record.status === 0) record.status = res.statusCode;
    });

    if (this.#delayMs > 0) await sleep(this.#delayMs);
    if (this.#outage === 'unavailable') {
      sendStatus(res, 503, 'ServiceUnavailable', 'the API server is unavailable (simulated outage)');
      return;
    }
    if (this.#options.token !== undefined && req.headers.authorization !== `Bearer ${this.#options.token}`) {
      sendStatus(res, 401, 'Unauthorized', 'Unauthorized');
      return;
    }
    if (url.pathname === ACCESS_REVIEW_PATH) {
      try {
        await this.#accessReview(req, res);
      } catch (err) {
        if (err instanceof StatusError) sendStatus(res, err.code, err.reason, err.message);
        else throw err;
      }
      return;
    }
    const parsed = parsePath(url.pathname);
    if (parsed === undefined) {
      sendStatus(res, 404, 'NotFound', `the server could not find the requested resource (path ${url.pathname})`);
      return;
    }
    try {
      await this.#dispatch(req, res, parsed, url.searchParams, watch);
    } catch (err) {
      if (err instanceof StatusError) sendStatus(res, err.code, err.reason, err.message);
      else if (err instanceof SelectorError) sendStatus(res, 400, 'BadRequest', err.message);
      else throw err;
    }
  }

  async #dispatch(req: IncomingMessage, res: ServerResponse, path: ParsedPath, params: URLSearchParams, watch: boolean): Promise<void> {
    const { ref, namespace, name, subresource } = path;
    const method = req.method ?? 'GET';
    if (subresource !== undefined) {
      if (subresource !== 'scale' || !SCALABLE.has(`${ref.group}/${ref.resource}`) || namespace === undefined || name === undefined) {
        throw new StatusError(404, 'NotFound', `the server could not find the requested resource (${ref.resource}/${subresource})`);
      }
      await this.#scale(req, res, ref, namespace, name);
      return;
    }
    if (name === undefined) {
      if (method === 'GET' && watch) return this.#watch(res, ref, namespace, params);
      if (method === 'GET') return sendJson(res, 200, this.#list(ref, namespace, params));
      if (method === 'POST' && namespace !== undefined) return sendJson(res, 201, this.store.create(ref, namespace, await readObject(req)));
      throw new StatusError(405, 'MethodNotAllowed', `method ${method} is not supported on the ${ref.resource} collection`);
    }
    if (namespace === undefined) throw new StatusError(404, 'NotFound', `${ref.resource} is namespaced; use /namespaces/{namespace}/${ref.resource}/${name}`);
    switch (method) {
      case 'GET': {
        const object = this.store.get(ref, namespace, name);
        if (object === undefined) throw notFound(ref, name);
        return sendJson(res, 200, object);
      }
      case 'PUT':
        return sendJson(res, 200, this.store.update(ref, namespace, name, await readObject(req)));
      case 'PATCH': {
        const type = patchType(req);
        const patch = await readJson(req);
        const current = this.store.get(ref, namespace, name);
        if (current === undefined) throw notFound(ref, name);
        const patched = applyPatch(current, patch, type) as KubeObject;
        patched.metadata.resourceVersion = (patch as { metadata?: { resourceVersion?: string } } | null)?.metadata?.resourceVersion;
        return sendJson(res, 200, this.store.update(ref, namespace, name, patched));
      }
      case 'DELETE':
        return sendJson(res, 200, this.store.delete(ref, namespace, name));
      default:
        throw new StatusError(405, 'MethodNotAllowed', `method ${method} is not supported on ${ref.resource}/${name}`);
    }
  }

  #list(ref: ResourceRef, namespace: string | undefined, params: URLSearchParams): unknown {
    const labels = parseLabelSelector(params.get('labelSelector'));
    const fields = parseFieldSelector(params.get('fieldSelector'));
    let items = this.store.list(ref, namespace).filter((object) => labels(object.metadata.labels) && fields(object));
    const metadata: { resourceVersion: string; continue?: string } = { resourceVersion: String(this.store.revision) };
    const limit = Number(params.get('limit') ?? '0');
    const start = decodeContinue(params.get('continue'));
    if (start > 0) items = items.slice(start);
    if (Number.isInteger(limit) && limit > 0 && items.length > limit) {
      items = items.slice(0, limit);
      metadata.continue = Buffer.from(JSON.stringify({ start: start + limit })).toString('base64url');
    }
    return { kind: `${kindOf(ref.resource)}List`, apiVersion: apiVersionOf(ref), metadata, items };
  }

  #watch(res: ServerResponse, ref: ResourceRef, namespace: string | undefined, params: URLSearchParams): void {
    const labels = parseLabelSelector(params.get('labelSelector'));
    const fields = parseFieldSelector(params.get('fieldSelector'));
    const requested = params.get('resourceVersion') ?? '';
    const timeoutSeconds = Number(params.get('timeoutSeconds') ?? '0');
    const stream = new WatchStream(
      res,
      { ref, namespace, labels, fields, bookmarks: params.get('allowWatchBookmarks') === 'true', timeoutSeconds: Number.isFinite(timeoutSeconds) ? timeoutSeconds : 0 },
      (closed) => this.#watches.delete(closed),
    );
    if (this.#forcedGone > 0) {
      this.#forcedGone--;
      stream.expire(requested, this.store.compactedRevision);
      return;
    }
    if (requested === '' || requested === '0') {
      stream.sendInitial(this.store.list(ref, namespace));
    } else {
      const revision = Number(requested);
      const changes = Number.isInteger(revision) ? this.store.changesSince(revision) : undefined;
      if (changes === undefined) {
        stream.expire(requested, this.store.compactedRevision);
        return;
      }
      for (const change of changes) stream.deliver(change);
    }
    // Registering after the replay, in the same tick, means no change is missed or sent twice.
    this.#watches.add(stream);
  }

  async #accessReview(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') throw new StatusError(405, 'MethodNotAllowed', `method ${req.method ?? ''} is not supported on subjectaccessreviews; only create (POST) is`);
    const body = await readJson(req);
    if (this.#accessReviewFailure !== undefined) {
      throw new StatusError(this.#accessReviewFailure, 'InternalError', 'SubjectAccessReview failed (simulated)');
    }
    sendJson(res, 201, this.accessReviews.review(body));
  }

  async #scale(req: IncomingMessage, res: ServerResponse, ref: ResourceRef, namespace: string, name: string): Promise<void> {
    const parent = this.store.get(ref, namespace, name);
    if (parent === undefined) throw notFound(ref, name);
    const method = req.method ?? 'GET';
    if (method === 'GET') return sendJson(res, 200, scaleOf(parent));
    let requested: KubeObject;
    if (method === 'PUT') requested = await readObject(req);
    else if (method === 'PATCH') requested = applyPatch(scaleOf(parent), await readJson(req), patchType(req)) as KubeObject;
    else throw new StatusError(405, 'MethodNotAllowed', `method ${method} is not supported on ${ref.resource}/${name}/scale`);
    const replicas = (requested.spec as { replicas?: unknown } | undefined)?.replicas;
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
      throw new StatusError(422, 'Invalid', `Scale.autoscaling "${name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be an integer >= 0`);
    }
    const given = method === 'PUT' ? requested.metadata.resourceVersion : undefined;
    if (given !== undefined && given !== '' && given !== parent.metadata.resourceVersion) {
      throw new StatusError(409, 'Conflict', `Operation cannot be fulfilled on ${ref.resource}.${ref.group} "${name}": the object has been modified; please apply your changes to the latest version and try again`);
    }
    const updated = this.store.modify(ref, namespace, name, (object) => {
      const spec = (object.spec ?? {}) as Record<string, unknown>;
      spec.replicas = replicas;
      object.spec = spec;
      if (this.#options.mirrorScaleToStatus) {
        object.status = { ...(object.status as Record<string, unknown> | undefined), replicas, readyReplicas: replicas, availableReplicas: replicas, updatedReplicas: replicas };
      }
    });
    sendJson(res, 200, scaleOf(updated));
  }
}

/** Builds the autoscaling/v1 Scale of a Deployment or StatefulSet. */
function scaleOf(parent: KubeObject): KubeObject {
  const spec = (parent.spec ?? {}) as { replicas?: number; selector?: { matchLabels?: Record<string, string> } };
  const status = (parent.status ?? {}) as { replicas?: number };
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: {
      name: parent.metadata.name,
      namespace: parent.metadata.namespace,
      uid: parent.metadata.uid,
      resourceVersion: parent.metadata.resourceVersion,
      creationTimestamp: parent.metadata.creationTimestamp,
    },
    spec: { replicas: spec.replicas ?? 1 },
    status: { replicas: status.replicas ?? 0, selector: formatMatchLabels(spec.selector?.matchLabels) },
  };
}

/** Splits /api/v1/... and /apis/{group}/{version}/... paths into resource, namespace, name and subresource. */
function parsePath(pathname: string): ParsedPath | undefined {
  const segments = pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (segments[0] === 'api' && segments.length >= 3) {
    group = '';
    version = segments[1] ?? '';
    rest = segments.slice(2);
  } else if (segments[0] === 'apis' && segments.length >= 4) {
    group = segments[1] ?? '';
    version = segments[2] ?? '';
    rest = segments.slice(3);
  } else {
    return undefined;
  }
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    const [, namespace, resource = '', name, subresource, ...extra] = rest;
    if (extra.length > 0) return undefined;
    return { ref: { group, version, resource }, namespace, name, subresource };
  }
  if (rest.length === 1) return { ref: { group, version, resource: rest[0] ?? '' }, namespace: undefined, name: undefined, subresource: undefined };
  return undefined;
}

function decodeContinue(token: string | null): number {
  if (token === null || token === '') return 0;
  try {
    const { start } = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { start?: unknown };
    if (typeof start === 'number' && Number.isInteger(start) && start >= 0) return start;
  } catch {
    // Falls through to the 400 below.
  }
  throw new StatusError(400, 'BadRequest', `invalid continue token "${token}"`);
}

function patchType(req: IncomingMessage): PatchType {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
  if ((PATCH_TYPES as readonly string[]).includes(type)) return type as PatchType;
  throw new StatusError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${PATCH_TYPES.join(', ')} (got "${type}")`);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new StatusError(400, 'BadRequest', `the request body is not valid JSON: ${(err as Error).message}`);
  }
}

async function readObject(req: IncomingMessage): Promise<KubeObject> {
  const body = await readJson(req);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new StatusError(400, 'BadRequest', 'the request body must be a JSON object');
  }
  const object = body as KubeObject;
  object.metadata ??= {};
  return object;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendStatus(res: ServerResponse, code: number, reason: string, message: string): void {
  sendJson(res, code, failureStatus(code, reason, message));
}
