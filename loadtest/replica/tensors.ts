// The simulated V2 model: validation of JSON tensors (KServe Open Inference Protocol,
// REST) with Triton-style messages, and outputs computed row by row.
//
// Signature: dimension 0 of every input is the batch (1 to max_batch_size rows, equal
// across inputs). A request has 1 to 16 inputs of any name, each of any supported
// datatype and shape [batch, ...]. Outputs, for each row r:
//   OUTPUT0  the first input's row r unchanged (same datatype, shape [batch, ...]);
//   OUTPUT1  FP32 [batch, 1]: a hash of row r of every input (names, datatypes, values)
//            mapped to [0, 1), so a row split or reordered by a gateway changes it.
import { InvalidRequestError } from './context.ts';
import { hashString } from './outputs.ts';

export const V2_DATATYPES = ['BOOL', 'INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'FP32', 'FP64', 'BYTES'] as const;
export type V2Datatype = (typeof V2_DATATYPES)[number];

export const V2_OUTPUT_NAMES = ['OUTPUT0', 'OUTPUT1'] as const;
const MAX_INPUTS = 16;

type Scalar = boolean | number | string;

export interface V2Tensor {
  name: string;
  datatype: V2Datatype;
  shape: number[];
  /** Row-major flat data. */
  data: Scalar[];
}

export interface V2InferRequest {
  id: string | undefined;
  inputs: V2Tensor[];
  /** Output names to return, in request order; all outputs when the request names none. */
  outputs: string[];
  batch: number;
}

const INTEGER_RANGES: Partial<Record<V2Datatype, [number, number]>> = {
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  INT32: [-2147483648, 2147483647],
  INT64: [-(2 ** 63), 2 ** 63 - 1],
  UINT8: [0, 255],
  UINT16: [0, 65535],
  UINT32: [0, 4294967295],
  UINT64: [0, 2 ** 64 - 1],
};

/** Validates a V2 infer body for `model`; throws InvalidRequestError with a Triton-style message. */
export function parseInferRequest(body: unknown, model: string, maxBatchSize: number): V2InferRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalid(`failed to parse the request JSON for model '${model}': expected a JSON object, got ${JSON.stringify(body)}`, null);
  }

  const request = body as Record<string, unknown>;
  if (request.id !== undefined && typeof request.id !== 'string') {
    throw invalid(`invalid request id ${JSON.stringify(request.id)}: expected a string`, 'id');
  }
  if (request.parameters !== undefined && !isPlainObject(request.parameters)) {
    throw invalid(`invalid parameters ${JSON.stringify(request.parameters)}: expected a JSON object`, 'parameters');
  }

  if (!Array.isArray(request.inputs) || request.inputs.length === 0) {
    throw invalid(`inference request for model '${model}' must have at least 1 input, got ${JSON.stringify(request.inputs)}`, 'inputs');
  }
  if (request.inputs.length > MAX_INPUTS) {
    throw invalid(`inference request for model '${model}' has ${request.inputs.length} inputs; the model accepts at most ${MAX_INPUTS}`, 'inputs');
  }
  const inputs = request.inputs.map((input, index) => parseTensor(input, index, model));

  const names = new Set<string>();
  for (const input of inputs) {
    if (names.has(input.name)) throw invalid(`input '${input.name}' is given more than once`, 'inputs');
    names.add(input.name);
  }

  const batch = inputs[0]?.shape[0] ?? 0;
  for (const input of inputs) {
    const rows = input.shape[0] ?? 0;
    if (rows !== batch) {
      throw invalid(
        `inputs have different batch sizes for model '${model}': '${inputs[0]?.name}' has ${batch}, '${input.name}' has ${rows}`,
        'inputs',
      );
    }
  }

  if (batch < 1) throw invalid(`inference request batch-size must be >= 1 for '${model}', got ${batch}`, 'inputs');
  if (batch > maxBatchSize) {
    throw invalid(`inference request batch-size must be <= ${maxBatchSize} for '${model}', got ${batch}`, 'inputs');
  }

  const outputs = parseRequestedOutputs(request.outputs, model);
  return { id: request.id as string | undefined, inputs, outputs, batch };
}

/** Computes the requested outputs; each output row depends only on the same row of the inputs. */
export function computeOutputs(request: V2InferRequest): Array<{ name: string; datatype: string; shape: number[]; data: Scalar[] }> {
  const first = request.inputs[0];
  if (first === undefined) return [];
  const result = [];
  for (const name of request.outputs) {
    if (name === 'OUTPUT0') {
      result.push({ name, datatype: first.datatype, shape: [...first.shape], data: [...first.data] });
      continue;
    }
    const scores: number[] = [];
    for (let row = 0; row < request.batch; row++) {
      let hash = 0x811c9dc5;
      for (const input of request.inputs) {
        hash = hashString(`${input.name}\u0000${input.datatype}\u0000${JSON.stringify(rowOf(input, row))}\u0000`, hash);
      }
      scores.push(Math.fround(hash / 4294967296));
    }
    result.push({ name, datatype: 'FP32', shape: [request.batch, 1], data: scores });
  }
  return result;
}

function rowOf(tensor: V2Tensor, row: number): Scalar[] {
  const rowSize = tensor.shape.slice(1).reduce((product, dim) => product * dim, 1);
  return tensor.data.slice(row * rowSize, (row + 1) * rowSize);
}

function parseTensor(value: unknown, index: number, model: string): V2Tensor {
  const field = `inputs[${index}]`;
  if (!isPlainObject(value)) throw invalid(`invalid ${field} ${JSON.stringify(value)}: expected a JSON object`, field);

  const { name, datatype, shape, data } = value;
  if (typeof name !== 'string' || name === '') {
    throw invalid(`invalid ${field}.name ${JSON.stringify(name)}: expected a non-empty string`, `${field}.name`);
  }
  if (typeof datatype !== 'string' || !(V2_DATATYPES as readonly string[]).includes(datatype)) {
    throw invalid(
      `invalid datatype ${JSON.stringify(datatype)} for input '${name}' of model '${model}': expected one of ${V2_DATATYPES.join(', ')}`,
      `${field}.datatype`,
    );
  }
  if (!Array.isArray(shape) || shape.length === 0 || !shape.every((dim) => Number.isInteger(dim) && dim >= 0)) {
    throw invalid(
      `unexpected shape for input '${name}' for model '${model}'. Expected [-1,...], got ${JSON.stringify(shape)}`,
      `${field}.shape`,
    );
  }

  if (value.parameters !== undefined && !isPlainObject(value.parameters)) {
    throw invalid(`invalid parameters ${JSON.stringify(value.parameters)} for input '${name}': expected a JSON object`, `${field}.parameters`);
  }
  if (!Array.isArray(data)) {
    throw invalid(`input '${name}' for model '${model}' has no JSON tensor data: expected an array in "data"`, `${field}.data`);
  }

  const flat = data.flat(Infinity) as unknown[];
  const expected = (shape as number[]).reduce((product, dim) => product * dim, 1);
  if (flat.length !== expected) {
    throw invalid(
      `unexpected number of elements for input '${name}' for model '${model}': shape ${JSON.stringify(shape)} needs ${expected}, got ${flat.length}`,
      `${field}.data`,
    );
  }

  const type = datatype as V2Datatype;
  flat.forEach((element, position) => {
    if (!elementMatches(type, element)) {
      throw invalid(
        `invalid element ${JSON.stringify(element)} at position ${position} of input '${name}': not a valid ${type} value`,
        `${field}.data`,
      );
    }
  });
  return { name, datatype: type, shape: shape as number[], data: flat as Scalar[] };
}

function elementMatches(datatype: V2Datatype, element: unknown): boolean {
  if (datatype === 'BOOL') return typeof element === 'boolean';
  if (datatype === 'BYTES') return typeof element === 'string';
  if (typeof element !== 'number' || !Number.isFinite(element)) return false;
  const range = INTEGER_RANGES[datatype];
  if (range === undefined) return true;
  return Number.isInteger(element) && element >= range[0] && element <= range[1];
}

function parseRequestedOutputs(value: unknown, model: string): string[] {
  if (value === undefined) return [...V2_OUTPUT_NAMES];
  if (!Array.isArray(value)) throw invalid(`invalid outputs ${JSON.stringify(value)}: expected an array`, 'outputs');
  const names: string[] = [];
  value.forEach((output, index) => {
    const name = isPlainObject(output) ? output.name : undefined;
    if (typeof name !== 'string' || !(V2_OUTPUT_NAMES as readonly string[]).includes(name)) {
      throw invalid(
        `unexpected inference output ${JSON.stringify(name ?? output)} for model '${model}': expected one of ${V2_OUTPUT_NAMES.join(', ')}`,
        `outputs[${index}].name`,
      );
    }
    if (names.includes(name)) throw invalid(`output '${name}' is requested more than once`, `outputs[${index}].name`);
    names.push(name);
  });
  return names.length === 0 ? [...V2_OUTPUT_NAMES] : names;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function invalid(message: string, param: string | null): InvalidRequestError {
  return new InvalidRequestError(message, param);
}
