-- End-to-end cases: real child Neovims (`nvim --embed --headless`, driven through RPC like a UI
-- that types keys) with the plugin on 'runtimepath', each starting the real infill-lsp server
-- (INFILL_SERVER_CMD, a JSON list) with a model directory (INFILL_MODEL_PATH).
--
-- Editor "default" uses no setup(), only `vim.lsp.config("infill", ...)` (the README's install),
-- so the plugin's own ghost text; "slow" is the same on a model made slow by many steps, for races
-- that must be certain; "extmark" uses setup() with options; "builtin" asks for Neovim's built-in
-- inline completion.

local root = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h')
local server_cmd = vim.env.INFILL_SERVER_CMD
local model_path = vim.env.INFILL_MODEL_PATH
local timeout_ms = tonumber(vim.env.INFILL_TEST_TIMEOUT_MS or '') or 90000
local workdir = vim.fn.tempname()
vim.fn.mkdir(workdir, 'p')

local cases = {}

local function eq(want, got, what)
  if not vim.deep_equal(want, got) then
    error(('%s: want %s, got %s'):format(what or 'value', vim.inspect(want), vim.inspect(got)), 2)
  end
end

---@class Editor
---@field name string
---@field chan integer
local Editor = {}
Editor.__index = Editor

--- Start a child Neovim whose init file is the plugin on the runtimepath plus `config_lua`.
---@param name string
---@param config_lua string
---@return Editor
function Editor.start(name, config_lua)
  local init = ('%s/init-%s.lua'):format(workdir, name)
  vim.fn.writefile(
    vim.split(
      table.concat({
        ('vim.opt.rtp:prepend(%q)'):format(root),
        'vim.o.swapfile = false',
        'vim.o.shortmess = vim.o.shortmess .. "I"',
        'local cmd = vim.json.decode(vim.env.INFILL_SERVER_CMD)',
        'local model = vim.env.INFILL_MODEL_PATH',
        config_lua,
      }, '\n'),
      '\n'
    ),
    init
  )
  local chan = vim.fn.jobstart(
    { vim.v.progpath, '--embed', '--headless', '-u', init, '-i', 'NONE', '-n' },
    { rpc = true, cwd = workdir }
  )
  assert(chan > 0, 'could not start ' .. vim.v.progpath)
  return setmetatable({ name = name, chan = chan }, Editor)
end

--- Run Lua in the child and return its result.
function Editor:lua(code, ...)
  return vim.rpcrequest(self.chan, 'nvim_exec_lua', code, { ... })
end

--- Type keys into the child, as a user would.
function Editor:input(keys)
  vim.rpcrequest(self.chan, 'nvim_input', keys)
end

--- Poll `code` in the child until it returns a truthy value; return it, or fail with diagnostics.
function Editor:wait_for(what, code, ms, ...)
  local deadline = vim.uv.now() + (ms or timeout_ms)
  while vim.uv.now() < deadline do
    local value = self:lua(code, ...)
    if value and value ~= vim.NIL then
      return value
    end
    vim.wait(50)
  end
  error(('%s: timed out waiting for %s\n%s'):format(self.name, what, self:diagnostics()), 2)
end

--- Messages and the tail of the LSP log, for failure reports.
function Editor:diagnostics()
  return self:lua([[
    local messages = vim.api.nvim_exec2('messages', { output = true }).output
    local log = vim.fn.filereadable(vim.lsp.log.get_filename()) == 1
      and table.concat(vim.tbl_map(function(line) return line:sub(1, 400) end,
        vim.list_slice(vim.fn.readfile(vim.lsp.log.get_filename()), -12)), '\n') or ''
    return 'mode: ' .. vim.api.nvim_get_mode().mode .. '\nmessages:\n' .. messages .. '\nlsp.log tail:\n' .. log
  ]])
end

function Editor:stop()
  pcall(self.lua, self, 'vim.lsp.stop_client(vim.lsp.get_clients(), true)')
  pcall(vim.fn.jobstop, self.chan)
end

--- Buffer text of the child's current buffer, cursor (0-based row, byte col) and changedtick.
function Editor:snapshot()
  return self:lua([[
    local lines = vim.api.nvim_buf_get_lines(0, 0, -1, true)
    local row, col = unpack(vim.api.nvim_win_get_cursor(0))
    local offset = col
    for i = 1, row - 1 do offset = offset + #lines[i] + 1 end
    return { text = table.concat(lines, '\n'), offset = offset, tick = vim.b.changedtick }
  ]])
end

--- Open `path` with `lines` in the child, wait for the infill client and the model.
function Editor:open(path, lines)
  vim.fn.writefile(lines, workdir .. '/' .. path)
  self:input('<Esc>:edit ' .. path .. '<CR>')
  self:wait_for('the infill client on ' .. path, [[
    local client = vim.lsp.get_clients({ name = 'infill', bufnr = 0 })[1]
    return client and client.initialized and vim.fn.expand('%:t') == ... or nil
  ]], nil, path)
  self:wait_for('the model to load', [[
    local client = vim.lsp.get_clients({ name = 'infill', bufnr = 0 })[1]
    local status = require('infill.lsp').request_status(client, 2000)
    if status and status.state == 'error' then error(status.message) end
    return status and status.state == 'ready'
  ]])
  -- Record what the server answers to inline completion requests, to check the buffer against it.
  self:lua([[
    local client = vim.lsp.get_clients({ name = 'infill', bufnr = 0 })[1]
    if client._infill_test_wrapped then return end
    client._infill_test_wrapped = true
    local request = client.request
    _G.infill_test_requests = {}
    _G.infill_test_commands = {}
    client.request = function(self, method, params, handler, bufnr)
      if method == 'workspace/executeCommand' then
        table.insert(_G.infill_test_commands, vim.deepcopy(params))
      end
      if method == 'textDocument/inlineCompletion' and handler then
        local inner = handler
        local record = { uri = params.textDocument.uri, line = params.position.line, sent = vim.uv.hrtime() }
        table.insert(_G.infill_test_requests, record)
        handler = function(err, result, ctx)
          record.answered = vim.uv.hrtime()
          if result then
            local items = result.items or result
            record.items = #items
            _G.infill_test_item = items[1] and { item = items[1], encoding = self.offset_encoding } or nil
          end
          return inner(err, result, ctx)
        end
        local ok, id = request(self, method, params, handler, bufnr)
        record.id = id
        return ok, id
      end
      return request(self, method, params, handler, bufnr)
    end
    local cancel = client.cancel_request
    client.cancel_request = function(self, id)
      for _, record in ipairs(_G.infill_test_requests) do
        if record.id == id then record.cancelled = record.cancelled or vim.uv.hrtime() end
      end
      return cancel(self, id)
    end
    vim.api.nvim_create_autocmd('User', { pattern = 'InfillCommandDone', callback = function(args)
      _G.infill_test_done = args.data
    end })
  ]])
end

--- The ghost text the child shows now, or nil.
function Editor:ghost()
  local shown = self:lua('return require("infill.inline").visible_text(0)')
  return shown ~= vim.NIL and shown or nil
end

--- Wait until ghost text is on screen; return it with the item the server sent and a snapshot.
function Editor:wait_ghost()
  self:lua('_G.infill_test_item = nil')
  local ghost = self:wait_for('ghost text', [[
    local shown = require('infill.inline').visible_text(0)
    return _G.infill_test_item and shown and shown ~= '' and shown or nil
  ]])
  local item = self:lua('return _G.infill_test_item')
  return ghost, item, self:snapshot()
end

--- The text after replacing an item's range (or inserting at the cursor) with its insertText.
local function expected_after_accept(before, item)
  local insert = type(item.item.insertText) == 'table' and item.item.insertText.value or item.item.insertText
  if not item.item.range then
    return before.text:sub(1, before.offset) .. insert .. before.text:sub(before.offset + 1), insert
  end
  -- Offsets of LSP positions in the (ASCII) text the test typed.
  local lines = vim.split(before.text, '\n', { plain = true })
  local function offset(pos)
    local n = pos.character
    for i = 1, pos.line do
      n = n + #lines[i] + 1
    end
    return n
  end
  local start, finish = offset(item.item.range.start), offset(item.item.range['end'])
  assert(start <= before.offset and before.offset <= finish, 'the range covers the cursor')
  return before.text:sub(1, start) .. insert .. before.text:sub(finish + 1), insert
end

--- Capture the child's screen rows (ghost text included), for the README transcript.
function Editor:screen(rows)
  return self:lua([[
    vim.cmd('redraw')
    local out = {}
    for row = 1, ... do
      local cells = {}
      for col = 1, vim.o.columns do cells[#cells + 1] = vim.fn.screenstring(row, col) end
      out[#out + 1] = (table.concat(cells):gsub('%s+$', ''))
    end
    return out
  ]], rows)
end

local editors = {}

-- Wide enough that a suggestion never wraps; a statusline with the plugin's status.
local SCREEN = [[
  vim.o.columns = 200
  vim.o.laststatus = 2
  vim.o.statusline = '%f %{v:lua.require("infill").statusline()}'
]]

local function editor(name)
  if editors[name] then
    return editors[name]
  end
  if name == 'default' then
    -- No setup(): the user only points the "infill" config at the server and the model.
    editors[name] = Editor.start(name, SCREEN .. [[
      vim.lsp.config('infill', { cmd = cmd, init_options = { modelPath = model } })
    ]])
  elseif name == 'slow' then
    -- Every request writes a 160-token canvas in up to 160 steps on one thread (a reply is certain
    -- to be in flight for a while), sampled, so that suggestions have several words.
    editors[name] = Editor.start(name, SCREEN .. [[
      vim.lsp.config('infill', { cmd = cmd, init_options = {
        modelPath = model, steps = 160, maxSpanTokens = 160, length = 'fillers', temperature = 1.0,
        threads = 1, debounceMs = 0,
      } })
    ]])
  elseif name == 'stubborn' then
    -- A model that writes "x" at every position (INFILL_STUBBORN_MODEL_PATH): any rewrite of an
    -- expression is an identifier, which parses, so the parse guard never hides what was changed.
    editors[name] = Editor.start(name, SCREEN .. [[
      vim.lsp.config('infill', { cmd = cmd, init_options = {
        modelPath = vim.env.INFILL_STUBBORN_MODEL_PATH, candidates = 1, threads = 1,
      } })
    ]])
  elseif name == 'builtin' then
    editors[name] = Editor.start(name, SCREEN .. [[
      require('infill').setup({ cmd = cmd, settings = { model_path = model }, inline = 'builtin' })
    ]])
  else
    editors[name] = Editor.start(name, [[
      require('infill').setup({
        cmd = cmd,
        settings = { model_path = model, hole_marker = '???', candidates = 2 },
        inline = 'extmark',
        debounce_ms = 50,
        keymaps = { accept_word = '<C-Right>' },
      })
    ]])
  end
  return editors[name]
end

local function case(name, run, needs)
  local skip = not (server_cmd and model_path) and 'INFILL_SERVER_CMD / INFILL_MODEL_PATH not set' or nil
  if not skip and needs and not vim.env[needs] then
    skip = needs .. ' not set'
  end
  table.insert(cases, { name = name, run = run, skip = skip })
end

case(':checkhealth infill starts the server and reports the model loaded', function()
  local nvim = editor('default')
  nvim:input(':checkhealth infill<CR>')
  local report = nvim:wait_for('the health report', [[
    local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
    return vim.bo.filetype == 'checkhealth' and text:find('model loaded', 1, true) and text
      or (text:find('ERROR', 1, true) and text) or nil
  ]])
  for _, want in ipairs({ "OK Neovim 0.1", "OK ghost text: the plugin's extmarks", 'OK server command:', 'OK server starts', 'OK model loaded:' }) do
    assert(report:find(want, 1, true), ('report has %q:\n%s'):format(want, report))
  end
  assert(not report:find('ERROR', 1, true), 'no errors:\n' .. report)
  nvim:input(':bwipe<CR>')
end)

case('default: typing shows ghost text and <Tab> makes the buffer prefix + completion + suffix', function()
  local nvim = editor('default')
  nvim:open('add.py', { 'def add(a, b):', '    total = ', '    return total', '', 'print(add(1, 2))' })
  nvim:input('2GA' .. 'a +')
  local ghost, item, before = nvim:wait_ghost()
  local want, insert = expected_after_accept(before, item)
  assert(insert ~= '', 'the completion is not empty')
  assert(insert:find(ghost:gsub(' %(%d+/%d+%)$', ''), 1, true), ('ghost %q is part of %q'):format(ghost, insert))
  local shown = nvim:screen(7)
  nvim:input('<Tab>')
  nvim:wait_for('the accepted completion', 'local t = ... ; return vim.b.changedtick ~= t', nil, before.tick)
  local got = nvim:snapshot()
  if vim.env.INFILL_SCREEN_CAPTURE then -- for the README: the screen with ghost text, then after <Tab>
    local frames = { '-- typed "a +" in insert mode; ghost text after the cursor:' }
    vim.list_extend(frames, shown)
    table.insert(frames, '-- after <Tab>:')
    vim.list_extend(frames, nvim:screen(7))
    vim.fn.writefile(frames, vim.env.INFILL_SCREEN_CAPTURE)
  end
  eq(want, got.text, 'buffer after <Tab>')
  eq('def add(a, b):\n    total = a +', got.text:sub(1, #'def add(a, b):\n    total = a +'), 'prefix kept')
  eq('\n    return total\n\nprint(add(1, 2))', got.text:sub(-#'\n    return total\n\nprint(add(1, 2))'), 'suffix kept')
  eq(before.offset + #insert, got.offset, 'cursor after the completion')
  eq('i', nvim:lua('return vim.api.nvim_get_mode().mode'), 'still in insert mode')
end)

case('default: <C-]> dismisses and :InfillToggle stops ghost text', function()
  local nvim = editor('default')
  nvim:input('<Esc>Go' .. 'y = ')
  nvim:wait_ghost()
  local before = nvim:snapshot()
  nvim:input('<C-]>')
  nvim:wait_for('the ghost text to go', 'return require("infill.inline").visible_text(0) == nil')
  eq(before.text, nvim:snapshot().text, 'dismiss leaves the buffer alone')
  nvim:input('<Esc>:InfillToggle<CR>A' .. 'c')
  vim.wait(800)
  eq(nil, nvim:ghost(), 'no ghost text while toggled off')
  nvim:input('<Esc>:InfillToggle<CR>A' .. 'd')
  nvim:wait_ghost()
  nvim:input('<Esc>')
end)

--- The inlineCompletion requests the child sent since `from` (1-based index into its record).
function Editor:requests(from)
  return self:lua('return vim.list_slice(_G.infill_test_requests, ...)', from or 1)
end

--- Screen row `row` (1-based) as drawn, without redrawing first.
function Editor:screen_row(row)
  return self:lua([[
    local cells = {}
    for col = 1, vim.o.columns do cells[#cells + 1] = vim.fn.screenstring(..., col) end
    return (table.concat(cells):gsub('%s+$', ''))
  ]], row)
end

case('default: only the current buffer asks, at its own cursor', function()
  local nvim = editor('default')
  nvim:open('first.py', { 'def first():', '    return 1' })
  nvim:open('second.py', { 'def second():', '    return 2' })
  nvim:open('third.py', { 'def third(value):', '    result = ', '    return result' })
  local from = #nvim:requests() + 1
  nvim:input('2GA' .. 'value *')
  nvim:wait_ghost()
  nvim:input('<Esc>')
  local sent = nvim:requests(from)
  assert(#sent >= 1, 'at least one request')
  for _, r in ipairs(sent) do
    assert(r.uri:match('third%.py$'), 'a request for another buffer: ' .. vim.inspect(sent))
    eq(1, r.line, 'request line')
  end
end)

--- Type `typed` before the ")" of `    return os.environ.get()` in `file`; compare the screen row
--- with ghost text to the buffer line after <Tab>.
local function drawn_is_accepted(nvim, file)
  nvim:open(file, { 'import os', '', 'def host(config):', '    return os.environ.get()', '' })
  nvim:input('4G$i' .. 'config')
  local ghost, _, before = nvim:wait_ghost()
  nvim:lua('vim.cmd.redraw()')
  local drawn = nvim:screen_row(4)
  assert(drawn:find(ghost:gsub(' %(%d+/%d+%)$', ''), 1, true), ('drawn row %q shows the ghost %q'):format(drawn, ghost))
  nvim:input('<Tab>')
  nvim:wait_for('the accepted completion', 'local t = ... ; return vim.b.changedtick ~= t', nil, before.tick)
  local line = nvim:lua('return vim.fn.getline(4)')
  eq(drawn, line, 'the buffer line after <Tab> is the row that was drawn')
  eq(')', line:sub(-1), 'the ) after the cursor is still there')
  nvim:input('<Esc>')
end

case('default: the ghost text as drawn is what <Tab> puts in the buffer (text after the cursor stays)', function()
  drawn_is_accepted(editor('default'), 'env.py')
end)

case('builtin: the ghost text as drawn is what <Tab> puts in the buffer (no range, no overlay)', function()
  drawn_is_accepted(editor('builtin'), 'env_builtin.py')
end)

case('slow: partial accept keeps the rest as ghost text at once, without asking again', function()
  local nvim = editor('slow')
  nvim:open('parts.py', { 'def total(items):', '    count = ', '    return count' })
  local SHOWN = [[
    local ghost = require('infill.ghost')
    if ghost.shown and require('infill.inline').backend() == 'extmark' then return ghost.shown(0) end
    return require('infill.inline').visible_text(0) -- (Neovim's own ghost text)
  ]]
  local ghost, word
  for attempt = 1, 6 do -- a suggestion of at least two words
    nvim:input(attempt == 1 and '2GA' .. 'len(' or 'x')
    nvim:wait_ghost()
    ghost = nvim:lua(SHOWN)
    word = nvim:lua('return require("infill.text").next_word(...)', ghost)
    if #word < #ghost then
      break
    end
  end
  assert(#word < #ghost, 'a suggestion longer than one word: ' .. ghost)
  local before = nvim:snapshot()
  local from = #nvim:requests() + 1
  nvim:input('<M-Right>')
  nvim:wait_for('the accepted word', 'local t = ... ; return vim.b.changedtick ~= t', nil, before.tick)
  eq(ghost:sub(#word + 1), nvim:lua(SHOWN), 'the rest is ghost text right after the word')
  local after = nvim:snapshot()
  eq(before.text:sub(1, before.offset) .. word .. before.text:sub(before.offset + 1), after.text, 'the word went in')
  vim.wait(600) -- longer than the debounce: a new request would have gone out by now
  eq(ghost:sub(#word + 1), nvim:lua(SHOWN), 'the rest is still shown')
  eq({}, nvim:requests(from), 'no request was needed')
  nvim:input('<Tab>')
  nvim:wait_for('the accepted rest', 'local t = ... ; return vim.b.changedtick ~= t', nil, after.tick)
  eq(before.text:sub(1, before.offset) .. ghost .. before.text:sub(before.offset + 1), nvim:snapshot().text, 'word + rest')
  nvim:input('<Esc>')
end)

case('default: ghost text has its own colour with and without termguicolors, dark and light', function()
  local nvim = editor('default')
  nvim:open('colour.py', { 'def area(width, height):', '    return ' })
  nvim:input('2GA' .. 'width')
  nvim:wait_ghost()
  local report = nvim:lua([[
    local out = {}
    for _, gui in ipairs({ true, false }) do
      for _, bg in ipairs({ 'dark', 'light' }) do
        vim.o.termguicolors = gui
        vim.o.background = bg -- reloads the colorscheme (ColorScheme)
        local groups = {}
        for name, id in pairs(vim.api.nvim_get_namespaces()) do
          if name == 'infill.ghost' or name == 'nvim.lsp.inline_completion' then
            for _, mark in ipairs(vim.api.nvim_buf_get_extmarks(0, id, 0, -1, { details = true })) do
              for _, chunk in ipairs(mark[4].virt_text or {}) do groups[#groups + 1] = chunk[2] end
            end
          end
        end
        local normal = vim.api.nvim_get_hl(0, { name = 'Normal', link = false })
        for _, group in ipairs(groups) do
          local hl = vim.api.nvim_get_hl(0, { name = group, link = false })
          local fg, base = gui and hl.fg or hl.ctermfg, gui and normal.fg or normal.ctermfg
          if not fg or fg == base then
            out[#out + 1] = ('%s, background=%s: %s has no colour of its own (%s)'):format(
              gui and 'termguicolors' or 'notermguicolors', bg, group, vim.inspect(hl))
          end
        end
        if #groups == 0 then out[#out + 1] = 'no ghost text drawn' end
      end
    end
    vim.o.termguicolors, vim.o.background = true, 'dark'
    return out
  ]])
  eq({}, report, 'ghost text colours')
  nvim:input('<Esc>')
end)

case('slow: a reply that arrives after the cursor moved on is not drawn, and <Tab> stays a <Tab>', function()
  local nvim = editor('slow')
  nvim:open('late.py', { 'def late(items):', '    for name, item in items.items():', '        pass', '' })
  local from = #nvim:requests() + 1
  nvim:input('2GA' .. '<CR>' .. 'value = item.')
  local first = nvim:wait_for('a request at the typed position', 'return _G.infill_test_requests[...]', nil, from)
  -- Type on (faster than any debounce) until the reply to that request has arrived, or the
  -- client has given up on it (then no reply will come: pygls never answers a cancelled request).
  local moved_at = nvim:lua('return vim.uv.hrtime()')
  local r = nvim:lua('return _G.infill_test_requests[...]', from)
  assert(not r.answered, 'the reply came before typing on: the model is not slow enough')
  local typed = 0
  while typed < 1200 and not (r.answered or (r.cancelled and typed >= 10)) do
    nvim:input(typed == 0 and '<CR>' or 'z')
    typed = typed + 1
    vim.wait(60)
    r = nvim:lua('return _G.infill_test_requests[...]', from)
  end
  assert((r.answered or r.cancelled or 0) > moved_at, 'the reply came (or was given up) after the cursor moved on')
  local shown = nvim:ghost()
  local before = nvim:snapshot()
  nvim:input('<Tab>')
  nvim:wait_for('the <Tab>', 'local t = ... ; return vim.b.changedtick ~= t', nil, before.tick)
  local after = nvim:snapshot()
  local head = before.text:sub(1, before.offset)
  eq(head, after.text:sub(1, #head), 'nothing changed before the cursor (the line the reply was for included)')
  if shown == nil then -- no suggestion here: <Tab> is a plain <Tab> (spaces with 'expandtab')
    local tail = before.text:sub(before.offset + 1)
    eq(tail, after.text:sub(-#tail), 'nothing changed after the cursor')
    local inserted = after.text:sub(#head + 1, #after.text - #tail)
    assert(inserted:match('^[ \t]+$'), ('<Tab> inserted %q, not blanks'):format(inserted))
  end
  eq(first.line, 2, 'the request was for the typed line')
  nvim:input('<Esc>')
end)

case('status: "starting" from the first moment, and the statusline follows the server at once', function()
  local nvim = Editor.start('status', SCREEN .. [[
    vim.lsp.config('infill', { cmd = cmd, init_options = { modelPath = model } })
  ]])
  editors.status = nvim
  vim.fn.writefile({ 'x = 1' }, workdir .. '/status.py')
  nvim:input(':edit status.py<CR>')
  nvim:wait_for('the buffer', 'return vim.fn.expand("%:t") == "status.py"')
  local said = nvim:lua([[
    return { command = vim.api.nvim_exec2('InfillStatus', { output = true }).output,
      statusline = require('infill').statusline() }
  ]])
  eq('infill: starting', said.statusline, 'statusline while the server starts')
  assert(said.command:find('starting', 1, true), ':InfillStatus while the server starts: ' .. said.command)
  -- The statusline row changes when the status does, with no key pressed and no :redraw.
  local row = nvim:lua('return vim.o.lines - 1')
  nvim:wait_for('the ready status', [[
    local client = vim.lsp.get_clients({ name = 'infill' })[1]
    local status = client and require('infill.lsp').status[client.id]
    return status and status.state == 'ready'
  ]])
  vim.wait(500)
  local drawn = nvim:screen_row(row)
  assert(drawn:find('infill: ready', 1, true), 'statusline row 0.5 s after "ready": ' .. drawn)
end)

-- Plain text: no grammar, so the server cannot turn down the random model's rewrite as a syntax
-- error (in code it may, and then nothing changes).
local NOTES = { 'Shopping list', 'apples and pears', 'bread and butter', 'milk', '', 'Call the bank.' }
local HEAD, TAIL = 'Shopping list  (Saturday)\n', '\nmilk\n\nCall the bank.'

case(':InfillRewrite on a visual range changes only that range, and u restores it', function()
  local nvim = editor('default')
  nvim:open('notes.txt', NOTES)
  nvim:input('1GA  (Saturday)<Esc>') -- an earlier change that must survive the undo
  nvim:wait_for('the typed text', 'return vim.fn.getline(1):find("Saturday", 1, true) ~= nil')
  local before = nvim:snapshot()
  nvim:lua('_G.infill_test_done = nil')
  nvim:input('2GVj:InfillRewrite<CR>')
  local done = nvim:wait_for('the rewrite', 'return _G.infill_test_done')
  eq('applied', done.outcome, 'rewrite outcome')
  local after = nvim:snapshot()
  assert(after.text ~= before.text, 'the rewrite changed the buffer')
  eq(HEAD, after.text:sub(1, #HEAD), 'text before the range')
  eq(TAIL, after.text:sub(-#TAIL), 'text after the range')
  nvim:input('u')
  nvim:wait_for('the undo', 'local t = ... ; return vim.b.changedtick ~= t', nil, after.tick)
  eq(before.text, nvim:snapshot().text, 'one u restores the text before the rewrite')
end)

case(':InfillRevise and :InfillStatus answer through the real server', function()
  local nvim = editor('default')
  local before = nvim:snapshot()
  nvim:lua('_G.infill_test_done = nil')
  nvim:input(':2,3InfillRevise<CR>')
  local done = nvim:wait_for('the revise', 'return _G.infill_test_done')
  assert(done.outcome == 'applied' or done.outcome == 'unchanged', 'revise outcome ' .. done.outcome)
  local after = nvim:snapshot()
  eq(HEAD, after.text:sub(1, #HEAD), 'text before the range')
  eq(TAIL, after.text:sub(-#TAIL), 'text after the range')
  if done.outcome == 'unchanged' then
    eq(before.text, after.text, 'no edit, no change')
  end
  local status = nvim:lua('return vim.api.nvim_exec2("InfillStatus", { output = true }).output')
  assert(status:find('ready', 1, true), 'status says ready: ' .. status)
end)

-- `item.price * item.quantity` (bytes 17-43 of line 4), selected character-wise.
local PRICES = {
  'def total(items):',
  '    total = 0',
  '    for item in items:',
  '        total += item.price * item.quantity',
  '    return total',
}

--- Select bytes 17-43 of line 4 of PRICES character-wise in `file` and :InfillRewrite them;
--- check the range sent and the text outside it. Returns the outcome, the text before, and what
--- stands where the selection was.
local function rewrite_selected_characters(nvim, file)
  nvim:open(file, PRICES)
  local before = nvim:snapshot()
  nvim:lua('_G.infill_test_done = nil; _G.infill_test_commands = {}; vim.cmd("messages clear")')
  nvim:input('4G18|v43|:InfillRewrite<CR>')
  local done = nvim:wait_for('the rewrite of ' .. file, 'return _G.infill_test_done')
  local sent = nvim:lua('return _G.infill_test_commands')
  eq(1, #sent, 'commands sent')
  local selection = { start = { line = 3, character = 17 }, ['end'] = { line = 3, character = 43 } }
  eq(selection, sent[1].arguments[1].range, 'the range sent is the selection')
  local after = nvim:snapshot()
  local offset = #table.concat(PRICES, '\n', 1, 3) + 1 + 17
  local head, tail = before.text:sub(1, offset), before.text:sub(offset + 27)
  eq(head, after.text:sub(1, #head), file .. ': text before the selection')
  eq(tail, after.text:sub(-#tail), file .. ': text after the selection')
  return done.outcome, before.text, after.text:sub(#head + 1, #after.text - #tail)
end

case(':InfillRewrite of a character-wise selection in code rewrites exactly those characters', function()
  -- Certain on a model that writes "x": the server before issue 25 widened the selection to the
  -- whole statement and replaced `total += ` too.
  local outcome, _, written = rewrite_selected_characters(editor('stubborn'), 'stubborn.py')
  eq('applied', outcome, 'rewrite outcome')
  assert(written:match('^x+$'), 'the selection became the model\'s text: ' .. written)
end, 'INFILL_STUBBORN_MODEL_PATH')

case(':InfillRewrite on a character-wise selection changes only the selected characters', function()
  -- On the random model: in plain text (no grammar, no parse guard) the rewrite lands; in Python
  -- its text may not parse, and then nothing changes and the server says why.
  local nvim = editor('default')
  for _, file in ipairs({ 'prices.txt', 'prices.py' }) do
    local outcome, before, written = rewrite_selected_characters(nvim, file)
    if file == 'prices.txt' then
      eq('applied', outcome, 'plain text rewrite outcome')
      assert(written ~= 'item.price * item.quantity', 'the rewrite changed the selection')
    elseif outcome == 'unchanged' then
      eq(before, nvim:snapshot().text, 'no edit, no change')
      local messages = nvim:lua('return vim.api.nvim_exec2("messages", { output = true }).output')
      assert(messages:find('nothing changed', 1, true), 'the server said why nothing changed: ' .. messages)
    else
      eq('applied', outcome, 'python rewrite outcome')
    end
  end
end)

case('builtin (inline = "builtin"): ghost text, <Tab>, and only the current buffer asks', function()
  local nvim = editor('builtin')
  nvim:open('one.py', { 'def one():', '    return 1' })
  nvim:open('two.py', { 'def add(a, b):', '    total = ', '    return total' })
  local from = #nvim:requests() + 1
  nvim:input('2GA' .. 'a +')
  local _, item, before = nvim:wait_ghost()
  local want = expected_after_accept(before, item)
  nvim:input('<Tab>')
  nvim:wait_for('the accepted completion', 'local t = ... ; return vim.b.changedtick ~= t', nil, before.tick)
  eq(want, nvim:snapshot().text, 'buffer after <Tab>')
  for _, r in ipairs(nvim:requests(from)) do
    assert(r.uri:match('two%.py$'), 'a request for another buffer: ' .. r.uri)
  end
  nvim:input('<Esc>')
end)

case('extmark (setup()): ghost text, accept word, dismiss, accept all', function()
  local nvim = editor('extmark')
  nvim:open('greet.py', { 'class Greeter:', '    def greet(self):', '        name = ', '        return name' })
  nvim:input('3GA' .. 'self.')
  local ghost, _, before = nvim:wait_ghost()
  local text = nvim:lua('return require("infill.text").next_word(...)', (ghost:gsub(' %(%d+/%d+%)$', '')))
  nvim:input('<C-Right>')
  nvim:wait_for('the accepted word', 'local t = ... ; return vim.b.changedtick ~= t', nil, before.tick)
  local got = nvim:snapshot()
  eq(before.text:sub(1, before.offset) .. text .. before.text:sub(before.offset + 1), got.text, 'accept word')
  eq(before.offset + #text, got.offset, 'cursor after the word')

  nvim:wait_ghost()
  nvim:input('<C-]>')
  nvim:wait_for('the ghost text to go', 'return require("infill.inline").visible_text(0) == nil')

  nvim:input('x')
  local _, item, again = nvim:wait_ghost()
  local want = expected_after_accept(again, item)
  nvim:input('<Tab>')
  nvim:wait_for('the accepted completion', 'local t = ... ; return vim.b.changedtick ~= t', nil, again.tick)
  eq(want, nvim:snapshot().text, 'accept all')
  nvim:input('<Esc>')
end)

case('extmark (setup()): :InfillFillHoles fills the configured marker and nothing else', function()
  local nvim = editor('extmark')
  nvim:open('holes.txt', { 'Dear ???,', '', 'thank you for the ??? you sent.' })
  nvim:lua('_G.infill_test_done = nil')
  nvim:input(':InfillFillHoles<CR>')
  local done = nvim:wait_for('fill holes', 'return _G.infill_test_done')
  eq('applied', done.outcome, 'fill holes outcome')
  local got = nvim:snapshot().text
  assert(not got:find('???', 1, true), 'every marker is gone: ' .. got)
  local first, second = got:match('^Dear (.*),\n\nthank you for the (.*) you sent%.$')
  assert(first and second, 'only the markers changed: ' .. got)
end)

cases.teardown = function()
  for _, nvim in pairs(editors) do
    nvim:stop()
  end
  vim.fn.delete(workdir, 'rf')
end

return cases
