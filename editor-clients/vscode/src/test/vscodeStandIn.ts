/**
 * A small stand-in for the `vscode` module, enough to run the real `activate()` and the real
 * vscode-languageclient in Node: settings with defaults from package.json, text documents and
 * their events, providers and commands recorded, messages recorded. `install()` makes
 * `require("vscode")` return it. Values follow VS Code's API (e.g. InlineCompletionTriggerKind
 * Invoke = 0, Automatic = 1), so the client's conversions to LSP are really exercised.
 */

/* eslint-disable @typescript-eslint/no-explicit-any */
import Module = require("node:module");

type Listener<T> = (value: T) => unknown;

export class EventEmitter<T> {
  private listeners = new Set<Listener<T>>();
  event = (listener: Listener<T>, thisArg?: unknown, disposables?: Disposable[]): Disposable => {
    const bound: Listener<T> = (value) => listener.call(thisArg, value);
    this.listeners.add(bound);
    const disposable = new Disposable(() => this.listeners.delete(bound));
    disposables?.push(disposable);
    return disposable;
  };
  fire(value: T): void {
    for (const listener of [...this.listeners]) {
      listener(value);
    }
  }
  dispose(): void {
    this.listeners.clear();
  }
}

export class Disposable {
  constructor(private readonly callOnDispose: () => unknown) {}
  static from(...items: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => items.forEach((item) => item.dispose()));
  }
  dispose(): void {
    this.callOnDispose();
  }
}

export class Position {
  constructor(
    readonly line: number,
    readonly character: number,
  ) {}
  isEqual(other: Position): boolean {
    return this.line === other.line && this.character === other.character;
  }
  isBefore(other: Position): boolean {
    return this.line < other.line || (this.line === other.line && this.character < other.character);
  }
  translate(lineDelta = 0, characterDelta = 0): Position {
    return new Position(this.line + lineDelta, this.character + characterDelta);
  }
}

export class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(a: Position | number, b: Position | number, c?: number, d?: number) {
    this.start = typeof a === "number" ? new Position(a, b as number) : a;
    this.end = typeof a === "number" ? new Position(c as number, d as number) : (b as Position);
  }
  get isEmpty(): boolean {
    return this.start.isEqual(this.end);
  }
}

export class Selection extends Range {
  get anchor(): Position {
    return this.start;
  }
  get active(): Position {
    return this.end;
  }
}

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly path: string,
    private readonly raw: string,
  ) {}
  static parse(value: string): Uri {
    const scheme = /^([a-zA-Z][\w+.-]*):/.exec(value)?.[1] ?? "file";
    const path = scheme === "file" ? decodeURIComponent(value.replace(/^file:\/\//, "")) : value.slice(scheme.length + 1);
    return new Uri(scheme, path, value);
  }
  static file(path: string): Uri {
    return new Uri("file", path, "file://" + encodeURI(path));
  }
  get fsPath(): string {
    return this.path;
  }
  get authority(): string {
    return "";
  }
  get query(): string {
    return "";
  }
  get fragment(): string {
    return "";
  }
  toString(): string {
    return this.raw;
  }
  toJSON(): unknown {
    return { scheme: this.scheme, path: this.path };
  }
  with(): Uri {
    return this;
  }
}

export class CancellationTokenSource {
  private readonly emitter = new EventEmitter<void>();
  token = { isCancellationRequested: false, onCancellationRequested: this.emitter.event };
  cancel(): void {
    if (!this.token.isCancellationRequested) {
      this.token.isCancellationRequested = true;
      this.emitter.fire();
    }
  }
  dispose(): void {
    this.emitter.dispose();
  }
}

export class CancellationError extends Error {}

export class InlineCompletionItem {
  constructor(
    public insertText: string | { value: string },
    public range?: Range,
    public command?: unknown,
  ) {}
}

export class InlineCompletionList {
  constructor(public items: InlineCompletionItem[]) {}
}

export class TextEdit {
  constructor(
    public range: Range,
    public newText: string,
  ) {}
}

/** Text edits by document, as the client's converter builds them (set) and applyEdit reads them. */
export class WorkspaceEdit {
  private readonly byUri = new Map<string, [Uri, TextEdit[]]>();
  set(uri: Uri, edits: (TextEdit | [TextEdit, unknown])[]): void {
    this.byUri.set(uri.toString(), [uri, edits.map((edit) => (Array.isArray(edit) ? edit[0] : edit))]);
  }
  replace(uri: Uri, range: Range, newText: string): void {
    const [, edits] = this.byUri.get(uri.toString()) ?? [uri, []];
    this.set(uri, [...edits, new TextEdit(range, newText)]);
  }
  entries(): [Uri, TextEdit[]][] {
    return [...this.byUri.values()];
  }
  get size(): number {
    return this.byUri.size;
  }
}

export class CompletionItem {
  constructor(
    public label: string,
    public kind?: number,
  ) {}
}

export class CompletionList {
  constructor(
    public items: CompletionItem[] = [],
    public isIncomplete = false,
  ) {}
}

class CodeActionKind {
  static readonly Empty = new CodeActionKind("");
  constructor(readonly value: string) {}
  append(part: string): CodeActionKind {
    return new CodeActionKind(this.value ? `${this.value}.${part}` : part);
  }
  contains(other: CodeActionKind): boolean {
    return this.value === "" || other.value === this.value || other.value.startsWith(this.value + ".");
  }
  intersects(other: CodeActionKind): boolean {
    return this.contains(other) || other.contains(this);
  }
}

const UNMODELLED_NAMES = (
  "CallHierarchyIncomingCall CallHierarchyItem CallHierarchyOutgoingCall CodeAction CodeActionTriggerKind CodeLens Color " +
  "ColorInformation ColorPresentation CompletionItemKind CompletionItemTag Diagnostic " +
  "DiagnosticRelatedInformation DiagnosticTag DocumentHighlight DocumentHighlightKind DocumentLink DocumentSymbol FileType " +
  "FoldingRange FoldingRangeKind Hover InlayHint InlayHintLabelPart InlineValueEvaluatableExpression InlineValueText " +
  "InlineValueVariableLookup LinkedEditingRanges Location MarkdownString NotebookCellKind ParameterInformation RelativePattern " +
  "SelectionRange SemanticTokens SemanticTokensEdit SemanticTokensEdits SignatureHelp SignatureHelpTriggerKind " +
  "SignatureInformation SnippetString SnippetTextEdit SymbolInformation SymbolKind SymbolTag TabInputCustom TabInputNotebook " +
  "TabInputText TabInputTextDiff TypeHierarchyItem"
).split(" ");

/** A class for any other name the client touches (CompletionItem, CodeLens, Diagnostic, ...). */
function generic(name: string): any {
  const made = class {
    constructor(...args: unknown[]) {
      Object.assign(this, { __standIn: name, args });
    }
  };
  Object.defineProperty(made, "name", { value: name });
  return made;
}

export interface TextDocumentLike {
  uri: Uri;
  fileName: string;
  languageId: string;
  version: number;
  isClosed: boolean;
  isDirty: boolean;
  isUntitled: boolean;
  eol: number;
  lineCount: number;
  getText(range?: Range): string;
  offsetAt(position: Position): number;
  positionAt(offset: number): Position;
  lineAt(line: number): { text: string; range: Range };
  save(): Promise<boolean>;
}

function makeDocument(uri: Uri, languageId: string, initial: string): TextDocumentLike & { text: string } {
  const doc = {
    uri,
    fileName: uri.fsPath,
    languageId,
    version: 1,
    isClosed: false,
    isDirty: false,
    isUntitled: uri.scheme === "untitled",
    eol: 1,
    text: initial,
    get lineCount(): number {
      return doc.text.split("\n").length;
    },
    getText(range?: Range): string {
      return range === undefined ? doc.text : doc.text.slice(doc.offsetAt(range.start), doc.offsetAt(range.end));
    },
    offsetAt(position: Position): number {
      const lines = doc.text.split("\n");
      let offset = 0;
      for (let i = 0; i < position.line && i < lines.length; i++) {
        offset += lines[i]!.length + 1;
      }
      return offset + Math.min(position.character, lines[position.line]?.length ?? 0);
    },
    positionAt(offset: number): Position {
      const before = doc.text.slice(0, offset).split("\n");
      return new Position(before.length - 1, before[before.length - 1]!.length);
    },
    lineAt(line: number): { text: string; range: Range } {
      const text = doc.text.split("\n")[line] ?? "";
      return { text, range: new Range(line, 0, line, text.length) };
    },
    save: () => Promise.resolve(true),
  };
  return doc;
}

function matches(selector: any, document: TextDocumentLike): number {
  if (Array.isArray(selector)) {
    return Math.max(0, ...selector.map((one) => matches(one, document)));
  }
  if (typeof selector === "string") {
    return selector === "*" || selector === document.languageId ? 10 : 0;
  }
  if (selector.notebookType !== undefined) {
    return 0;
  }
  if (selector.language !== undefined && selector.language !== "*" && selector.language !== document.languageId) {
    return 0;
  }
  if (selector.scheme !== undefined && selector.scheme !== "*" && selector.scheme !== document.uri.scheme) {
    return 0;
  }
  return 10;
}

export interface Message {
  kind: "error" | "warning" | "info";
  text: string;
}

export interface Registered<P> {
  selector: unknown;
  provider: P;
  disposed: boolean;
}

/** The stand-in's state, for tests to drive and inspect. */
export class StandIn {
  /** Settings the user set, by full key (`infill.steps`); package.json gives the defaults. */
  readonly user = new Map<string, unknown>();
  readonly defaults = new Map<string, unknown>();
  readonly messages: Message[] = [];
  readonly commands = new Map<string, (...args: any[]) => unknown>();
  readonly inlineProviders: Registered<any>[] = [];
  readonly completionProviders: Registered<any>[] = [];
  readonly documents: (TextDocumentLike & { text: string })[] = [];
  readonly statusItems: { text: string; tooltip: string }[] = [];
  readonly log: string[] = [];
  /** Every workspace.applyEdit call, in order (applied to the document then open for its URI). */
  readonly appliedEdits: WorkspaceEdit[] = [];
  /** Runs once a withProgress task has finished, before withProgress resolves (then cleared). */
  afterProgress: (() => unknown) | undefined;
  readonly onOpen = new EventEmitter<TextDocumentLike>();
  readonly onChange = new EventEmitter<unknown>();
  readonly onClose = new EventEmitter<TextDocumentLike>();
  readonly onConfiguration = new EventEmitter<{ affectsConfiguration(section: string): boolean }>();
  /** Names of `vscode` members the code asked for that the stand-in does not model. */
  readonly unmodelled = new Set<string>();
  readonly module: any;

  constructor(packageJson: any) {
    for (const [key, schema] of Object.entries<any>(packageJson.contributes.configuration.properties)) {
      this.defaults.set(key, schema.default);
    }
    this.module = this.build();
  }

  /** The interpreter selected in the (stand-in) Python extension; undefined: not installed. */
  selectedPython: string | undefined;
  readonly onInterpreter = new EventEmitter<unknown>();

  /** Select another interpreter in the Python extension (fires its change event). */
  selectPython(path: string): void {
    this.selectedPython = path;
    this.onInterpreter.fire({ id: path, path });
  }

  private pythonExtension(): unknown {
    const environments = {
      getActiveEnvironmentPath: () => ({ id: this.selectedPython, path: this.selectedPython }),
      resolveEnvironment: (environment: { path: string }) => Promise.resolve({ executable: { uri: Uri.file(environment.path) } }),
      onDidChangeActiveEnvironmentPath: this.onInterpreter.event,
    };
    return { id: "ms-python.python", isActive: true, exports: { ready: Promise.resolve(), environments }, activate: () => Promise.resolve({ environments }) };
  }

  /** Forget documents, settings, messages and registrations (between activations). */
  reset(): void {
    for (const doc of this.documents) {
      doc.isClosed = true;
    }
    this.documents.length = 0;
    this.user.clear();
    this.messages.length = 0;
    this.inlineProviders.length = 0;
    this.completionProviders.length = 0;
    this.statusItems.length = 0;
    this.commands.clear();
    this.log.length = 0;
    this.selectedPython = undefined;
    this.appliedEdits.length = 0;
    this.afterProgress = undefined;
    this.module.window.activeTextEditor = undefined;
  }

  /** Open a document (fires onDidOpenTextDocument). */
  open(path: string, languageId: string, text: string): TextDocumentLike & { text: string } {
    const doc = makeDocument(Uri.file(path), languageId, text);
    this.documents.push(doc);
    this.onOpen.fire(doc);
    return doc;
  }

  /** Close a document as VS Code does: the object stays, marked closed (fires onDidCloseTextDocument). */
  close(doc: TextDocumentLike & { text: string }): void {
    doc.isClosed = true;
    this.documents.splice(this.documents.indexOf(doc), 1);
    this.onClose.fire(doc);
  }

  /** Make `doc` the active editor's document, with `selection` selected. */
  showEditor(doc: TextDocumentLike, selection: Selection): void {
    this.module.window.activeTextEditor = { document: doc, selection, selections: [selection] };
  }

  /** workspace.applyEdit: record it, and apply its text edits to the documents open now. */
  private applyEdit(edit: WorkspaceEdit): boolean {
    this.appliedEdits.push(edit);
    for (const [uri, edits] of edit.entries()) {
      const doc = this.documents.find((open) => open.uri.toString() === uri.toString());
      if (doc === undefined) {
        continue; // VS Code would open the file from disk; the record above is what tests check
      }
      const old = doc.text;
      const offsets = edits.map((e) => [doc.offsetAt(e.range.start), doc.offsetAt(e.range.end), e.newText] as const);
      for (const [start, end, newText] of [...offsets].sort((a, b) => b[0] - a[0])) {
        doc.text = doc.text.slice(0, start) + newText + doc.text.slice(end);
      }
      doc.version += 1;
      const lines = old.split("\n");
      const range = new Range(0, 0, lines.length - 1, lines[lines.length - 1]!.length);
      this.onChange.fire({ document: doc, contentChanges: [{ range, rangeOffset: 0, rangeLength: old.length, text: doc.text }], reason: undefined });
    }
    return true;
  }

  /** Type `text` at the end of `line` (fires onDidChangeTextDocument with an incremental change). */
  type(doc: TextDocumentLike & { text: string }, line: number, text: string): Position {
    const end = doc.lineAt(line).range.end;
    const offset = doc.offsetAt(end);
    doc.text = doc.text.slice(0, offset) + text + doc.text.slice(offset);
    doc.version += 1;
    const range = new Range(end, end);
    this.onChange.fire({ document: doc, contentChanges: [{ range, rangeOffset: offset, rangeLength: 0, text }], reason: undefined });
    return new Position(line, end.character + text.length);
  }

  /** Change user settings (undefined removes one) and fire onDidChangeConfiguration. */
  configure(values: Record<string, unknown>): void {
    for (const [key, value] of Object.entries(values)) {
      if (value === undefined) {
        this.user.delete(key);
      } else {
        this.user.set(key, value);
      }
    }
    const keys = Object.keys(values);
    this.onConfiguration.fire({ affectsConfiguration: (section) => keys.some((key) => key === section || key.startsWith(section + ".")) });
  }

  private configuration(section?: string): any {
    const full = (key: string): string => (section ? `${section}.${key}` : key);
    return {
      get: (key: string, fallback?: unknown) => {
        const name = full(key);
        if (this.user.has(name)) {
          return this.user.get(name);
        }
        if (this.defaults.has(name)) {
          return this.defaults.get(name);
        }
        const nested: Record<string, unknown> = {};
        for (const [k, v] of [...this.defaults, ...this.user]) {
          if (k.startsWith(name + ".")) {
            nested[k.slice(name.length + 1)] = v;
          }
        }
        return Object.keys(nested).length > 0 ? nested : fallback;
      },
      has: (key: string) => this.user.has(full(key)) || this.defaults.has(full(key)),
      inspect: (key: string) => ({ key: full(key), defaultValue: this.defaults.get(full(key)), globalValue: this.user.get(full(key)) }),
      update: (key: string, value: unknown) => {
        this.configure({ [full(key)]: value });
        return Promise.resolve();
      },
    };
  }

  private build(): any {
    const self = this;
    const record =
      (kind: Message["kind"]) =>
      (text: string): Promise<undefined> => {
        this.messages.push({ kind, text });
        return Promise.resolve(undefined);
      };
    const register =
      <P>(list: Registered<P>[]) =>
      (selector: unknown, provider: P): Disposable => {
        const entry = { selector, provider, disposed: false };
        list.push(entry);
        return new Disposable(() => {
          entry.disposed = true;
        });
      };
    const outputChannel = (name: string): any => {
      const line = (level: string) => (message: string) => this.log.push(`[${name} ${level}] ${message}`);
      return {
        name,
        logLevel: 2,
        onDidChangeLogLevel: new EventEmitter<number>().event,
        append: line("append"),
        appendLine: line("line"),
        replace: line("replace"),
        trace: line("trace"),
        debug: line("debug"),
        info: line("info"),
        warn: line("warn"),
        error: (message: string | Error) => this.log.push(`[${name} error] ${String(message)}`),
        clear: () => undefined,
        show: () => undefined,
        hide: () => undefined,
        dispose: () => undefined,
      };
    };
    const noEvent = new EventEmitter<any>().event;
    const known: Record<string, any> = {
      version: "1.91.0",
      env: { appName: "Visual Studio Code (stand-in)", language: "en", machineId: "test", openExternal: () => Promise.resolve(true) },
      EventEmitter,
      Disposable,
      Position,
      Range,
      Selection,
      Uri,
      CancellationTokenSource,
      CancellationError,
      InlineCompletionItem,
      InlineCompletionList,
      CompletionItem,
      CompletionList,
      TextEdit,
      WorkspaceEdit,
      CodeActionKind,
      InlineCompletionTriggerKind: { Invoke: 0, Automatic: 1 },
      CompletionTriggerKind: { Invoke: 0, TriggerCharacter: 1, TriggerForIncompleteCompletions: 2 },
      ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
      StatusBarAlignment: { Left: 1, Right: 2 },
      LogLevel: { Off: 0, Trace: 1, Debug: 2, Info: 3, Warning: 4, Error: 5 },
      DiagnosticSeverity: { Error: 0, Warning: 1, Information: 2, Hint: 3 },
      EndOfLine: { LF: 1, CRLF: 2 },
      TextDocumentSaveReason: { Manual: 1, AfterDelay: 2, FocusOut: 3 },
      ThemeColor: generic("ThemeColor"),
      workspace: {
        getConfiguration: (section?: string) => this.configuration(section),
        get textDocuments() {
          return self.documents.filter((doc) => !doc.isClosed);
        },
        notebookDocuments: [],
        workspaceFolders: undefined,
        onDidOpenTextDocument: this.onOpen.event,
        onDidChangeTextDocument: this.onChange.event,
        onDidCloseTextDocument: this.onClose.event,
        onWillSaveTextDocument: noEvent,
        onDidSaveTextDocument: noEvent,
        onDidChangeConfiguration: this.onConfiguration.event,
        onDidChangeWorkspaceFolders: noEvent,
        onDidOpenNotebookDocument: noEvent,
        onDidChangeNotebookDocument: noEvent,
        onDidCloseNotebookDocument: noEvent,
        onDidSaveNotebookDocument: noEvent,
        createFileSystemWatcher: () => ({ onDidCreate: noEvent, onDidChange: noEvent, onDidDelete: noEvent, dispose: () => undefined }),
        applyEdit: (edit: WorkspaceEdit) => Promise.resolve(this.applyEdit(edit)),
      },
      window: {
        showErrorMessage: record("error"),
        showWarningMessage: record("warning"),
        showInformationMessage: record("info"),
        setStatusBarMessage: () => new Disposable(() => undefined),
        createOutputChannel: outputChannel,
        createStatusBarItem: () => {
          const item = { text: "", tooltip: "", show: () => undefined, hide: () => undefined, dispose: () => undefined };
          this.statusItems.push(item);
          return item;
        },
        withProgress: async (_options: unknown, task: (progress: unknown, token: unknown) => unknown) => {
          const result = await task({ report: () => undefined }, new CancellationTokenSource().token);
          const after = this.afterProgress;
          this.afterProgress = undefined;
          await after?.();
          return result;
        },
        activeTextEditor: undefined,
        visibleTextEditors: [],
        onDidChangeActiveTextEditor: noEvent,
        onDidChangeVisibleTextEditors: noEvent,
        tabGroups: { all: [], onDidChangeTabs: noEvent, onDidChangeTabGroups: noEvent },
        showTextDocument: () => Promise.resolve(undefined),
      },
      languages: {
        match: (selector: unknown, document: TextDocumentLike) => matches(selector, document),
        registerInlineCompletionItemProvider: register(this.inlineProviders),
        registerCompletionItemProvider: register(this.completionProviders),
        createDiagnosticCollection: (name: string) => ({ name, set: () => undefined, delete: () => undefined, clear: () => undefined, forEach: () => undefined, get: () => undefined, has: () => false, dispose: () => undefined }),
      },
      commands: {
        registerCommand: (id: string, callback: (...args: any[]) => unknown) => {
          this.commands.set(id, callback);
          return new Disposable(() => this.commands.delete(id));
        },
        executeCommand: (id: string, ...args: unknown[]) => Promise.resolve(this.commands.get(id)?.(...args)),
      },
      extensions: {
        // The Python extension, when a test selects an interpreter in it.
        getExtension: (id: string) => (id === "ms-python.python" && this.selectedPython !== undefined ? this.pythonExtension() : undefined),
        all: [],
      },
    };
    // Classes and enums the client names that these tests never reach: present (the client
    // extends some at load time, and TypeScript's import helper copies only existing names).
    for (const name of UNMODELLED_NAMES) {
      known[name] ??= generic(name);
    }
    const other = (kind: string) => (): Disposable => {
      this.unmodelled.add(kind);
      return new Disposable(() => undefined);
    };
    // Any provider registration not modelled above succeeds and is noted.
    known.languages = new Proxy(known.languages, {
      get: (target, name: string) => (name in target ? target[name] : name.startsWith("register") ? other(`languages.${name}`) : undefined),
    });
    return new Proxy(known, {
      get: (target, name) => {
        if (typeof name !== "string" || name in target) {
          return target[name as string];
        }
        this.unmodelled.add(name);
        target[name] = /^[A-Z]/.test(name) ? generic(name) : undefined;
        return target[name];
      },
    });
  }
}

/** Make `require("vscode")` return the stand-in (before the extension or the client loads). */
export function install(standIn: StandIn): void {
  const loader = Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown };
  const original = loader._load;
  loader._load = function (request: string, ...rest: unknown[]) {
    return request === "vscode" ? standIn.module : original.call(this, request, ...rest);
  };
}
