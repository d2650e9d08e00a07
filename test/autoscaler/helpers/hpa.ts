// A model of the HPA controller for External metrics with an AverageValue target, as the
// Kubernetes documentation describes it (Horizontal Pod Autoscaling, "Algorithm details"):
//   usageRatio = metricValue / (targetAverageValue * currentReplicas)
//   within the tolerance (|1 - usageRatio| <= 0.1 by default): keep currentReplicas
//   otherwise: desired = ceil(metricValue / targetAverageValue), within [min, max]
// An HPA does nothing while its target has 0 replicas. The model has no stabilization
// window of its own, as the chart's HPAs set scaleDown.stabilizationWindowSeconds: 0
// and leave stabilization to the autoscaler.
import { request } from 'undici';
import { parseQuantity } from '../../../autoscaler/src/api/quantity.ts';
import { ApiClient, metricPath } from './client.ts';

export const HPA_TOLERANCE = 0.1;

export interface HpaSpec {
  targetAverageValue: number;
  minReplicas: number;
  maxReplicas: number;
}

/** Returns the replica count the HPA requests, or currentReplicas when it would not act. */
export function hpaDesiredReplicas(currentReplicas: number, metricValue: number, spec: HpaSpec): number {
  if (currentReplicas === 0) return 0;
  const usageRatio = metricValue / (spec.targetAverageValue * currentReplicas);
  if (Math.abs(1 - usageRatio) <= HPA_TOLERANCE) return currentReplicas;
  const desired = Math.ceil(metricValue / spec.targetAverageValue);
  return Math.min(spec.maxReplicas, Math.max(spec.minReplicas, desired));
}

export interface HpaStep {
  current: number;
  /** Metric value read, or undefined when the API returned an error (the HPA then keeps the replicas). */
  metric: number | undefined;
  status: number;
  desired: number;
}

/** One HPA for one model: reads the metric through the API and writes the scale subresource of the fake API server. */
export class HpaModel {
  readonly history: HpaStep[] = [];
  readonly #api: ApiClient;
  readonly #kubeUrl: string;
  readonly #namespace: string;
  readonly #deployment: string;
  readonly #model: string;
  readonly #spec: HpaSpec;

  constructor(options: { api: ApiClient; kubeUrl: string; namespace: string; deployment: string; model: string; spec: HpaSpec }) {
    this.#api = options.api;
    this.#kubeUrl = options.kubeUrl;
    this.#namespace = options.namespace;
    this.#deployment = options.deployment;
    this.#model = options.model;
    this.#spec = options.spec;
  }

  /** Runs one sync of the HPA controller and returns what it saw and did. */
  async sync(): Promise<HpaStep> {
    const scalePath = `${this.#kubeUrl}/apis/apps/v1/namespaces/${this.#namespace}/deployments/${this.#deployment}/scale`;
    const scaleResponse = await request(scalePath, { signal: AbortSignal.timeout(5000) });
    const scale = (await scaleResponse.body.json()) as { spec: { replicas: number } };
    const current = scale.spec.replicas;

    const response = await this.#api.get(metricPath(this.#namespace, 'infergate_demand', `model=${this.#model}`));
    let metric: number | undefined;
    if (response.status === 200) {
      const items = response.body.items as { value: string }[];
      metric = items.reduce((sum, item) => sum + parseQuantity(item.value), 0);
    }
    const desired = metric === undefined ? current : hpaDesiredReplicas(current, metric, this.#spec);
    if (desired !== current) {
      const patch = await request(scalePath, {
        method: 'PATCH',
        headers: { 'content-type': 'application/merge-patch+json' },
        body: JSON.stringify({ spec: { replicas: desired } }),
        signal: AbortSignal.timeout(5000),
      });
      await patch.body.dump();
      if (patch.statusCode !== 200) throw new Error(`HPA model: scale patch returned ${patch.statusCode}`);
    }
    const step = { current, metric, status: response.status, desired };
    this.history.push(step);
    return step;
  }
}
