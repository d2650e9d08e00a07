// Parses the Kubernetes quantities found in pod templates (resource limits such as
// "1", "2", "500m", "1k", "1Ki", "1e3") into numbers. client-node 2.0 has no quantity
// parser, and only this subset of the grammar (sign-free decimal, one suffix) occurs in
// limits written by people or charts.

const DECIMAL_SUFFIX: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };
const BINARY_SUFFIX: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };

/** Returns the number a quantity string stands for; throws a RangeError naming the text when it is not a quantity. */
export function parseKubeQuantity(text: string): number {
  const match = /^\+?(\d+(?:\.\d*)?|\.\d+)(?:(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE]([+-]?\d+))?$/.exec(text.trim());
  if (!match) throw new RangeError(`invalid quantity ${JSON.stringify(text)}: expected a number with an optional suffix such as 500m, 2, 1k or 1Gi`);
  const mantissa = Number(match[1]);
  if (match[3] !== undefined) return mantissa * 10 ** Number(match[3]);
  const suffix = match[2] ?? '';
  return mantissa * (BINARY_SUFFIX[suffix] ?? DECIMAL_SUFFIX[suffix]!);
}
