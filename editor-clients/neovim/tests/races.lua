-- Typing while a command runs (issue 23): a child Neovim (`nvim --embed --headless`, driven
-- through RPC like a UI typing keys) runs :InfillRewrite against the real server on a model made
-- slow by many steps, and the user types above or inside the range before the answer arrives.
-- The buffer must end as exactly what the user typed, and the plugin must say why nothing was
-- applied. Needs INFILL_SERVER_CMD (a JSON list) and INFILL_MODEL_PATH, like tests/e2e.lua.

local server_cmd = vim.env.INFILL_SERVER_CMD
local model_path = vim.env.INFILL_MODEL_PATH
local root = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h')
local timeout_ms = tonumber(vim.env.INFILL_TEST_TIMEOUT_MS or '') or 90000
local workdir = vim.fn.tempname()
vim.fn.mkdir(workdir, 'p')

local cases = {}
local child

local function eq(want, got, what)
  if not vim.deep_equal(want, got) then
    error(('%s: want %s, got %s'):format(what, vim.inspect(want), vim.inspect(got)), 2)
  end
end

local function lua(code, ...)
  return vim.rpcrequest(child, 'nvim_exec_lua', code, { ... })
end

local function wait_for(what, code, ...)
  local deadline = vim.uv.now() + timeout_ms
  while vim.uv.now() < deadline do
    local value = lua(code, ...)
    if value and value ~= vim.NIL then
      return value
    end
    vim.wait(50)
  end
  local messages = lua("return vim.api.nvim_exec2('messages', { output = true }).output")
  error(('timed out waiting for %s\nmessages:\n%s'):format(what, messages), 2)
end

--- The child Neovim: the plugin with no setup(), on a model where a rewrite takes many steps.
local function start()
  if child then
    return
  end
  local init = workdir .. '/init.lua'
  vim.fn.writefile({
    ('vim.opt.rtp:prepend(%q)'):format(root),
    'vim.o.swapfile = false',
    'local cmd = vim.json.decode(vim.env.INFILL_SERVER_CMD)',
    "vim.lsp.config('infill', { cmd = cmd, init_options = {",
    '  modelPath = vim.env.INFILL_MODEL_PATH, steps = 160, maxSpanTokens = 160, threads = 1,',
    '} })',
    "vim.api.nvim_create_autocmd('User', { pattern = 'InfillCommandDone', callback = function(args)",
    '  _G.infill_test_done = args.data',
    'end })',
  }, init)
  child = vim.fn.jobstart(
    { vim.v.progpath, '--embed', '--headless', '-u', init, '-i', 'NONE', '-n' },
    { rpc = true, cwd = workdir }
  )
  assert(child > 0, 'could not start ' .. vim.v.progpath)
end

local NOTES = {}
for i = 1, 12 do
  NOTES[i] = ('note %d: bring the %d boxes of paper to the office'):format(i, i)
end

--- Open a fresh copy of the notes and wait for the server to be ready.
local function open(name)
  vim.fn.writefile(NOTES, workdir .. '/' .. name)
  vim.rpcrequest(child, 'nvim_input', '<Esc>:edit ' .. name .. '<CR>')
  wait_for('the buffer and the ready model', [[
    if vim.fn.expand('%:t') ~= ... then return nil end
    local client = vim.lsp.get_clients({ name = 'infill', bufnr = 0 })[1]
    if not (client and client.initialized) then return nil end
    local status = require('infill.lsp').request_status(client, 2000)
    if status and status.state == 'error' then error(status.message) end
    return status and status.state == 'ready'
  ]], name)
end

--- Run :InfillRewrite on lines 6-8, type `keys` (which write `typed`) while it runs; the outcome,
--- the text once typed, the text at the end and the messages.
local function rewrite_while_typing(keys, typed)
  lua('_G.infill_test_done = nil; vim.cmd("messages clear")')
  vim.rpcrequest(child, 'nvim_input', ':6,8InfillRewrite<CR>')
  wait_for('the rewrite to start', [[
    local client = vim.lsp.get_clients({ name = 'infill', bufnr = 0 })[1]
    return (require('infill.lsp').busy[client.id] or 0) > 0
  ]])
  vim.rpcrequest(child, 'nvim_input', keys)
  local text = wait_for('the typing', [[
    local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, true), '\n')
    return vim.fn.mode() == 'n' and text:find(..., 1, true) and text or nil
  ]], typed)
  local done = wait_for('the rewrite to end', 'return _G.infill_test_done')
  return {
    outcome = done.outcome,
    typed = text,
    text = lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, true), '\\n')"),
    messages = lua("return vim.api.nvim_exec2('messages', { output = true }).output"),
  }
end

local function case(name, run)
  table.insert(cases, {
    name = name,
    run = run,
    skip = not (server_cmd and model_path) and 'INFILL_SERVER_CMD / INFILL_MODEL_PATH not set' or nil,
  })
end

for _, where in ipairs({
  { 'above', 'ggOtyped above the range<Esc>' },
  { 'inside', '7GAtyped inside<Esc>' },
}) do
  case((':InfillRewrite while the user types %s the range leaves exactly the typing'):format(where[1]), function()
    start()
    open(where[1] .. '.txt')
    local got = rewrite_while_typing(where[2], 'typed ' .. where[1])
    eq('discarded', got.outcome, 'outcome (messages: ' .. got.messages .. ')')
    eq(got.typed, got.text, 'the buffer is what the user typed')
    local said = 'the file changed while rewriting; nothing applied'
    assert(got.messages:find(said, 1, true), ('the plugin says %q:\n%s'):format(said, got.messages))
  end)
end

cases.teardown = function()
  if child then
    pcall(vim.rpcrequest, child, 'nvim_exec_lua', 'vim.lsp.stop_client(vim.lsp.get_clients(), true)', {})
    pcall(vim.fn.jobstop, child)
  end
end

return cases
