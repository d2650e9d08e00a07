// Parses and matches Kubernetes label selectors in their string form, as the HPA
// controller sends them in ?labelSelector=. Hand-written because
// @kubernetes/client-node 2.0 exports no selector parser (it only passes selector
// strings through to the API server). The grammar follows the Kubernetes labels
// package: comma-separated requirements, each one of
//   key=value  key==value  key!=value  key in (v1,v2)  key notin (v1,v2)  key  !key
// A key is an optional DNS subdomain prefix of at most 253 characters and a slash, then
// a name of at most 63 characters of [A-Za-z0-9_.-] that starts and ends alphanumeric.
// A value is empty or follows the rule of a key's name. The Kubernetes operators gt and
// lt (key>1, key<1) compare integers, which model names are not, so they are rejected.

export type Operator = 'equals' | 'notEquals' | 'in' | 'notIn' | 'exists' | 'doesNotExist';

export interface Requirement {
  key: string;
  operator: Operator;
  values: readonly string[];
}

/** Raised for a selector that does not parse; the message names the offending part. */
export class SelectorError extends Error {
  readonly code = 'INFERGATE_INVALID_LABEL_SELECTOR';
  constructor(message: string) {
    super(message);
    this.name = 'SelectorError';
  }
}

const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const PREFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** Parses a selector string; an empty or blank string gives no requirements (matches everything). */
export function parseSelector(text: string): Requirement[] {
  const requirements: Requirement[] = [];
  const parts = splitRequirements(text);
  for (const part of parts) {
    requirements.push(parseRequirement(part, text));
  }
  return requirements;
}

/** True when the labels satisfy every requirement. */
export function matchesSelector(requirements: readonly Requirement[], labels: Readonly<Record<string, string>>): boolean {
  return requirements.every((r) => matchesRequirement(r, labels));
}

function matchesRequirement(requirement: Requirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.hasOwn(labels, requirement.key);
  const value = has ? labels[requirement.key] : undefined;
  switch (requirement.operator) {
    case 'exists':
      return has;
    case 'doesNotExist':
      return !has;
    case 'equals':
    case 'in':
      return value !== undefined && requirement.values.includes(value);
    case 'notEquals':
    case 'notIn':
      // As in Kubernetes, a missing label satisfies != and notin.
      return value === undefined || !requirement.values.includes(value);
  }
}

/** Splits on commas outside parentheses, so `k in (a,b),x=y` gives two parts. */
function splitRequirements(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth += 1;
    if (ch === ')') depth -= 1;
    if (depth < 0) throw new SelectorError(`invalid label selector ${JSON.stringify(text)}: unbalanced ")"`);
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  if (depth !== 0) throw new SelectorError(`invalid label selector ${JSON.stringify(text)}: unbalanced "("`);
  parts.push(current);
  if (parts.length === 1 && parts[0]!.trim() === '') return [];
  return parts;
}

function parseRequirement(raw: string, whole: string): Requirement {
  const part = raw.trim();
  const fail = (why: string): never => {
    throw new SelectorError(`invalid label selector ${JSON.stringify(whole)}: requirement ${JSON.stringify(part)} ${why}`);
  };
  if (part === '') fail('is empty');

  if (part.startsWith('!')) {
    const key = part.slice(1).trim();
    checkKey(key, fail);
    return { key, operator: 'doesNotExist', values: [] };
  }

  const setMatch = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(part);
  if (setMatch) {
    const key = setMatch[1]!;
    checkKey(key, fail);
    const values = setMatch[3]!.split(',').map((v) => v.trim());
    if (values.length === 1 && values[0] === '') fail('needs at least one value inside the parentheses');
    for (const v of values) checkValue(v, fail);
    return { key, operator: setMatch[2] === 'in' ? 'in' : 'notIn', values };
  }

  const comparison = /^([^<>=!\s]+)\s*([<>])/.exec(part);
  if (comparison) {
    fail(`uses the operator ${JSON.stringify(comparison[2])}, which this server does not support; use =, ==, !=, in, notin, key or !key`);
  }

  const equality = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
  if (equality) {
    const key = equality[1]!;
    checkKey(key, fail);
    const value = equality[3]!;
    checkValue(value, fail);
    return { key, operator: equality[2] === '!=' ? 'notEquals' : 'equals', values: [value] };
  }

  if (/\s/.test(part)) fail('is not a known form; expected key=value, key==value, key!=value, key in (...), key notin (...), key or !key');
  checkKey(part, fail);
  return { key: part, operator: 'exists', values: [] };
}

function checkKey(key: string, fail: (why: string) => never): void {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !PREFIX.test(prefix))) {
    fail(`has an invalid key prefix ${JSON.stringify(prefix)}: expected a DNS subdomain of at most 253 characters, such as example.com`);
  }
  if (!NAME.test(name)) {
    fail(
      `has an invalid key ${JSON.stringify(key)}: expected an optional DNS subdomain prefix and "/", then a name of at most 63 characters of [A-Za-z0-9_.-] that starts and ends alphanumeric`,
    );
  }
}

function checkValue(value: string, fail: (why: string) => never): void {
  if (!VALUE.test(value)) {
    fail(`has an invalid value ${JSON.stringify(value)}: expected an empty value or at most 63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric`);
  }
}
