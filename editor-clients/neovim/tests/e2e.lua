-- End-to-end cases: real child Neovims (`nvim --embed --headless`, driven through RPC like a UI
-- that types keys) with the plugin on 'runtimepath', each starting the real infill-lsp server
-- (INFILL_SERVER_CMD, a JSON list) with a model directory (INFILL_MODEL_PATH).
--
-- Editor "builtin" uses no setup(), only `vim.lsp.config("infill", ...)`, and Neovim's built-in
-- inline completion; editor "extmark" uses setup() with the plugin's own extmark ghost text.

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
    client.request = function(self, method, params, handler, bufnr)
      if method == 'textDocument/inlineCompletion' and handler then
        local inner = handler
        handler = function(err, result, ctx)
          if result then
            local items = result.items or result
            _G.infill_test_item = items[1] and { item = items[1], encoding = self.offset_encoding } or nil
          end
          return inner(err, result, ctx)
        end
      end
      return request(self, method, params, handler, bufnr)
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

local function editor(name)
  if editors[name] then
    return editors[name]
  end
  if name == 'builtin' then
    -- No setup(): the user only points the "infill" config at the server and the model.
    editors[name] = Editor.start(name, [[
      vim.lsp.config('infill', { cmd = cmd, init_options = { modelPath = model } })
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

local function case(name, run)
  table.insert(cases, {
    name = name,
    run = run,
    skip = not (server_cmd and model_path) and 'INFILL_SERVER_CMD / INFILL_MODEL_PATH not set' or nil,
  })
end

case(':checkhealth infill starts the server and reports the model loaded', function()
  local nvim = editor('builtin')
  nvim:input(':checkhealth infill<CR>')
  local report = nvim:wait_for('the health report', [[
    local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
    return vim.bo.filetype == 'checkhealth' and text:find('model loaded', 1, true) and text
      or (text:find('ERROR', 1, true) and text) or nil
  ]])
  for _, want in ipairs({ 'OK Neovim 0.1', 'OK ghost text: built-in', 'OK server command:', 'OK server starts', 'OK model loaded:' }) do
    assert(report:find(want, 1, true), ('report has %q:\n%s'):format(want, report))
  end
  assert(not report:find('ERROR', 1, true), 'no errors:\n' .. report)
  nvim:input(':bwipe<CR>')
end)

case('builtin: typing shows ghost text and <Tab> makes the buffer prefix + completion + suffix', function()
  local nvim = editor('builtin')
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

case('builtin: <C-]> dismisses and :InfillToggle stops ghost text', function()
  local nvim = editor('builtin')
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

-- Plain text: no grammar, so the server cannot turn down the random model's rewrite as a syntax
-- error (in code it may, and then nothing changes).
local NOTES = { 'Shopping list', 'apples and pears', 'bread and butter', 'milk', '', 'Call the bank.' }
local HEAD, TAIL = 'Shopping list  (Saturday)\n', '\nmilk\n\nCall the bank.'

case(':InfillRewrite on a visual range changes only that range, and u restores it', function()
  local nvim = editor('builtin')
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
  local nvim = editor('builtin')
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
