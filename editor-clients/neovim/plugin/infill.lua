-- infill.nvim: commands and the automatic start of the "infill" language server.
-- Everything else loads on first use (`require` inside the command callbacks).
if vim.g.loaded_infill then
  return
end
vim.g.loaded_infill = true

if vim.fn.has('nvim-0.11') == 0 then
  vim.notify('infill: needs Neovim 0.11 or newer', vim.log.levels.WARN)
  return
end

---@param name string
---@param fn string function name in infill.commands
---@param opts vim.api.keyset.user_command
local function command(name, fn, opts)
  vim.api.nvim_create_user_command(name, function(args)
    require('infill.commands')[fn](args)
  end, opts)
end

command('InfillRewrite', 'rewrite', { range = true, desc = 'infill: rewrite the range' })
command('InfillRevise', 'revise', { range = true, desc = 'infill: revise low-confidence tokens in the range' })
command('InfillFillHoles', 'fill_holes', { range = true, desc = 'infill: fill hole markers (range or file)' })
command('InfillStatus', 'status', { desc = 'infill: show server and model state' })
command('InfillToggle', 'toggle', { desc = 'infill: turn automatic ghost text on or off' })

-- `:help infill` without a `:helptags` step: make doc/tags when it is missing or older than the
-- help file (as after a plain clone; doc/tags is not versioned).
local doc = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h') .. '/doc'
if vim.fn.getftime(doc .. '/tags') < vim.fn.getftime(doc .. '/infill.txt') then
  pcall(vim.cmd.helptags, vim.fn.fnameescape(doc))
end

-- `setup()` may already have run (from init.lua) and decided; `vim.g.infill_autostart = false`
-- leaves starting the server to a later `setup()`.
if vim.g.infill_autostart ~= false and not package.loaded['infill'] then
  vim.lsp.enable('infill')
end
