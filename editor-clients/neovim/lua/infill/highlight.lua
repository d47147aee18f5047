--- Ghost text colours that stay visible in every colour mode. Neovim's default colorscheme gives
--- `Comment` and `NonText` (and so `ComplHint`) only a GUI colour: without 'termguicolors' they
--- would draw suggestions exactly like code. A colorscheme's own `InfillGhost` always wins.

local M = {}

--- Grey in 16- and 256-colour terminals ("bright black"), for a colorscheme without cterm colours.
local CTERM_GREY = 8

---@param name string
---@return vim.api.keyset.get_hl_info
local function resolved(name)
  return vim.api.nvim_get_hl(0, { name = name, link = false })
end

--- (Re)define InfillGhost, InfillGhostMore and InfillGhostReplaced as defaults.
function M.define()
  local comment = resolved('Comment')
  if comment.fg and comment.ctermfg then
    vim.api.nvim_set_hl(0, 'InfillGhost', { link = 'Comment', default = true })
  else
    vim.api.nvim_set_hl(0, 'InfillGhost', {
      default = true,
      fg = comment.fg or resolved('NonText').fg,
      ctermfg = comment.ctermfg or CTERM_GREY,
      italic = true,
      cterm = { italic = true },
    })
  end
  vim.api.nvim_set_hl(0, 'InfillGhostMore', { link = 'InfillGhost', default = true })
  local ghost = resolved('InfillGhost')
  vim.api.nvim_set_hl(0, 'InfillGhostReplaced', {
    default = true,
    fg = ghost.fg,
    ctermfg = ghost.ctermfg,
    strikethrough = true,
    cterm = { strikethrough = true },
  })
end

--- With Neovim's built-in inline completion: point its `ComplHint` at InfillGhost, unless a
--- colorscheme or the user changed it from Neovim's default link to `NonText`.
function M.use_for_builtin()
  local function relink()
    if vim.deep_equal(vim.api.nvim_get_hl(0, { name = 'ComplHint' }), { link = 'NonText' }) then
      vim.api.nvim_set_hl(0, 'ComplHint', { link = 'InfillGhost' })
    end
  end
  relink()
  vim.api.nvim_create_autocmd('ColorScheme', {
    group = vim.api.nvim_create_augroup('infill.highlight.builtin', { clear = true }),
    callback = relink,
  })
end

vim.api.nvim_create_autocmd('ColorScheme', {
  group = vim.api.nvim_create_augroup('infill.highlight', { clear = true }),
  callback = M.define,
})

return M
