// Command-line options of the npm scripts (bench, conformance, soak, netem):
// node:util's parseArgs in strict mode, so that a mistyped or unknown option
// stops the script with its usage and exit status 2 before it builds or boots
// anything, instead of starting a run of an hour with the defaults.
'use strict';
const { parseArgs } = require('node:util');

/** Exits with status 2 after printing `name: message` and the usage to stderr. */
function refuse(name, usage, message) {
  process.stderr.write(`${name}: ${message}\n${usage}\n`);
  process.exit(2);
}

/**
 * The values of `options` (parseArgs' shape) and the positional arguments
 * given on the command line (positionals only when `positionals` is true);
 * --help (or -h) prints `usage` to stdout and exits 0.
 */
function parseCommandLine(name, usage, options, { args = process.argv.slice(2), positionals = false } = {}) {
  let parsed;
  try {
    parsed = parseArgs({ args, strict: true, allowPositionals: positionals, options: { ...options, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    refuse(name, usage, err.message);
  }
  if (parsed.values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  return parsed;
}

/** The values of `options` given on the command line, which takes no positional arguments. */
const parseOptions = (name, usage, options) => parseCommandLine(name, usage, options).values;

/** `value` (a string from the command line, or `fallback`) as a whole number from `min` on. */
function wholeNumber(name, usage, option, value, fallback, min = 1) {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
    refuse(name, usage, `${option} takes a whole number from ${min} on, not ${JSON.stringify(value)}`);
  }
  return Number(value);
}

const KERNEL = /^(bookworm|bookworm-backports|trixie-backports)(\+fix)?$/;

/** The kernels named by a comma-separated list, each a matrix kernel with or without +fix. */
function kernelList(name, usage, option, value) {
  const kernels = value.split(',');
  for (const k of kernels) {
    if (!KERNEL.test(k)) {
      refuse(name, usage, `${option} takes bookworm, bookworm-backports or trixie-backports (each with or without +fix), not ${JSON.stringify(k)}`);
    }
  }
  return kernels;
}

/** The one kernel `value` names (see kernelList). */
function kernelOne(name, usage, option, value) {
  if (!KERNEL.test(value)) {
    refuse(name, usage, `${option} takes one of bookworm, bookworm-backports or trixie-backports (with or without +fix), not ${JSON.stringify(value)}`);
  }
  return value;
}

module.exports = { parseCommandLine, parseOptions, refuse, wholeNumber, kernelList, kernelOne };
