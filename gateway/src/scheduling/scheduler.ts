// The scheduling loop of one model. Requests wait in the admission queue and are bound to
// a replica only when a slot frees (late binding), and batchable requests are merged at
// that moment. Admission rejects a request at once when the queue is full, when no replica
// can serve it, or when the estimated wait already exceeds its deadline.
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../../shared/src/clock.ts';
import type { ModelSnapshot, Priority } from '../../../shared/src/admin-state.ts';
import type { GatewayMetrics } from '../admin/metrics.ts';
import type { ModelConfig } from '../config/load.ts';
import { GatewayError } from '../http/errors.ts';
import type { CallVerdict } from '../replicas/health.ts';
import type { Replica } from '../replicas/replica.ts';
import type { ReplicaSet } from '../replicas/pool.ts';
import type { Job } from './job.ts';
import { InFlightList } from './in-flight.ts';
import { AdmissionQueue } from './queue.ts';
import { RateMeter } from './rate.ts';

/** Runs one upstream call for jobs on replica and responds to every job. Resolves with the call's health verdict. */
export type Executor = (jobs: Job[], replica: Replica) => Promise<CallVerdict>;

export type RetryReason = 'connect_error' | 'reset' | 'overloaded' | 'batch_rejected';

export interface SchedulerDeps {
  clock: Clock;
  logger: Logger;
  metrics: GatewayMetrics;
  replicas: ReplicaSet;
  executor: Executor;
}

/** Longest Retry-After the gateway suggests, in seconds. */
const MAX_RETRY_AFTER_SECONDS = 300;

/** Weight of the newest call in the moving averages of call duration and size. */
const CALL_AVERAGE_WEIGHT = 0.1;

export class ModelScheduler {
  readonly config: ModelConfig;
  readonly #deps: SchedulerDeps;
  readonly #queue: AdmissionQueue<Job>;
  readonly #arrivals: RateMeter;
  readonly #dispatches: RateMeter;
  readonly #completions: RateMeter;
  /** Jobs in an upstream call now, so shutdown can abort them. */
  readonly #abortInFlight = new InFlightList<Job>();
  #inFlightJobs = 0;
  /** Moving average of upstream call durations in ms, undefined before the first call ended. */
  #meanCallMs: number | undefined;
  /** Moving average of requests per upstream call (above 1 with batching). */
  #meanJobsPerCall = 1;
  #held = 0;
  #closing = false;
  #pumping = false;
  #pumpAgain = false;
  #delayTimer: TimerHandle | undefined;
  /** Due time of #delayTimer. */
  #delayDueAt = Number.POSITIVE_INFINITY;
  /** Due time of the pending wake-up for a cooldown end, so repeated pumps set one timer. */
  #wakeAt: number | undefined;
  #idleWaiters: (() => void)[] = [];
  /** Abort handler of every queued job, created once (see Job.onAbort). */
  readonly #onQueuedAbort = (job: Job): void => {
    if (!this.#queue.remove(job)) return;
    this.#unwatchAbort(job);
    this.#unhold(job);
    job.respondError(job.abortError(true));
    this.#notifyIdle();
  };

  constructor(config: ModelConfig, deps: SchedulerDeps) {
    this.config = config;
    this.#deps = deps;
    this.#queue = new AdmissionQueue(config.queue.maxSize);
    this.#arrivals = new RateMeter(deps.clock);
    this.#dispatches = new RateMeter(deps.clock);
    this.#completions = new RateMeter(deps.clock);
  }

  get queued(): number {
    return this.#queue.size;
  }

  get inFlight(): number {
    return this.#inFlightJobs;
  }

  /**
   * Admits job into the queue or throws the GatewayError that rejects it. An admitted job
   * gets exactly one response, from the executor or from this scheduler.
   */
  submit(job: Job): void {
    if (this.#closing) throw new GatewayError(503, 'shutting_down', 'the gateway is shutting down; retry on another gateway instance', { outcome: 'shutdown', retryAfterSeconds: 1 });
    this.#arrivals.record();
    const replicas = this.#deps.replicas;

    if (!replicas.hasServing()) {
      const sfz = this.config.scaleFromZero;
      if (!sfz.enabled) {
        throw new GatewayError(503, 'no_replicas_ready', `model ${this.config.name} has no ready replica; retry later`, {
          outcome: 'rejected_no_replicas',
          retryAfterSeconds: this.retryAfterSeconds(),
        });
      }
      if (this.#held >= sfz.maxHeld) {
        throw new GatewayError(503, 'hold_limit_reached', `model ${this.config.name} has no ready replica and already has ${this.#held} held requests (scaleFromZero.maxHeld); retry later`, {
          outcome: 'rejected_no_replicas',
          retryAfterSeconds: this.retryAfterSeconds(),
        });
      }
    } else {
      this.#rejectIfNoReplicaBeforeDeadline(job);
      this.#rejectIfDeadlineUnmeetable(job);
    }

    const result = this.#queue.admit(job);
    if (!result.admitted) {
      throw new GatewayError(429, 'queue_full', `the queue of model ${this.config.name} is full (${this.#queue.maxSize} requests); retry later`, {
        outcome: 'rejected_queue_full',
        retryAfterSeconds: this.retryAfterSeconds(),
      });
    }
    if (result.evicted !== undefined) this.#evict(result.evicted);
    if (!replicas.hasServing()) this.#hold(job);
    this.#watchAbort(job);
    this.pump();
  }

  /**
   * Puts jobs back at the front of their class for another replica after a failure in which
   * the replica provably did no work. Returns the jobs that may not be retried (attempts used
   * up or deadline passed), and the caller responds to those.
   */
  retry(jobs: readonly Job[], replica: Replica, reason: RetryReason): Job[] {
    const notRetried: Job[] = [];
    for (const job of jobs) {
      if (reason === 'batch_rejected') job.batchRejections++;
      else job.avoid.add(replica.id);
      const withinAttempts = reason === 'batch_rejected' || job.tries < this.config.retry.maxAttempts;
      // Retries still run during the shutdown grace period, and abortAll() ends them with the rest.
      if (job.finished || job.aborted || !withinAttempts || job.remainingMs() <= 0) {
        notRetried.push(job);
        continue;
      }
      if (reason === 'batch_rejected') job.solo = true;
      else this.#deps.metrics.retries.inc({ model: this.config.name, reason });
      // Another replica is preferred, and the failed one is used again only when no other serves.
      job.logger.info({ requestId: job.id, model: this.config.name, failedReplica: replica.id, reason, attempt: job.tries }, 'retrying request');
      this.#queue.requeue(job);
      this.#watchAbort(job);
    }
    queueMicrotask(() => this.pump());
    return notRetried;
  }

  /** Dispatches queued work while a replica slot is free. Safe to call at any time. */
  pump(): void {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        this.#releaseHeldIfServing();
        while (this.#dispatchOne()) {
          // Keeps dispatching until the queue or the free slots run out.
        }
      } while (this.#pumpAgain);
    } finally {
      this.#pumping = false;
    }
  }

  /**
   * Returns the requests per second the model drains at. That is the higher of the measured
   * dispatch rate and the rate its serving replicas can take (in-flight slots × requests per
   * call ÷ mean call duration). The dispatch rate alone follows recent traffic, so after a
   * quiet spell it would make a burst look many times slower to serve than it is.
   */
  #drainRate(): number {
    const measured = this.#dispatches.perSecond();
    if (this.#meanCallMs === undefined || this.#meanCallMs <= 0) return measured;
    let slots = 0;
    for (const replica of this.#deps.replicas.all()) if (replica.serving) slots += replica.limit;
    return Math.max(measured, (slots * this.#meanJobsPerCall * 1000) / this.#meanCallMs);
  }

  /**
   * Estimated seconds until the queue drains: queue length over the drain rate. With no measurement yet (no dispatch in the window) it falls back to the time a
   * held request may still wait, or the queue timeout. It is never shorter than the time
   * until the first cooldown or ejection period ends when every serving replica is in one.
   */
  retryAfterSeconds(priority: Priority = 'sheddable'): number {
    const ahead = this.#queue.countAhead(priority) + 1;
    const rate = this.#drainRate();
    let seconds: number;
    if (rate > 0) seconds = ahead / rate;
    else if (this.#held > 0 || !this.#deps.replicas.hasServing()) seconds = this.config.scaleFromZero.holdTimeoutMs / 1000 / 4;
    else seconds = this.config.queue.timeoutMs / 1000 / 4;
    // While every serving replica cools down or is ejected, nothing drains before the first one returns.
    const blockedMs = this.#deps.replicas.nextAvailableAt() - this.#deps.clock.now();
    if (Number.isFinite(blockedMs) && blockedMs > 0) seconds = Math.max(seconds, blockedMs / 1000);
    return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, Math.ceil(seconds)));
  }

  snapshot(): ModelSnapshot {
    const queued = { critical: 0, standard: 0, sheddable: 0 } satisfies Record<Priority, number>;
    let held = 0;
    let oldest: number | undefined;
    for (const job of this.#queue.entries()) {
      if (job.held) held++;
      else queued[job.priority]++;
      if (oldest === undefined || job.arrivedAt < oldest) oldest = job.arrivedAt;
    }
    const now = this.#deps.clock.now();
    return {
      name: this.config.name,
      protocol: this.config.protocol,
      queued,
      held,
      inFlight: this.#inFlightJobs,
      oldestQueuedMs: oldest === undefined ? 0 : Math.round(now - oldest),
      arrivalsPerSecond: round(this.#arrivals.perSecond()),
      completionsPerSecond: round(this.#completions.perSecond()),
      replicas: this.#deps.replicas.snapshot(),
    };
  }

  /** Stops admitting; queued and in-flight work continues. */
  beginShutdown(): void {
    this.#closing = true;
  }

  /** Resolves once the queue is empty and no call is in flight. */
  whenIdle(): Promise<void> {
    if (this.#queue.size === 0 && this.#inFlightJobs === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Ends every queued and in-flight job with outcome shutdown. */
  abortAll(): void {
    for (const job of [...this.#queue.entries()]) job.abort('shutdown');
    for (const job of this.#abortInFlight.snapshot()) job.abort('shutdown');
  }

  /**
   * Dispatches the best dispatchable work to a free slot, if any. Entries are visited in
   * queue order (strict priority between classes, FIFO within a class). An entry is
   * skipped, without blocking the entries behind it, when its under-full batch is waiting
   * for maxDelayMs or when the only free replicas are ones it must avoid (a retry).
   */
  #dispatchOne(): boolean {
    if (this.#queue.size === 0) return false;
    const anyReplica = this.#deps.replicas.pick();
    if (anyReplica === undefined) {
      this.#scheduleReplicaWake();
      return false;
    }
    /** Batch keys whose group was found waiting in this pass; later members wait with their group. */
    let waitingKeys: Set<string> | undefined;
    for (const lane of this.#queue.ordered) {
      for (const job of lane) {
        if (job.held) continue;
        const key = job.solo ? null : job.batchKey;
        if (key !== null && waitingKeys?.has(key) === true) continue;
        // A job with nothing to avoid can take the replica already picked: the pick is the same.
        const replica = job.avoid.size === 0 ? anyReplica : this.#deps.replicas.pick(job.avoid);
        if (replica === undefined) continue;
        const batch = this.#formBatch(job, replica);
        if (batch === undefined) {
          if (key !== null) (waitingKeys ??= new Set()).add(key);
          continue;
        }
        for (const member of batch) {
          this.#queue.remove(member);
          this.#unwatchAbort(member);
        }
        this.#launch(batch, replica);
        return true;
      }
    }
    // Retries may be waiting for a replica that is cooling down while another one is free.
    this.#scheduleReplicaWake();
    return false;
  }

  /**
   * The head and the oldest compatible jobs behind it that may use replica, or undefined
   * while the under-full batch waits for more rows (maxDelayMs, counted from the head's
   * arrival). A waiting batch arms one timer for the earliest due time of all waiting batches.
   */
  #formBatch(head: Job, replica: Replica): Job[] | undefined {
    const { maxBatchSize, maxDelayMs } = this.config.batching;
    if (head.batchKey === null || head.solo || maxBatchSize <= 1 || head.rows >= maxBatchSize) return [head];
    const batch = [head];
    let rows = head.rows;
    collect: for (const lane of this.#queue.ordered) {
      for (const job of lane) {
        if (rows >= maxBatchSize) break collect;
        if (job === head || job.held || job.solo || job.batchKey !== head.batchKey || rows + job.rows > maxBatchSize) continue;
        // A job that failed on this replica without a response is not sent back to it.
        if (job.avoid.has(replica.id)) continue;
        batch.push(job);
        rows += job.rows;
      }
    }
    const dueAt = head.arrivedAt + maxDelayMs;
    const now = this.#deps.clock.now();
    if (rows < maxBatchSize && maxDelayMs > 0 && now < dueAt) {
      this.#armDelayTimer(dueAt);
      return undefined;
    }
    return batch;
  }

  /** Makes sure the loop runs again at dueAt, keeping one timer for the earliest waiting batch. */
  #armDelayTimer(dueAt: number): void {
    if (this.#delayTimer !== undefined && this.#delayDueAt <= dueAt) return;
    this.#delayTimer?.cancel();
    this.#delayDueAt = dueAt;
    this.#delayTimer = this.#deps.clock.setTimer(dueAt - this.#deps.clock.now(), () => {
      this.#delayTimer = undefined;
      this.#delayDueAt = Number.POSITIVE_INFINITY;
      this.pump();
    });
  }

  #launch(batch: Job[], replica: Replica): void {
    const rows = batch.reduce((sum, job) => sum + job.rows, 0);
    const trial = replica.health.startCall();
    replica.inFlight++;
    this.#inFlightJobs += batch.length;
    this.#dispatches.record(batch.length);
    this.#deps.metrics.batchSize.observe({ model: this.config.name }, rows);
    for (const job of batch) {
      job.attempts++;
      job.replicaId = replica.id;
      job.markDispatched();
      this.#abortInFlight.add(job);
    }
    const attemptsAtLaunch = batch.map((job) => job.attempts);
    if (trial) this.#deps.logger.info({ replica: replica.id }, 'sending trial request to ejected replica');
    this.#run(batch, replica, trial, attemptsAtLaunch, this.#deps.clock.now());
  }

  /**
   * Runs the upstream call of a launched batch and does the bookkeeping when it ends. It uses
   * promise callbacks, not an async function, because it runs for every proxied request and a
   * heap profile showed an async function's saved frame as the larger allocation.
   */
  #run(batch: Job[], replica: Replica, trial: boolean, attemptsAtLaunch: number[], launchedAt: number): void {
    let call: Promise<CallVerdict>;
    try {
      call = this.#deps.executor(batch, replica);
    } catch (error) {
      call = Promise.reject(error as Error);
    }
    call.then(
      (verdict) => {
        this.#endCall(batch, replica, trial, attemptsAtLaunch, launchedAt, verdict);
      },
      (error: unknown) => {
        // The executor responds to its jobs itself. This guards against a bug that leaves one without a response.
        this.#deps.logger.error({ replica: replica.id, err: error }, 'executor failed unexpectedly');
        for (const job of batch) job.respondError(new GatewayError(502, 'internal_error', 'the gateway failed to process the upstream response', { outcome: 'upstream_error' }));
        this.#endCall(batch, replica, trial, attemptsAtLaunch, launchedAt, 'failure');
      },
    );
  }

  /** Frees the replica slot of a finished call, records its verdict and dispatches more work. */
  #endCall(batch: Job[], replica: Replica, trial: boolean, attemptsAtLaunch: number[], launchedAt: number, verdict: CallVerdict): void {
    replica.inFlight--;
    this.#inFlightJobs -= batch.length;
    if (verdict === 'success') this.#recordCall(this.#deps.clock.now() - launchedAt, batch.length);
    let finished = 0;
    for (let index = 0; index < batch.length; index++) {
      const job = batch[index] as Job;
      // A job retried elsewhere already runs in a newer call, which now tracks it.
      if (job.attempts === attemptsAtLaunch[index]) this.#abortInFlight.remove(job);
      // Jobs handed back for a retry complete later, in their next call.
      if (job.finished) finished++;
    }
    this.#completions.record(finished);
    this.#recordVerdict(replica, verdict, trial);
    this.#deps.replicas.releaseIfRetired(replica);
    this.pump();
    this.#notifyIdle();
  }

  #recordCall(durationMs: number, jobs: number): void {
    const blend = (mean: number, value: number): number => mean + CALL_AVERAGE_WEIGHT * (value - mean);
    this.#meanCallMs = this.#meanCallMs === undefined ? durationMs : blend(this.#meanCallMs, durationMs);
    this.#meanJobsPerCall = blend(this.#meanJobsPerCall, jobs);
  }

  #recordVerdict(replica: Replica, verdict: CallVerdict, trial: boolean): void {
    const change = replica.health.finishCall(verdict, trial);
    if (change === 'ejected') {
      this.#deps.metrics.ejections.inc({ model: this.config.name, replica: replica.id });
      const until = replica.health.ejectedUntil ?? this.#deps.clock.now();
      this.#deps.logger.warn({ replica: replica.id, ejectedForMs: Math.round(until - this.#deps.clock.now()) }, 'replica ejected after consecutive failures');
      this.#deps.replicas.wakeAt(until);
    } else if (change === 'recovered') {
      this.#deps.logger.info({ replica: replica.id }, 'ejected replica passed its trial request');
    }
  }

  /**
   * Rejects with 503 when every serving replica is cooling down (it answered 429 or 503 with
   * Retry-After) or ejected until after the request's deadline: waiting could only end in 504.
   */
  #rejectIfNoReplicaBeforeDeadline(job: Job): void {
    const waitMs = this.#deps.replicas.nextAvailableAt() - this.#deps.clock.now();
    if (waitMs <= job.remainingMs()) return;
    throw new GatewayError(503, 'deadline_unmeetable', `every replica of model ${this.config.name} is cooling down or ejected for another ${Math.ceil(waitMs)} ms, beyond the request deadline of ${Math.round(job.remainingMs())} ms; retry later`, {
      outcome: 'rejected_deadline',
      retryAfterSeconds: this.retryAfterSeconds(job.priority),
    });
  }

  #rejectIfDeadlineUnmeetable(job: Job): void {
    const ahead = this.#queue.countAhead(job.priority);
    if (ahead === 0) return;
    const rate = this.#drainRate();
    if (rate <= 0) return;
    const estimatedWaitMs = (ahead / rate) * 1000;
    if (estimatedWaitMs <= job.remainingMs()) return;
    throw new GatewayError(429, 'deadline_unmeetable', `estimated queue wait ${Math.round(estimatedWaitMs)} ms exceeds the request deadline of ${Math.round(job.remainingMs())} ms; raise x-request-timeout-ms or retry later`, {
      outcome: 'rejected_deadline',
      retryAfterSeconds: this.retryAfterSeconds(job.priority),
    });
  }

  #evict(victim: Job): void {
    this.#unwatchAbort(victim);
    if (victim.held) this.#unhold(victim);
    victim.respondError(
      new GatewayError(429, 'shed', `request ${victim.id} was shed from the full queue of model ${this.config.name} to admit higher-priority work; retry later`, {
        outcome: 'rejected_queue_full',
        retryAfterSeconds: this.retryAfterSeconds(),
      }),
    );
  }

  #hold(job: Job): void {
    job.held = true;
    this.#held++;
    // While held, only an explicit client deadline applies; the hold timeout bounds the wait.
    if (!job.explicitTimeout) job.setDeadline(Number.POSITIVE_INFINITY);
    job.holdTimer = this.#deps.clock.setTimer(this.config.scaleFromZero.holdTimeoutMs, () => {
      if (!this.#queue.remove(job)) return;
      this.#unwatchAbort(job);
      this.#unhold(job);
      job.respondError(
        new GatewayError(503, 'no_replicas_ready', `model ${this.config.name} had no ready replica within scaleFromZero.holdTimeoutMs (${this.config.scaleFromZero.holdTimeoutMs} ms); retry later`, {
          outcome: 'rejected_no_replicas',
          retryAfterSeconds: this.retryAfterSeconds(),
        }),
      );
      this.#notifyIdle();
    });
  }

  #unhold(job: Job): void {
    if (!job.held) return;
    job.held = false;
    this.#held--;
    job.holdTimer?.cancel();
    job.holdTimer = undefined;
  }

  #releaseHeldIfServing(): void {
    if (this.#held === 0 || !this.#deps.replicas.hasServing()) return;
    const now = this.#deps.clock.now();
    for (const job of this.#queue.entries()) {
      if (!job.held) continue;
      this.#unhold(job);
      if (!job.explicitTimeout) job.setDeadline(now + this.config.queue.timeoutMs);
    }
    this.#deps.logger.info('replica ready, releasing held requests');
  }

  /** Makes a queued job leave the queue with its error response once it aborts (client gone, deadline, shutdown). */
  #watchAbort(job: Job): void {
    job.onAbort(this.#onQueuedAbort);
  }

  #unwatchAbort(job: Job): void {
    job.dropAbortHandler();
  }

  /** When every serving replica is cooling down or waiting for a trial, wakes the loop when the first one ends. */
  #scheduleReplicaWake(): void {
    let next = Number.POSITIVE_INFINITY;
    const now = this.#deps.clock.now();
    for (const replica of this.#deps.replicas.all()) {
      if (replica.health.cooldownUntil > now) next = Math.min(next, replica.health.cooldownUntil);
    }
    if (!Number.isFinite(next) || (this.#wakeAt !== undefined && this.#wakeAt <= next && this.#wakeAt > now)) return;
    this.#wakeAt = next;
    this.#deps.replicas.wakeAt(next);
  }


  #notifyIdle(): void {
    if (this.#queue.size !== 0 || this.#inFlightJobs !== 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
