--- `:checkhealth infill`: Neovim version, ghost-text backend, server command, server start and
--- model load (using the running client, or a short-lived one started for the check).

local M = {}

local health = vim.health

--- Start a client that is attached to no buffer, for the check only.
---@return vim.lsp.Client|nil client, string|nil error
local function start_probe()
  local ok, id = pcall(vim.lsp.start, vim.deepcopy(require('infill.lsp').resolved()), { attach = false })
  if not ok or not id then
    return nil, ok and 'vim.lsp.start returned nothing' or tostring(id)
  end
  return vim.lsp.get_client_by_id(id), nil
end

--- Wait until the server leaves the "loading" state or `timeout_ms` passes.
---@param client vim.lsp.Client
---@param timeout_ms integer
---@return infill.Status|nil, string|nil
local function wait_for_model(client, timeout_ms)
  local lsp = require('infill.lsp')
  local deadline = vim.uv.now() + timeout_ms
  vim.wait(timeout_ms, function()
    return client.initialized == true or client:is_stopped()
  end, 50)
  local status, err
  repeat
    status, err = lsp.request_status(client, math.max(deadline - vim.uv.now(), 1))
    if status and status.state ~= 'loading' then
      return status, nil
    end
    vim.wait(200)
  until vim.uv.now() >= deadline or client:is_stopped()
  return status, err or 'model still loading after ' .. timeout_ms .. ' ms'
end

function M.check()
  local options = require('infill.config').options
  health.start('infill: Neovim')
  local version = tostring(vim.version())
  if vim.fn.has('nvim-0.11') == 1 then
    health.ok('Neovim ' .. version)
  else
    health.error('Neovim ' .. version .. ': infill needs 0.11 or newer')
    return
  end
  local backend = require('infill.inline').backend()
  if backend == 'builtin' then
    health.ok('ghost text: built-in vim.lsp.inline_completion (inline = "builtin")')
  elseif options.inline == 'builtin' then
    health.warn('ghost text: the plugin\'s extmarks (this Neovim has no vim.lsp.inline_completion)')
  else
    health.ok('ghost text: the plugin\'s extmarks')
  end
  require('infill.highlight').define()
  local ghost = vim.api.nvim_get_hl(0, { name = 'InfillGhost', link = false })
  if vim.o.termguicolors and not ghost.fg or not vim.o.termguicolors and not ghost.ctermfg then
    health.warn('InfillGhost has no colour in this colour mode: ghost text looks like code', {
      'define InfillGhost in your colorscheme, or leave it to the plugin',
    })
  end

  health.start('infill: server')
  local cmd = require('infill.lsp').resolved().cmd
  if type(cmd) ~= 'table' then
    health.ok('server command: a Lua function (vim.lsp.config)')
    cmd = nil
  end
  local path = cmd and vim.fn.exepath(cmd[1]) or ''
  if cmd and path == '' then
    health.error(('server command not found: %s'):format(cmd[1]), {
      'pip install the infill-lsp package into a Python on $PATH',
      "or: require('infill').setup({ cmd = { '/path/to/python', '-m', 'infill_lsp' } })",
    })
    return
  end
  if cmd then
    health.ok(('server command: %s (%s)'):format(table.concat(cmd, ' '), path))
  end

  local lsp = require('infill.lsp')
  local client = lsp.client(nil)
  local probe = false
  if client then
    health.ok(('server running (client id %d)'):format(client.id))
  else
    local err
    client, err = start_probe()
    if not client then
      health.error('server did not start: ' .. (err or '?'))
      return
    end
    probe = true
  end
  local status, err = wait_for_model(client, options.health_timeout_ms)
  if probe then
    health.ok('server starts')
  end
  if status and status.state == 'ready' then
    health.ok(('model loaded: %s'):format(status.model))
  elseif status then
    health.error(('model %s: %s %s'):format(status.model or '?', status.state, status.message or ''))
  else
    health.error('no status from the server: ' .. (err or '?'))
  end
  if probe then
    client:stop()
  end
end

return M
