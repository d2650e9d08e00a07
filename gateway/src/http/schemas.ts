// Request body schemas of the traffic routes, in TypeBox. They check the model, the batchable
// inputs and the types and ranges of the OpenAI parameters listed here, so a bad value
// is rejected here, naming the field, instead of reaching a replica. Other fields pass through
// untouched: vLLM accepts many extensions (top_k, guided decoding and more).
// Ranges follow the OpenAI API reference. Each optional parameter also accepts null, which
// the OpenAI API and vLLM treat as "not set".
import { Type, type TSchema } from '@sinclair/typebox';

const Open = { additionalProperties: true } as const;

/** schema, or null; described for people because the error message shows the description. */
const OrNull = (schema: TSchema, description: string) => Type.Optional(Type.Union([schema, Type.Null()], { description: `${description} or null` }));

const ModelName = Type.String({ minLength: 1, description: 'a model name' });

/** Sampling and output parameters shared by chat completions and completions. */
const SAMPLING = {
  stream: OrNull(Type.Boolean(), 'a boolean (true or false)'),
  stream_options: OrNull(Type.Object({ include_usage: Type.Optional(Type.Boolean()) }, Open), 'an object such as {"include_usage": true}'),
  temperature: OrNull(Type.Number({ minimum: 0, maximum: 2 }), 'a number from 0 to 2'),
  top_p: OrNull(Type.Number({ minimum: 0, maximum: 1 }), 'a number from 0 to 1'),
  n: OrNull(Type.Integer({ minimum: 1 }), 'a positive integer'),
  max_tokens: OrNull(Type.Integer({ minimum: 1 }), 'a positive integer'),
  stop: OrNull(Type.Union([Type.String(), Type.Array(Type.String(), { maxItems: 4 })]), 'a string or an array of up to 4 strings'),
  presence_penalty: OrNull(Type.Number({ minimum: -2, maximum: 2 }), 'a number from -2 to 2'),
  frequency_penalty: OrNull(Type.Number({ minimum: -2, maximum: 2 }), 'a number from -2 to 2'),
  seed: OrNull(Type.Integer(), 'an integer'),
  user: Type.Optional(Type.String()),
};

export const CHAT_ROLES = ['system', 'user', 'assistant', 'tool', 'developer', 'function'] as const;

const ContentPart = Type.Object({ type: Type.String({ minLength: 1 }) }, Open);

export const ChatCompletionBody = Type.Object(
  {
    model: ModelName,
    messages: Type.Array(
      Type.Object(
        {
          role: Type.Union(
            CHAT_ROLES.map((role) => Type.Literal(role)),
            { description: `one of ${CHAT_ROLES.join(', ')}` },
          ),
          content: Type.Optional(Type.Union([Type.String(), Type.Array(ContentPart), Type.Null()], { description: 'a string, an array of content parts (objects with a type) or null' })),
        },
        Open,
      ),
      { minItems: 1 },
    ),
    ...SAMPLING,
    max_completion_tokens: OrNull(Type.Integer({ minimum: 1 }), 'a positive integer'),
    logprobs: OrNull(Type.Boolean(), 'a boolean (true or false)'),
    top_logprobs: OrNull(Type.Integer({ minimum: 0, maximum: 20 }), 'an integer from 0 to 20'),
  },
  Open,
);

export const CompletionBody = Type.Object(
  {
    model: ModelName,
    prompt: Type.Union(
      [
        Type.String(),
        Type.Array(Type.String(), { minItems: 1 }),
        Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }),
        Type.Array(Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }), { minItems: 1 }),
      ],
      { description: 'a string, a non-empty array of strings, a non-empty array of token ids or a non-empty array of non-empty token id arrays' },
    ),
    ...SAMPLING,
    // Completions take the number of most likely tokens to return, not a boolean as chat does.
    logprobs: OrNull(Type.Integer({ minimum: 0, maximum: 5 }), 'an integer from 0 to 5'),
  },
  Open,
);

export const EmbeddingsRequestBody = Type.Object(
  {
    model: ModelName,
    input: Type.Union(
      [
        Type.String({ minLength: 1 }),
        Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
        Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }),
        Type.Array(Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }), { minItems: 1 }),
      ],
      { description: 'a non-empty string, an array of non-empty strings, an array of token ids or an array of token id arrays' },
    ),
    encoding_format: Type.Optional(Type.Union([Type.Literal('float'), Type.Literal('base64')], { description: 'one of "float", "base64"' })),
    dimensions: Type.Optional(Type.Integer({ minimum: 1, description: 'a positive integer' })),
    user: Type.Optional(Type.String()),
  },
  Open,
);

export const V2_DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES', 'BF16'] as const;

const Parameters = Type.Record(Type.String(), Type.Unknown());

export const V2InferRequestBody = Type.Object(
  {
    id: Type.Optional(Type.String()),
    parameters: Type.Optional(Parameters),
    inputs: Type.Array(
      Type.Object(
        {
          name: Type.String({ minLength: 1 }),
          shape: Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }),
          datatype: Type.Union(
            V2_DATATYPES.map((name) => Type.Literal(name)),
            { description: `one of ${V2_DATATYPES.join(', ')}` },
          ),
          parameters: Type.Optional(Parameters),
          data: Type.Array(Type.Unknown()),
        },
        { additionalProperties: false },
      ),
      { minItems: 1 },
    ),
    outputs: Type.Optional(
      Type.Array(Type.Object({ name: Type.String({ minLength: 1 }), parameters: Type.Optional(Parameters) }, { additionalProperties: false })),
    ),
  },
  { additionalProperties: false },
);
