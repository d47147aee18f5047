/**
 * The extension's settings (`infill.*`): the few the client reads itself (how to start the
 * server, whether the completion fallback runs) and the server's own, which are forwarded as they
 * are. The server's settings are the ones package.json declares beyond the client's; a test holds
 * that list equal to the server's schema. Pure: no `vscode` import, so `node --test` covers it.
 */

/** Settings the client itself reads; every other `infill.*` setting belongs to the server. */
export const CLIENT_SETTINGS = ["pythonPath", "serverCommand", "completionFallback", "trace.server"] as const;

export interface ClientSettings {
  /** Python that has the `infill-lsp` package; "" means the Python extension's, else `python3`. */
  pythonPath: string;
  /** Full server command line; overrides pythonPath when not empty. */
  serverCommand: string[];
  /** Offer infills in the suggest widget (`textDocument/completion`) as well as ghost text. */
  completionFallback: boolean;
}

export const DEFAULTS: ClientSettings = { pythonPath: "", serverCommand: [], completionFallback: false };

/** Reads one setting (e.g. `(key) => workspace.getConfiguration("infill").get(key)`). */
export type SettingReader = (key: string) => unknown;

export interface ReadResult {
  settings: ClientSettings;
  /** One message per setting that had a bad value and fell back to its default. */
  problems: string[];
}

type Check = (value: unknown) => boolean;

const CHECKS: { [K in keyof ClientSettings]: [Check, string] } = {
  pythonPath: [(v) => typeof v === "string", "a path"],
  serverCommand: [(v) => Array.isArray(v) && v.every((item) => typeof item === "string"), "a list of strings"],
  completionFallback: [(v) => typeof v === "boolean", "true or false"],
};

/** Read the client's settings; a missing one takes its default, a bad one too (with a message). */
export function readSettings(read: SettingReader): ReadResult {
  const settings: Record<string, unknown> = { ...DEFAULTS };
  const problems: string[] = [];
  for (const key of Object.keys(CHECKS) as (keyof ClientSettings)[]) {
    const value = read(key);
    if (value === undefined || value === null) {
      continue;
    }
    const [check, expected] = CHECKS[key];
    if (check(value)) {
      settings[key] = value;
    } else {
      problems.push(`infill.${key}: expected ${expected}, got ${JSON.stringify(value)}; using the default`);
    }
  }
  return { settings: settings as unknown as ClientSettings, problems };
}

/** The names (without `infill.`) of the server's settings among package.json's properties. */
export function serverSettingNames(packageJson: unknown): string[] {
  const properties = (packageJson as { contributes?: { configuration?: { properties?: Record<string, unknown> } } })
    ?.contributes?.configuration?.properties;
  const client: readonly string[] = CLIENT_SETTINGS;
  return Object.keys(properties ?? {})
    .filter((key) => key.startsWith("infill."))
    .map((key) => key.slice("infill.".length))
    .filter((name) => !client.includes(name));
}

/**
 * What the server reads (initializationOptions, workspace/configuration and didChangeConfiguration):
 * every server setting, the user's value where one is set, else null, which the server reads as
 * its default (for decode settings that is the model's own, which a package.json default would
 * override). `explicit` returns undefined for a setting the user has not set.
 */
export function serverOptions(names: readonly string[], explicit: (name: string) => unknown): Record<string, unknown> {
  const wire: Record<string, unknown> = {};
  for (const name of names) {
    const value = explicit(name);
    wire[name] = value === undefined ? null : value;
  }
  return wire;
}

export interface ServerCommand {
  command: string;
  args: string[];
  /** The Python that runs `-m infill_lsp`; undefined for a custom serverCommand. */
  python?: string;
}

/**
 * The server's command line: `serverCommand` as given, else `<python> -m infill_lsp` with
 * pythonPath, else the interpreter the Python extension has selected, else `python3`.
 */
export function serverCommand(settings: ClientSettings, selected: string | undefined, platform: string = process.platform): ServerCommand {
  const [first, ...rest] = settings.serverCommand;
  if (first !== undefined && first !== "") {
    return { command: first, args: rest };
  }
  const python = settings.pythonPath || selected || (platform === "win32" ? "python" : "python3");
  return { command: python, args: ["-m", "infill_lsp"], python };
}

/** Whether documents of `languageId` get ghost text: the server's `languages` list, empty: all. */
export function isEnabledFor(languages: unknown, languageId: string): boolean {
  return !Array.isArray(languages) || languages.length === 0 || languages.includes(languageId);
}

/** True when the server must be restarted: its command line changed (the server reloads models). */
export function needsRestart(before: ServerCommand, after: ServerCommand): boolean {
  return before.command !== after.command || before.args.join("\u0000") !== after.args.join("\u0000");
}
