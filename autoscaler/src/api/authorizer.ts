// Delegated authorization of metrics API requests: each request's user and attributes are
// sent to the cluster as a SubjectAccessReview (authorization.k8s.io/v1), so the cluster's
// RBAC decides who may read which model's demand, as for every aggregated API server.
//
// Decisions are cached for a short time, allowed and denied each with its own TTL (the
// generic Kubernetes API server uses 10 s for both), in a bounded map evicted oldest
// first. Identical reviews in flight at the same time share one call. A failed review
// (timeout, connection error, error response) is not cached, and the server returns 500
// for it, as the generic API server does when its authorizer returns an error.
import { AuthorizationV1Api, Observable, type ConfigurationOptions, type KubeConfig, type ObservableMiddleware, type V1SubjectAccessReview } from '@kubernetes/client-node';
import type { Clock } from '../../../shared/src/clock.ts';
import type { Logger } from '../../../shared/src/logger.ts';
import type { AutoscalerMetrics } from '../metrics.ts';
import type { RequestAttributes, RequestUser } from './request-user.ts';

export interface Decision {
  allowed: boolean;
  /** The authorizer's reason, often empty on a denial. */
  reason: string;
}

/** Authorizes one request. Rejects with AuthorizationError when no decision could be made. */
export interface RequestAuthorizer {
  authorize(user: RequestUser, attributes: RequestAttributes): Promise<Decision>;
}

export class AuthorizationError extends Error {
  readonly code = 'INFERGATE_AUTOSCALER_AUTHORIZATION_FAILED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AuthorizationError';
  }
}

export interface DelegatedAuthorizerOptions {
  kubeConfig: KubeConfig;
  clock: Clock;
  logger: Logger;
  metrics: AutoscalerMetrics;
  /** Milliseconds an allowed decision is reused. */
  allowTtlMs: number;
  /** Milliseconds a denied decision is reused. */
  denyTtlMs: number;
  /** Most decisions kept; the oldest is dropped first. */
  cacheSize: number;
  /** Milliseconds one SubjectAccessReview call may take before it is aborted. */
  timeoutMs: number;
  /** Members of these groups are allowed without a review (system:masters may do anything anyway). */
  alwaysAllowGroups: readonly string[];
}

interface CacheEntry {
  decision: Decision;
  expiresAt: number;
}

export class DelegatedAuthorizer implements RequestAuthorizer {
  readonly #options: DelegatedAuthorizerOptions;
  readonly #api: AuthorizationV1Api;
  /** Insertion order is age order: a hit re-inserts its entry, eviction takes the first key. */
  readonly #cache = new Map<string, CacheEntry>();
  readonly #inFlight = new Map<string, Promise<Decision>>();

  constructor(options: DelegatedAuthorizerOptions) {
    this.#options = options;
    this.#api = options.kubeConfig.makeApiClient(AuthorizationV1Api);
  }

  /** Number of cached decisions, for tests and debugging. */
  get cachedDecisions(): number {
    return this.#cache.size;
  }

  async authorize(user: RequestUser, attributes: RequestAttributes): Promise<Decision> {
    const { metrics, alwaysAllowGroups, clock } = this.#options;
    if (user.groups.some((group) => alwaysAllowGroups.includes(group))) {
      metrics.authorizationDecisions.inc({ decision: 'allowed', source: 'group' });
      return { allowed: true, reason: 'member of an always-allowed group' };
    }
    const spec = reviewSpec(user, attributes);
    const key = JSON.stringify(spec);
    const cached = this.#cache.get(key);
    if (cached !== undefined) {
      this.#cache.delete(key);
      if (cached.expiresAt > clock.now()) {
        this.#cache.set(key, cached);
        metrics.authorizationDecisions.inc({ decision: cached.decision.allowed ? 'allowed' : 'denied', source: 'cache' });
        return cached.decision;
      }
    }
    let pending = this.#inFlight.get(key);
    if (pending === undefined) {
      pending = this.#review(spec, key).finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, pending);
    }
    return pending;
  }

  async #review(spec: V1SubjectAccessReview['spec'], key: string): Promise<Decision> {
    const { metrics, logger, timeoutMs, clock } = this.#options;
    let review: V1SubjectAccessReview;
    try {
      review = await this.#api.createSubjectAccessReview({ body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec } }, callOptions(timeoutMs));
    } catch (error) {
      metrics.authorizationDecisions.inc({ decision: 'error', source: 'review' });
      const detail = describeFailure(error, timeoutMs);
      logger.error({ err: error, user: spec.user, attributes: spec.resourceAttributes ?? spec.nonResourceAttributes }, 'SubjectAccessReview failed');
      throw new AuthorizationError(
        `cannot authorize user ${JSON.stringify(spec.user)}: the SubjectAccessReview to the Kubernetes API failed (${detail}); the autoscaler's service account needs the ClusterRole system:auth-delegator`,
        { cause: error },
      );
    }
    const status = review.status;
    const decision: Decision = { allowed: status?.allowed === true && status.denied !== true, reason: status?.reason ?? '' };
    if (status?.evaluationError) logger.warn({ user: spec.user, evaluationError: status.evaluationError }, 'SubjectAccessReview reported an evaluation error');
    metrics.authorizationDecisions.inc({ decision: decision.allowed ? 'allowed' : 'denied', source: 'review' });
    this.#remember(key, decision, clock.now());
    return decision;
  }

  #remember(key: string, decision: Decision, now: number): void {
    const { allowTtlMs, denyTtlMs, cacheSize } = this.#options;
    const ttl = decision.allowed ? allowTtlMs : denyTtlMs;
    if (ttl <= 0 || cacheSize <= 0) return;
    this.#cache.delete(key);
    while (this.#cache.size >= cacheSize) {
      const oldest = this.#cache.keys().next();
      if (oldest.done === true) break;
      this.#cache.delete(oldest.value);
    }
    this.#cache.set(key, { decision, expiresAt: now + ttl });
  }
}

/**
 * Builds the review spec. Groups and extra keys are sorted because their order carries no
 * meaning in Kubernetes, so the same user sent with headers in another order shares one
 * cache entry.
 */
export function reviewSpec(user: RequestUser, attributes: RequestAttributes): NonNullable<V1SubjectAccessReview['spec']> {
  const extra: Record<string, string[]> = {};
  for (const key of Object.keys(user.extra).sort()) extra[key] = [...(user.extra[key] ?? [])];
  const spec: NonNullable<V1SubjectAccessReview['spec']> = { user: user.name, groups: [...user.groups].sort(), extra };
  if (attributes.kind === 'nonResource') {
    spec.nonResourceAttributes = { path: attributes.path, verb: attributes.verb };
  } else {
    spec.resourceAttributes = {
      group: attributes.group,
      version: attributes.version,
      resource: attributes.resource,
      namespace: attributes.namespace,
      verb: attributes.verb,
      ...(attributes.name ? { name: attributes.name } : {}),
      ...(attributes.subresource ? { subresource: attributes.subresource } : {}),
    };
  }
  return spec;
}

function callOptions(timeoutMs: number): ConfigurationOptions {
  const middleware: ObservableMiddleware = {
    pre: (context) => {
      context.setSignal(AbortSignal.timeout(timeoutMs));
      return new Observable(Promise.resolve(context));
    },
    post: (context) => new Observable(Promise.resolve(context)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}

function describeFailure(error: unknown, timeoutMs: number): string {
  const err = error as { name?: string; code?: number; message?: string };
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return `no answer within ${timeoutMs} ms`;
  if (typeof err.code === 'number') return `HTTP ${err.code}`;
  return err.message ?? String(error);
}
