--- The `vim.lsp` side of the plugin: the "infill" client config, the server's `infill/status`
--- notification, and finding the client for a buffer. Knows nothing about ghost text drawing.

local config = require('infill.config')

local M = {}

M.name = 'infill'

---@class infill.Status
---@field state "loading"|"ready"|"error"|"stopped"
---@field model string
---@field message string

--- Last status per client id.
---@type table<integer, infill.Status>
M.status = {}

--- Client ids with a request in flight (rewrite, revise, fill holes), for the statusline.
---@type table<integer, integer>
M.busy = {}

--- Redraw statuslines soon: a status change shows at once, not at the next keystroke.
local function redraw_status()
  vim.schedule(function()
    vim.cmd.redrawstatus({ bang = true })
  end)
end

--- Handle the server's `infill/status` notification: remember it, tell the user about errors
--- and the model becoming ready, and fire `User InfillStatus`.
---@param params infill.Status
---@param ctx lsp.HandlerContext
local function on_status(_, params, ctx)
  if type(params) ~= 'table' then
    return
  end
  local previous = M.status[ctx.client_id]
  M.status[ctx.client_id] = params
  if params.state == 'error' then
    vim.notify('infill: ' .. (params.message or 'server error'), vim.log.levels.ERROR)
  elseif params.state == 'ready' and previous and previous.state == 'loading' then
    vim.notify(('infill: model ready (%s)'):format(params.model or '?'), vim.log.levels.INFO)
  end
  vim.api.nvim_exec_autocmds('User', { pattern = 'InfillStatus', data = params, modeline = false })
  redraw_status()
end

--- Show work-done progress from the infill server (model loading, rewrites) in the message area.
---@param args vim.api.keyset.create_autocmd.callback_args
local function on_progress(args)
  local client = vim.lsp.get_client_by_id(args.data.client_id)
  if not client or client.name ~= M.name then
    return
  end
  local value = args.data.params.value or {}
  local parts = { 'infill:', value.title or '', value.message or '' }
  if value.percentage then
    table.insert(parts, ('(%d%%)'):format(value.percentage))
  end
  if value.kind == 'end' then
    parts = { 'infill:', value.title or '', value.message or 'done' }
  end
  local line = table.concat(
    vim.tbl_filter(function(s)
      return s ~= ''
    end, parts),
    ' '
  )
  vim.api.nvim_echo({ { line } }, false, {})
end

local autocmds_created = false

--- Create the plugin's LspAttach / LspDetach / LspProgress autocmds once.
local function create_autocmds()
  if autocmds_created then
    return
  end
  autocmds_created = true
  local group = vim.api.nvim_create_augroup('infill.lsp', { clear = true })
  vim.api.nvim_create_autocmd('LspAttach', {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == M.name then
        require('infill.inline').attach(args.buf, client)
      end
    end,
  })
  vim.api.nvim_create_autocmd('LspDetach', {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == M.name then
        require('infill.inline').detach(args.buf)
      end
    end,
  })
  vim.api.nvim_create_autocmd('LspProgress', { group = group, callback = on_progress })
end

--- The `vim.lsp.Config` for the infill server, built from the current options.
---@return vim.lsp.Config
function M.config()
  create_autocmds()
  local options = config.options
  local wire = config.to_wire(options.settings)
  ---@type vim.lsp.Config
  return {
    cmd = options.cmd,
    filetypes = options.filetypes,
    root_markers = nil,
    init_options = wire,
    settings = { infill = wire },
    handlers = { ['infill/status'] = on_status },
    before_init = redraw_status,
    on_init = redraw_status,
    on_exit = function(code, _, client_id)
      M.status[client_id] = { state = 'stopped', model = '', message = ('exit code %d'):format(code) }
      redraw_status()
    end,
    -- One server (one loaded model) for every buffer, whatever its project root.
    reuse_client = function(client, cfg)
      return client.name == cfg.name and not client:is_stopped()
    end,
  }
end

--- The resolved "infill" config: the plugin's options under any `vim.lsp.config("infill", ...)`.
---@return vim.lsp.Config
function M.resolved()
  return vim.lsp.config[M.name] or M.config()
end

--- The running infill client attached to `bufnr` (or any infill client when `bufnr` is nil).
---@param bufnr integer|nil
---@return vim.lsp.Client|nil
function M.client(bufnr)
  return vim.lsp.get_clients({ name = M.name, bufnr = bufnr })[1]
end

--- An infill client that is still starting (its server not yet initialized), or nil.
---@return vim.lsp.Client|nil
function M.starting()
  for _, client in ipairs(vim.lsp.get_clients({ name = M.name, _uninitialized = true })) do
    if not client.initialized and not client:is_stopped() then
      return client
    end
  end
end

--- Ask the server for `infill/status` and wait for the answer (no `vim.wait` predicate request).
---@param client vim.lsp.Client
---@param timeout_ms integer
---@return infill.Status|nil status, string|nil error
function M.request_status(client, timeout_ms)
  local done, result, err = false, nil, nil
  -- An empty object, not nil: pygls cannot read a request without "params".
  client:request('infill/status', vim.empty_dict(), function(e, r)
    done, result, err = true, r, e
  end)
  vim.wait(timeout_ms, function()
    return done
  end, 20)
  if not done then
    return nil, 'no answer to infill/status'
  end
  if err then
    return nil, err.message or vim.inspect(err)
  end
  return result, nil
end

return M
