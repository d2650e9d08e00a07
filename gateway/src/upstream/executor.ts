// Runs one upstream call for a single request or a merged batch and responds to every job
// in it. Job.finish ignores a second response, so each job is counted once. The executor
// passes responses through, streams SSE chunk by chunk, splits batched responses, and
// hands retryable failures back to the scheduler.
import { once } from 'node:events';
import type { Dispatcher } from 'undici';
import type { Clock } from '../../../shared/src/clock.ts';
import type { GatewayMetrics } from '../admin/metrics.ts';
import { GatewayError, type Outcome } from '../http/errors.ts';
import type { CallVerdict } from '../replicas/health.ts';
import type { Replica } from '../replicas/replica.ts';
import type { ReplicaSet } from '../replicas/pool.ts';
import { mergeEmbeddings, mergeV2, splitEmbeddings, splitV2, type EmbeddingsBody, type V2InferBody } from '../scheduling/batcher.ts';
import type { Job } from '../scheduling/job.ts';
import type { Executor, ModelScheduler, RetryReason } from '../scheduling/scheduler.ts';
import { classifyUpstreamError, parseRetryAfter, postUpstream, type UpstreamFailure } from './client.ts';
import { sseErrorEvent } from './sse.ts';

export interface ExecutorDeps {
  clock: Clock;
  metrics: GatewayMetrics;
  replicas: ReplicaSet;
  scheduler: () => ModelScheduler;
}

interface BatchCodec {
  merge(payloads: unknown[]): unknown;
  split(payloads: unknown[], response: unknown): unknown[];
}

const EMBEDDINGS_CODEC: BatchCodec = {
  merge: (payloads) => mergeEmbeddings(payloads as EmbeddingsBody[]),
  split: (payloads, response) => splitEmbeddings(payloads as EmbeddingsBody[], response),
};

const V2_CODEC: BatchCodec = {
  merge: (payloads) => mergeV2(payloads as V2InferBody[]),
  split: (payloads, response) => splitV2(payloads as V2InferBody[], response),
};

export function createExecutor(deps: ExecutorDeps): Executor {
  return (jobs, replica) => execute(deps, jobs, replica);
}

async function execute(deps: ExecutorDeps, jobs: Job[], replica: Replica): Promise<CallVerdict> {
  const first = jobs[0];
  if (first === undefined) return 'neutral';
  const model = first.model;
  const call = jobs.length === 1 ? singleCall(first) : batchCall(jobs);
  const codec = first.upstreamPath === '/v1/embeddings' ? EMBEDDINGS_CODEC : V2_CODEC;

  try {
    const body = jobs.length === 1 ? first.rawBody : JSON.stringify(codec.merge(jobs.map((job) => job.payload)));
    let response: Dispatcher.ResponseData;
    try {
      response = await postUpstream(replica, jobs, first.upstreamPath, body, call.signal);
    } catch (error) {
      const failure = classifyUpstreamError(error, call.signal);
      deps.metrics.countUpstream(model, replica.id, failure.kind);
      return failFromError(deps, call.live(), replica, failure);
    }

    const status = response.statusCode;
    deps.metrics.countUpstream(model, replica.id, String(status));

    if (status === 429 || status === 503) {
      await response.body.dump().catch(() => undefined);
      const retryAfter = parseRetryAfter(response.headers['retry-after'], deps.clock.wallNow());
      if (retryAfter !== undefined && retryAfter > 0) {
        first.logger.info({ model, replica: replica.id, status, cooldownSeconds: retryAfter }, 'replica overloaded, cooling it down');
        replica.health.coolDown(retryAfter * 1000);
        deps.replicas.wakeAt(deps.clock.now() + retryAfter * 1000);
      }
      const rejected = retryOrReject(deps, call.live(), replica, 'overloaded');
      for (const job of rejected) {
        job.respondError(
          new GatewayError(503, 'replicas_overloaded', `every replica tried for model ${model} was overloaded (last status ${status}); retry later`, {
            outcome: 'upstream_error',
            retryAfterSeconds: Math.max(retryAfter ?? 0, deps.scheduler().retryAfterSeconds(job.priority)),
          }),
        );
      }
      return 'neutral';
    }

    if (status >= 500) {
      const text = await readText(response);
      first.logger.warn({ model, replica: replica.id, status, requestIds: jobs.map((job) => job.id), detail: text.slice(0, 200) }, 'replica returned a server error');
      for (const job of call.live()) {
        job.respondError(new GatewayError(502, 'upstream_error', `replica ${replica.id} of model ${model} failed with status ${status}`, { outcome: 'upstream_error' }));
      }
      return 'failure';
    }

    if (jobs.length > 1 && status === 400) {
      // One bad input spoils a merged batch: send each request alone so only that one fails.
      await response.body.dump().catch(() => undefined);
      retryOrReject(deps, call.live(), replica, 'batch_rejected');
      return 'success';
    }

    if (first.stream && jobs.length === 1 && status >= 200 && status < 300) {
      return await streamToClient(first, response, call.signal, replica);
    }

    const buffer = Buffer.from(await response.body.arrayBuffer());
    const contentType = headerText(response.headers['content-type']) ?? 'application/json';
    if (status >= 400) {
      const outcome: Outcome = status === 400 || status === 413 || status === 422 ? 'rejected_invalid' : 'upstream_error';
      const code = upstreamRejectionCode(status);
      for (const job of call.live()) job.respondJson(status, buffer, outcome, contentType, code);
      return 'success';
    }
    if (jobs.length === 1) {
      first.respondJson(status, buffer, 'success', contentType);
      return 'success';
    }

    let parts: unknown[];
    try {
      parts = codec.split(
        jobs.map((job) => job.payload),
        JSON.parse(buffer.toString('utf8')),
      );
    } catch (error) {
      first.logger.error({ model, replica: replica.id, err: error, requestIds: jobs.map((job) => job.id) }, 'splitting the batched response failed');
      for (const job of call.live()) job.respondError(new GatewayError(502, 'invalid_upstream_response', `replica ${replica.id} returned a response that cannot be split per request: ${(error as Error).message}`, { outcome: 'upstream_error' }));
      return 'failure';
    }
    for (const [index, job] of jobs.entries()) {
      if (!job.finished) job.respondJson(status, parts[index], 'success');
    }
    return 'success';
  } catch (error) {
    // Reading the body failed after headers: the replica did the work, so no retry.
    const failure = classifyUpstreamError(error, call.signal);
    deps.metrics.countUpstream(model, replica.id, failure.kind);
    if (failure.kind !== 'aborted') {
      first.logger.warn({ model, replica: replica.id, err: failure.message, requestIds: jobs.map((job) => job.id) }, 'reading the upstream response failed');
    }
    for (const job of call.live()) job.respondError(errorFor(job, failure, replica));
    return failure.kind === 'aborted' ? 'neutral' : 'failure';
  } finally {
    call.dispose();
  }
}

/**
 * Stable access-log code for a 4xx the replica returned. Its body goes to the client as it
 * is; each server words its errors differently, so the log and clients' alerts match on this.
 */
export function upstreamRejectionCode(status: number): string {
  switch (status) {
    case 400:
    case 422:
      return 'upstream_rejected';
    case 404:
      return 'upstream_not_found';
    case 413:
      return 'upstream_body_too_large';
    default:
      return 'upstream_client_error';
  }
}

function failFromError(deps: ExecutorDeps, jobs: Job[], replica: Replica, failure: UpstreamFailure): CallVerdict {
  if (failure.kind === 'connect_error' || failure.kind === 'reset') {
    jobs[0]?.logger.warn({ model: jobs[0].model, replica: replica.id, err: failure.message, requestIds: jobs.map((job) => job.id) }, 'upstream call failed before the response');
    const rejected = retryOrReject(deps, jobs, replica, failure.kind);
    for (const job of rejected) job.respondError(errorFor(job, failure, replica));
    return 'failure';
  }
  if (failure.kind !== 'aborted') {
    jobs[0]?.logger.warn({ model: jobs[0].model, replica: replica.id, err: failure.message, requestIds: jobs.map((job) => job.id) }, 'upstream call failed after the request was sent, so it is not retried');
  }
  for (const job of jobs) job.respondError(errorFor(job, failure, replica));
  return failure.kind === 'aborted' ? 'neutral' : 'failure';
}

function retryOrReject(deps: ExecutorDeps, jobs: Job[], replica: Replica, reason: RetryReason): Job[] {
  if (jobs.length === 0) return [];
  return deps.scheduler().retry(jobs, replica, reason);
}

function errorFor(job: Job, failure: UpstreamFailure, replica: Replica): GatewayError {
  if (failure.kind === 'aborted') return job.abortError(false);
  if (failure.kind === 'timeout') {
    return new GatewayError(504, 'upstream_timeout', `replica ${replica.id} timed out: ${failure.message}`, { outcome: 'upstream_timeout', cause: failure });
  }
  return new GatewayError(502, 'upstream_unavailable', `model ${job.model} could not be reached after ${job.tries} attempt(s): ${failure.message}`, { outcome: 'upstream_error', cause: failure });
}

interface CallScope {
  signal: AbortSignal;
  /** Jobs without a response yet. */
  live(): Job[];
  dispose(): void;
}

function singleCall(job: Job): CallScope {
  return { signal: job.signal, live: () => (job.finished ? [] : [job]), dispose: () => undefined };
}

/**
 * Creates the abort scope of a batch call, which aborts only when every job in it aborted. A single job that aborts (its
 * client left or its deadline passed) gets its error response at once, and its rows of the
 * batched response are discarded later.
 */
function batchCall(jobs: Job[]): CallScope {
  const controller = new AbortController();
  const listeners = new Map<Job, () => void>();
  const onJobAbort = (job: Job) => () => {
    job.respondError(job.abortError(false));
    if (jobs.every((j) => j.signal.aborted)) controller.abort(new Error('every request of the batch was aborted'));
  };
  for (const job of jobs) {
    const listener = onJobAbort(job);
    listeners.set(job, listener);
    if (job.signal.aborted) listener();
    else job.signal.addEventListener('abort', listener, { once: true });
  }
  return {
    signal: controller.signal,
    live: () => jobs.filter((job) => !job.finished),
    dispose: () => {
      for (const [job, listener] of listeners) job.signal.removeEventListener('abort', listener);
    },
  };
}

/** Forwards an SSE body chunk by chunk; a failure midway ends the stream with an error event. */
async function streamToClient(job: Job, response: Dispatcher.ResponseData, signal: AbortSignal, replica: Replica): Promise<CallVerdict> {
  const raw = job.reply.raw;
  job.reply.hijack();
  raw.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
    'x-request-id': job.id,
    connection: 'keep-alive',
  });
  raw.flushHeaders();
  job.markFirstByte();
  try {
    for await (const chunk of response.body) {
      if (!raw.write(chunk as Buffer)) await once(raw, 'drain', { signal });
    }
    raw.end();
    job.finish('success', 200);
    return 'success';
  } catch (error) {
    const failure = classifyUpstreamError(error, signal);
    response.body.destroy();
    if (failure.kind === 'aborted' && job.abortKind === 'client') {
      raw.destroy();
      job.finish('client_cancelled', 499);
      return 'neutral';
    }
    const err = errorFor(job, failure, replica);
    job.logger.warn({ requestId: job.id, model: job.model, replica: replica.id, err: failure.message }, 'stream failed midway');
    if (!raw.destroyed) raw.end(sseErrorEvent(err));
    job.finish(err.outcome, err.status, err.code);
    return failure.kind === 'aborted' ? 'neutral' : 'failure';
  }
}

async function readText(response: Dispatcher.ResponseData): Promise<string> {
  try {
    return await response.body.text();
  } catch {
    return '';
  }
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
