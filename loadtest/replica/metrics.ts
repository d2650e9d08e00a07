// Prometheus metrics with the names, types and labels that vLLM (v1 engine, `vllm:`
// prefix, `model_name` label) and Triton Inference Server (`nv_inference_*`, `model` and
// `version` labels) expose, so dashboards and scrapers built for them work unchanged.
// Both upstream naming schemes break promtool's lint rules (colons in names, counters
// without `_total`, `_us` units); the names are kept because fidelity is the point.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Engine } from './engine.ts';

/** Triton reports every model as version 1 unless versions are configured. */
export const V2_MODEL_VERSION = '1';

const LATENCY_BUCKETS_S = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const ITL_BUCKETS_S = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const TOKEN_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];

export type FinishReason = 'stop' | 'length' | 'abort';
export type V2FailureReason = 'REJECTED' | 'CANCELED' | 'BACKEND' | 'OTHER';

export interface ReplicaMetrics {
  readonly registry: Registry;
  /** A generation or embedding request finished on the OpenAI side. */
  openaiFinished(
    model: string,
    reason: FinishReason,
    timing: { promptTokens: number; outputTokens: number; queueS: number; e2eS: number; ttftS?: number },
  ): void;
  openaiInterTokenLatency(model: string, seconds: number): void;
  v2Succeeded(model: string, rows: number, timing: { queueUs: number; computeUs: number; requestUs: number }): void;
  v2Failed(model: string, reason: V2FailureReason): void;
  v2Executed(model: string): void;
}

export function createReplicaMetrics(
  engine: Engine,
  options: { models: readonly string[]; openai: boolean; v2: boolean; kvCacheTokens: number },
): ReplicaMetrics {
  const registry = new Registry();
  const registers = [registry];
  const { models } = options;

  if (options.openai) {
    new Gauge({
      name: 'vllm:num_requests_running',
      help: 'Requests holding a running sequence slot.',
      labelNames: ['model_name'],
      registers,
      collect() {
        for (const model of models) this.set({ model_name: model }, engine.load(model).running);
      },
    });
    new Gauge({
      name: 'vllm:num_requests_waiting',
      help: 'Requests waiting for a running slot.',
      labelNames: ['model_name'],
      registers,
      collect() {
        for (const model of models) this.set({ model_name: model }, engine.load(model).waiting);
      },
    });
    new Gauge({
      name: 'vllm:kv_cache_usage_perc',
      help: 'Fraction of the simulated KV cache in use, from 0 to 1.',
      labelNames: ['model_name'],
      registers,
      collect() {
        for (const model of models) {
          const usage = Math.min(1, engine.load(model).cachedTokens / options.kvCacheTokens);
          this.set({ model_name: model }, usage);
        }
      },
    });
  }
  const promptTokens = new Counter({
    name: 'vllm:prompt_tokens_total',
    help: 'Prompt tokens prefilled.',
    labelNames: ['model_name'],
    registers: options.openai ? registers : [],
  });
  const generationTokens = new Counter({
    name: 'vllm:generation_tokens_total',
    help: 'Output tokens generated.',
    labelNames: ['model_name'],
    registers: options.openai ? registers : [],
  });
  const requestSuccess = new Counter({
    name: 'vllm:request_success_total',
    help: 'Requests finished, by finish reason.',
    labelNames: ['model_name', 'finished_reason'],
    registers: options.openai ? registers : [],
  });
  const ttft = new Histogram({
    name: 'vllm:time_to_first_token_seconds',
    help: 'Seconds from arrival to the first output token.',
    labelNames: ['model_name'],
    buckets: LATENCY_BUCKETS_S,
    registers: options.openai ? registers : [],
  });
  const itl = new Histogram({
    name: 'vllm:inter_token_latency_seconds',
    help: 'Seconds between consecutive output tokens of a sequence.',
    labelNames: ['model_name'],
    buckets: ITL_BUCKETS_S,
    registers: options.openai ? registers : [],
  });
  const e2e = new Histogram({
    name: 'vllm:e2e_request_latency_seconds',
    help: 'Seconds from arrival to the last output byte.',
    labelNames: ['model_name'],
    buckets: LATENCY_BUCKETS_S,
    registers: options.openai ? registers : [],
  });
  const queueTime = new Histogram({
    name: 'vllm:request_queue_time_seconds',
    help: 'Seconds a request waited for a running slot.',
    labelNames: ['model_name'],
    buckets: LATENCY_BUCKETS_S,
    registers: options.openai ? registers : [],
  });
  const promptTokensPerRequest = new Histogram({
    name: 'vllm:request_prompt_tokens',
    help: 'Prompt tokens per request.',
    labelNames: ['model_name'],
    buckets: TOKEN_BUCKETS,
    registers: options.openai ? registers : [],
  });
  const generationTokensPerRequest = new Histogram({
    name: 'vllm:request_generation_tokens',
    help: 'Output tokens per request.',
    labelNames: ['model_name'],
    buckets: TOKEN_BUCKETS,
    registers: options.openai ? registers : [],
  });

  const v2Registers = options.v2 ? registers : [];
  const v2Labels = ['model', 'version'] as const;
  const success = new Counter({
    name: 'nv_inference_request_success',
    help: 'Inference requests answered successfully.',
    labelNames: v2Labels,
    registers: v2Registers,
  });
  const failure = new Counter({
    name: 'nv_inference_request_failure',
    help: 'Inference requests that failed, by reason.',
    labelNames: [...v2Labels, 'reason'],
    registers: v2Registers,
  });
  const inferenceCount = new Counter({
    name: 'nv_inference_count',
    help: 'Rows inferred (a request with N rows counts N).',
    labelNames: v2Labels,
    registers: v2Registers,
  });
  const execCount = new Counter({
    name: 'nv_inference_exec_count',
    help: 'Batched model executions.',
    labelNames: v2Labels,
    registers: v2Registers,
  });
  const requestDuration = new Counter({
    name: 'nv_inference_request_duration_us',
    help: 'Total request time in microseconds, from arrival to response.',
    labelNames: v2Labels,
    registers: v2Registers,
  });
  const queueDuration = new Counter({
    name: 'nv_inference_queue_duration_us',
    help: 'Total time in microseconds that requests waited for an execution.',
    labelNames: v2Labels,
    registers: v2Registers,
  });
  const computeDuration = new Counter({
    name: 'nv_inference_compute_infer_duration_us',
    help: 'Total execution time in microseconds of the executions that requests took part in.',
    labelNames: v2Labels,
    registers: v2Registers,
  });
  if (options.v2) {
    new Gauge({
      name: 'nv_inference_pending_request_count',
      help: 'Requests waiting for an execution.',
      labelNames: v2Labels,
      registers,
      collect() {
        for (const model of models) this.set({ model, version: V2_MODEL_VERSION }, engine.load(model).waiting);
      },
    });
  }

  // Series start at zero, as in both servers, so rate() works from the first scrape.
  for (const model of models) {
    if (options.openai) {
      promptTokens.inc({ model_name: model }, 0);
      generationTokens.inc({ model_name: model }, 0);
    }
    if (options.v2) {
      const labels = { model, version: V2_MODEL_VERSION };
      for (const counter of [success, inferenceCount, execCount, requestDuration, queueDuration, computeDuration]) {
        counter.inc(labels, 0);
      }
    }
  }

  return {
    registry,
    openaiFinished(model, reason, timing) {
      const labels = { model_name: model };
      promptTokens.inc(labels, timing.promptTokens);
      generationTokens.inc(labels, timing.outputTokens);
      if (reason !== 'abort') requestSuccess.inc({ model_name: model, finished_reason: reason });
      if (timing.ttftS !== undefined) ttft.observe(labels, timing.ttftS);
      e2e.observe(labels, timing.e2eS);
      queueTime.observe(labels, timing.queueS);
      promptTokensPerRequest.observe(labels, timing.promptTokens);
      generationTokensPerRequest.observe(labels, timing.outputTokens);
    },
    openaiInterTokenLatency(model, seconds) {
      itl.observe({ model_name: model }, seconds);
    },
    v2Succeeded(model, rows, timing) {
      const labels = { model, version: V2_MODEL_VERSION };
      success.inc(labels);
      inferenceCount.inc(labels, rows);
      requestDuration.inc(labels, Math.round(timing.requestUs));
      queueDuration.inc(labels, Math.round(timing.queueUs));
      computeDuration.inc(labels, Math.round(timing.computeUs));
    },
    v2Failed(model, reason) {
      failure.inc({ model, version: V2_MODEL_VERSION, reason });
    },
    v2Executed(model) {
      execCount.inc({ model, version: V2_MODEL_VERSION });
    },
  };
}
