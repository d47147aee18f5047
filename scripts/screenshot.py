"""Make docs/neovim.png: real Neovim with the plugin and the embedded model, in a terminal.

Neovim 0.12 (`.venv/bin/nvim`) runs in a detached tmux window with editor-clients/neovim on its
runtimepath and the server started as `.venv/bin/python -m infill_lsp` (the embedded model,
default settings), on a copy of examples/invoices.py. The script types as a person would (tmux
send-keys), reads Neovim's state over its RPC socket only to know when the answer has arrived,
and takes tmux's `capture-pane -e` of the screen (text and colours, cell by cell) three times:

1. in insert mode, after typing `return ` in days_overdue: the ghost text as the plugin draws it;
2. the body of days_overdue selected (V);
3. after `:InfillRewrite` on that selection: the buffer, and any message the plugin gave.

These two places were chosen before the model ever ran on them and are kept whatever it writes.
Each capture is drawn into the PNG with Pillow in DejaVu Sans Mono, one terminal cell per
character box, with the colours Neovim sent: the picture is the terminal's screen, redrawn.
Needs tmux and fonts-dejavu-core (installed with apt-get when missing and run as root).

Run: .venv/bin/python scripts/screenshot.py [--out docs/neovim.png]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "editor-clients" / "neovim"
EXAMPLE = ROOT / "examples" / "invoices.py"
NVIM = Path(sys.executable).parent / "nvim"
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
COLUMNS, ROWS = 100, 17
TYPED_LINE = "    return (today - invoice.due).days"  # place 1: `return ` is typed, then a pause
TYPED = "    return "
REWRITE_FIRST = "    if invoice.paid or today <= invoice.due:"  # place 2: days_overdue's body
REWRITE_LINES = 3
WAIT_S = 90.0

INIT_LUA = """
vim.opt.rtp:prepend({plugin!r})
vim.o.swapfile = false
vim.o.termguicolors = true
vim.o.number = true
vim.o.laststatus = 2
vim.o.shortmess = vim.o.shortmess .. 'I'
vim.o.statusline = " %f %= %{{v:lua.require'infill'.statusline()}} "
require('infill').setup({{ cmd = {{ {python!r}, '-m', 'infill_lsp', '--log-file', {log!r} }} }})
"""


def ensure_tools() -> None:
    """tmux and the DejaVu fonts, installed with apt-get when missing (as root), or a clear stop."""
    missing = [
        package
        for package, found in (
            ("tmux", shutil.which("tmux")),
            ("fonts-dejavu-core", (FONT_DIR / "DejaVuSansMono.ttf").exists()),
        )
        if not found
    ]
    if not missing:
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"screenshot: installing {' '.join(missing)} with apt-get", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True)
        return
    sys.exit(f"screenshot: needs {' '.join(missing)}: sudo apt-get install {' '.join(missing)}")


class Editor:
    """Neovim in a detached tmux window, typed into with send-keys and watched over RPC."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.socket = str(folder / "nvim.sock")
        self.session = f"infill-shot-{os.getpid()}"
        init = folder / "init.lua"
        self.log = folder / "server.log"
        lua = INIT_LUA.format(plugin=str(PLUGIN), python=sys.executable, log=str(self.log))
        init.write_text(lua)
        env = {"TERM": "tmux-256color", "COLORTERM": "truecolor"}
        for name in ("CONFIG", "DATA", "STATE", "CACHE"):
            (folder / name.lower()).mkdir()
            env[f"XDG_{name}_HOME"] = str(folder / name.lower())
        exports = " ".join(f"{key}={value}" for key, value in env.items())
        command = f"env {exports} {NVIM} -u {init} -i NONE --listen {self.socket} invoices.py"
        self.tmux("new-session", "-d", "-s", self.session, "-x", str(COLUMNS), "-y", str(ROWS))
        self.tmux("set-option", "-t", self.session, "status", "off")
        self.tmux("send-keys", "-t", self.session, f"cd {folder} && exec {command}", "Enter")

    def tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", *args], capture_output=True, text=True, check=True)
        return done.stdout

    def keys(self, *keys: str) -> None:
        """Type keys as a person would (tmux key names such as Escape and Enter work)."""
        for key in keys:
            self.tmux("send-keys", "-t", self.session, key)
            time.sleep(0.05)

    def literal(self, text: str) -> None:
        for char in text:
            self.tmux("send-keys", "-t", self.session, "-l", char)
            time.sleep(0.08)

    def ask(self, expression: str) -> str:
        """Evaluate a Vim expression in the editor (reading state only)."""
        done = subprocess.run(
            [str(NVIM), "--server", self.socket, "--remote-expr", expression],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return done.stdout.strip()

    def wait(self, what: str, expression: str, expected: str | None = None) -> str:
        """Poll `expression` until it is non-empty and not "0" (or equals `expected`)."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            value = self.ask(expression) if Path(self.socket).exists() else ""
            if (value == expected) if expected is not None else value not in ("", "0"):
                return value
            time.sleep(0.25)
        log = self.log.read_text().splitlines()[-15:] if self.log.exists() else []
        screen = SGR.sub("", self.capture()[0]).rstrip()
        sys.exit(
            f"screenshot: gave up waiting for {what} after {WAIT_S:.0f} s; the screen:\n{screen}\n"
            + "the server's log ends:\n"
            + "\n".join(log)
        )

    def capture(self) -> tuple[str, tuple[int, int]]:
        """The screen with its colours, and the cursor's cell (column, row)."""
        screen = self.tmux("capture-pane", "-e", "-p", "-t", self.session)
        where = self.tmux("display-message", "-p", "-t", self.session, "#{cursor_x} #{cursor_y}")
        x, y = where.split()
        return screen, (int(x), int(y))

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.session], capture_output=True)


# ----- ANSI (SGR) screen to cells, cells to pixels ---------------------------------------------

DEFAULT_FG, DEFAULT_BG = (224, 226, 234), (20, 22, 27)  # Neovim 0.12's default dark Normal
BASIC = [
    (7, 7, 7), (205, 49, 49), (13, 188, 121), (229, 229, 16),
    (36, 114, 200), (188, 63, 188), (17, 168, 205), (229, 229, 229),
    (102, 102, 102), (241, 76, 76), (35, 209, 139), (245, 245, 67),
    (59, 142, 234), (214, 112, 214), (41, 184, 219), (255, 255, 255),
]  # fmt: skip
SGR = re.compile(r"\x1b\[([0-9;:]*)m")


@dataclass
class Style:
    fg: tuple[int, int, int] | None = None
    bg: tuple[int, int, int] | None = None
    bold: bool = False
    italic: bool = False
    underline: bool = False
    strike: bool = False
    reverse: bool = False
    rest: dict[str, bool] = field(default_factory=dict)


def color_256(n: int) -> tuple[int, int, int]:
    if n < 16:
        return BASIC[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return (steps[n // 36], steps[n // 6 % 6], steps[n % 6])
    level = 8 + (n - 232) * 10
    return (level, level, level)


def apply_sgr(style: Style, codes: list[int]) -> Style:
    i = 0
    while i < len(codes):
        code = codes[i]
        if code == 0:
            style = Style()
        elif code in (1, 3, 4, 7, 9):
            name = {1: "bold", 3: "italic", 4: "underline", 7: "reverse", 9: "strike"}[code]
            setattr(style, name, True)
        elif code in (22, 23, 24, 27, 29):
            name = {22: "bold", 23: "italic", 24: "underline", 27: "reverse", 29: "strike"}[code]
            setattr(style, name, False)
        elif code in (38, 48) and i + 1 < len(codes):
            if codes[i + 1] == 2 and i + 4 < len(codes):
                rgb = (codes[i + 2], codes[i + 3], codes[i + 4])
                i += 4
            elif codes[i + 1] == 5 and i + 2 < len(codes):
                rgb = color_256(codes[i + 2])
                i += 2
            else:
                break
            if code == 38:
                style.fg = rgb
            else:
                style.bg = rgb
        elif code == 39:
            style.fg = None
        elif code == 49:
            style.bg = None
        elif 30 <= code <= 37 or 90 <= code <= 97:
            style.fg = BASIC[code - 30 if code < 90 else code - 82]
        elif 40 <= code <= 47 or 100 <= code <= 107:
            style.bg = BASIC[code - 40 if code < 100 else code - 92]
        i += 1
    return style


def cells(screen: str) -> list[list[tuple[str, Style]]]:
    """Each screen line as (character, style) cells; tmux carries the style across lines."""
    rows: list[list[tuple[str, Style]]] = []
    style = Style()
    for line in screen.split("\n")[:ROWS]:
        row: list[tuple[str, Style]] = []
        position = 0
        for match in SGR.finditer(line):
            row += [(char, style) for char in line[position : match.start()]]
            codes = [int(c) if c else 0 for c in re.split("[;:]", match.group(1))]
            style = apply_sgr(Style(**{**style.__dict__}), codes)
            position = match.end()
        row += [(char, style) for char in line[position:]]
        rows.append(row)
    return rows


class Painter:
    def __init__(self, size: int = 15) -> None:
        self.fonts = {
            (bold, italic): ImageFont.truetype(
                str(FONT_DIR / f"DejaVuSansMono{'-Bold' if bold else ''}"
                    f"{('Oblique' if bold else '-Oblique') if italic else ''}.ttf"),
                size,
            )
            for bold in (False, True)
            for italic in (False, True)
        }  # fmt: skip
        regular = self.fonts[(False, False)]
        self.width = round(regular.getlength("M"))
        ascent, descent = regular.getmetrics()
        self.height = ascent + descent + 2
        self.caption_font = ImageFont.truetype(str(FONT_DIR / "DejaVuSans.ttf"), size)

    def panel(self, screen: str, caption: str, cursor: tuple[int, int]) -> Image.Image:
        pad = 10
        top = self.height + 2 * pad
        image = Image.new("RGB", (COLUMNS * self.width + 2 * pad, top + ROWS * self.height + pad))
        draw = ImageDraw.Draw(image)
        draw.rectangle((0, 0, image.width, top), fill=(40, 42, 48))
        draw.text((pad, pad), caption, font=self.caption_font, fill=(235, 235, 235))
        draw.rectangle((0, top, image.width, image.height), fill=DEFAULT_BG)
        for y, row in enumerate(cells(screen)):
            for x, (char, style) in enumerate(row[:COLUMNS]):
                fg, bg = style.fg or DEFAULT_FG, style.bg or DEFAULT_BG
                if style.reverse:
                    fg, bg = bg, fg
                left, upper = pad + x * self.width, top + y * self.height
                box = (left, upper, left + self.width, upper + self.height)
                if bg != DEFAULT_BG:
                    draw.rectangle(box, fill=bg)
                if char.strip():
                    font = self.fonts[(style.bold, style.italic)]
                    draw.text((left, upper + 1), char, font=font, fill=fg)
                if style.underline:
                    draw.line((left, box[3] - 2, box[2], box[3] - 2), fill=fg)
                if style.strike:
                    middle = upper + self.height // 2
                    draw.line((left, middle, box[2], middle), fill=fg)
        x, y = cursor  # a bar at the left of the cursor's cell, as a terminal draws it
        left, upper = pad + x * self.width, top + y * self.height
        draw.rectangle((left, upper, left + 1, upper + self.height - 1), fill=DEFAULT_FG)
        return image


def stack(panels: list[Image.Image]) -> Image.Image:
    gap = 6
    height = sum(p.height for p in panels) + gap * (len(panels) - 1)
    image = Image.new("RGB", (max(p.width for p in panels), height), (255, 255, 255))
    y = 0
    for panel in panels:
        image.paste(panel, (0, y))
        y += panel.height + gap
    return image


def take(out: Path) -> list[str]:
    """Drive the editor through the three moments; return their captions and screens."""
    lines = EXAMPLE.read_text(encoding="utf-8").split("\n")
    typed_at = lines.index(TYPED_LINE) + 1
    first = lines.index(REWRITE_FIRST) + 1
    shots: list[tuple[str, str, tuple[int, int]]] = []
    with tempfile.TemporaryDirectory(prefix="infill-shot-") as name:
        folder = Path(name)
        shutil.copy(EXAMPLE, folder / "invoices.py")
        editor = Editor(folder)
        try:
            editor.wait("the model", "v:lua.require'infill'.statusline()", "infill: ready")
            # 1. Ghost text: the line emptied to its indentation, `return ` typed after a pause.
            editor.keys(":", f"call setline({typed_at}, '    ')", "Enter")
            editor.keys(f"{typed_at}G", "z.", "A")
            editor.literal(TYPED.strip() + " ")
            ghost = (
                "len(nvim_buf_get_extmarks(0, -1, 0, -1, {'details': v:true})"
                "->filter({_, m -> has_key(m[3], 'virt_text') || has_key(m[3], 'virt_lines')}))"
            )
            editor.wait("ghost text", ghost)
            time.sleep(0.5)
            shots.append(
                (
                    f"1. Insert mode, `{TYPED.strip()} ` typed on line {typed_at}: "
                    "the ghost text is the embedded model's suggestion",
                    *editor.capture(),
                )
            )
            # 2. The body of days_overdue selected, the file reloaded as it was first.
            editor.keys("Escape", ":", "edit!", "Enter")
            time.sleep(0.3)
            editor.keys(f"{first}G", "z.", "V", f"{REWRITE_LINES - 1}j")
            time.sleep(0.5)
            selected = f"lines {first}-{first + REWRITE_LINES - 1}"
            shots.append((f"2. The file as it was, {selected} selected", *editor.capture()))
            # 3. :InfillRewrite on the selection; wait for an edit or a new message, then idle.
            tick = editor.ask("b:changedtick")
            count = "len(split(execute('messages'), '\\n'))"
            before = editor.ask(count)
            editor.keys(":", "InfillRewrite", "Enter")
            editor.wait("the rewrite", f"b:changedtick != {tick} || {count} != {before}")
            editor.wait("the server", "v:lua.require'infill'.statusline()", "infill: ready")
            editor.ask("execute('redrawstatus')")  # the status line is drawn lazily
            time.sleep(0.5)
            messages = editor.ask("execute('messages')").splitlines()[int(before) :]
            changed = editor.ask("b:changedtick") != tick
            if changed:
                caption = f"3. After :InfillRewrite on {selected} (one undo step brings them back)"
            else:
                said = [m.split("infill-lsp: ", 1)[-1] for m in messages if "infill-lsp: " in m]
                reason = f": the server said {said[-1]!r}" if said else " (its message below)"
                caption = f"3. :InfillRewrite on {selected} changed nothing{reason}"
            shots.append((caption, *editor.capture()))
            print("messages after :InfillRewrite:", " | ".join(m for m in messages if m))
        finally:
            editor.close()
    painter = Painter()
    out.parent.mkdir(parents=True, exist_ok=True)
    panels = [painter.panel(screen, caption, cursor) for caption, screen, cursor in shots]
    stack(panels).quantize(colors=128).save(out, optimize=True)  # a third of the bytes
    return [screen for _, screen, _ in shots]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "neovim.png"))
    args = parser.parse_args()
    if not NVIM.exists():
        sys.exit(f"screenshot: {NVIM} is missing: run `bash scripts/setup.sh dev` first")
    ensure_tools()
    screens = take(Path(args.out))
    for screen in screens:
        print(SGR.sub("", screen).rstrip() + "\n")
    print(f"screenshot: wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
