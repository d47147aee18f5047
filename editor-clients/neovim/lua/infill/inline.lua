--- Inline completion (ghost text) for buffers the infill client is attached to: the plugin's own
--- extmark ghost text (`infill.ghost`, the default) or, when asked for with `inline = "builtin"`,
--- Neovim's `vim.lsp.inline_completion` (0.12+); and the accept / accept line / accept word /
--- next / previous / dismiss keys.

local config = require('infill.config')
local text = require('infill.text')

local M = {}

---@type table<integer, true>
local attached = {}

--- True while automatic ghost text is on (`:InfillToggle`).
M.enabled = nil ---@type boolean|nil

--- "extmark" (the plugin's ghost text) unless `inline = "builtin"` asks for Neovim's own and this
--- Neovim has it. The plugin's path is the default because Neovim 0.12's shows an answer wherever
--- the cursor is when it arrives and asks for every attached buffer at each pause.
---@return "builtin"|"extmark"
function M.backend()
  if config.options.inline == 'builtin' and vim.lsp.inline_completion ~= nil then
    return 'builtin'
  end
  return 'extmark'
end

---@return boolean
local function is_enabled()
  if M.enabled == nil then
    M.enabled = config.options.ghost_text
  end
  return M.enabled
end

--- Text of a built-in item (a plain string or a snippet `StringValue`).
---@param insert_text string|lsp.StringValue
---@return string
local function item_text(insert_text)
  if type(insert_text) == 'string' then
    return insert_text
  end
  return insert_text.value
end

--- Insert the first `piece` of the current suggestion at the cursor (accept word / line).
---@param piece string
local function insert_at_cursor(piece)
  if piece == '' then
    return
  end
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  local lines = text.lines(piece)
  vim.api.nvim_buf_set_text(0, row - 1, col, row - 1, col, lines)
  local end_row, end_col = text.end_of_insert(row - 1, col, lines)
  vim.api.nvim_win_set_cursor(0, { end_row + 1, end_col })
end

--- The not-yet-typed part of a built-in item, given where its range starts.
---@param item vim.lsp.inline_completion.Item
---@return string
local function builtin_ghost(item)
  local insert = item_text(item.insert_text)
  if not item.range then
    return insert
  end
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  local start = item.range.start
  if start.row ~= row - 1 or start.col > col then
    return insert
  end
  local line = vim.api.nvim_buf_get_lines(0, row - 1, row, true)[1]
  return text.ghost(insert, line:sub(start.col + 1, col))
end

---@type table<string, fun(kind: "all"|"line"|"word"): boolean>
local builtin = {}

--- Accept all or part of the built-in suggestion; false when none is shown.
---@param kind "all"|"line"|"word"
---@return boolean
function builtin.accept(kind)
  if kind == 'all' then
    return vim.lsp.inline_completion.get()
  end
  return vim.lsp.inline_completion.get({
    on_accept = function(item)
      local ghost = builtin_ghost(item)
      insert_at_cursor(kind == 'line' and text.next_line(ghost) or text.next_word(ghost))
    end,
  })
end

--- Accept the current suggestion (or part of it); false when there is none.
---@param kind "all"|"line"|"word"|nil
---@return boolean
function M.accept(kind)
  kind = kind or 'all'
  if M.backend() == 'builtin' then
    return builtin.accept(kind)
  end
  return require('infill.ghost').accept(0, kind)
end

--- Show the next (`count` > 0) or previous candidate.
---@param count integer
function M.select(count)
  if M.backend() == 'builtin' then
    vim.lsp.inline_completion.select({ count = count })
  else
    require('infill.ghost').select(0, count)
  end
end

--- Hide the current suggestion; false when there was none.
---@return boolean
function M.dismiss()
  if M.backend() == 'builtin' then
    return vim.lsp.inline_completion.get({ on_accept = function() end })
  end
  return require('infill.ghost').dismiss(0)
end

--- The ghost text currently shown in `bufnr` (for tests and statuslines), or nil.
---@param bufnr integer
---@return string|nil
function M.visible_text(bufnr)
  local namespace = M.backend() == 'builtin'
      and vim.api.nvim_get_namespaces()['nvim.lsp.inline_completion']
    or vim.api.nvim_get_namespaces()['infill.ghost']
  if not namespace then
    return nil
  end
  local marks = vim.api.nvim_buf_get_extmarks(bufnr, namespace, 0, -1, { details = true })
  if #marks == 0 then
    return nil
  end
  local details = marks[1][4]
  local parts = {}
  for _, chunk in ipairs(details.virt_text or {}) do
    table.insert(parts, chunk[1])
  end
  for _, virt_line in ipairs(details.virt_lines or {}) do
    local line = {}
    for _, chunk in ipairs(virt_line) do
      table.insert(line, chunk[1])
    end
    table.insert(parts, '\n' .. table.concat(line))
  end
  return table.concat(parts)
end

--- Type `lhs` as if unmapped, ahead of any keys typed after it (a key with nothing to act on).
---@param lhs string
local function fall_through(lhs)
  vim.api.nvim_feedkeys(vim.keycode(lhs), 'in', false)
end

--- Map the configured insert-mode keys in `bufnr`. The accept keys edit the buffer right away
--- (not from an <expr> mapping, whose edits would wait until after keys typed meanwhile).
---@param bufnr integer
local function map_keys(bufnr)
  local keys = config.options.keymaps
  local function map(lhs, rhs, desc)
    if lhs then
      vim.keymap.set('i', lhs, rhs, { buffer = bufnr, desc = 'infill: ' .. desc })
    end
  end
  map(keys.accept, function()
    if not M.accept('all') then
      fall_through(keys.accept --[[@as string]])
    end
  end, 'accept suggestion')
  map(keys.accept_line, function()
    M.accept('line')
  end, 'accept suggestion line')
  map(keys.accept_word, function()
    M.accept('word')
  end, 'accept suggestion word')
  map(keys.next, function()
    M.select(1)
  end, 'next candidate')
  map(keys.prev, function()
    M.select(-1)
  end, 'previous candidate')
  map(keys.dismiss, function()
    if not M.dismiss() then
      fall_through(keys.dismiss --[[@as string]])
    end
  end, 'dismiss suggestion')
end

--- Neovim's completor asks for every buffer it is enabled in, at the current window's cursor:
--- keep it enabled in the current buffer only.
local function builtin_follow()
  local current = vim.api.nvim_get_current_buf()
  for bufnr in pairs(attached) do
    if vim.api.nvim_buf_is_valid(bufnr) then
      vim.lsp.inline_completion.enable(is_enabled() and bufnr == current, { bufnr = bufnr })
    end
  end
end

--- Turn ghost text on for `bufnr` (called on LspAttach of the infill client).
---@param bufnr integer
---@param client vim.lsp.Client
function M.attach(bufnr, client)
  if attached[bufnr] then
    return
  end
  attached[bufnr] = true
  map_keys(bufnr)
  if M.backend() == 'builtin' then
    require('infill.highlight').use_for_builtin()
    vim.api.nvim_create_autocmd('BufEnter', {
      group = vim.api.nvim_create_augroup('infill.inline.' .. bufnr, { clear = true }),
      buffer = bufnr,
      callback = builtin_follow,
    })
    builtin_follow()
  else
    require('infill.ghost').attach(bufnr, client, is_enabled)
  end
end

--- Forget `bufnr` (called on LspDetach).
---@param bufnr integer
function M.detach(bufnr)
  attached[bufnr] = nil
  pcall(vim.api.nvim_del_augroup_by_name, 'infill.inline.' .. bufnr)
  if M.backend() == 'extmark' then
    require('infill.ghost').detach(bufnr)
  end
end

--- Turn automatic ghost text on or off in every attached buffer; returns the new state.
---@param on boolean|nil nil flips the current state
---@return boolean
function M.toggle(on)
  if on == nil then
    on = not is_enabled()
  end
  M.enabled = on
  if M.backend() == 'builtin' then
    builtin_follow()
  elseif not on then
    for bufnr in pairs(attached) do
      if vim.api.nvim_buf_is_valid(bufnr) then
        require('infill.ghost').dismiss(bufnr)
      end
    end
  end
  return on
end

return M
