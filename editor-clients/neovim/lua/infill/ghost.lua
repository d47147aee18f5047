--- Ghost text drawn with extmarks, for Neovim without `vim.lsp.inline_completion` (0.11), or when
--- the `inline = "extmark"` option asks for it: asks `textDocument/inlineCompletion` after a
--- debounce in insert mode, shows the candidate after the cursor, and accepts, cycles or hides it.

local config = require('infill.config')
local text = require('infill.text')

local M = {}

local namespace = vim.api.nvim_create_namespace('infill.ghost')

--- Ghost text colours; `default` keeps a colorscheme's own InfillGhost.
local function set_highlights()
  vim.api.nvim_set_hl(0, 'InfillGhost', { link = 'Comment', default = true })
  vim.api.nvim_set_hl(0, 'InfillGhostMore', { link = 'NonText', default = true })
end
set_highlights()
vim.api.nvim_create_autocmd('ColorScheme', {
  group = vim.api.nvim_create_augroup('infill.ghost.highlights', { clear = true }),
  callback = set_highlights,
})

---@class infill.ghost.Item
---@field text string
---@field range lsp.Range|nil

---@class infill.ghost.State
---@field client vim.lsp.Client
---@field is_enabled fun(): boolean
---@field augroup integer
---@field timer uv.uv_timer_t|nil
---@field request_id integer|nil
---@field items infill.ghost.Item[]
---@field index integer
---@field tick integer changedtick the items belong to
---@field row integer cursor row (0-based) the items belong to
---@field col integer cursor byte col the items belong to

---@type table<integer, infill.ghost.State>
local states = {}

--- Byte column of an LSP position's character in `line`.
---@param line string
---@param character integer
---@param encoding string
---@return integer
local function byte_col(line, character, encoding)
  return vim.str_byteindex(line, encoding, character, false)
end

--- Buffer row and byte col of an LSP position.
---@param bufnr integer
---@param position lsp.Position
---@param encoding string
---@return integer, integer
local function to_buffer(bufnr, position, encoding)
  local line = vim.api.nvim_buf_get_lines(bufnr, position.line, position.line + 1, false)[1] or ''
  return position.line, byte_col(line, position.character, encoding)
end

---@param state infill.ghost.State
local function stop_timer(state)
  if state.timer and not state.timer:is_closing() then
    state.timer:stop()
    state.timer:close()
  end
  state.timer = nil
end

---@param state infill.ghost.State
local function cancel_request(state)
  if state.request_id then
    state.client:cancel_request(state.request_id)
    state.request_id = nil
  end
end

--- The item on screen with the not-yet-typed part of its text, or nil when it no longer fits.
---@param bufnr integer
---@param state infill.ghost.State
---@return infill.ghost.Item|nil item, string ghost
local function current(bufnr, state)
  local item = state.items[state.index]
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  if not item or state.tick ~= vim.b[bufnr].changedtick or state.row ~= row - 1 or state.col ~= col then
    return nil, ''
  end
  if not item.range then
    return item, item.text
  end
  local start_row, start_col = to_buffer(bufnr, item.range.start, state.client.offset_encoding)
  if start_row ~= row - 1 or start_col > col then
    return item, item.text
  end
  local line = vim.api.nvim_buf_get_lines(bufnr, row - 1, row, true)[1]
  return item, text.ghost(item.text, line:sub(start_col + 1, col))
end

--- Draw the current candidate after the cursor (first line inline, the rest as virtual lines).
---@param bufnr integer
local function render(bufnr)
  vim.api.nvim_buf_clear_namespace(bufnr, namespace, 0, -1)
  local state = states[bufnr]
  if not state then
    return
  end
  local item, ghost = current(bufnr, state)
  if not item or ghost == '' then
    return
  end
  local lines = text.lines(ghost)
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { lines[i], 'InfillGhost' } }
  end
  local first = { { lines[1], 'InfillGhost' } }
  if #state.items > 1 then
    table.insert(first, { (' (%d/%d)'):format(state.index, #state.items), 'InfillGhostMore' })
  end
  vim.api.nvim_buf_set_extmark(bufnr, namespace, state.row, state.col, {
    virt_text = first,
    virt_text_pos = 'inline',
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = 'combine',
  })
end

--- Ask the server for candidates at the cursor.
---@param bufnr integer
local function request(bufnr)
  local state = states[bufnr]
  if not state or vim.api.nvim_get_current_buf() ~= bufnr or not vim.api.nvim_get_mode().mode:match('^i') then
    return
  end
  cancel_request(state)
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  local tick = vim.b[bufnr].changedtick
  local params = vim.lsp.util.make_position_params(0, state.client.offset_encoding)
  ---@diagnostic disable-next-line: inject-field
  params.context = { triggerKind = 2 } -- Automatic
  local ok, id = state.client:request('textDocument/inlineCompletion', params, function(err, result)
    state.request_id = nil
    if err or not result or states[bufnr] ~= state then
      return
    end
    local items = {}
    for _, raw in ipairs(result.items or result) do
      local insert = type(raw.insertText) == 'table' and raw.insertText.value or raw.insertText
      if type(insert) == 'string' and insert ~= '' then
        items[#items + 1] = { text = insert, range = raw.range }
      end
    end
    state.items, state.index, state.tick, state.row, state.col = items, 1, tick, row - 1, col
    render(bufnr)
  end, bufnr)
  state.request_id = ok and id or nil
end

--- Clear the candidates and ask again after the debounce.
---@param bufnr integer
local function schedule_request(bufnr)
  local state = states[bufnr]
  if not state then
    return
  end
  state.items = {}
  vim.api.nvim_buf_clear_namespace(bufnr, namespace, 0, -1)
  stop_timer(state)
  if not state.is_enabled() then
    return
  end
  state.timer = vim.defer_fn(function()
    state.timer = nil
    request(bufnr)
  end, config.options.debounce_ms)
end

--- Start ghost text in `bufnr` for `client`.
---@param bufnr integer
---@param client vim.lsp.Client
---@param is_enabled fun(): boolean
function M.attach(bufnr, client, is_enabled)
  if states[bufnr] then
    return
  end
  local augroup = vim.api.nvim_create_augroup('infill.ghost.' .. bufnr, { clear = true })
  states[bufnr] = {
    client = client,
    is_enabled = is_enabled,
    augroup = augroup,
    items = {},
    index = 1,
    tick = -1,
    row = -1,
    col = -1,
  }
  vim.api.nvim_create_autocmd({ 'InsertEnter', 'CursorMovedI', 'TextChangedI' }, {
    group = augroup,
    buffer = bufnr,
    callback = function()
      schedule_request(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = augroup,
    buffer = bufnr,
    callback = function()
      M.dismiss(bufnr)
    end,
  })
end

--- Stop ghost text in `bufnr`.
---@param bufnr integer
function M.detach(bufnr)
  local state = states[bufnr]
  if not state then
    return
  end
  M.dismiss(bufnr)
  pcall(vim.api.nvim_del_augroup_by_id, state.augroup)
  states[bufnr] = nil
end

--- Hide the candidate and cancel any request; false when nothing was shown.
---@param bufnr integer
---@return boolean
function M.dismiss(bufnr)
  bufnr = bufnr == 0 and vim.api.nvim_get_current_buf() or bufnr
  local state = states[bufnr]
  if not state then
    return false
  end
  local shown = #vim.api.nvim_buf_get_extmarks(bufnr, namespace, 0, -1, {}) > 0
  stop_timer(state)
  cancel_request(state)
  state.items = {}
  vim.api.nvim_buf_clear_namespace(bufnr, namespace, 0, -1)
  return shown
end

--- Show the candidate `count` places further (wrapping).
---@param bufnr integer
---@param count integer
function M.select(bufnr, count)
  bufnr = bufnr == 0 and vim.api.nvim_get_current_buf() or bufnr
  local state = states[bufnr]
  if not state or #state.items == 0 then
    return
  end
  state.index = (state.index - 1 + count) % #state.items + 1
  render(bufnr)
end

--- Accept the candidate: all of it (replacing its range), or its next line or word.
---@param bufnr integer
---@param kind "all"|"line"|"word"
---@param insert_at_cursor fun(piece: string)
---@return boolean accepted false when no candidate is shown
function M.accept(bufnr, kind, insert_at_cursor)
  bufnr = bufnr == 0 and vim.api.nvim_get_current_buf() or bufnr
  local state = states[bufnr]
  if not state then
    return false
  end
  local item, ghost = current(bufnr, state)
  if not item or ghost == '' then
    return false
  end
  M.dismiss(bufnr)
  vim.schedule(function()
    if kind == 'line' then
      insert_at_cursor(text.next_line(ghost))
    elseif kind == 'word' then
      insert_at_cursor(text.next_word(ghost))
    elseif item.range then
      local encoding = state.client.offset_encoding
      local start_row, start_col = to_buffer(bufnr, item.range.start, encoding)
      local end_row, end_col = to_buffer(bufnr, item.range['end'], encoding)
      local lines = text.lines(item.text)
      vim.api.nvim_buf_set_text(bufnr, start_row, start_col, end_row, end_col, lines)
      local row, col = text.end_of_insert(start_row, start_col, lines)
      vim.api.nvim_win_set_cursor(0, { row + 1, col })
    else
      insert_at_cursor(item.text)
    end
  end)
  return true
end

return M
