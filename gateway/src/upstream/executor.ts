// Runs one upstream call for a single request or a merged batch and responds to every job
// in it. Job.finish ignores a second response, so each job is counted once. The executor
// passes responses through, streams SSE chunk by chunk, splits batched responses, and
// hands retryable failures back to the scheduler.
import type { Clock } from '../../../shared/src/clock.ts';
import type { GatewayMetrics } from '../admin/metrics.ts';
import { GatewayError, type Outcome } from '../http/errors.ts';
import type { CallVerdict } from '../replicas/health.ts';
import type { Replica } from '../replicas/replica.ts';
import type { ReplicaSet } from '../replicas/pool.ts';
import { mergeEmbeddings, mergeV2, splitEmbeddings, splitV2, type EmbeddingsBody, type V2InferBody } from '../scheduling/batcher.ts';
import type { Job } from '../scheduling/job.ts';
import type { Executor, ModelScheduler, RetryReason } from '../scheduling/scheduler.ts';
import { classifyUpstreamError, parseRetryAfter, UpstreamCall, UpstreamCallError, type StreamSink, type UpstreamFailure, type UpstreamResponse } from './client.ts';
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

/**
 * Starts the call and returns its verdict once every job has its response. Like the
 * scheduler's #run, it chains promise callbacks instead of being an async function, because
 * it runs for every proxied request and an async function's saved frame allocates more.
 */
function execute(deps: ExecutorDeps, jobs: Job[], replica: Replica): Promise<CallVerdict> {
  const first = jobs[0];
  if (first === undefined) return Promise.resolve('neutral');
  const codec = first.upstreamPath === '/v1/embeddings' ? EMBEDDINGS_CODEC : V2_CODEC;
  let upstream: UpstreamCall;
  let scope: CallScope;
  try {
    const body = jobs.length === 1 ? first.rawBody : JSON.stringify(codec.merge(jobs.map((job) => job.payload)));
    const sink = first.stream && jobs.length === 1 ? clientStream(first) : undefined;
    upstream = new UpstreamCall(replica, jobs, first.upstreamPath, body, sink);
    scope = jobs.length === 1 ? singleCall(first, upstream) : batchCall(jobs, upstream);
  } catch (error) {
    return Promise.reject(error as Error);
  }
  return upstream.done.then(
    (response) => {
      try {
        return respond(deps, jobs, first, replica, codec, scope, response);
      } finally {
        scope.dispose();
      }
    },
    (error: unknown) => {
      try {
        const failure = classifyUpstreamError(error, upstream.aborted);
        deps.metrics.countUpstream(first.model, replica.id, failure.kind);
        if (error instanceof UpstreamCallError && error.streamed) return endStream(first, failure, replica);
        if (error instanceof UpstreamCallError && error.afterHeaders) return failAfterHeaders(jobs, scope.live(), failure, replica);
        const verdict = failFromError(deps, scope.live(), replica, failure);
        return verdict === 'neutral' && silentUntilDeadline(jobs, replica, upstream) ? 'failure' : verdict;
      } finally {
        scope.dispose();
      }
    },
  );
}

/** Sends the response of a completed upstream call to its jobs and returns the call's verdict. */
function respond(deps: ExecutorDeps, jobs: Job[], first: Job, replica: Replica, codec: BatchCodec, scope: CallScope, response: UpstreamResponse): CallVerdict {
  const model = first.model;
  const status = response.status;
  deps.metrics.countUpstream(model, replica.id, String(status));
  if (response.streamed) {
    first.reply.raw.end();
    first.finish('success', 200);
    return 'success';
  }

  if (status === 429 || status === 503) {
    const retryAfter = parseRetryAfter(response.headers['retry-after'], deps.clock.wallNow());
    if (retryAfter !== undefined && retryAfter > 0) {
      first.logger.info({ model, replica: replica.id, status, cooldownSeconds: retryAfter }, 'replica overloaded, cooling it down');
      replica.health.coolDown(retryAfter * 1000);
      deps.replicas.wakeAt(deps.clock.now() + retryAfter * 1000);
    }
    const rejected = retryOrReject(deps, scope.live(), replica, 'overloaded');
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
    first.logger.warn({ model, replica: replica.id, status, requestIds: jobs.map((job) => job.id), detail: response.body.toString('utf8', 0, 200) }, 'replica returned a server error');
    for (const job of scope.live()) {
      job.respondError(new GatewayError(502, 'upstream_error', `replica ${replica.id} of model ${model} failed with status ${status}`, { outcome: 'upstream_error' }));
    }
    return 'failure';
  }

  if (jobs.length > 1 && status === 400) {
    // One bad input spoils a merged batch: send each request alone so only that one fails.
    retryOrReject(deps, scope.live(), replica, 'batch_rejected');
    return 'success';
  }

  const contentType = headerText(response.headers['content-type']) ?? 'application/json';
  if (status >= 400) {
    const outcome: Outcome = clientCausedRejection(status, first.upstreamPath) ? 'rejected_invalid' : 'upstream_error';
    const code = upstreamRejectionCode(status);
    for (const job of scope.live()) job.respondJson(status, response.body, outcome, contentType, code);
    return 'success';
  }
  if (jobs.length === 1) {
    first.respondJson(status, response.body, 'success', contentType);
    return 'success';
  }

  let parts: unknown[];
  try {
    parts = codec.split(
      jobs.map((job) => job.payload),
      JSON.parse(response.body.toString('utf8')),
    );
  } catch (error) {
    first.logger.error({ model, replica: replica.id, err: error, requestIds: jobs.map((job) => job.id) }, 'splitting the batched response failed');
    for (const job of scope.live()) job.respondError(new GatewayError(502, 'invalid_upstream_response', `replica ${replica.id} returned a response that cannot be split per request: ${(error as Error).message}`, { outcome: 'upstream_error' }));
    return 'failure';
  }
  for (const [index, job] of jobs.entries()) {
    if (!job.finished) job.respondJson(status, parts[index], 'success');
  }
  return 'success';
}

/** Fails the live jobs of a call whose body failed after the headers; the replica did the work, so there is no retry. */
function failAfterHeaders(jobs: Job[], live: Job[], failure: UpstreamFailure, replica: Replica): CallVerdict {
  if (failure.kind !== 'aborted') {
    jobs[0]?.logger.warn({ model: jobs[0].model, replica: replica.id, err: failure.message, requestIds: jobs.map((job) => job.id) }, 'reading the upstream response failed');
  }
  for (const job of live) job.respondError(errorFor(job, failure, replica));
  return failure.kind === 'aborted' ? 'neutral' : 'failure';
}

/**
 * Returns whether a 4xx from the replica is the client's doing rather than a deployment
 * error. A 404 for a V2 model version is: the gateway forwards versions it cannot know. Any
 * other 404 means the replica does not serve the model name the configuration sends it, and
 * the remaining 4xx codes (401, 403, 405) are likewise problems between gateway and replica.
 */
function clientCausedRejection(status: number, upstreamPath: string): boolean {
  if (status === 400 || status === 413 || status === 422) return true;
  return status === 404 && upstreamPath.startsWith('/v2/') && upstreamPath.includes('/versions/');
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

/**
 * Returns whether the request deadlines ended a call while the replica sent no response
 * headers, on this call or any other. Such a call counts towards ejection. The deadline
 * alone proves nothing, because the request may only have been slow. But a replica that
 * sends no response headers for a whole call's lifetime, while its health endpoint still
 * passes, is most likely wedged (a stuck GPU or engine). Non-streaming calls get their
 * headers only after the last token, so without this such a replica would be ejected only
 * by upstream.headersTimeoutMs, 5 minutes by default.
 */
function silentUntilDeadline(jobs: readonly Job[], replica: Replica, upstream: UpstreamCall): boolean {
  if (!upstream.replicaSilent || !jobs.every((job) => job.abortKind === 'deadline')) return false;
  jobs[0]?.logger.warn(
    { model: jobs[0].model, replica: replica.id, requestIds: jobs.map((job) => job.id) },
    'the replica sent no response headers before the request deadline passed; counted as a failure for ejection',
  );
  return true;
}

function retryOrReject(deps: ExecutorDeps, jobs: Job[], replica: Replica, reason: RetryReason): Job[] {
  if (jobs.length === 0) return [];
  return deps.scheduler().retry(jobs, replica, reason);
}

function errorFor(job: Job, failure: UpstreamFailure, replica: Replica): GatewayError {
  if (failure.kind === 'aborted') return job.abortError(false);
  if (failure.kind === 'timeout') {
    return new GatewayError(504, 'upstream_timeout', `replica ${replica.id} of model ${job.model} ${timeoutDescription(job, failure, replica)}`, { outcome: 'upstream_timeout', cause: failure });
  }
  return new GatewayError(502, 'upstream_unavailable', `model ${job.model} could not be reached after ${job.tries} attempt(s): ${failure.message}`, { outcome: 'upstream_error', cause: failure });
}

/** Describes which upstream timeout ended a call, naming its setting, so an operator knows what to tune. */
function timeoutDescription(job: Job, failure: UpstreamFailure, replica: Replica): string {
  if (failure.code === 'UND_ERR_HEADERS_TIMEOUT') {
    return job.stream
      ? `sent no response headers within upstream.streamHeadersTimeoutMs (${replica.upstream.streamHeadersTimeoutMs} ms)`
      : `sent no response headers within upstream.headersTimeoutMs (${replica.upstream.headersTimeoutMs} ms)`;
  }
  if (failure.code === 'UND_ERR_BODY_TIMEOUT') return `sent no response data for upstream.bodyTimeoutMs (${replica.upstream.bodyTimeoutMs} ms)`;
  return `timed out: ${failure.message}`;
}

interface CallScope {
  /** Jobs without a response yet. */
  live(): Job[];
  dispose(): void;
}

/** Cancels the upstream call of a request that aborted. */
function abortSingle(job: Job): void {
  job.upstream?.abort(job.abortReason());
}

/**
 * Responds at once to a request of a merged call that aborted (its client left or its
 * deadline passed), and cancels the call when every request in it aborted. The rows of that
 * request are discarded when the batched response arrives.
 */
function abortBatchMember(job: Job): void {
  job.respondError(job.abortError(false));
  const members = job.batchMembers ?? [];
  if (members.every((member) => member.aborted)) job.upstream?.abort(new Error('every request of the batch was aborted'));
}

/** Creates the scope of a call for one request, whose abort cancels the call. */
function singleCall(job: Job, upstream: UpstreamCall): CallScope {
  job.upstream = upstream;
  job.onAbort(abortSingle);
  return { live: () => (job.finished ? [] : [job]), dispose: () => release(job, abortSingle) };
}

/** Creates the scope of a merged call, which is cancelled only when every request in it aborted. */
function batchCall(jobs: Job[], upstream: UpstreamCall): CallScope {
  for (const job of jobs) {
    job.upstream = upstream;
    job.batchMembers = jobs;
    job.onAbort(abortBatchMember);
  }
  return {
    live: () => jobs.filter((job) => !job.finished),
    dispose: () => {
      for (const job of jobs) release(job, abortBatchMember);
    },
  };
}

/** Detaches a job from the call that ended; a job already handed back to the queue keeps the queue's handler. */
function release(job: Job, handler: (job: Job) => void): void {
  job.dropAbortHandler(handler);
  job.upstream = undefined;
  job.batchMembers = undefined;
}

/**
 * Creates the client side of an SSE stream: headers go out when the replica's 2xx headers
 * arrive, then each chunk as it comes. A full client buffer pauses the upstream read until it drains.
 */
function clientStream(job: Job): StreamSink {
  const raw = job.reply.raw;
  return {
    start: (status) => {
      // A job that already has its response (it aborted meanwhile) never starts a stream.
      if (status < 200 || status >= 300 || job.finished) return false;
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
      return true;
    },
    write: (chunk) => raw.write(chunk),
    onDrain: (resume) => {
      raw.once('drain', resume);
    },
  };
}

/** Ends a stream that failed midway: an SSE error event, or nothing when the client left. */
function endStream(job: Job, failure: UpstreamFailure, replica: Replica): CallVerdict {
  const raw = job.reply.raw;
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

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
