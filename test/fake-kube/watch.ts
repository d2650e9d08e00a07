// Watch streams of the fake Kubernetes API server: newline-delimited JSON events sent
// with chunked transfer encoding, as the real API server sends them to `?watch=true`.
import type { ServerResponse } from 'node:http';
import type { FieldSelector, LabelSelector } from './selectors.ts';
import { apiVersionOf, kindOf, type KubeObject, type ResourceRef, type StoreEvent } from './store.ts';

export type WatchEvent =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: KubeObject }
  | { type: 'BOOKMARK'; object: { kind: string; apiVersion: string; metadata: { resourceVersion: string } } }
  | { type: 'ERROR'; object: KubeStatus };

export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message: string;
  reason: string;
  code: number;
  details?: Record<string, unknown>;
}

/** Builds a failure Status object, the body of every error response and of ERROR watch events. */
export function failureStatus(code: number, reason: string, message: string): KubeStatus {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

/** One open watch request. */
export class WatchStream {
  readonly ref: ResourceRef;
  readonly namespace: string | undefined;
  readonly bookmarks: boolean;
  readonly #labels: LabelSelector;
  readonly #fields: FieldSelector;
  readonly #res: ServerResponse;
  #closed = false;
  #timeout: NodeJS.Timeout | undefined;
  /** Events written to this stream, by type, for tests. */
  readonly sent = { ADDED: 0, MODIFIED: 0, DELETED: 0, BOOKMARK: 0, ERROR: 0 };

  constructor(
    res: ServerResponse,
    options: { ref: ResourceRef; namespace: string | undefined; labels: LabelSelector; fields: FieldSelector; bookmarks: boolean; timeoutSeconds?: number },
    onClose: (stream: WatchStream) => void,
  ) {
    this.#res = res;
    this.ref = options.ref;
    this.namespace = options.namespace;
    this.#labels = options.labels;
    this.#fields = options.fields;
    this.bookmarks = options.bookmarks;
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private', 'transfer-encoding': 'chunked' });
    // Sends the headers now: a client waits for them before it reads any event.
    res.flushHeaders();
    const finish = (): void => {
      if (this.#closed) return;
      this.#closed = true;
      if (this.#timeout !== undefined) clearTimeout(this.#timeout);
      onClose(this);
    };
    res.on('close', finish);
    if (options.timeoutSeconds !== undefined && options.timeoutSeconds > 0) {
      this.#timeout = setTimeout(() => this.end(), options.timeoutSeconds * 1000);
      this.#timeout.unref();
    }
  }

  /** True once the stream ended or broke; an ended stream may not have emitted 'close' yet. */
  get closed(): boolean {
    return this.#closed || this.#res.writableEnded || this.#res.destroyed;
  }

  /** Writes the event a store change means for this watch, if any: a change that moves an object across the selector becomes ADDED or DELETED. */
  deliver(event: StoreEvent): void {
    if (this.closed || !sameRef(event.resource, this.ref)) return;
    if (this.namespace !== undefined && event.namespace !== this.namespace) return;
    const now = this.#matches(event.object);
    if (event.type === 'MODIFIED') {
      const before = event.previous !== undefined && this.#matches(event.previous);
      if (before && now) this.send({ type: 'MODIFIED', object: event.object });
      else if (!before && now) this.send({ type: 'ADDED', object: event.object });
      else if (before && !now) this.send({ type: 'DELETED', object: event.object });
      return;
    }
    if (now) this.send({ type: event.type, object: event.object });
  }

  /** Sends every current object as ADDED, as a watch without a resourceVersion starts. */
  sendInitial(objects: KubeObject[]): void {
    for (const object of objects) if (this.#matches(object)) this.send({ type: 'ADDED', object });
  }

  bookmark(revision: number): void {
    if (!this.bookmarks) return;
    this.send({ type: 'BOOKMARK', object: { kind: kindOf(this.ref.resource), apiVersion: apiVersionOf(this.ref), metadata: { resourceVersion: String(revision) } } });
  }

  /** Sends 410 Gone as an ERROR event and ends the stream, as the API server does for a compacted resourceVersion. */
  expire(requested: string, oldest: number): void {
    this.send({ type: 'ERROR', object: failureStatus(410, 'Expired', `too old resource version: ${requested} (${oldest})`) });
    this.end();
  }

  send(event: WatchEvent): void {
    if (this.closed) return;
    this.sent[event.type]++;
    this.#res.write(`${JSON.stringify(event)}\n`);
  }

  /** Ends the stream cleanly, as the API server does when timeoutSeconds passes. */
  end(): void {
    if (!this.closed) this.#res.end();
  }

  /** Breaks the connection without ending the chunked body, as a crashed API server or a network failure would. */
  destroy(): void {
    if (!this.#res.destroyed) this.#res.destroy();
  }

  #matches(object: KubeObject): boolean {
    return this.#labels(object.metadata.labels) && this.#fields(object);
  }
}

function sameRef(a: ResourceRef, b: ResourceRef): boolean {
  return a.group === b.group && a.version === b.version && a.resource === b.resource;
}
