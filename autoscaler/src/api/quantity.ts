// Formats numbers as Kubernetes resource quantities in canonical form, the form the
// API server itself emits: no exponent, no fractional digits, the largest decimal SI
// suffix that loses nothing (1.5 -> "1500m", 1000 -> "1k", 2500 -> "2500").
// Kubernetes quantities used by metrics carry at most milli precision, so a value
// between two millis is rounded up: the served demand is never lower than measured.

const SUFFIXES = ['', 'k', 'M', 'G', 'T', 'P', 'E'] as const;

/**
 * Returns the canonical quantity of a finite, non-negative number.
 * Throws a RangeError for negative, NaN or infinite values and for values whose milli
 * count is beyond Number.MAX_SAFE_INTEGER (about 9e12), which no demand reaches.
 */
export function formatQuantity(value: number): string {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`cannot format ${value} as a quantity: expected a finite number >= 0`);
  }
  const millis = toMillisRoundedUp(value);
  if (!Number.isSafeInteger(millis)) {
    throw new RangeError(`cannot format ${value} as a quantity: beyond ${Number.MAX_SAFE_INTEGER / 1000}`);
  }
  if (millis === 0) return '0';
  if (millis % 1000 !== 0) return `${millis}m`;

  let units = millis / 1000;
  let suffix = 0;
  while (units % 1000 === 0 && suffix < SUFFIXES.length - 1) {
    units /= 1000;
    suffix += 1;
  }
  return `${units}${SUFFIXES[suffix]}`;
}

/** Parses a canonical or plain decimal quantity (as formatQuantity writes it) back to a number. */
export function parseQuantity(text: string): number {
  const match = /^(\d+)(m|k|M|G|T|P|E)?$/.exec(text);
  if (!match) throw new RangeError(`invalid quantity ${JSON.stringify(text)}: expected digits with an optional m, k, M, G, T, P or E suffix`);
  const digits = Number(match[1]);
  const suffix = match[2] ?? '';
  if (suffix === 'm') return digits / 1000;
  return digits * 1000 ** SUFFIXES.indexOf(suffix as (typeof SUFFIXES)[number]);
}

/**
 * Converts to whole millis, rounding up. value * 1000 in binary floating point can land
 * a hair above an exact milli (12345.678 * 1000 = 12345678.000000002), so a product
 * within a relative 1e-12 of a whole milli counts as that milli. Real fractions of a
 * milli (0.0001 -> 0.1 milli) are far above that noise and still round up.
 */
function toMillisRoundedUp(value: number): number {
  const product = value * 1000;
  const nearest = Math.round(product);
  if (Math.abs(product - nearest) <= nearest * 1e-12 + 1e-9) return nearest;
  return Math.ceil(product);
}
