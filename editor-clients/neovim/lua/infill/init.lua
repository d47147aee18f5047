--- Public entry point of the infill plugin. The plugin works without `setup()`; call
--- `require("infill").setup(opts)` to change the defaults in `infill.config`.

local config = require('infill.config')

local M = {}

--- Merge `opts` over the defaults, then (re)configure and enable or disable the "infill" client.
--- Options already in effect are replaced, not merged: each call starts from the defaults.
---@param opts infill.UserOptions|nil
function M.setup(opts)
  config.options = config.resolve(opts)
  -- Drop the resolved config so `lsp/infill.lua` is read again with the new options; an explicit
  -- `vim.lsp.config("infill", {...})` from the user still takes precedence over it.
  vim.lsp.config(require('infill.lsp').name, {})
  vim.lsp.enable(require('infill.lsp').name, config.options.enabled)
  -- Running servers get the new settings now (unset ones back to their defaults).
  for _, client in ipairs(vim.lsp.get_clients({ name = require('infill.lsp').name })) do
    client.settings = { infill = config.to_wire(config.options.settings) }
    client:notify('workspace/didChangeConfiguration', {
      settings = { infill = config.to_wire(config.options.settings, true) },
    })
  end
  if config.options.enabled then
    require('infill.inline').enabled = config.options.ghost_text
  end
end

--- A short statusline string: "infill: loading|ready|busy|error", or "" without a client.
---@return string
function M.statusline()
  local lsp = require('infill.lsp')
  local client = lsp.client(vim.api.nvim_get_current_buf())
  if not client then
    return lsp.starting() and 'infill: starting' or ''
  end
  if (lsp.busy[client.id] or 0) > 0 then
    return 'infill: busy'
  end
  local status = lsp.status[client.id]
  return 'infill: ' .. (status and status.state or 'starting')
end

M.accept = function(kind)
  return require('infill.inline').accept(kind)
end
M.dismiss = function()
  return require('infill.inline').dismiss()
end
M.toggle = function(on)
  return require('infill.inline').toggle(on)
end

return M
