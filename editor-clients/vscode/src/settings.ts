/**
 * The extension's settings (`infill.*`) as one typed object, and what follows from them: the
 * server command line, the initializationOptions / didChangeConfiguration payload (camelCase on
 * the wire), and whether a language is enabled. Pure: no `vscode` import, so `node --test` covers it.
 */

export interface InfillSettings {
  /** Python that has the `infill-lsp` package; "" means `python3` (`python` on Windows). */
  pythonPath: string;
  /** Full server command line; overrides pythonPath when not empty. */
  serverCommand: string[];
  /** Model directory; "" means the server's bundled default model. */
  modelPath: string;
  device: string;
  /** CPU threads for the model; null: all cores. */
  threads: number | null;
  steps: number | null;
  threshold: number | null;
  temperature: number | null;
  holeMarker: string;
  debounceMs: number | null;
  candidates: number | null;
  /** languageId -> enabled; "*" is the default for languages not listed. */
  enable: Record<string, boolean>;
}

export const DEFAULTS: InfillSettings = {
  pythonPath: "",
  serverCommand: [],
  modelPath: "",
  device: "",
  threads: null,
  steps: null,
  threshold: null,
  temperature: null,
  holeMarker: "",
  debounceMs: null,
  candidates: null,
  enable: { "*": true },
};

/** Reads one setting (e.g. `(key) => workspace.getConfiguration("infill").get(key)`). */
export type SettingReader = (key: keyof InfillSettings) => unknown;

export interface ReadResult {
  settings: InfillSettings;
  /** One message per setting that had a bad value and fell back to its default. */
  problems: string[];
}

type Check = (value: unknown) => boolean;

const isString: Check = (v) => typeof v === "string";
const isNumberOrNull: Check = (v) => v === null || (typeof v === "number" && Number.isFinite(v));
const isNonNegativeOrNull: Check = (v) => v === null || (isNumberOrNull(v) && (v as number) >= 0);
const isPositiveIntOrNull: Check = (v) => v === null || (Number.isInteger(v) && (v as number) >= 1);
const isStringList: Check = (v) => Array.isArray(v) && v.every((item) => typeof item === "string");
const isBoolMap: Check = (v) =>
  typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every((b) => typeof b === "boolean");

const CHECKS: { [K in keyof InfillSettings]: [Check, string] } = {
  pythonPath: [isString, "a path"],
  serverCommand: [isStringList, "a list of strings"],
  modelPath: [isString, "a path"],
  device: [isString, "a device name"],
  threads: [isPositiveIntOrNull, "a whole number >= 1"],
  steps: [isPositiveIntOrNull, "a whole number >= 1"],
  threshold: [(v) => v === null || (isNumberOrNull(v) && (v as number) >= 0 && (v as number) <= 1), "a number in 0..1"],
  temperature: [isNonNegativeOrNull, "a number >= 0"],
  holeMarker: [isString, "a string"],
  debounceMs: [isNonNegativeOrNull, "a number of milliseconds"],
  candidates: [isPositiveIntOrNull, "a whole number >= 1"],
  enable: [isBoolMap, 'an object like {"*": true, "plaintext": false}'],
};

/** Read every setting once; a missing one takes its default, a bad one too (with a message). */
export function readSettings(read: SettingReader): ReadResult {
  const settings: Record<string, unknown> = { ...DEFAULTS };
  const problems: string[] = [];
  for (const key of Object.keys(CHECKS) as (keyof InfillSettings)[]) {
    const value = read(key);
    if (value === undefined) {
      continue;
    }
    const [check, expected] = CHECKS[key];
    if (check(value)) {
      settings[key] = value;
    } else {
      problems.push(`infill.${key}: expected ${expected}, got ${JSON.stringify(value)}; using the default`);
    }
  }
  return { settings: settings as unknown as InfillSettings, problems };
}

export interface ServerCommand {
  command: string;
  args: string[];
}

/** The server's command line: `serverCommand` as given, else `<python> -m infill_lsp`. */
export function serverCommand(settings: InfillSettings, platform: string = process.platform): ServerCommand {
  const [first, ...rest] = settings.serverCommand;
  if (first !== undefined && first !== "") {
    return { command: first, args: rest };
  }
  const python = settings.pythonPath !== "" ? settings.pythonPath : platform === "win32" ? "python" : "python3";
  return { command: python, args: ["-m", "infill_lsp"] };
}

/**
 * What the server reads (initializationOptions, and section "infill" of didChangeConfiguration).
 * Unset settings are left out, or with `nulls` sent as null, which tells a running server to go
 * back to its default.
 */
export function serverOptions(settings: InfillSettings, nulls = false): Record<string, string | number | null> {
  const wire: Record<string, string | number | null> = {};
  const strings = ["modelPath", "device", "holeMarker"] as const;
  const numbers = ["threads", "steps", "threshold", "temperature", "debounceMs", "candidates"] as const;
  for (const key of strings) {
    if (settings[key] !== "") {
      wire[key] = settings[key];
    } else if (nulls) {
      wire[key] = null;
    }
  }
  for (const key of numbers) {
    const value = settings[key];
    if (value !== null || nulls) {
      wire[key] = value;
    }
  }
  return wire;
}

/** Whether inline completion runs for `languageId`: its own entry, else "*", else on. */
export function isEnabledFor(settings: InfillSettings, languageId: string): boolean {
  return settings.enable[languageId] ?? settings.enable["*"] ?? true;
}

/** True when a change of these settings needs a server restart (not just didChangeConfiguration). */
export function needsRestart(before: InfillSettings, after: InfillSettings): boolean {
  const a = serverCommand(before);
  const b = serverCommand(after);
  return a.command !== b.command || a.args.join("\u0000") !== b.args.join("\u0000") || before.modelPath !== after.modelPath || before.device !== after.device;
}
