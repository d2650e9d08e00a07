// Test helpers for code that runs against the fake Kubernetes API server: condition
// polling and a raw watch reader that records every event line.
import { request } from 'undici';
import type { WatchEvent } from './watch.ts';

/**
 * Polls `condition` every 10 ms until it returns true, or throws after timeoutMs naming
 * what was awaited. Generous timeouts keep tests stable on a busy machine.
 */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export interface RawWatch {
  /** Status code of the watch response. */
  status: number;
  /** Events received so far, in order. */
  events: WatchEvent[];
  /** Whether the server ended the body. */
  ended: () => boolean;
  /** Response headers. */
  headers: Record<string, string | string[] | undefined>;
  close: () => void;
}

/** Opens a watch with plain HTTP and records its newline-delimited JSON events. */
export async function openRawWatch(baseUrl: string, path: string, params: Record<string, string> = {}): Promise<RawWatch> {
  const url = new URL(path, baseUrl);
  url.searchParams.set('watch', 'true');
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  const controller = new AbortController();
  const response = await request(url, { signal: controller.signal });
  const events: WatchEvent[] = [];
  let ended = false;
  let buffered = '';
  response.body.setEncoding('utf8');
  response.body.on('data', (chunk: string) => {
    buffered += chunk;
    let newline = buffered.indexOf('\n');
    while (newline >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (line.trim() !== '') events.push(JSON.parse(line) as WatchEvent);
      newline = buffered.indexOf('\n');
    }
  });
  response.body.on('end', () => (ended = true));
  response.body.on('error', () => (ended = true));
  return {
    status: response.statusCode,
    events,
    ended: () => ended,
    headers: response.headers,
    close: () => controller.abort(),
  };
}
