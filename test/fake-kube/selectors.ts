// Label and field selectors of the fake Kubernetes API server, with the syntax of
// k8s.io/apimachinery: equality (`a=b`, `a==b`, `a!=b`) and set-based (`a in (x,y)`,
// `a notin (x)`, `a`, `!a`) label requirements, and field selectors on metadata.name and
// metadata.namespace.

export type Labels = Record<string, string>;

type Requirement =
  | { op: 'eq'; key: string; value: string }
  | { op: 'neq'; key: string; value: string }
  | { op: 'in'; key: string; values: string[] }
  | { op: 'notin'; key: string; values: string[] }
  | { op: 'exists'; key: string }
  | { op: 'absent'; key: string };

/** A selector that failed to parse; the server responds with 400 BadRequest. */
export class SelectorError extends Error {
  override name = 'SelectorError';
}

export type LabelSelector = (labels: Labels | undefined) => boolean;

/** Parses a label selector string; an empty or missing selector matches everything. */
export function parseLabelSelector(text: string | null | undefined): LabelSelector {
  const source = (text ?? '').trim();
  if (source === '') return () => true;
  const requirements = splitTopLevel(source).map((part) => parseRequirement(part, source));
  return (labels) => requirements.every((requirement) => matches(requirement, labels ?? {}));
}

function splitTopLevel(source: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of source) {
    if (char === '(') depth++;
    if (char === ')') depth--;
    if (depth < 0) throw new SelectorError(`invalid label selector "${source}": unbalanced ")"`);
    if (char === ',' && depth === 0) {
      parts.push(current.trim());
      current = '';
      continue;
    }
    current += char;
  }
  if (depth !== 0) throw new SelectorError(`invalid label selector "${source}": unbalanced "("`);
  parts.push(current.trim());
  return parts;
}

const KEY = /^([a-z0-9A-Z.-]+\/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$/;
const VALUE = /^(([a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?)?)$/;

function parseRequirement(part: string, source: string): Requirement {
  const invalid = (why: string): SelectorError => new SelectorError(`invalid label selector "${source}": ${why} in "${part}"`);
  if (part === '') throw invalid('empty requirement');

  const setMatch = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(part);
  if (setMatch !== null) {
    const [, key = '', op, list = ''] = setMatch;
    const values = list.split(',').map((value) => value.trim());
    checkKey(key, invalid);
    for (const value of values) if (!VALUE.test(value)) throw invalid(`invalid value "${value}"`);
    return op === 'in' ? { op: 'in', key, values } : { op: 'notin', key, values };
  }

  const equality = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part);
  if (equality !== null) {
    const [, key = '', op, value = ''] = equality;
    checkKey(key, invalid);
    if (!VALUE.test(value)) throw invalid(`invalid value "${value}"`);
    return op === '!=' ? { op: 'neq', key, value } : { op: 'eq', key, value };
  }

  if (part.startsWith('!')) {
    const key = part.slice(1).trim();
    checkKey(key, invalid);
    return { op: 'absent', key };
  }
  checkKey(part, invalid);
  return { op: 'exists', key: part };
}

function checkKey(key: string, invalid: (why: string) => SelectorError): void {
  if (!KEY.test(key) || key.length > 316) throw invalid(`invalid key "${key}"`);
}

function matches(requirement: Requirement, labels: Labels): boolean {
  const has = Object.hasOwn(labels, requirement.key);
  const value = labels[requirement.key];
  switch (requirement.op) {
    case 'eq':
      return has && value === requirement.value;
    case 'neq':
      return !has || value !== requirement.value;
    case 'in':
      return has && value !== undefined && requirement.values.includes(value);
    case 'notin':
      return !has || value === undefined || !requirement.values.includes(value);
    case 'exists':
      return has;
    case 'absent':
      return !has;
  }
}

export type FieldSelector = (object: { metadata?: { name?: string; namespace?: string } }) => boolean;

/** Parses a field selector; only metadata.name and metadata.namespace are supported, as for most resources. */
export function parseFieldSelector(text: string | null | undefined): FieldSelector {
  const source = (text ?? '').trim();
  if (source === '') return () => true;
  const checks = source.split(',').map((part) => {
    const match = /^\s*(metadata\.name|metadata\.namespace)\s*(==|=|!=)\s*(\S*)\s*$/.exec(part);
    if (match === null) {
      throw new SelectorError(`field label not supported in field selector "${source}": "${part}" (supported: metadata.name, metadata.namespace)`);
    }
    const [, field, op, value] = match;
    return (object: { metadata?: { name?: string; namespace?: string } }): boolean => {
      const actual = field === 'metadata.name' ? object.metadata?.name : object.metadata?.namespace;
      return op === '!=' ? actual !== value : actual === value;
    };
  });
  return (object) => checks.every((check) => check(object));
}

/** Formats matchLabels as the equality selector a Scale status reports. */
export function formatMatchLabels(matchLabels: Labels | undefined): string {
  return Object.entries(matchLabels ?? {})
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
}
