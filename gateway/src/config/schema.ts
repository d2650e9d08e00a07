// JSON schema of the gateway's YAML configuration, written with TypeBox. Every key is
// optional except the model list and each model's name, protocol and replica source;
// the loader fills the rest from the defaults table.
import { Type, type Static } from '@sinclair/typebox';

// Descriptions are noun phrases: validation messages read "must be <description>".
const PositiveInt = (unit: string) => Type.Integer({ minimum: 1, description: `a positive integer (${unit})` });
const NonNegativeInt = (unit: string) => Type.Integer({ minimum: 0, description: `an integer of 0 or more (${unit})` });
const Port = Type.Integer({ minimum: 0, maximum: 65535, description: 'a TCP port number from 0 to 65535 (0 picks a free port)' });

const Strict = { additionalProperties: false } as const;

export const StaticReplicasSchema = Type.Object(
  // The URL itself (scheme, credentials, path) is checked by the loader, whose message names what is wrong with it.
  { static: Type.Array(Type.String({ minLength: 1, description: 'a base URL like http://host:port' }), { minItems: 1 }) },
  Strict,
);

export const KubernetesReplicasSchema = Type.Object(
  {
    kubernetes: Type.Object(
      {
        namespace: Type.String({ minLength: 1 }),
        service: Type.String({ minLength: 1 }),
        port: Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 1, maximum: 65535 })], { description: 'a Service port name or a port number from 1 to 65535' }),
      },
      Strict,
    ),
  },
  Strict,
);

export const ModelConfigSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 256, pattern: '^[^\\s/]+$', description: "a name without spaces or '/'" }),
    protocol: Type.Union([Type.Literal('openai'), Type.Literal('v2')], { description: 'one of "openai", "v2"' }),
    replicas: Type.Union([StaticReplicasSchema, KubernetesReplicasSchema]),
    maxInflightPerReplica: Type.Optional(PositiveInt('upstream calls in flight per replica')),
    queue: Type.Optional(
      Type.Object(
        { maxSize: Type.Optional(PositiveInt('queued requests')), timeoutMs: Type.Optional(PositiveInt('ms')) },
        Strict,
      ),
    ),
    batching: Type.Optional(
      Type.Object(
        { maxBatchSize: Type.Optional(PositiveInt('rows')), maxDelayMs: Type.Optional(NonNegativeInt('ms')) },
        Strict,
      ),
    ),
    health: Type.Optional(
      Type.Object(
        {
          path: Type.Optional(Type.String({ pattern: '^/', description: "a path starting with '/'" })),
          intervalMs: Type.Optional(PositiveInt('ms')),
          timeoutMs: Type.Optional(PositiveInt('ms')),
          unhealthyThreshold: Type.Optional(PositiveInt('failed probes')),
          healthyThreshold: Type.Optional(PositiveInt('passed probes')),
        },
        Strict,
      ),
    ),
    ejection: Type.Optional(
      Type.Object(
        {
          consecutiveFailures: Type.Optional(NonNegativeInt('failures')),
          baseMs: Type.Optional(PositiveInt('ms')),
          maxMs: Type.Optional(PositiveInt('ms')),
        },
        Strict,
      ),
    ),
    retry: Type.Optional(Type.Object({ maxAttempts: Type.Optional(PositiveInt('tries')) }, Strict)),
    scaleFromZero: Type.Optional(
      Type.Object(
        {
          enabled: Type.Optional(Type.Boolean()),
          holdTimeoutMs: Type.Optional(PositiveInt('ms')),
          maxHeld: Type.Optional(PositiveInt('held requests')),
        },
        Strict,
      ),
    ),
    upstream: Type.Optional(
      Type.Object(
        {
          connectTimeoutMs: Type.Optional(PositiveInt('ms')),
          headersTimeoutMs: Type.Optional(PositiveInt('ms')),
          streamHeadersTimeoutMs: Type.Optional(PositiveInt('ms')),
          bodyTimeoutMs: Type.Optional(PositiveInt('ms')),
          keepAliveTimeoutMs: Type.Optional(PositiveInt('ms')),
        },
        Strict,
      ),
    ),
  },
  Strict,
);

export const GatewayConfigSchema = Type.Object(
  {
    server: Type.Optional(
      Type.Object(
        {
          port: Type.Optional(Port),
          adminPort: Type.Optional(Port),
          host: Type.Optional(Type.String({ minLength: 1 })),
          bodyLimitBytes: Type.Optional(PositiveInt('bytes')),
          shutdownGraceMs: Type.Optional(NonNegativeInt('ms')),
        },
        Strict,
      ),
    ),
    models: Type.Array(ModelConfigSchema, { minItems: 1 }),
  },
  Strict,
);

export type GatewayConfigInput = Static<typeof GatewayConfigSchema>;
export type ModelConfigInput = Static<typeof ModelConfigSchema>;
