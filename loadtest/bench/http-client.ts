// One timed HTTP request for the load drivers, built on undici. It reads the whole body and
// follows SSE streams to their end. Every way a request can end becomes one RequestOutcome,
// so the drivers count each request exactly once.
import { Agent, type Dispatcher } from 'undici';
import type { Clock } from '../../shared/src/clock.ts';

export interface RequestSpec {
  method: 'GET' | 'POST';
  /** Path and query, appended to the base URL. */
  path: string;
  /** JSON body, already serialised. */
  body?: string;
  headers?: Record<string, string>;
  /** Whether the response is expected to be an SSE stream that ends with `data: [DONE]`. */
  stream?: boolean;
}

/**
 * Ending of one request. `response`: a status line and a complete body arrived.
 * `transport_error`: the connection failed or timed out first. `aborted`: this client
 * aborted it on purpose (a client-abort scenario or the end of a run).
 */
export type OutcomeKind = 'response' | 'transport_error' | 'aborted';

export interface RequestOutcome {
  kind: OutcomeKind;
  /** HTTP status, when a status line arrived. */
  status?: number;
  /**
   * Error code: the `error.code` (OpenAI shape) of an error body, `stream_error` for an SSE
   * error event, `stream_incomplete` for a stream that ended without `[DONE]`, or the undici
   * or system error code for a transport error.
   */
  code?: string;
  /** Milliseconds from sending until the first body byte (response headers for an empty body). */
  ttfbMs?: number;
  /** Milliseconds from sending until the body ended or the request failed. */
  totalMs: number;
  bodyBytes: number;
  /** Whether the response carried an x-request-id different from the one sent. */
  requestIdMismatch: boolean;
}

export interface ClientOptions {
  /** Most connections the agent opens to one origin. */
  connections: number;
  /** Milliseconds to wait for response headers, and between body chunks, before failing. */
  timeoutMs: number;
}

/** Creates the undici dispatcher the drivers share: keep-alive, bounded connections, explicit timeouts. */
export function createLoadAgent(options: ClientOptions): Dispatcher {
  return new Agent({
    connections: options.connections,
    connect: { timeout: Math.min(10_000, options.timeoutMs) },
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    keepAliveTimeout: 4_000,
    pipelining: 1,
  });
}

const SSE_DONE = 'data: [DONE]';

/**
 * Sends one request and returns how it ended. It never rejects: every failure becomes an
 * outcome, so a caller that counts outcomes counts each request once.
 */
export async function timedRequest(
  dispatcher: Dispatcher,
  baseUrl: string,
  spec: RequestSpec,
  clock: Clock,
  signal?: AbortSignal,
): Promise<RequestOutcome> {
  const startedAt = clock.now();
  const sentRequestId = spec.headers?.['x-request-id'];
  let status: number | undefined;
  let ttfbMs: number | undefined;
  let bodyBytes = 0;
  let requestIdMismatch = false;
  let scanner: SseScanner | undefined;
  const errorChunks: Buffer[] = [];
  const headers: Record<string, string> = { ...spec.headers };
  if (spec.body !== undefined) headers['content-type'] = 'application/json';

  // undici's dispatch interface rather than request(): the generator shares the machine's
  // cores with the servers it measures, and dispatch skips the per-request stream, promise
  // chain and async iteration that request() and a for-await body loop cost.
  const ended = await new Promise<Error | undefined>((resolve) => {
    let settled = false;
    let controller: Dispatcher.DispatchController | undefined;
    const settle = (error?: Error): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      resolve(error);
    };
    // Made only when a request is aborted: an Error captures a stack trace, too costly per request.
    let reason: Error | undefined;
    const abortReason = (): Error => (reason ??= new Error('request aborted by the load generator'));
    const onAbort = (): void => {
      controller?.abort(abortReason());
      settle(abortReason());
    };
    if (signal?.aborted === true) {
      settle(abortReason());
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart: (started) => {
        controller = started;
        if (settled) started.abort(abortReason());
      },
      onResponseStart: (_started, statusCode, responseHeaders) => {
        status = statusCode;
        const returnedId = responseHeaders['x-request-id'];
        requestIdMismatch = sentRequestId !== undefined && typeof returnedId === 'string' && returnedId !== sentRequestId;
        if (spec.stream === true && statusCode >= 200 && statusCode < 300) scanner = new SseScanner();
      },
      onResponseData: (_started, chunk) => {
        if (settled) return;
        if (ttfbMs === undefined) ttfbMs = clock.now() - startedAt;
        bodyBytes += chunk.length;
        if (scanner !== undefined) scanner.push(chunk.toString('utf8'));
        else if ((status ?? 0) >= 400 && bodyBytes <= 64 * 1024) errorChunks.push(chunk);
      },
      onResponseEnd: () => settle(),
      onResponseError: (_started, error) => settle(error),
    };
    try {
      const url = new URL(spec.path, baseUrl);
      dispatcher.dispatch({ origin: url.origin, path: url.pathname + url.search, method: spec.method, headers, body: spec.body }, handler);
    } catch (error) {
      settle(error as Error);
    }
  });

  const totalMs = clock.now() - startedAt;
  if (ended !== undefined) {
    const aborted = signal?.aborted === true;
    return {
      kind: aborted ? 'aborted' : 'transport_error',
      status,
      code: aborted ? 'client_aborted' : transportCodeOf(ended),
      ttfbMs,
      totalMs,
      bodyBytes,
      requestIdMismatch,
    };
  }
  ttfbMs ??= totalMs;
  let code: string | undefined;
  if (scanner !== undefined) code = scanner.finish();
  else if ((status ?? 0) >= 400) code = errorCodeOf(Buffer.concat(errorChunks).toString('utf8'));
  return { kind: 'response', status, code, ttfbMs, totalMs, bodyBytes, requestIdMismatch };
}

/** Extracts a stable error code from an error body: OpenAI `error.code`/`error.type`, else `http_error`. */
export function errorCodeOf(body: string): string {
  try {
    const parsed = JSON.parse(body) as unknown;
    if (typeof parsed === 'object' && parsed !== null && 'error' in parsed) {
      const error = (parsed as { error: unknown }).error;
      if (typeof error === 'object' && error !== null) {
        const { code, type } = error as { code?: unknown; type?: unknown };
        if (typeof code === 'string' && code !== '') return code;
        if (typeof type === 'string' && type !== '') return type;
      }
      // KServe V2 errors are a bare message string without a code.
      if (typeof error === 'string') return 'v2_error';
    }
  } catch {
    // Not JSON: fall through to the generic code.
  }
  return 'http_error';
}

function transportCodeOf(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return error instanceof Error ? error.name : 'unknown_error';
}

/**
 * Incremental reader of an SSE body that notes whether the stream ended with `data: [DONE]`
 * and whether an error arrived (an `event: error` line, or a data line whose JSON has `error`).
 */
export class SseScanner {
  #partial = '';
  #sawDone = false;
  #errorCode: string | undefined;
  #sawErrorEvent = false;

  push(text: string): void {
    const lines = (this.#partial + text).split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines) this.#scanLine(line.endsWith('\r') ? line.slice(0, -1) : line);
  }

  /** Returns undefined for a clean stream, or the error code that describes how it ended. */
  finish(): string | undefined {
    if (this.#partial !== '') this.#scanLine(this.#partial);
    this.#partial = '';
    if (this.#errorCode !== undefined) return this.#errorCode;
    if (this.#sawErrorEvent) return 'stream_error';
    return this.#sawDone ? undefined : 'stream_incomplete';
  }

  #scanLine(line: string): void {
    if (line === SSE_DONE) {
      this.#sawDone = true;
      return;
    }
    if (line === 'event: error') {
      this.#sawErrorEvent = true;
      return;
    }
    // Only lines that mention "error" are parsed, which keeps long streams cheap. A chunk whose
    // generated text contains the word has no top-level error key and is ignored.
    if (line.startsWith('data: {') && line.includes('"error"')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line.slice('data: '.length));
      } catch {
        return;
      }
      if (typeof parsed !== 'object' || parsed === null || !('error' in parsed)) return;
      const code = errorCodeOf(line.slice('data: '.length));
      this.#errorCode ??= code === 'http_error' || code === 'v2_error' ? 'stream_error' : code;
    }
  }
}
