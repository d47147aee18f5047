-- The driver of scripts/bench_neovim_typing.py (run by it as `nvim --headless -l`): see there.
local args = vim.json.decode(vim.env.BENCH_ARGS)
local init = args.workdir .. '/init.lua'
vim.fn.writefile({
  ('vim.opt.rtp:prepend(%q)'):format(args.plugin),
  'vim.o.swapfile = false',
  ('vim.lsp.config("infill", { cmd = vim.json.decode(%q), init_options = %s })')
    :format(vim.json.encode(args.cmd), args.model ~= vim.NIL and ('{ modelPath = %q }'):format(args.model) or 'vim.empty_dict()'),
}, init)
local chan = vim.fn.jobstart({ vim.v.progpath, '--embed', '--headless', '-u', init, '-i', 'NONE', '-n' },
  { rpc = true, cwd = args.workdir })
local function lua(code, ...) return vim.rpcrequest(chan, 'nvim_exec_lua', code, { ... }) end
local function input(keys) vim.rpcrequest(chan, 'nvim_input', keys) end
local function wait_for(code, ms)
  local deadline = vim.uv.now() + ms
  while vim.uv.now() < deadline do
    local v = lua(code)
    if v and v ~= vim.NIL then return v end
    vim.wait(20)
  end
end

for _, name in ipairs(args.files) do
  input('<Esc>:edit ' .. name .. '<CR>')
  assert(wait_for([[local c = vim.lsp.get_clients({ name = 'infill', bufnr = 0 })[1]
    return c and c.initialized]], 60000), 'no infill client on ' .. name)
end
assert(wait_for([[local c = vim.lsp.get_clients({ name = 'infill' })[1]
  local s = require('infill.lsp').request_status(c, 2000)
  return s and s.state == 'ready']], 300000), 'model not ready')

-- The child's own recorder: last keystroke, inlineCompletion requests (sent, for which buffer,
-- answered), and the first ghost text drawn after an answer to a request sent after that keystroke
-- (a stale suggestion redrawn at the new cursor does not count).
lua([[
  local ns = {}
  for _, name in ipairs({ 'nvim.lsp.inline_completion', 'infill.ghost' }) do
    ns[#ns + 1] = vim.api.nvim_create_namespace(name)
  end
  _G.bench = { last_key = 0, answered_at = nil, ghost_at = nil, sent = 0, other_buf = 0, pending = 0, max_pending = 0, done = {} }
  vim.api.nvim_create_autocmd('TextChangedI', { callback = function()
    bench.last_key, bench.answered_at, bench.ghost_at = vim.uv.hrtime(), nil, nil
  end })
  local client = vim.lsp.get_clients({ name = 'infill' })[1]
  local request = client.request
  client.request = function(self, method, params, handler, bufnr)
    if method ~= 'textDocument/inlineCompletion' or not handler then
      return request(self, method, params, handler, bufnr)
    end
    local sent_at = vim.uv.hrtime()
    bench.sent = bench.sent + 1
    if params.textDocument.uri ~= vim.uri_from_bufnr(0) then bench.other_buf = bench.other_buf + 1 end
    bench.pending = bench.pending + 1
    bench.max_pending = math.max(bench.max_pending, bench.pending)
    local inner, done = handler, false
    local ok, id = request(self, method, params, function(...)
      if not done then bench.pending = bench.pending - 1 end
      done = true
      if sent_at > bench.last_key then bench.answered_at = vim.uv.hrtime() end
      return inner(...)
    end, bufnr)
    -- A request the client cancels is done for it (pygls never answers those).
    bench.done[id] = function()
      if not done then bench.pending = bench.pending - 1 end
      done = true
    end
    return ok, id
  end
  local cancel = client.cancel_request
  client.cancel_request = function(self, id)
    if bench.done[id] then bench.done[id]() end
    return cancel(self, id)
  end
  local timer = vim.uv.new_timer()
  timer:start(10, 10, vim.schedule_wrap(function()
    if bench.ghost_at or not bench.answered_at then return end
    for _, n in ipairs(ns) do
      if #vim.api.nvim_buf_get_extmarks(0, n, 0, -1, { limit = 1 }) > 0 then
        bench.ghost_at = vim.uv.hrtime()
        return
      end
    end
  end))
]])

-- Unanswered inlineCompletion requests right now (a cancelled request still gets its answer).
local PENDING = 'return bench.pending'

local results = {}
for i, line in ipairs(args.lines) do
  input('<Esc>Go')
  vim.wait(300)
  lua('bench.max_pending = 0; bench.sent = 0; bench.other_buf = 0')
  local words = vim.split(line, ' ', { plain = true })
  for w, word in ipairs(words) do
    for c = 1, #word do
      local ch = word:sub(c, c)
      input(ch == '<' and '<lt>' or ch)
      vim.wait(args.char_ms)
    end
    if w < #words then
      input(' ')
      vim.wait(args.pause_ms)
    end
  end
  local shown = wait_for('return bench.ghost_at ~= nil', args.timeout_ms)
  local r = lua('return { answered = bench.answered_at ~= nil, last_key = bench.last_key, ghost_at = bench.ghost_at or vim.NIL, sent = bench.sent, other_buf = bench.other_buf, max_pending = bench.max_pending }')
  r.pending_at_ghost = lua(PENDING)
  -- Let the server drain before the next burst, timing how long that takes.
  local t0 = vim.uv.now()
  wait_for('return bench.pending == 0', args.timeout_ms)
  input('<Esc>')
  r.drain_ms = vim.uv.now() - t0
  r.latency_ms = shown and (r.ghost_at - r.last_key) / 1e6 or vim.NIL
  r.burst = i
  r.last_key, r.ghost_at = nil, nil
  results[#results + 1] = r
  io.stderr:write(vim.json.encode(r) .. '\n')
end
pcall(lua, 'vim.lsp.stop_client(vim.lsp.get_clients(), true)')
vim.fn.jobstop(chan)
io.stdout:write(vim.json.encode(results) .. '\n')
