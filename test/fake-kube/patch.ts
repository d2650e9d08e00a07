// Patch formats the fake API server accepts on PATCH, selected by Content-Type:
// - application/merge-patch+json: JSON merge patch (RFC 7386);
// - application/strategic-merge-patch+json: like a merge patch, except that lists of
//   objects that all carry a `name` are merged by name (as containers, ports and env are
//   in the Kubernetes API), and `$patch: delete` in such an item removes it;
// - application/json-patch+json: JSON patch (RFC 6902) with add, remove, replace and test.
// Server-side apply is not supported (415), because no caller of this project uses it.
import { StatusError } from './store.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export const PATCH_TYPES = ['application/merge-patch+json', 'application/strategic-merge-patch+json', 'application/json-patch+json'] as const;
export type PatchType = (typeof PATCH_TYPES)[number];

/** Applies a patch body to a document and returns the patched copy; throws a 4xx StatusError on an invalid patch. */
export function applyPatch(document: unknown, patch: unknown, type: PatchType): unknown {
  switch (type) {
    case 'application/merge-patch+json':
      return mergePatch(document as Json, patch as Json, false);
    case 'application/strategic-merge-patch+json':
      return mergePatch(document as Json, patch as Json, true);
    case 'application/json-patch+json':
      return jsonPatch(document as Json, patch);
  }
}

function isObject(value: unknown): value is { [key: string]: Json } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function mergePatch(target: Json, patch: Json, strategic: boolean): Json {
  if (!isObject(patch)) return structuredClone(patch);
  const result: { [key: string]: Json } = isObject(target) ? structuredClone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete result[key];
      continue;
    }
    const current = result[key];
    if (strategic && Array.isArray(value) && Array.isArray(current) && isNamedList(value) && isNamedList(current)) {
      result[key] = mergeNamedLists(current, value);
      continue;
    }
    result[key] = mergePatch(current ?? null, value, strategic);
  }
  return result;
}

function isNamedList(list: Json[]): boolean {
  return list.every((item) => isObject(item) && typeof item.name === 'string');
}

function mergeNamedLists(current: Json[], patch: Json[]): Json[] {
  const result = structuredClone(current) as { [key: string]: Json }[];
  for (const item of patch as { [key: string]: Json }[]) {
    const index = result.findIndex((existing) => existing.name === item.name);
    if (item.$patch === 'delete') {
      if (index >= 0) result.splice(index, 1);
      continue;
    }
    if (index >= 0) result[index] = mergePatch(result[index] ?? null, item, true) as { [key: string]: Json };
    else result.push(structuredClone(item));
  }
  return result;
}

function jsonPatch(document: Json, operations: unknown): Json {
  if (!Array.isArray(operations)) {
    throw new StatusError(400, 'BadRequest', 'a JSON patch must be an array of operations');
  }
  let result = structuredClone(document);
  for (const [index, operation] of operations.entries()) {
    if (!isObject(operation) || typeof operation.op !== 'string' || typeof operation.path !== 'string') {
      throw new StatusError(400, 'BadRequest', `JSON patch operation ${index} must be an object with string "op" and "path"`);
    }
    const tokens = parsePointer(operation.path);
    switch (operation.op) {
      case 'add':
      case 'replace':
        if (!('value' in operation)) throw new StatusError(400, 'BadRequest', `JSON patch operation ${index} (${operation.op}) has no "value"`);
        result = setAt(result, tokens, operation.value ?? null, operation.op, operation.path);
        break;
      case 'remove':
        result = removeAt(result, tokens, operation.path);
        break;
      case 'test':
        if (JSON.stringify(getAt(result, tokens)) !== JSON.stringify(operation.value)) {
          throw new StatusError(422, 'Invalid', `JSON patch test failed at ${operation.path}`);
        }
        break;
      default:
        throw new StatusError(400, 'BadRequest', `JSON patch operation "${operation.op}" is not supported (supported: add, remove, replace, test)`);
    }
  }
  return result;
}

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new StatusError(400, 'BadRequest', `JSON pointer "${pointer}" must start with "/"`);
  return pointer
    .slice(1)
    .split('/')
    .map((token) => token.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function getAt(document: Json, tokens: string[]): Json | undefined {
  let node: Json | undefined = document;
  for (const token of tokens) {
    if (Array.isArray(node)) node = node[Number(token)];
    else if (isObject(node)) node = node[token];
    else return undefined;
  }
  return node;
}

function setAt(document: Json, tokens: string[], value: Json, op: string, path: string): Json {
  if (tokens.length === 0) return structuredClone(value);
  const parent = getAt(document, tokens.slice(0, -1));
  const last = tokens[tokens.length - 1] ?? '';
  if (Array.isArray(parent)) {
    const index = last === '-' ? parent.length : Number(last);
    if (!Number.isInteger(index) || index < 0 || index > parent.length) throw new StatusError(422, 'Invalid', `JSON patch path ${path}: index out of range`);
    if (op === 'add') parent.splice(index, 0, structuredClone(value));
    else parent[index] = structuredClone(value);
    return document;
  }
  if (!isObject(parent)) throw new StatusError(422, 'Invalid', `JSON patch path ${path}: parent does not exist`);
  if (op === 'replace' && !Object.hasOwn(parent, last)) throw new StatusError(422, 'Invalid', `JSON patch path ${path}: replace of a missing member`);
  parent[last] = structuredClone(value);
  return document;
}

function removeAt(document: Json, tokens: string[], path: string): Json {
  const parent = getAt(document, tokens.slice(0, -1));
  const last = tokens[tokens.length - 1] ?? '';
  if (Array.isArray(parent) && Number(last) >= 0 && Number(last) < parent.length) {
    parent.splice(Number(last), 1);
    return document;
  }
  if (isObject(parent) && Object.hasOwn(parent, last)) {
    delete parent[last];
    return document;
  }
  throw new StatusError(422, 'Invalid', `JSON patch path ${path}: nothing to remove`);
}
