// Acts on scale targets through the Kubernetes API. Replicas are read and set through
// the scale subresource of apps/v1 Deployments and StatefulSets, the same subresource the
// HPA uses, so both see one replica count. GPUs per replica come from the pod template,
// and each action is recorded as a core/v1 Event on the target.
import { hostname } from 'node:os';
import {
  AppsV1Api,
  CoreV1Api,
  Observable,
  PatchStrategy,
  type ConfigurationOptions,
  type ObservableMiddleware,
  type CoreV1Event,
  type KubeConfig,
  type V1PodTemplateSpec,
} from '@kubernetes/client-node';
import type { Clock } from '../../../shared/src/clock.ts';
import type { Logger } from '../../../shared/src/logger.ts';
import type { ModelConfig, TargetRef } from '../config/load.ts';
import { parseKubeQuantity } from './quantity-parse.ts';

/** Name reported as the source of Events. */
export const EVENT_COMPONENT = 'infergate-autoscaler';
const GPU_RESOURCE = 'nvidia.com/gpu';

export type ScaleDirection = 'up' | 'down';

export interface ScaleRequest {
  model: ModelConfig;
  from: number;
  to: number;
  direction: ScaleDirection;
  /** Event reason, such as ScaledFromZero. */
  reason: string;
  /** Event message: what was done and why, with the inputs. */
  message: string;
  /** Reason for the action without the action itself, such as "model m has 2 queued and 0 held requests". A dry run words the action on its own. */
  cause: string;
}

/** Cluster operations of the controller; DryRunActuator implements them without a cluster. */
export interface Actuator {
  readonly dryRun: boolean;
  /**
   * Current spec.replicas of the target's scale subresource, or undefined when it cannot
   * be read. `observed` is the count the gateways report, used only without a cluster.
   */
  readReplicas(model: ModelConfig, observed?: number): Promise<number | undefined>;
  /** GPUs per replica from the pod template's nvidia.com/gpu limits, or undefined when unreadable. */
  readGpusPerReplica(model: ModelConfig): Promise<number | undefined>;
  /** Sets the replicas and records an Event; returns whether the scale call succeeded. */
  scale(request: ScaleRequest, observed?: number): Promise<boolean>;
}

export interface KubeActuatorOptions {
  kubeConfig: KubeConfig;
  clock: Clock;
  logger: Logger;
  timeoutMs: number;
}

export class KubeActuator implements Actuator {
  readonly dryRun = false;
  readonly #apps: AppsV1Api;
  readonly #core: CoreV1Api;
  readonly #options: KubeActuatorOptions;
  readonly #instance = hostname();

  constructor(options: KubeActuatorOptions) {
    this.#options = options;
    this.#apps = options.kubeConfig.makeApiClient(AppsV1Api);
    this.#core = options.kubeConfig.makeApiClient(CoreV1Api);
  }

  async readReplicas(model: ModelConfig): Promise<number | undefined> {
    const { kind, namespace, name } = model.target;
    try {
      const params = { name, namespace };
      const scale =
        kind === 'Deployment'
          ? await this.#apps.readNamespacedDeploymentScale(params, this.#callOptions())
          : await this.#apps.readNamespacedStatefulSetScale(params, this.#callOptions());
      return scale.spec?.replicas ?? 0;
    } catch (error) {
      this.#options.logger.warn({ model: model.name, target: describeTarget(model.target), err: error }, 'cannot read the target scale subresource; no scale action this poll');
      return undefined;
    }
  }

  async readGpusPerReplica(model: ModelConfig): Promise<number | undefined> {
    const { kind, namespace, name } = model.target;
    try {
      const params = { name, namespace };
      const workload =
        kind === 'Deployment'
          ? await this.#apps.readNamespacedDeployment(params, this.#callOptions())
          : await this.#apps.readNamespacedStatefulSet(params, this.#callOptions());
      return gpusInTemplate(workload.spec?.template);
    } catch (error) {
      this.#options.logger.warn({ model: model.name, target: describeTarget(model.target), err: error }, 'cannot read the target pod template for its GPU count');
      return undefined;
    }
  }

  async scale(request: ScaleRequest): Promise<boolean> {
    const { model, to } = request;
    const { kind, namespace, name } = model.target;
    // A merge patch of spec.replicas only, as kubectl scale sends. It carries no
    // resourceVersion, so an HPA write between the read and this patch causes no conflict.
    const params = { name, namespace, body: { spec: { replicas: to } } };
    const options = this.#callOptions(PatchStrategy.MergePatch);
    try {
      if (kind === 'Deployment') await this.#apps.patchNamespacedDeploymentScale(params, options);
      else await this.#apps.patchNamespacedStatefulSetScale(params, options);
    } catch (error) {
      this.#options.logger.error({ model: model.name, target: describeTarget(model.target), from: request.from, to, err: error }, 'scale action failed');
      await this.#emitEvent(model.target, 'Warning', 'FailedScale', `${request.message}; the scale call failed: ${errorMessage(error)}`);
      return false;
    }
    this.#options.logger.info({ model: model.name, target: describeTarget(model.target), from: request.from, to, reason: request.reason }, request.message);
    await this.#emitEvent(model.target, 'Normal', request.reason, request.message);
    return true;
  }

  /** Creates an Event; a failure is logged, not raised, since the scale action itself is done. */
  async #emitEvent(target: TargetRef, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const now = new Date(this.#options.clock.wallNow());
    const event: CoreV1Event = {
      metadata: { generateName: `${target.name}.`, namespace: target.namespace },
      involvedObject: { apiVersion: 'apps/v1', kind: target.kind, name: target.name, namespace: target.namespace },
      type,
      reason,
      // The API server rejects Event messages above 1024 characters.
      message: message.slice(0, 1024),
      source: { component: EVENT_COMPONENT },
      reportingComponent: EVENT_COMPONENT,
      reportingInstance: this.#instance,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      await this.#core.createNamespacedEvent({ namespace: target.namespace, body: event }, this.#callOptions());
    } catch (error) {
      this.#options.logger.warn({ target: describeTarget(target), reason, err: error }, 'cannot create the Kubernetes Event');
    }
  }

  /** Per-call options: an abort signal for the timeout and, for patches, the content type. */
  #callOptions(contentType?: string): ConfigurationOptions {
    const timeoutMs = this.#options.timeoutMs;
    const middleware: ObservableMiddleware = {
      pre: (context) => {
        context.setSignal(AbortSignal.timeout(timeoutMs));
        if (contentType) context.setHeaderParam('Content-Type', contentType);
        return new Observable(Promise.resolve(context));
      },
      post: (context) => new Observable(Promise.resolve(context)),
    };
    return { middleware: [middleware], middlewareMergeStrategy: 'append' };
  }
}

/** Sums nvidia.com/gpu limits over the template's containers (init containers run before, not beside them). */
export function gpusInTemplate(template: V1PodTemplateSpec | undefined): number {
  let total = 0;
  for (const container of template?.spec?.containers ?? []) {
    const limit = container.resources?.limits?.[GPU_RESOURCE];
    if (limit !== undefined) total += parseKubeQuantity(String(limit));
  }
  return total;
}

export function describeTarget(target: TargetRef): string {
  return `${target.kind}/${target.namespace}/${target.name}`;
}

function errorMessage(error: unknown): string {
  const body = (error as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      const status = JSON.parse(body) as { message?: string };
      if (status.message) return status.message;
    } catch {
      // Not a Status document; fall back to the error message.
    }
  }
  return (error as Error).message ?? String(error);
}
