// OpenAI-compatible routes shaped like vLLM's server: chat completions and completions
// (JSON or SSE), embeddings, and the model list. Bodies are checked with TypeBox; the
// first failing field is reported with its path and value in vLLM's error shape.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { InvalidRequestError, openaiErrorBody, type InferenceTracker, type ReplicaContext } from './context.ts';
import { QueueFullError, type WorkHandle } from './engine.ts';
import type { FinishReason } from './metrics.ts';
import { defaultOutputTokens, embedText, encodeEmbeddingBase64, estimateTokens, generateTokens } from './outputs.ts';

// Every schema node that can fail has a `description` that states the rule in plain words
// ("must be ..."), and the error message shows it in place of TypeBox's own wording.
const Nullable = <T extends TSchema>(schema: T, rule: string) => Type.Optional(Type.Union([schema, Type.Null()], { description: `${rule} or null` }));

const ModelField = Nullable(Type.String({ minLength: 1 }), 'must be a non-empty model name');
const PositiveInt = () => Nullable(Type.Integer({ minimum: 1 }), 'must be a positive integer');
const StreamFields = {
  stream: Nullable(Type.Boolean(), 'must be a boolean'),
  stream_options: Nullable(Type.Object({ include_usage: Nullable(Type.Boolean(), 'must be a boolean') }, { additionalProperties: true }), 'must be an object such as {"include_usage": true}'),
};
// n above 1 is reported before schema validation, as a limit of this simulator.
const SingleChoice = Nullable(Type.Literal(1), 'must be 1');

const MessageContent = Type.Union(
  [
    Type.String(),
    Type.Null(),
    Type.Array(
      Type.Object({ type: Type.String({ description: 'must be a string' }), text: Type.Optional(Type.String({ description: 'must be a string' })) }, { additionalProperties: true, description: 'must be an object with a type' }),
      { description: 'must be an array of content parts' },
    ),
  ],
  { description: 'must be a string, an array of content parts or null' },
);

const ChatBody = Type.Object(
  {
    model: ModelField,
    messages: Type.Array(
      Type.Object(
        { role: Type.String({ minLength: 1, description: 'must be a non-empty string' }), content: Type.Optional(MessageContent) },
        { additionalProperties: true, description: 'must be an object with a role' },
      ),
      { minItems: 1, description: 'must be an array of at least 1 message' },
    ),
    max_tokens: PositiveInt(),
    max_completion_tokens: PositiveInt(),
    n: SingleChoice,
    ...StreamFields,
  },
  { additionalProperties: true },
);

const CompletionBody = Type.Object(
  {
    model: ModelField,
    prompt: Type.Union(
      [
        Type.String(),
        Type.Array(Type.String(), { minItems: 1, maxItems: 1 }),
        Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }),
      ],
      { description: 'must be a string, an array of one string or a non-empty array of token ids' },
    ),
    max_tokens: PositiveInt(),
    n: SingleChoice,
    ...StreamFields,
  },
  { additionalProperties: true },
);

const EmbeddingBody = Type.Object(
  {
    model: ModelField,
    input: Type.Union(
      [
        Type.String({ minLength: 1 }),
        Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
        Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }),
        Type.Array(Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }), { minItems: 1 }),
      ],
      { description: 'must be a non-empty string, an array of non-empty strings, an array of token ids or an array of token id arrays' },
    ),
    encoding_format: Nullable(Type.Union([Type.Literal('float'), Type.Literal('base64')]), 'must be "float" or "base64"'),
    dimensions: PositiveInt(),
  },
  { additionalProperties: true },
);

interface Generation {
  kind: 'chat' | 'completion';
  model: string;
  prompt: string;
  promptTokens: number;
  outputTokens: number;
  finishReason: FinishReason;
  stream: boolean;
  includeUsage: boolean;
}

export function registerOpenAIRoutes(app: FastifyInstance, context: ReplicaContext): void {
  const inference = { config: { inference: true, protocol: 'openai' as const } };

  app.get('/health', { config: { protocol: 'openai' as const } }, async (_request, reply) => {
    return reply.code(context.isReady() ? 200 : 503).send();
  });

  app.get('/v1/models', { config: { protocol: 'openai' as const } }, async () => {
    const created = Math.floor(context.clock.wallNow() / 1000);
    return {
      object: 'list',
      data: context.config.models.map((id) => ({
        id,
        object: 'model',
        created,
        owned_by: 'vllm',
        root: id,
        parent: null,
        max_model_len: context.config.maxModelLen,
      })),
    };
  });

  app.post('/v1/chat/completions', inference, async (request, reply) => {
    const body = validate(ChatBody, request.body);
    const prompt = body.messages.map((message) => `${message.role}: ${messageText(message.content)}`).join('\n');
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined;
    const generation = planGeneration(context, 'chat', body.model, prompt, maxTokens, body.stream, body.stream_options);
    return runGeneration(context, request, reply, generation);
  });

  app.post('/v1/completions', inference, async (request, reply) => {
    const body = validate(CompletionBody, request.body);
    const prompt = typeof body.prompt === 'string' ? body.prompt : body.prompt.join(' ');
    const generation = planGeneration(context, 'completion', body.model, prompt, body.max_tokens ?? undefined, body.stream, body.stream_options);
    return runGeneration(context, request, reply, generation);
  });

  app.post('/v1/embeddings', inference, async (request, reply) => {
    const body = validate(EmbeddingBody, request.body);
    const model = resolveModel(context, body.model);
    const dimensions = body.dimensions ?? context.config.embeddingDimensions;
    if (dimensions > context.config.embeddingDimensions) {
      throw new InvalidRequestError(
        `invalid dimensions ${dimensions}: model '${model}' produces at most ${context.config.embeddingDimensions} dimensions`,
        'dimensions',
      );
    }
    const texts = embeddingTexts(body.input);
    return runEmbeddings(context, request, reply, model, texts, dimensions, body.encoding_format ?? 'float');
  });

}

function validate<T extends TSchema>(schema: T, body: unknown): Static<T> {
  if (Value.Check(schema, body)) return body;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new InvalidRequestError(`invalid request body ${JSON.stringify(body)}: expected a JSON object`, null);
  }
  const unsupported = unsupportedFeature(body as Record<string, unknown>);
  if (unsupported !== undefined) throw unsupported;
  const first = Value.Errors(schema, body).First();
  const param = first === undefined ? null : first.path.slice(1).replaceAll('/', '.') || null;
  const value = first === undefined ? body : first.value;
  const shown = value === undefined ? 'missing' : JSON.stringify(value);
  const rule = first?.schema.description;
  const expected = typeof rule === 'string' ? rule : `is invalid (${first?.message ?? 'unknown reason'})`;
  throw new InvalidRequestError(`invalid value ${shown} for ${param ?? 'body'}: ${expected}`, param);
}

/**
 * Valid OpenAI requests this simulator does not serve: several choices (n > 1) and several
 * prompts in one completions request. vLLM serves both, so the simulator returns a message
 * that names the limit instead of a schema mismatch.
 */
function unsupportedFeature(body: Record<string, unknown>): InvalidRequestError | undefined {
  const n = body.n;
  if (typeof n === 'number' && Number.isInteger(n) && n > 1) {
    return new InvalidRequestError(`n=${n} is not supported by this simulator: only n=1; send ${n} requests instead`, 'n');
  }
  const prompt = body.prompt;
  if (Array.isArray(prompt) && prompt.length > 1 && (prompt.every((item) => typeof item === 'string') || prompt.every(Array.isArray))) {
    return new InvalidRequestError(`a prompt array of ${prompt.length} prompts is not supported by this simulator: only one prompt per request; send ${prompt.length} requests instead`, 'prompt');
  }
  if (Array.isArray(prompt) && prompt.length === 1 && Array.isArray(prompt[0])) {
    return new InvalidRequestError('a prompt given as an array of token id arrays is not supported by this simulator: send the token ids as one flat array', 'prompt');
  }
  return undefined;
}

function messageText(content: Static<typeof MessageContent> | undefined): string {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  return content.map((part) => part.text ?? '').join('');
}

function resolveModel(context: ReplicaContext, requested: string | null | undefined): string {
  const model = requested ?? context.config.models[0] ?? '';
  if (!context.config.models.includes(model)) {
    throw new InvalidRequestError(
      `The model \`${model}\` does not exist; this replica serves ${context.config.models.join(', ')}`,
      'model',
      404,
    );
  }
  return model;
}

function planGeneration(
  context: ReplicaContext,
  kind: 'chat' | 'completion',
  requestedModel: string | null | undefined,
  prompt: string,
  maxTokens: number | undefined,
  stream: boolean | null | undefined,
  streamOptions: { include_usage?: boolean | null } | null | undefined,
): Generation {
  const model = resolveModel(context, requestedModel);
  const promptTokens = estimateTokens(prompt);
  const outputTokens = maxTokens ?? context.config.defaultMaxTokens ?? defaultOutputTokens(prompt);
  if (promptTokens + outputTokens > context.config.maxModelLen) {
    const field = maxTokens === undefined ? 'messages' : 'max_tokens';
    throw new InvalidRequestError(
      `This model's maximum context length is ${context.config.maxModelLen} tokens, but the request needs ${promptTokens} prompt tokens plus ${outputTokens} output tokens; reduce the prompt or max_tokens`,
      field,
    );
  }
  if (!stream && streamOptions != null) {
    throw new InvalidRequestError('invalid stream_options: only allowed when stream is true', 'stream_options');
  }
  return {
    kind,
    model,
    prompt,
    promptTokens,
    outputTokens,
    // A request that sets the limit runs into it; otherwise the model stops by itself.
    finishReason: maxTokens === undefined && context.config.defaultMaxTokens === undefined ? 'stop' : 'length',
    stream: stream === true,
    includeUsage: streamOptions?.include_usage === true,
  };
}

function embeddingTexts(input: Static<typeof EmbeddingBody>['input']): string[] {
  if (typeof input === 'string') return [input];
  if (input.every((item) => typeof item === 'number')) return [(input as number[]).join(' ')];
  return (input as Array<string | number[]>).map((item) => (typeof item === 'string' ? item : item.join(' ')));
}

function usageOf(promptTokens: number, completionTokens: number) {
  return {
    prompt_tokens: promptTokens,
    total_tokens: promptTokens + completionTokens,
    completion_tokens: completionTokens,
    prompt_tokens_details: null,
  };
}

/** Waits for an engine job to finish, or cancels it when the client disconnects first, as vLLM aborts a sequence. */
function runUntilAbort(tracker: InferenceTracker, submit: (onFinish: () => void) => WorkHandle): Promise<'done' | 'aborted'> {
  return new Promise((resolve) => {
    const handle = submit(() => resolve('done'));
    tracker.onAbort(() => {
      handle.cancel();
      resolve('aborted');
    });
  });
}

function sendQueueFull(tracker: InferenceTracker, reply: FastifyReply, error: QueueFullError): FastifyReply {
  tracker.setOutcome('rejected');
  return reply.code(429).send(openaiErrorBody(429, `${error.message}; retry later`));
}

async function runGeneration(context: ReplicaContext, request: FastifyRequest, reply: FastifyReply, generation: Generation): Promise<FastifyReply> {
  const tracker = context.tracker(request);
  const pieces = generateTokens(generation.prompt, generation.outputTokens);
  const id = `${generation.kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID().replaceAll('-', '')}`;
  const created = Math.floor(context.clock.wallNow() / 1000);
  const base = { id, object: generation.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', created, model: generation.model };
  const timing = { queueMs: 0, firstTokenAt: 0, lastTokenAt: 0, emitted: 0 };
  const metrics = context.metrics;
  const recordFinish = (reason: FinishReason): void => {
    const now = context.clock.now();
    metrics.openaiFinished(generation.model, reason, {
      promptTokens: generation.promptTokens,
      outputTokens: timing.emitted,
      queueS: timing.queueMs / 1000,
      e2eS: (now - tracker.arrivedAt) / 1000,
      ...(timing.emitted > 0 ? { ttftS: (timing.firstTokenAt - tracker.arrivedAt) / 1000 } : {}),
    });
  };
  const noteToken = (): void => {
    const now = context.clock.now();
    if (timing.emitted === 0) timing.firstTokenAt = now;
    else metrics.openaiInterTokenLatency(generation.model, (now - timing.lastTokenAt) / 1000);
    timing.lastTokenAt = now;
    timing.emitted++;
  };

  if (!generation.stream) {
    let result: 'done' | 'aborted';
    try {
      result = await runUntilAbort(tracker, (onFinish) =>
        context.engine.submitSequence(
          { model: generation.model, promptTokens: generation.promptTokens, outputTokens: generation.outputTokens },
          { onStart: (queueMs) => (timing.queueMs = queueMs), onToken: noteToken, onFinish },
        ),
      );
    } catch (error) {
      if (error instanceof QueueFullError) return sendQueueFull(tracker, reply, error);
      throw error;
    }
    if (result === 'aborted') {
      recordFinish('abort');
      return reply.hijack();
    }
    recordFinish(generation.finishReason);
    const text = pieces.join('');
    const choice =
      generation.kind === 'chat'
        ? { index: 0, message: { role: 'assistant', content: text, tool_calls: [] }, logprobs: null, finish_reason: generation.finishReason, stop_reason: null }
        : { index: 0, text, logprobs: null, finish_reason: generation.finishReason, stop_reason: null, prompt_logprobs: null };
    return reply.code(200).send({
      id,
      object: generation.kind === 'chat' ? 'chat.completion' : 'text_completion',
      created,
      model: generation.model,
      choices: [choice],
      usage: usageOf(generation.promptTokens, generation.outputTokens),
      prompt_logprobs: null,
    });
  }

  // Streaming: headers go out once the request is admitted, chunks as tokens are produced.
  const raw = reply.raw;
  const resetAfterChunks = context.faults().resetAfterChunks;
  let handle: WorkHandle | undefined;
  let eventsWritten = 0;
  const resetStream = (): void => {
    tracker.forceOutcome('failed');
    context.logger.info({ requestId: tracker.requestId, events: eventsWritten }, 'resetting stream (resetAfterChunks fault)');
    handle?.cancel();
    raw.socket?.resetAndDestroy();
  };
  const writeEvent = (payload: string): boolean => {
    if (raw.destroyed || raw.writableEnded) return false;
    if (resetAfterChunks !== undefined && eventsWritten >= resetAfterChunks) {
      resetStream();
      return false;
    }
    raw.write(`data: ${payload}\n\n`);
    eventsWritten++;
    return true;
  };
  const chunk = (choice: Record<string, unknown>): string => JSON.stringify({ ...base, choices: [choice] });

  try {
    handle = context.engine.submitSequence(
      { model: generation.model, promptTokens: generation.promptTokens, outputTokens: generation.outputTokens },
      {
        onStart: (queueMs) => (timing.queueMs = queueMs),
        onToken: (index) => {
          noteToken();
          const last = index === generation.outputTokens - 1;
          const finish = last ? generation.finishReason : null;
          const piece = pieces[index] ?? '';
          if (generation.kind === 'chat') {
            if (index === 0 && !writeEvent(chunk({ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }))) return;
            writeEvent(chunk({ index: 0, delta: { content: piece }, logprobs: null, finish_reason: finish, ...(last ? { stop_reason: null } : {}) }));
          } else {
            writeEvent(chunk({ index: 0, text: piece, logprobs: null, finish_reason: finish, stop_reason: null }));
          }
        },
        onFinish: () => {
          if (raw.destroyed || raw.writableEnded) return;
          if (generation.includeUsage) {
            const usage = usageOf(generation.promptTokens, generation.outputTokens);
            if (!writeEvent(JSON.stringify({ ...base, choices: [], usage }))) return;
          }
          if (!writeEvent('[DONE]')) return;
          recordFinish(generation.finishReason);
          raw.end();
        },
      },
    );
  } catch (error) {
    if (error instanceof QueueFullError) return sendQueueFull(tracker, reply, error);
    throw error;
  }
  tracker.onAbort(() => {
    handle?.cancel();
    recordFinish('abort');
  });
  reply.hijack();
  raw.on('error', (error) => context.logger.debug({ err: error, requestId: tracker.requestId }, 'stream write failed'));
  raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
    ...(tracker.requestId === '' ? {} : { 'x-request-id': tracker.requestId }),
  });
  raw.flushHeaders();
  if (resetAfterChunks === 0) resetStream();
  return reply;
}

async function runEmbeddings(
  context: ReplicaContext,
  request: FastifyRequest,
  reply: FastifyReply,
  model: string,
  texts: string[],
  dimensions: number,
  encoding: 'float' | 'base64',
): Promise<FastifyReply> {
  const tracker = context.tracker(request);
  const promptTokens = texts.reduce((sum, text) => sum + estimateTokens(text), 0);
  let queueMs = 0;
  let result: 'done' | 'aborted';
  try {
    result = await runUntilAbort(tracker, (onFinish) =>
      context.engine.submitBatch({ model, items: texts.length, splittable: true }, { onStart: (ms) => (queueMs = ms), onFinish }),
    );
  } catch (error) {
    if (error instanceof QueueFullError) return sendQueueFull(tracker, reply, error);
    throw error;
  }
  const e2eS = (context.clock.now() - tracker.arrivedAt) / 1000;
  if (result === 'aborted') {
    context.metrics.openaiFinished(model, 'abort', { promptTokens, outputTokens: 0, queueS: queueMs / 1000, e2eS });
    return reply.hijack();
  }
  context.metrics.openaiFinished(model, 'stop', { promptTokens, outputTokens: 0, queueS: queueMs / 1000, e2eS });
  const data = texts.map((text, index) => {
    const vector = embedText(text, dimensions);
    return { index, object: 'embedding', embedding: encoding === 'base64' ? encodeEmbeddingBase64(vector) : vector };
  });
  return reply.code(200).send({
    id: `embd-${randomUUID().replaceAll('-', '')}`,
    object: 'list',
    created: Math.floor(context.clock.wallNow() / 1000),
    model,
    data,
    usage: usageOf(promptTokens, 0),
  });
}
