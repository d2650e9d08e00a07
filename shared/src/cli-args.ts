// Command-line helpers shared by the gateway, the autoscaler and the benchmark drivers.

/**
 * Joins `--flag -5` into `--flag=-5` for flags that take a value. node:util parseArgs reads a
 * value that starts with a dash as an ambiguous option and rejects it. Joined, the value
 * reaches the range check, which names the flag and the allowed range.
 */
export function joinNegativeValues(args: readonly string[], valueFlags: ReadonlySet<string>): string[] {
  const joined: string[] = [];
  for (let index = 0; index < args.length; index++) {
    const arg = args[index] as string;
    const next = args[index + 1];
    if (arg === '--') {
      joined.push(...args.slice(index));
      break;
    }
    if (valueFlags.has(arg) && next !== undefined && /^-(?:\d|\.\d)/.test(next)) {
      joined.push(`${arg}=${next}`);
      index++;
      continue;
    }
    joined.push(arg);
  }
  return joined;
}

/** Returns the `--name` of every option of type string in a parseArgs option table. */
export function valueFlagsOf(options: Record<string, { type: 'string' | 'boolean' }>): Set<string> {
  return new Set(Object.entries(options).filter(([, option]) => option.type === 'string').map(([name]) => `--${name}`));
}
