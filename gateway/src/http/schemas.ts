// Request body schemas of the traffic routes, in TypeBox. They check only what the gateway
// relies on (model, stream, batchable inputs); other fields pass through to the replica.
import { Type } from '@sinclair/typebox';

const Open = { additionalProperties: true } as const;

export const ChatCompletionBody = Type.Object(
  {
    model: Type.String({ minLength: 1 }),
    messages: Type.Array(
      Type.Object(
        {
          role: Type.String({ minLength: 1 }),
          content: Type.Optional(Type.Union([Type.String(), Type.Array(Type.Unknown()), Type.Null()], { description: 'a string, an array of content parts or null' })),
        },
        Open,
      ),
      { minItems: 1 },
    ),
    stream: Type.Optional(Type.Boolean()),
    max_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], { description: 'a positive integer or null' })),
    max_completion_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], { description: 'a positive integer or null' })),
  },
  Open,
);

export const CompletionBody = Type.Object(
  {
    model: Type.String({ minLength: 1 }),
    prompt: Type.Union(
      [
        Type.String(),
        Type.Array(Type.String(), { minItems: 1 }),
        Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }),
        Type.Array(Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }), { minItems: 1 }),
      ],
      { description: 'a string, an array of strings, an array of token ids or an array of token id arrays' },
    ),
    stream: Type.Optional(Type.Boolean()),
    max_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], { description: 'a positive integer or null' })),
  },
  Open,
);

export const EmbeddingsRequestBody = Type.Object(
  {
    model: Type.String({ minLength: 1 }),
    input: Type.Union(
      [
        Type.String({ minLength: 1 }),
        Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
        Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }),
        Type.Array(Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }), { minItems: 1 }),
      ],
      { description: 'a non-empty string, an array of non-empty strings, an array of token ids or an array of token id arrays' },
    ),
    encoding_format: Type.Optional(Type.Union([Type.Literal('float'), Type.Literal('base64')], { description: 'float or base64' })),
    dimensions: Type.Optional(Type.Integer({ minimum: 1 })),
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
