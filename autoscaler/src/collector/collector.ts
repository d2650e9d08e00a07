// Fetches /admin/state from every gateway in parallel each poll and keeps each gateway's
// last good snapshot. A snapshot counts until staleAfterMs after the response that brought
// it, so one failed poll of one gateway does not drop its queue from the demand.
// No lock is held across network I/O: every fetch resolves to a result value, and the
// results are applied synchronously once all of them are in.
import { Agent, request, errors as undiciErrors } from 'undici';
import type { Clock } from '../../../shared/src/clock.ts';
import type { Logger } from '../../../shared/src/logger.ts';
import type { GatewayState } from '../../../shared/src/admin-state.ts';
import type { AutoscalerMetrics } from '../metrics.ts';
import { parseGatewayState } from './state-schema.ts';

/** /admin/state bodies above this size are rejected; a gateway with thousands of replicas stays far below. */
const MAX_STATE_BYTES = 8 * 1024 * 1024;
/** Minimum milliseconds between two logged failures of the same gateway; the rest are counted. */
const FAILURE_LOG_INTERVAL_MS = 30_000;

export type FailureReason = 'timeout' | 'connect' | 'status' | 'invalid_body' | 'error';

export interface CollectorOptions {
  clock: Clock;
  logger: Logger;
  metrics: AutoscalerMetrics;
  requestTimeoutMs: number;
  staleAfterMs: number;
}

export interface FreshSnapshot {
  url: string;
  state: GatewayState;
  /** Milliseconds since the response that brought this snapshot. */
  ageMs: number;
  /** Epoch milliseconds (wall clock) of the poll that brought this snapshot. */
  receivedAt: number;
}

export interface PollResult {
  ok: number;
  failed: number;
}

interface GatewayRecord {
  url: string;
  state: GatewayState | undefined;
  lastOkAt: number | undefined;
  /** Wall-clock time of lastOkAt, for the timestamps of served values. */
  lastOkWallAt: number | undefined;
  failuresSinceLog: number;
  lastLoggedFailureAt: number | undefined;
  failing: boolean;
}

type FetchOutcome = { ok: true; state: GatewayState } | { ok: false; reason: FailureReason; error: Error };

export class Collector {
  readonly #options: CollectorOptions;
  readonly #agent: Agent;
  readonly #records = new Map<string, GatewayRecord>();
  readonly #shutdown = new AbortController();
  /** Pairs of URLs already warned about for reporting the same gateway name, keyed by both URLs. */
  readonly #warnedPairs = new Map<string, readonly [string, string]>();

  constructor(options: CollectorOptions) {
    this.#options = options;
    this.#agent = new Agent({
      connect: { timeout: options.requestTimeoutMs },
      headersTimeout: options.requestTimeoutMs,
      bodyTimeout: options.requestTimeoutMs,
      // Shorter than the gateway's keep-alive (fastify: 72 s), so this side closes first.
      keepAliveTimeout: 30_000,
    });
  }

  /** Fetches every URL once, in parallel, and records the results. Gateways not in `urls` are forgotten. */
  async poll(urls: readonly string[]): Promise<PollResult> {
    this.#forgetMissing(urls);
    const outcomes = await Promise.all(urls.map(async (url) => [url, await this.#fetch(url)] as const));

    const now = this.#options.clock.now();
    const wallNow = this.#options.clock.wallNow();
    let ok = 0;
    const answered: { url: string; identity: string }[] = [];
    for (const [url, outcome] of outcomes) {
      const record = this.#record(url);
      if (outcome.ok) {
        ok += 1;
        this.#recordSuccess(record, outcome.state, now, wallNow);
        answered.push({ url, identity: outcome.state.gateway });
      } else {
        this.#recordFailure(record, outcome.reason, outcome.error, now);
      }
    }
    this.#warnSharedIdentities(answered);
    return { ok, failed: urls.length - ok };
  }

  /** Snapshots younger than staleAfterMs, one per gateway that has one. */
  freshSnapshots(): FreshSnapshot[] {
    const now = this.#options.clock.now();
    const fresh: FreshSnapshot[] = [];
    for (const record of this.#records.values()) {
      if (record.state === undefined || record.lastOkAt === undefined || record.lastOkWallAt === undefined) continue;
      const ageMs = now - record.lastOkAt;
      if (ageMs <= this.#options.staleAfterMs) fresh.push({ url: record.url, state: record.state, ageMs, receivedAt: record.lastOkWallAt });
    }
    return fresh;
  }

  /** Aborts fetches in flight and closes the connection pool. */
  async close(): Promise<void> {
    this.#shutdown.abort(new Error('autoscaler is shutting down'));
    await this.#agent.close();
  }

  async #fetch(url: string): Promise<FetchOutcome> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error(`timed out after ${this.#options.requestTimeoutMs} ms`)), this.#options.requestTimeoutMs);
    timer.unref();
    const signal = AbortSignal.any([controller.signal, this.#shutdown.signal]);
    try {
      const response = await request(new URL('admin/state', withSlash(url)), {
        dispatcher: this.#agent,
        signal,
        headers: { accept: 'application/json' },
      });
      if (response.statusCode !== 200) {
        await response.body.dump();
        return { ok: false, reason: 'status', error: new Error(`GET /admin/state returned HTTP ${response.statusCode}`) };
      }
      let text = '';
      let size = 0;
      for await (const chunk of response.body) {
        size += (chunk as Buffer).length;
        if (size > MAX_STATE_BYTES) {
          response.body.destroy();
          return { ok: false, reason: 'invalid_body', error: new Error(`/admin/state body exceeds ${MAX_STATE_BYTES} bytes`) };
        }
        text += (chunk as Buffer).toString('utf8');
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (error) {
        return { ok: false, reason: 'invalid_body', error: new Error(`/admin/state body is not JSON: ${(error as Error).message}`) };
      }
      try {
        return { ok: true, state: parseGatewayState(parsed) };
      } catch (error) {
        return { ok: false, reason: 'invalid_body', error: error as Error };
      }
    } catch (error) {
      return { ok: false, reason: classify(error, controller.signal), error: error as Error };
    } finally {
      clearTimeout(timer);
    }
  }

  #record(url: string): GatewayRecord {
    let record = this.#records.get(url);
    if (!record) {
      record = { url, state: undefined, lastOkAt: undefined, lastOkWallAt: undefined, failuresSinceLog: 0, lastLoggedFailureAt: undefined, failing: false };
      this.#records.set(url, record);
    }
    return record;
  }

  #recordSuccess(record: GatewayRecord, state: GatewayState, now: number, wallNow: number): void {
    if (record.failing) {
      this.#options.logger.info({ gateway: record.url, failuresSinceLog: record.failuresSinceLog }, 'gateway responds again');
    }
    record.state = state;
    record.lastOkAt = now;
    record.lastOkWallAt = wallNow;
    record.failing = false;
    record.failuresSinceLog = 0;
    this.#options.metrics.sourceUp.set({ gateway: record.url }, 1);
  }

  #recordFailure(record: GatewayRecord, reason: FailureReason, error: Error, now: number): void {
    record.failing = true;
    record.failuresSinceLog += 1;
    this.#options.metrics.sourceUp.set({ gateway: record.url }, 0);
    this.#options.metrics.sourceFailures.inc({ gateway: record.url, reason });
    const last = record.lastLoggedFailureAt;
    if (last === undefined || now - last >= FAILURE_LOG_INTERVAL_MS) {
      this.#options.logger.warn(
        { gateway: record.url, reason, err: error, failures: record.failuresSinceLog, lastAnswerAgeMs: record.lastOkAt === undefined ? null : now - record.lastOkAt },
        'gateway /admin/state failed; skipped this poll',
      );
      record.lastLoggedFailureAt = now;
      record.failuresSinceLog = 0;
    }
  }

  /**
   * Warns once per pair of URLs whose responses in one poll carry the same gateway name.
   * They are not merged: two distinct gateways may share a name, while one gateway
   * reached under two spellings of its address would have its demand counted twice.
   */
  #warnSharedIdentities(answered: readonly { url: string; identity: string }[]): void {
    const byIdentity = new Map<string, string[]>();
    for (const { url, identity } of answered) byIdentity.set(identity, [...(byIdentity.get(identity) ?? []), url]);
    for (const [identity, urls] of byIdentity) {
      const sorted = [...new Set(urls)].sort();
      for (let i = 0; i < sorted.length; i += 1) {
        for (let j = i + 1; j < sorted.length; j += 1) {
          const pair = [sorted[i]!, sorted[j]!] as const;
          const key = JSON.stringify(pair);
          if (this.#warnedPairs.has(key)) continue;
          this.#warnedPairs.set(key, pair);
          this.#options.logger.warn(
            { gateways: pair, identity },
            `gateways ${pair[0]} and ${pair[1]} both report the name ${JSON.stringify(identity)}; if they are the same gateway, its demand is counted twice, so list it under one URL only`,
          );
        }
      }
    }
  }

  #forgetMissing(urls: readonly string[]): void {
    const keep = new Set(urls);
    for (const [key, pair] of this.#warnedPairs) {
      if (!keep.has(pair[0]) || !keep.has(pair[1])) this.#warnedPairs.delete(key);
    }
    for (const url of this.#records.keys()) {
      if (keep.has(url)) continue;
      this.#records.delete(url);
      this.#options.metrics.sourceUp.remove({ gateway: url });
      this.#options.logger.info({ gateway: url }, 'gateway removed from the poll list');
    }
  }
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

function classify(error: unknown, timeoutSignal: AbortSignal): FailureReason {
  if (timeoutSignal.aborted) return 'timeout';
  if (error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.BodyTimeoutError || error instanceof undiciErrors.ConnectTimeoutError) {
    return 'timeout';
  }
  const code = (error as { code?: string }).code;
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EHOSTUNREACH' || code === 'ENOTFOUND' || code === 'UND_ERR_SOCKET') return 'connect';
  return 'error';
}
