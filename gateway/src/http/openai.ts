// OpenAI-compatible routes: chat completions and completions (optionally streamed as SSE),
// embeddings (batchable) and the model list.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Static } from '@sinclair/typebox';
import type { ModelRuntime } from '../model-runtime.ts';
import { embeddingRows, embeddingsBatchKey, type EmbeddingsBody } from '../scheduling/batcher.ts';
import { admit, requestIdOf, type AdmissionDeps } from './admission.ts';
import { unknownModel } from './errors.ts';
import { rejectInvalid } from './rejections.ts';
import { ChatCompletionBody, CompletionBody, EmbeddingsRequestBody } from './schemas.ts';

export interface RouteDeps extends AdmissionDeps {
  models: ReadonlyMap<string, ModelRuntime>;
  /** Unix time in seconds at start, shown as `created` in the model list. */
  startedAtSeconds: number;
}

export function registerOpenAIRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const findModel = (name: string, request: FastifyRequest, reply: FastifyReply): ModelRuntime | undefined => {
    const model = deps.models.get(name);
    if (model !== undefined && model.config.protocol === 'openai') return model;
    rejectInvalid(deps, request, reply, unknownModel(name, 'openai', model !== undefined), 'openai');
    return undefined;
  };

  // The inference handlers are synchronous and return nothing: the request's Job sends the
  // response later, and fastify waits for it without a promise per request.
  app.post<{ Body: Static<typeof ChatCompletionBody> }>('/v1/chat/completions', { schema: { body: ChatCompletionBody } }, (request, reply): void => {
    const model = findModel(request.body.model, request, reply);
    if (model === undefined) return;
    admit(deps, model, request, reply, {
      style: 'openai',
      upstreamPath: '/v1/chat/completions',
      payload: request.body,
      rows: 1,
      batchKey: null,
      stream: request.body.stream === true,
    });
  });

  app.post<{ Body: Static<typeof CompletionBody> }>('/v1/completions', { schema: { body: CompletionBody } }, (request, reply): void => {
    const model = findModel(request.body.model, request, reply);
    if (model === undefined) return;
    admit(deps, model, request, reply, {
      style: 'openai',
      upstreamPath: '/v1/completions',
      payload: request.body,
      rows: 1,
      batchKey: null,
      stream: request.body.stream === true,
    });
  });

  app.post<{ Body: Static<typeof EmbeddingsRequestBody> }>('/v1/embeddings', { schema: { body: EmbeddingsRequestBody } }, (request, reply): void => {
    const model = findModel(request.body.model, request, reply);
    if (model === undefined) return;
    const body = request.body as EmbeddingsBody;
    admit(deps, model, request, reply, {
      style: 'openai',
      upstreamPath: '/v1/embeddings',
      payload: body,
      rows: embeddingRows(body.input).rows.length,
      batchKey: embeddingsBatchKey(body),
      stream: false,
    });
  });

  app.get('/v1/models', async (request, reply) => {
    reply.header('x-request-id', requestIdOf(request));
    const data = [...deps.models.values()]
      .filter((model) => model.config.protocol === 'openai')
      .map((model) => ({ id: model.config.name, object: 'model', created: deps.startedAtSeconds, owned_by: 'infergate' }));
    return { object: 'list', data };
  });

  app.get<{ Params: { model: string } }>('/v1/models/:model', async (request, reply) => {
    const model = findModel(request.params.model, request, reply);
    if (model === undefined) return reply;
    reply.header('x-request-id', requestIdOf(request));
    return { id: model.config.name, object: 'model', created: deps.startedAtSeconds, owned_by: 'infergate' };
  });
}
