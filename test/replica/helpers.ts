// Shared helpers for the replica tests: condition polling, JSON calls and SSE parsing.
import http from 'node:http';
import { ManualClock } from '../../shared/src/clock.ts';
import { createLogger } from '../../shared/src/logger.ts';
import { startReplicaServer, type ReplicaServer, type ReplicaServerOptions } from '../../loadtest/replica/server.ts';

/** Polls `condition` until it returns true; throws after timeoutMs naming `what`. */
export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export interface JsonResponse {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<JsonResponse> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? undefined : JSON.parse(text) };
}

export async function getJson(url: string): Promise<JsonResponse> {
  const response = await fetch(url, { signal: AbortSignal.timeout(20_000) });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    // Plain-text bodies (metrics) stay strings.
  }
  return { status: response.status, headers: response.headers, body };
}

/** Splits an SSE body into the payloads of its `data:` events. */
export function sseData(text: string): string[] {
  return text
    .split('\n\n')
    .map((event) => event.trim())
    .filter((event) => event.startsWith('data: '))
    .map((event) => event.slice('data: '.length));
}

/** Sends a raw HTTP request and resolves with the status or the socket error code. */
export function rawRequest(
  url: string,
  options: { method?: string; body?: unknown; agent?: http.Agent; timeoutMs?: number } = {},
): Promise<{ status?: number; errorCode?: string; body: string; headers?: http.IncomingHttpHeaders }> {
  return new Promise((resolve) => {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const request = http.request(url, {
      method: options.method ?? (payload === undefined ? 'GET' : 'POST'),
      headers: payload === undefined ? {} : { 'content-type': 'application/json' },
      agent: options.agent ?? false,
      timeout: options.timeoutMs ?? 20_000,
    });
    let body = '';
    let status: number | undefined;
    let headers: http.IncomingHttpHeaders | undefined;
    request.on('timeout', () => request.destroy(Object.assign(new Error('client timeout'), { code: 'CLIENT_TIMEOUT' })));
    request.on('error', (error: NodeJS.ErrnoException) => resolve({ status, errorCode: error.code ?? error.message, body, headers }));
    request.on('response', (response) => {
      status = response.statusCode;
      headers = response.headers;
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('error', (error: NodeJS.ErrnoException) => resolve({ status, errorCode: error.code ?? error.message, body, headers }));
      response.on('end', () => resolve({ status, body, headers }));
    });
    request.end(payload);
  });
}

/** Starts an in-process replica on a free loopback port with a ManualClock and a silent log. */
export async function startManualReplica(options: ReplicaServerOptions = {}): Promise<{ server: ReplicaServer; clock: ManualClock }> {
  const clock = new ManualClock();
  const server = await startReplicaServer({
    host: '127.0.0.1',
    port: 0,
    logger: createLogger({ service: 'replica-test', level: 'silent' }),
    clock,
    ...options,
  });
  return { server, clock };
}
