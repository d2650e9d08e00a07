// KServe Open Inference Protocol V2 routes shaped like Triton's HTTP server: server and
// model metadata, liveness and readiness, model config, and JSON-tensor inference whose
// rows run in batched executions on the simulated GPU.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { InvalidRequestError, v2ErrorBody, type ReplicaContext } from './context.ts';
import { QueueFullError } from './engine.ts';
import { V2_MODEL_VERSION } from './metrics.ts';
import { V2_DATATYPES, V2_OUTPUT_NAMES, computeOutputs, parseInferRequest } from './tensors.ts';

const SERVER_NAME = 'infergate-replica';
const SERVER_VERSION = '0.1.0';

interface ModelParams {
  model: string;
  version?: string;
}

export function registerV2Routes(app: FastifyInstance, context: ReplicaContext): void {
  const isReady = (): boolean => context.isReady();
  const plain = { config: { protocol: 'v2' as const } };
  const inference = { config: { inference: true, protocol: 'v2' as const } };

  app.get('/v2', plain, async () => ({ name: SERVER_NAME, version: SERVER_VERSION, extensions: ['model_configuration', 'parameters'] }));

  app.get('/v2/health/live', plain, async (_request, reply) => reply.code(200).send());

  app.get('/v2/health/ready', plain, async (_request, reply) => reply.code(isReady() ? 200 : 503).send());

  const metadata = async (request: FastifyRequest<{ Params: ModelParams }>) => {
    const model = resolveModel(context, request.params);
    return {
      name: model,
      versions: [V2_MODEL_VERSION],
      platform: 'infergate_simulator',
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [-1, -1] }],
      outputs: [
        { name: 'OUTPUT0', datatype: 'FP32', shape: [-1, -1] },
        { name: 'OUTPUT1', datatype: 'FP32', shape: [-1, 1] },
      ],
      // Triton keeps max_batch_size in the model config; it is repeated here so a
      // gateway can read the batch limit from the metadata call alone.
      max_batch_size: context.config.maxBatch,
    };
  };
  app.get('/v2/models/:model', plain, metadata);
  app.get('/v2/models/:model/versions/:version', plain, metadata);

  const modelReady = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    resolveModel(context, request.params);
    return reply.code(isReady() ? 200 : 503).send();
  };
  app.get('/v2/models/:model/ready', plain, modelReady);
  app.get('/v2/models/:model/versions/:version/ready', plain, modelReady);

  const modelConfig = async (request: FastifyRequest<{ Params: ModelParams }>) => {
    const model = resolveModel(context, request.params);
    return {
      name: model,
      platform: 'infergate_simulator',
      backend: 'infergate_simulator',
      max_batch_size: context.config.maxBatch,
      input: [{ name: 'INPUT0', data_type: 'TYPE_FP32', dims: [-1], allow_ragged_batch: false }],
      output: [
        { name: 'OUTPUT0', data_type: 'TYPE_FP32', dims: [-1] },
        { name: 'OUTPUT1', data_type: 'TYPE_FP32', dims: [1] },
      ],
      dynamic_batching: { max_queue_delay_microseconds: 0, preferred_batch_size: [] },
      instance_group: [{ name: model, kind: 'KIND_GPU', count: context.config.gpuStreams }],
      simulator: { datatypes: V2_DATATYPES, outputs: V2_OUTPUT_NAMES, max_inputs: 16 },
    };
  };
  app.get('/v2/models/:model/config', plain, modelConfig);
  app.get('/v2/models/:model/versions/:version/config', plain, modelConfig);

  const infer = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    const tracker = context.tracker(request);
    const model = resolveModel(context, request.params);
    let parsed;
    try {
      parsed = parseInferRequest(request.body, model, context.config.maxBatch);
    } catch (error) {
      context.metrics.v2Failed(model, 'REJECTED');
      throw error;
    }
    let queueMs = 0;
    let result: { kind: 'done'; executeMs: number } | { kind: 'aborted' };
    try {
      result = await new Promise((resolve) => {
        const handle = context.engine.submitBatch(
          { model, items: parsed.batch, splittable: false },
          { onStart: (ms) => (queueMs = ms), onFinish: (executeMs) => resolve({ kind: 'done', executeMs }) },
        );
        tracker.onAbort(() => {
          handle.cancel();
          resolve({ kind: 'aborted' });
        });
      });
    } catch (error) {
      if (!(error instanceof QueueFullError)) throw error;
      tracker.setOutcome('rejected');
      context.metrics.v2Failed(model, 'REJECTED');
      return reply.code(429).send(v2ErrorBody(`${error.message} for model '${model}'; retry later`));
    }
    if (result.kind === 'aborted') {
      context.metrics.v2Failed(model, 'CANCELED');
      return reply.hijack();
    }
    context.metrics.v2Succeeded(model, parsed.batch, {
      queueUs: queueMs * 1000,
      computeUs: result.executeMs * 1000,
      requestUs: (context.clock.now() - tracker.arrivedAt) * 1000,
    });
    return reply.code(200).send({
      model_name: model,
      model_version: V2_MODEL_VERSION,
      ...(parsed.id === undefined ? {} : { id: parsed.id }),
      outputs: computeOutputs(parsed),
    });
  };
  app.post('/v2/models/:model/infer', inference, infer);
  app.post('/v2/models/:model/versions/:version/infer', inference, infer);
}

function resolveModel(context: ReplicaContext, params: ModelParams): string {
  if (!context.config.models.includes(params.model)) {
    throw new InvalidRequestError(
      `Request for unknown model: '${params.model}' is not found; this replica serves ${context.config.models.join(', ')}`,
      'model',
      404,
    );
  }
  if (params.version !== undefined && params.version !== V2_MODEL_VERSION) {
    throw new InvalidRequestError(
      `Request for unknown model: '${params.model}' version ${params.version} is not found; the only version is ${V2_MODEL_VERSION}`,
      'version',
      404,
    );
  }
  return params.model;
}
