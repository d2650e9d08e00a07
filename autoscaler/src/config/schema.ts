// JSON Schema of the autoscaler's YAML config, written with TypeBox so the same
// declaration gives the validator and the TypeScript type of the raw file.
import { Type, type Static } from '@sinclair/typebox';
import { NAMESPACE_NAME_PATTERN, SERVICE_NAME_PATTERN } from '../../../shared/src/kube-names.ts';

const PositiveMs = (description: string) => Type.Integer({ minimum: 1, description });
// 0 picks a free port, which tests use; the chosen port is in the start-up log line.
const Port = Type.Integer({ minimum: 0, maximum: 65535 });
const ServicePort = Type.Integer({ minimum: 1, maximum: 65535 });
// Object names (DNS-1123 subdomains) may contain dots; namespace names (DNS-1123 labels)
// may not, and Service names (DNS-1035 labels) also start with a letter.
const DnsLabel = Type.String({ minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$' });
const NamespaceName = Type.String({
  minLength: 1,
  maxLength: 63,
  pattern: NAMESPACE_NAME_PATTERN,
  description: 'a namespace name: at most 63 lowercase letters, digits and inner hyphens',
});
const ServiceName = Type.String({
  minLength: 1,
  maxLength: 63,
  pattern: SERVICE_NAME_PATTERN,
  description: 'a Service name: at most 63 lowercase letters, digits and inner hyphens, starting with a letter',
});
const PortName = Type.String({
  minLength: 1,
  maxLength: 15,
  pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
  description: 'a port name of at most 15 lowercase letters, digits and inner hyphens',
});

export const TargetSchema = Type.Object(
  {
    kind: Type.Union([Type.Literal('Deployment'), Type.Literal('StatefulSet')]),
    namespace: NamespaceName,
    name: DnsLabel,
  },
  { additionalProperties: false },
);

export const ModelSchema = Type.Object(
  {
    // HPAs select a model with the label selector model=<name>, so the name must be a valid label value.
    name: Type.String({ minLength: 1, maxLength: 63, pattern: '^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$' }),
    target: TargetSchema,
    targetPerReplica: Type.Number({ exclusiveMinimum: 0, description: 'demand one replica should carry' }),
    minReplicas: Type.Optional(Type.Integer({ minimum: 0 })),
    maxReplicas: Type.Optional(Type.Integer({ minimum: 1 })),
    gpusPerReplica: Type.Optional(Type.Integer({ minimum: 0 })),
    scaleDownWindowSeconds: Type.Optional(Type.Integer({ minimum: 0 })),
    idleToZeroSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
    priority: Type.Optional(Type.Integer()),
  },
  { additionalProperties: false },
);

export const GatewaysSchema = Type.Object(
  {
    static: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    kubernetes: Type.Optional(
      Type.Object(
        {
          namespace: NamespaceName,
          service: ServiceName,
          port: Type.Union([ServicePort, PortName]),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

// An HTTP header name (RFC 9110 token).
const HeaderName = Type.String({ minLength: 1, maxLength: 256, pattern: "^[-!#$%&'*+.^_`|~0-9A-Za-z]+$" });

export const AuthorizationSchema = Type.Object(
  {
    mode: Type.Optional(Type.Union([Type.Literal('delegated'), Type.Literal('none')])),
    allowTtlMs: Type.Optional(Type.Integer({ minimum: 0, description: 'milliseconds an allowed decision is cached' })),
    denyTtlMs: Type.Optional(Type.Integer({ minimum: 0, description: 'milliseconds a denied decision is cached' })),
    cacheSize: Type.Optional(Type.Integer({ minimum: 0, description: 'most cached decisions' })),
  },
  { additionalProperties: false },
);

export const RequestHeaderSchema = Type.Object(
  {
    usernameHeaders: Type.Optional(Type.Array(HeaderName, { minItems: 1 })),
    groupHeaders: Type.Optional(Type.Array(HeaderName)),
    extraHeadersPrefixes: Type.Optional(Type.Array(HeaderName)),
  },
  { additionalProperties: false },
);

export const MetricsApiSchema = Type.Object(
  {
    port: Type.Optional(Port),
    tlsCertFile: Type.Optional(Type.String({ minLength: 1 })),
    tlsKeyFile: Type.Optional(Type.String({ minLength: 1 })),
    clientCAFile: Type.Optional(Type.String({ minLength: 1 })),
    clientCAFromCluster: Type.Optional(Type.Boolean()),
    allowedNames: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    insecureHttp: Type.Optional(Type.Boolean()),
    certReloadIntervalMs: Type.Optional(PositiveMs('milliseconds between checks of the certificate files')),
    authorization: Type.Optional(AuthorizationSchema),
    requestHeader: Type.Optional(RequestHeaderSchema),
  },
  { additionalProperties: false },
);

export const ConfigFileSchema = Type.Object(
  {
    gateways: GatewaysSchema,
    pollIntervalMs: Type.Optional(PositiveMs('milliseconds between polls')),
    requestTimeoutMs: Type.Optional(PositiveMs('milliseconds per /admin/state call')),
    staleAfterMs: Type.Optional(PositiveMs('milliseconds until a gateway snapshot is stale')),
    kubernetesTimeoutMs: Type.Optional(PositiveMs('milliseconds per Kubernetes API call')),
    podTemplateRefreshMs: Type.Optional(PositiveMs('milliseconds between pod template reads')),
    listenHost: Type.Optional(Type.String({ minLength: 1 })),
    adminPort: Type.Optional(Port),
    metricsApi: Type.Optional(MetricsApiSchema),
    gpuBudget: Type.Optional(Type.Integer({ minimum: 0 })),
    models: Type.Array(ModelSchema, { minItems: 1 }),
  },
  { additionalProperties: false },
);

export type ConfigFile = Static<typeof ConfigFileSchema>;
