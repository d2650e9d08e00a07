// KServe Open Inference Protocol V2 REST routes: server and model health and metadata,
// and infer (batchable, JSON tensor data).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Static } from '@sinclair/typebox';
import type { ModelRuntime } from '../model-runtime.ts';
import { flattenTensorData, v2BatchKey, v2Rows, type V2InferBody } from '../scheduling/batcher.ts';
import { admit, requestIdOf } from './admission.ts';
import { GatewayError, invalidField, sendError, unknownModel } from './errors.ts';
import { rejectInvalid } from './rejections.ts';
import { parseRetryAfter } from '../upstream/client.ts';
import type { RouteDeps } from './openai.ts';
import { V2InferRequestBody } from './schemas.ts';

interface ModelParams {
  model: string;
  version?: string;
}

export function registerV2Routes(app: FastifyInstance, deps: RouteDeps, version: string): void {
  const findModel = (params: ModelParams, request: FastifyRequest, reply: FastifyReply): ModelRuntime | undefined => {
    reply.header('x-request-id', requestIdOf(request));
    const model = deps.models.get(params.model);
    if (model !== undefined && model.config.protocol === 'v2') return model;
    rejectInvalid(deps, request, reply, unknownModel(params.model, 'v2', model !== undefined), 'v2');
    return undefined;
  };

  app.get('/v2', async (request, reply) => {
    reply.header('x-request-id', requestIdOf(request));
    return { name: 'infergate', version, extensions: [] };
  });

  app.get('/v2/health/live', async (request, reply) => {
    reply.header('x-request-id', requestIdOf(request));
    return { live: true };
  });

  app.get('/v2/health/ready', async (request, reply) => {
    reply.header('x-request-id', requestIdOf(request));
    const ready = !deps.isShuttingDown();
    // Another gateway instance can take the request at once.
    if (!ready) reply.header('retry-after', '1');
    return reply.code(ready ? 200 : 503).send({ ready });
  });

  const readyHandler = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    const model = findModel(request.params, request, reply);
    if (model === undefined) return reply;
    const ready = !deps.isShuttingDown() && model.replicas.all().some((replica) => replica.state === 'ready');
    if (!ready) reply.header('retry-after', String(deps.isShuttingDown() ? 1 : model.scheduler.retryAfterSeconds()));
    return reply.code(ready ? 200 : 503).send({ name: model.config.name, ready });
  };
  app.get('/v2/models/:model/ready', readyHandler);
  app.get('/v2/models/:model/versions/:version/ready', readyHandler);

  // Metadata (inputs, outputs, datatypes) comes from a ready replica, which has the model loaded.
  const metadataHandler = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    const model = findModel(request.params, request, reply);
    if (model === undefined) return reply;
    const replica = model.replicas.all().find((candidate) => candidate.state === 'ready');
    if (replica === undefined) {
      return sendError(reply, new GatewayError(503, 'no_replicas_ready', `model ${model.config.name} has no ready replica to read metadata from; retry later`, { retryAfterSeconds: model.scheduler.retryAfterSeconds() }), 'v2');
    }
    const path = request.params.version === undefined ? `/v2/models/${encodeURIComponent(model.config.name)}` : `/v2/models/${encodeURIComponent(model.config.name)}/versions/${encodeURIComponent(request.params.version)}`;
    try {
      const timeout = model.config.upstream.headersTimeoutMs;
      const response = await replica.pool.request({ method: 'GET', path, signal: AbortSignal.timeout(Math.min(timeout, model.config.health.timeoutMs * 5)) });
      const body = Buffer.from(await response.body.arrayBuffer());
      if (response.statusCode === 429 || response.statusCode === 503) {
        const upstream = parseRetryAfter(response.headers['retry-after'], deps.clock.wallNow());
        reply.header('retry-after', String(Math.max(1, Math.ceil(upstream ?? model.scheduler.retryAfterSeconds()))));
      }
      return reply.code(response.statusCode).header('content-type', 'application/json').send(body);
    } catch (error) {
      request.log.warn({ model: model.config.name, replica: replica.id, err: error }, 'reading model metadata from the replica failed');
      return sendError(reply, new GatewayError(502, 'upstream_unavailable', `reading metadata of model ${model.config.name} from replica ${replica.id} failed`), 'v2');
    }
  };
  app.get('/v2/models/:model', metadataHandler);
  app.get('/v2/models/:model/versions/:version', metadataHandler);

  // Synchronous and returning nothing: the request's Job sends the response later.
  const inferHandler = (request: FastifyRequest<{ Params: ModelParams; Body: Static<typeof V2InferRequestBody> }>, reply: FastifyReply): void => {
    const model = findModel(request.params, request, reply);
    if (model === undefined) return;
    const body = request.body as V2InferBody;
    try {
      validateTensors(body);
    } catch (error) {
      if (!(error instanceof GatewayError)) throw error;
      rejectInvalid(deps, request, reply, error, 'v2');
      return;
    }
    const name = encodeURIComponent(model.config.name);
    const versionParam = request.params.version;
    const upstreamPath = versionParam === undefined ? `/v2/models/${name}/infer` : `/v2/models/${name}/versions/${encodeURIComponent(versionParam)}/infer`;
    admit(deps, model, request, reply, {
      style: 'v2',
      upstreamPath,
      payload: body,
      rows: Math.max(1, v2Rows(body)),
      batchKey: v2BatchKey(model.config.name, versionParam, body),
      stream: false,
    });
  };
  app.post('/v2/models/:model/infer', { schema: { body: V2InferRequestBody } }, inferHandler);
  app.post('/v2/models/:model/versions/:version/infer', { schema: { body: V2InferRequestBody } }, inferHandler);
}

/**
 * Checks what the schema cannot: every input has as many values as its shape requires, all
 * inputs share dimension 0 (the batch dimension). The binary extension is refused before this,
 * in the traffic server's preValidation hook.
 */
export function validateTensors(body: V2InferBody): void {
  let rows: number | undefined;
  const names = new Set<string>();
  for (const [index, tensor] of body.inputs.entries()) {
    const where = `inputs[${index}]`;
    if (names.has(tensor.name)) throw invalidField(`${where}.name`, tensor.name, 'input names must be unique');
    names.add(tensor.name);
    const expected = tensor.shape.reduce((product, n) => product * n, 1);
    const rank = Math.max(1, tensor.shape.length);
    const values = flattenTensorData(tensor.data, rank);
    if (values === undefined) {
      throw new GatewayError(400, 'invalid_value', `${where}.data is nested deeper than its shape ${JSON.stringify(tensor.shape)} allows (arrays at most ${rank} ${rank === 1 ? 'level' : 'levels'} deep); nest it by the shape or send it flat`, { param: `${where}.data` });
    }
    if (values.length !== expected) {
      throw new GatewayError(400, 'invalid_value', `${where}.data has ${values.length} values, but shape ${JSON.stringify(tensor.shape)} needs ${expected}`, { param: `${where}.data` });
    }
    const first = tensor.shape[0] ?? 0;
    if (rows === undefined) rows = first;
    else if (first !== rows) throw invalidField(`${where}.shape[0]`, first, `every input must have the same dimension 0 (batch size) as inputs[0], which is ${rows}`);
  }
}
