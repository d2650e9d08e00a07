// Validates rendered objects against the OpenAPI schemas of Kubernetes (kubernetes-models,
// generated from the schemas of a current Kubernetes release) and of the Prometheus
// Operator CRDs. cert-manager objects have no model package installed; the chart tests
// check their fields directly.
//
// The OpenAPI schemas allow unknown fields, which an API server with strict field
// validation (kubectl and Helm's default) rejects. So built-in kinds are also walked
// with the field lists of @kubernetes/client-node's generated models, generated from
// the same OpenAPI document, and any field those lists lack is an error.
import * as kubernetesClient from '@kubernetes/client-node';
import type { KubeObject } from './helpers.ts';

interface AttributeType {
  baseName: string;
  type: string;
}

type ModelClass = { getAttributeTypeMap(): AttributeType[] };

interface ValidatingModel {
  validate(): void;
}

type ModelConstructor = new (data: KubeObject) => ValidatingModel;

/** Kinds without a schema package here, validated by the chart tests field by field. */
export const UNVALIDATED_GROUPS = new Set(['cert-manager.io/v1']);

const modelCache = new Map<string, ModelConstructor>();

function modulePath(apiVersion: string, kind: string): string {
  if (apiVersion === 'monitoring.coreos.com/v1') {
    return `@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${kind}`;
  }
  // Core objects live under "v1", grouped ones under "<group>/<version>".
  return `kubernetes-models/${apiVersion}/${kind}`;
}

async function modelFor(apiVersion: string, kind: string): Promise<ModelConstructor> {
  const key = `${apiVersion}/${kind}`;
  const cached = modelCache.get(key);
  if (cached !== undefined) return cached;
  let module: Record<string, unknown>;
  try {
    module = (await import(modulePath(apiVersion, kind))) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`no Kubernetes schema for ${key}: ${(error as Error).message}`, { cause: error });
  }
  const model = module[kind];
  if (typeof model !== 'function') throw new Error(`the schema module for ${key} exports no ${kind}`);
  modelCache.set(key, model as ModelConstructor);
  return model as ModelConstructor;
}

/**
 * Validates one object; throws an Error naming the object and every schema violation
 * or unknown field. Objects of UNVALIDATED_GROUPS pass through.
 */
export async function validateObject(object: KubeObject): Promise<void> {
  if (UNVALIDATED_GROUPS.has(object.apiVersion)) return;
  const Model = await modelFor(object.apiVersion, object.kind);
  try {
    new Model(object).validate();
  } catch (error) {
    throw new Error(`${object.kind} ${object.metadata.name} is invalid: ${(error as Error).message}`, { cause: error });
  }
  const unknown = unknownFields(object);
  if (unknown.length > 0) {
    throw new Error(`${object.kind} ${object.metadata.name} has unknown fields: ${unknown.join(', ')}`);
  }
}

/**
 * Lists the paths of fields that the client-node model of a built-in kind does not
 * declare. Kinds without a client-node model (CRDs) return no paths.
 */
export function unknownFields(object: KubeObject): string[] {
  const version = object.apiVersion.split('/').at(-1) ?? '';
  const className = `${version.charAt(0).toUpperCase()}${version.slice(1)}${object.kind}`;
  if (modelClass(className) === undefined) return [];
  const unknown: string[] = [];
  walkFields(object, className, '', unknown);
  return unknown;
}

function modelClass(name: string): ModelClass | undefined {
  const candidate = (kubernetesClient as unknown as Record<string, unknown>)[name];
  if (typeof candidate === 'function' && typeof (candidate as Partial<ModelClass>).getAttributeTypeMap === 'function') {
    return candidate as unknown as ModelClass;
  }
  return undefined;
}

function walkFields(value: unknown, type: string, path: string, unknown: string[]): void {
  if (value === null || value === undefined) return;
  const arrayItem = /^Array<(.+)>$/.exec(type)?.[1];
  if (arrayItem !== undefined) {
    if (Array.isArray(value)) value.forEach((item, index) => walkFields(item, arrayItem, `${path}[${index}]`, unknown));
    return;
  }
  const mapValue = /^\{ \[key: string\]: (.+); \}$/.exec(type)?.[1];
  if (mapValue !== undefined) {
    if (typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) walkFields(item, mapValue, `${path}.${key}`, unknown);
    }
    return;
  }
  const model = modelClass(type);
  if (model === undefined || typeof value !== 'object' || Array.isArray(value)) return;
  const attributes = new Map(model.getAttributeTypeMap().map((attribute) => [attribute.baseName, attribute.type]));
  for (const [key, item] of Object.entries(value)) {
    const attributeType = attributes.get(key);
    const fieldPath = path === '' ? key : `${path}.${key}`;
    if (attributeType === undefined) unknown.push(fieldPath);
    else walkFields(item, attributeType, fieldPath, unknown);
  }
}
