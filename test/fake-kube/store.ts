// In-memory object store of the fake Kubernetes API server: objects keyed by resource
// (group/version/resource), namespace and name, one global resourceVersion counter like
// etcd's revision, and a bounded history of changes that watches replay from.
import { randomUUID } from 'node:crypto';

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  /** resourceVersion of the change, as a number for ordering. */
  revision: number;
  type: WatchEventType;
  resource: ResourceRef;
  namespace: string;
  /** The object after the change; for DELETED its last state with the deletion's resourceVersion. */
  object: KubeObject;
  /** The object before a MODIFIED change, for watches whose selector the change crosses. */
  previous?: KubeObject;
}

/** Identifies a resource type; `group` is '' for the core API (/api/v1). */
export interface ResourceRef {
  group: string;
  version: string;
  resource: string;
}

/** An error the server turns into a Kubernetes Status response. */
export class StatusError extends Error {
  readonly code: number;
  readonly reason: string;
  constructor(code: number, reason: string, message: string) {
    super(message);
    this.code = code;
    this.reason = reason;
  }
}

const KINDS: Record<string, string> = {
  pods: 'Pod',
  services: 'Service',
  endpoints: 'Endpoints',
  events: 'Event',
  configmaps: 'ConfigMap',
  secrets: 'Secret',
  namespaces: 'Namespace',
  deployments: 'Deployment',
  statefulsets: 'StatefulSet',
  replicasets: 'ReplicaSet',
  endpointslices: 'EndpointSlice',
  horizontalpodautoscalers: 'HorizontalPodAutoscaler',
  leases: 'Lease',
};

/** Returns the kind served for a resource, such as EndpointSlice for endpointslices. */
export function kindOf(resource: string): string {
  return KINDS[resource] ?? resource.replace(/s$/, '').replace(/^./, (c) => c.toUpperCase());
}

/** Returns the apiVersion string of a resource: `v1` for the core group, `group/version` otherwise. */
export function apiVersionOf(ref: ResourceRef): string {
  return ref.group === '' ? ref.version : `${ref.group}/${ref.version}`;
}

function refKey(ref: ResourceRef): string {
  return `${ref.group}/${ref.version}/${ref.resource}`;
}

export interface ObjectStoreOptions {
  /** Number of changes kept for watch replay; a watch from an older resourceVersion gets 410 Gone. */
  historyLimit?: number;
  /** Wall clock for creationTimestamp. */
  now?: () => number;
}

export class ObjectStore {
  readonly #objects = new Map<string, Map<string, KubeObject>>();
  readonly #history: StoreEvent[] = [];
  readonly #historyLimit: number;
  readonly #listeners = new Set<(event: StoreEvent) => void>();
  readonly #now: () => number;
  #revision = 100;
  /** Changes at or below this revision are no longer in the history. */
  #compactedRevision = 100;

  constructor(options: ObjectStoreOptions = {}) {
    this.#historyLimit = options.historyLimit ?? 1000;
    this.#now = options.now ?? Date.now;
  }

  /** The latest resourceVersion, as list responses report it. */
  get revision(): number {
    return this.#revision;
  }

  /** The oldest resourceVersion a watch may start from. */
  get compactedRevision(): number {
    return this.#compactedRevision;
  }

  /** Subscribes to every change; returns the unsubscribe function. */
  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Returns the retained changes after a revision, or undefined when some were already compacted away. */
  changesSince(revision: number): StoreEvent[] | undefined {
    if (revision < this.#compactedRevision) return undefined;
    return this.#history.filter((event) => event.revision > revision);
  }

  /** Drops the whole history, as etcd compaction does, so every watch from an older resourceVersion gets 410. */
  compact(): void {
    this.#history.length = 0;
    this.#compactedRevision = this.#revision;
  }

  get(ref: ResourceRef, namespace: string, name: string): KubeObject | undefined {
    const object = this.#bucket(ref).get(objectKey(namespace, name));
    return object === undefined ? undefined : structuredClone(object);
  }

  /** Lists objects of a resource, in one namespace or in all when namespace is undefined, sorted by namespace and name. */
  list(ref: ResourceRef, namespace?: string): KubeObject[] {
    const result: KubeObject[] = [];
    for (const object of this.#bucket(ref).values()) {
      if (namespace === undefined || object.metadata.namespace === namespace) result.push(structuredClone(object));
    }
    return result.sort((a, b) => compare(objectKey(a.metadata.namespace ?? '', a.metadata.name ?? ''), objectKey(b.metadata.namespace ?? '', b.metadata.name ?? '')));
  }

  create(ref: ResourceRef, namespace: string, input: KubeObject): KubeObject {
    const object = structuredClone(input);
    object.metadata ??= {};
    const meta = object.metadata;
    if ((meta.name === undefined || meta.name === '') && typeof meta.generateName === 'string' && meta.generateName !== '') {
      meta.name = `${meta.generateName}${randomUUID().slice(0, 5)}`;
    }
    if (typeof meta.name !== 'string' || meta.name === '') {
      throw new StatusError(422, 'Invalid', `${kindOf(ref.resource)} is invalid: metadata.name: Required value: name or generateName is required`);
    }
    if (meta.namespace !== undefined && meta.namespace !== namespace) {
      throw new StatusError(400, 'BadRequest', `the namespace of the object (${meta.namespace}) does not match the namespace of the request (${namespace})`);
    }
    const bucket = this.#bucket(ref);
    const key = objectKey(namespace, meta.name);
    if (bucket.has(key)) {
      throw new StatusError(409, 'AlreadyExists', `${ref.resource}${ref.group === '' ? '' : `.${ref.group}`} "${meta.name}" already exists`);
    }
    object.apiVersion = apiVersionOf(ref);
    object.kind ??= kindOf(ref.resource);
    meta.namespace = namespace;
    meta.uid = randomUUID();
    meta.creationTimestamp = new Date(this.#now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    meta.generation = 1;
    meta.resourceVersion = String(++this.#revision);
    bucket.set(key, object);
    this.#record({ revision: this.#revision, type: 'ADDED', resource: ref, namespace, object: structuredClone(object) });
    return structuredClone(object);
  }

  /**
   * Replaces an object. A resourceVersion in the input must equal the stored one (409
   * Conflict otherwise), as optimistic concurrency on a real API server requires.
   */
  update(ref: ResourceRef, namespace: string, name: string, input: KubeObject): KubeObject {
    const bucket = this.#bucket(ref);
    const key = objectKey(namespace, name);
    const current = bucket.get(key);
    if (current === undefined) throw notFound(ref, name);
    const object = structuredClone(input);
    object.metadata ??= {};
    if (object.metadata.name !== undefined && object.metadata.name !== name) {
      throw new StatusError(400, 'BadRequest', `the name of the object (${object.metadata.name}) does not match the name in the URL (${name})`);
    }
    const given = object.metadata.resourceVersion;
    if (given !== undefined && given !== '' && given !== current.metadata.resourceVersion) {
      throw new StatusError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${ref.resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    }
    object.apiVersion = current.apiVersion;
    object.kind = current.kind;
    object.metadata = {
      ...object.metadata,
      name,
      namespace,
      uid: current.metadata.uid,
      creationTimestamp: current.metadata.creationTimestamp,
      generation: (current.metadata.generation ?? 1) + (JSON.stringify(object.spec) !== JSON.stringify(current.spec) ? 1 : 0),
    };
    if (JSON.stringify(withoutVersion(object)) === JSON.stringify(withoutVersion(current))) return structuredClone(current);
    object.metadata.resourceVersion = String(++this.#revision);
    bucket.set(key, object);
    this.#record({ revision: this.#revision, type: 'MODIFIED', resource: ref, namespace, object: structuredClone(object), previous: current });
    return structuredClone(object);
  }

  /** Applies a change function to the stored object and saves the result, for tests and patches. */
  modify(ref: ResourceRef, namespace: string, name: string, change: (object: KubeObject) => KubeObject | void): KubeObject {
    const current = this.get(ref, namespace, name);
    if (current === undefined) throw notFound(ref, name);
    const changed = change(current) ?? current;
    changed.metadata.resourceVersion = undefined;
    return this.update(ref, namespace, name, changed);
  }

  delete(ref: ResourceRef, namespace: string, name: string): KubeObject {
    const bucket = this.#bucket(ref);
    const key = objectKey(namespace, name);
    const current = bucket.get(key);
    if (current === undefined) throw notFound(ref, name);
    bucket.delete(key);
    const last = structuredClone(current);
    last.metadata.resourceVersion = String(++this.#revision);
    this.#record({ revision: this.#revision, type: 'DELETED', resource: ref, namespace, object: structuredClone(last) });
    return last;
  }

  #bucket(ref: ResourceRef): Map<string, KubeObject> {
    const key = refKey(ref);
    let bucket = this.#objects.get(key);
    if (bucket === undefined) {
      bucket = new Map();
      this.#objects.set(key, bucket);
    }
    return bucket;
  }

  #record(event: StoreEvent): void {
    this.#history.push(event);
    while (this.#history.length > this.#historyLimit) {
      const dropped = this.#history.shift();
      if (dropped !== undefined) this.#compactedRevision = dropped.revision;
    }
    for (const listener of this.#listeners) listener(event);
  }
}

/** Returns the 404 NotFound error the API server gives for a missing object. */
export function notFound(ref: ResourceRef, name: string): StatusError {
  return new StatusError(404, 'NotFound', `${ref.resource}${ref.group === '' ? '' : `.${ref.group}`} "${name}" not found`);
}

function objectKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function compare(a: string, b: string): number {
  if (a < b) return -1;
  return a > b ? 1 : 0;
}

function withoutVersion(object: KubeObject): KubeObject {
  return { ...object, metadata: { ...object.metadata, resourceVersion: undefined } };
}
