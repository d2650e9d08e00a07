// Plain-word descriptions of JSON schema failures, shared by request validation (ajv, which
// fastify runs) and configuration validation (TypeBox's Value.Errors). Both report the
// schema node that failed and the keyword. This module turns that pair into a phrase such
// as "must contain at least 1 item", so no message shows raw schema wording.
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';

type SchemaNode = Readonly<Record<string, unknown>>;

const TYPE_NOUNS: Readonly<Record<string, string>> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'a boolean (true or false)',
  object: 'an object',
  array: 'an array',
  null: 'null',
};

/** TypeBox error kinds and the JSON schema keyword each one stands for. */
const KEYWORD_BY_VALUE_ERROR: ReadonlyMap<ValueErrorType, string> = new Map([
  [ValueErrorType.ArrayMinItems, 'minItems'],
  [ValueErrorType.ArrayMaxItems, 'maxItems'],
  [ValueErrorType.ArrayUniqueItems, 'uniqueItems'],
  [ValueErrorType.Array, 'type'],
  [ValueErrorType.Boolean, 'type'],
  [ValueErrorType.Integer, 'type'],
  [ValueErrorType.Number, 'type'],
  [ValueErrorType.String, 'type'],
  [ValueErrorType.Object, 'type'],
  [ValueErrorType.Null, 'type'],
  [ValueErrorType.IntegerMinimum, 'minimum'],
  [ValueErrorType.NumberMinimum, 'minimum'],
  [ValueErrorType.IntegerMaximum, 'maximum'],
  [ValueErrorType.NumberMaximum, 'maximum'],
  [ValueErrorType.IntegerExclusiveMinimum, 'exclusiveMinimum'],
  [ValueErrorType.NumberExclusiveMinimum, 'exclusiveMinimum'],
  [ValueErrorType.IntegerExclusiveMaximum, 'exclusiveMaximum'],
  [ValueErrorType.NumberExclusiveMaximum, 'exclusiveMaximum'],
  [ValueErrorType.IntegerMultipleOf, 'multipleOf'],
  [ValueErrorType.NumberMultipleOf, 'multipleOf'],
  [ValueErrorType.ObjectAdditionalProperties, 'additionalProperties'],
  [ValueErrorType.ObjectRequiredProperty, 'required'],
  [ValueErrorType.StringFormat, 'format'],
  [ValueErrorType.StringFormatUnknown, 'format'],
  [ValueErrorType.StringMinLength, 'minLength'],
  [ValueErrorType.StringMaxLength, 'maxLength'],
  [ValueErrorType.StringPattern, 'pattern'],
  [ValueErrorType.Literal, 'const'],
  [ValueErrorType.Union, 'anyOf'],
]);

/** Returns the JSON schema keyword behind a TypeBox validation error, or undefined for kinds no schema here uses. */
export function keywordOfValueError(error: ValueError): string | undefined {
  return KEYWORD_BY_VALUE_ERROR.get(error.type);
}

/**
 * Says in plain words what `schema` requires, for a value that failed its `keyword`. The
 * phrase starts with "must" (or "is" for required and unknown keys) and ends without a
 * period. A schema's `description`, where present, is a noun phrase written for people,
 * such as "a path starting with '/'", and wins over a generic wording of a pattern or union.
 */
export function describeExpectation(keyword: string, schema: SchemaNode): string {
  const description = typeof schema.description === 'string' ? schema.description : undefined;
  switch (keyword) {
    case 'minItems':
      return `must contain at least ${count(schema.minItems, 'item')}`;
    case 'maxItems':
      return `must contain at most ${count(schema.maxItems, 'item')}`;
    case 'uniqueItems':
      return 'must not contain the same item twice';
    case 'minimum':
      return `must be at least ${String(schema.minimum)}`;
    case 'maximum':
      return `must be at most ${String(schema.maximum)}`;
    case 'exclusiveMinimum':
      return `must be greater than ${String(schema.exclusiveMinimum)}`;
    case 'exclusiveMaximum':
      return `must be less than ${String(schema.exclusiveMaximum)}`;
    case 'multipleOf':
      return `must be a multiple of ${String(schema.multipleOf)}`;
    case 'minLength':
      return schema.minLength === 1 ? 'must not be empty' : `must be at least ${count(schema.minLength, 'character')} long`;
    case 'maxLength':
      return `must be at most ${count(schema.maxLength, 'character')} long`;
    case 'pattern':
      return description === undefined ? `must match the regular expression ${String(schema.pattern)}` : `must be ${description}`;
    case 'format':
      return `must be a valid ${String(schema.format)}`;
    case 'type':
      return `must be ${nounOf(schema)}`;
    case 'const':
      return `must be ${JSON.stringify(schema.const)}`;
    case 'enum':
      return `must be one of ${listValues(schema.enum)}`;
    case 'anyOf':
    case 'oneOf':
      return description === undefined ? `must be ${unionNoun(schema[keyword])}` : `must be ${description}`;
    case 'required':
      return 'is required';
    case 'additionalProperties':
      return 'is not a known key; remove it or fix its spelling';
    default:
      return description === undefined ? 'is not allowed here' : `must be ${description}`;
  }
}

/** Describes with a noun phrase what one schema node accepts, for unions without a description. */
function nounOf(schema: SchemaNode): string {
  if (typeof schema.description === 'string') return schema.description;
  if ('const' in schema) return JSON.stringify(schema.const);
  if (Array.isArray(schema.enum)) return `one of ${listValues(schema.enum)}`;
  if (Array.isArray(schema.anyOf)) return unionNoun(schema.anyOf);
  const type = schema.type;
  if (type === 'integer' || type === 'number') return numberNoun(type, schema.minimum, schema.maximum);
  if (type === 'string' && schema.minLength === 1) return 'a non-empty string';
  if (type === 'array' && schema.minItems === 1) return 'a non-empty array';
  if (typeof type === 'string') return TYPE_NOUNS[type] ?? type;
  if (Array.isArray(type)) return type.map((name) => TYPE_NOUNS[String(name)] ?? String(name)).join(' or ');
  return 'a valid value';
}

/** Names a number type with its bounds: "an integer from 0 to 20", "a positive integer", "a number of at least 0.5". */
function numberNoun(type: 'integer' | 'number', minimum: unknown, maximum: unknown): string {
  const noun = type === 'integer' ? 'an integer' : 'a number';
  const hasMin = typeof minimum === 'number';
  const hasMax = typeof maximum === 'number';
  if (hasMin && hasMax) return `${noun} from ${minimum} to ${maximum}`;
  if (hasMin && minimum === 1 && type === 'integer') return 'a positive integer';
  if (hasMin) return `${noun} of at least ${minimum}`;
  if (hasMax) return `${noun} of at most ${maximum}`;
  return noun;
}

function unionNoun(branches: unknown): string {
  if (!Array.isArray(branches)) return 'a valid value';
  const nodes = branches as SchemaNode[];
  if (nodes.every((node) => 'const' in node)) return `one of ${listValues(nodes.map((node) => node.const))}`;
  return joinAlternatives(nodes.map(nounOf));
}

function listValues(values: unknown): string {
  return Array.isArray(values) ? values.map((value) => JSON.stringify(value)).join(', ') : String(values);
}

function joinAlternatives(parts: string[]): string {
  if (parts.length <= 1) return parts.join('');
  return `${parts.slice(0, -1).join(', ')} or ${parts[parts.length - 1]}`;
}

function count(value: unknown, unit: string): string {
  return `${String(value)} ${value === 1 ? unit : `${unit}s`}`;
}
