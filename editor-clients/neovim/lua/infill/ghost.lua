--- The plugin's ghost text, drawn with extmarks (the default; `inline = "builtin"` uses Neovim's
--- `vim.lsp.inline_completion` instead). Asks `textDocument/inlineCompletion` for the current
--- buffer only, after a debounce in insert mode, and cancels the question as soon as the cursor
--- or text moves on. A suggestion belongs to the exact text and cursor it was computed for: it is
--- drawn, and accepted, only there. What is drawn is what accepting inserts: text the suggestion
--- replaces after the cursor is either part of the ghost text (a repeated tail such as `)`) or
--- struck through. Typing the ghost text's next characters, or accepting a word or a line, keeps
--- the rest on screen without asking again.

local config = require('infill.config')
local text = require('infill.text')
require('infill.highlight').define()

local M = {}

local namespace = vim.api.nvim_create_namespace('infill.ghost')

---@class infill.ghost.Item
---@field text string what is not typed yet, inserted at the cursor
---@field replace_end integer|nil byte col on the cursor row where replaced text ends (after the cursor)

---@class infill.ghost.State
---@field client vim.lsp.Client
---@field is_enabled fun(): boolean
---@field augroup integer
---@field timer uv.uv_timer_t|nil
---@field request_id integer|nil the one request whose answer is still wanted
---@field items infill.ghost.Item[]
---@field index integer
---@field tick integer changedtick the items belong to
---@field row integer cursor row (0-based) the items belong to
---@field col integer cursor byte col the items belong to
---@field typed string|nil a typed character that matched the ghost text (InsertCharPre)

---@type table<integer, infill.ghost.State>
local states = {}

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

--- The candidate shown in `bufnr`, or nil when the buffer, its text or the cursor moved since it
--- was computed (a suggestion is only valid where it was asked for).
---@param bufnr integer
---@param state infill.ghost.State
---@return infill.ghost.Item|nil
local function current(bufnr, state)
  local item = state.items[state.index]
  if not item or vim.api.nvim_get_current_buf() ~= bufnr or state.tick ~= vim.b[bufnr].changedtick then
    return nil
  end
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  if state.row ~= row - 1 or state.col ~= col then
    return nil
  end
  return item
end

--- The text `item` replaces after the cursor ("" when it only inserts).
---@param bufnr integer
---@param state infill.ghost.State
---@param item infill.ghost.Item
---@return string
local function replaced(bufnr, state, item)
  if not item.replace_end then
    return ''
  end
  local line = vim.api.nvim_buf_get_lines(bufnr, state.row, state.row + 1, true)[1]
  return line:sub(state.col + 1, item.replace_end)
end

--- Draw the current candidate at the cursor: its first line inline, the rest as virtual lines.
--- A replaced tail that the candidate repeats stays as real text after the ghost text; any other
--- replaced text is struck through (InfillGhostReplaced), so the screen shows what <Tab> gives.
---@param bufnr integer
local function render(bufnr)
  vim.api.nvim_buf_clear_namespace(bufnr, namespace, 0, -1)
  local state = states[bufnr]
  local item = state and current(bufnr, state)
  if not state or not item then
    return
  end
  local shown, tail = item.text, replaced(bufnr, state, item)
  local strike = false
  if tail ~= '' then
    if shown:sub(-#tail) == tail and not shown:sub(1, #shown - #tail):find('\n') then
      shown = shown:sub(1, #shown - #tail)
    else
      strike = true
    end
  end
  local lines = text.lines(shown)
  local first = { { lines[1], 'InfillGhost' } }
  if #state.items > 1 then
    table.insert(first, { (' (%d/%d)'):format(state.index, #state.items), 'InfillGhostMore' })
  end
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { lines[i], 'InfillGhost' } }
  end
  vim.api.nvim_buf_set_extmark(bufnr, namespace, state.row, state.col, {
    virt_text = first,
    virt_text_pos = 'inline',
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = 'combine',
  })
  if strike then
    vim.api.nvim_buf_set_extmark(bufnr, namespace, state.row, state.col, {
      end_col = item.replace_end,
      hl_group = 'InfillGhostReplaced',
    })
  end
end

--- Keep the candidates of `state` valid after `piece` was typed or accepted at their position:
--- drop those that do not start with it, move the rest on by it.
---@param bufnr integer
---@param state infill.ghost.State
---@param piece string
local function advance(bufnr, state, piece)
  local kept = {}
  local shown = state.items[state.index]
  local lines = text.lines(piece)
  for _, item in ipairs(state.items) do
    if item.text:sub(1, #piece) == piece and #item.text > #piece then
      local replace_end = item.replace_end
      if replace_end and #lines == 1 then
        replace_end = replace_end + #piece
      elseif replace_end then
        replace_end = replace_end - state.col + #lines[#lines]
      end
      kept[#kept + 1] = { text = item.text:sub(#piece + 1), replace_end = replace_end }
      if item == shown then
        state.index = #kept
      end
    end
  end
  state.items = kept
  state.index = math.min(state.index, math.max(#kept, 1))
  local row, col = text.end_of_insert(state.row, state.col, lines)
  state.row, state.col, state.tick = row, col, vim.b[bufnr].changedtick
end

--- Turn the server's items into candidates at the cursor `row`, `col` of `bufnr`.
---@param bufnr integer
---@param raw_items lsp.InlineCompletionItem[]
---@param row integer
---@param col integer
---@param encoding string
---@return infill.ghost.Item[]
local function candidates(bufnr, raw_items, row, col, encoding)
  local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, true)[1]
  local items = {}
  for _, raw in ipairs(raw_items) do
    local insert = type(raw.insertText) == 'table' and raw.insertText.value or raw.insertText
    local ghost, replace_end = insert, nil
    if type(insert) == 'string' and raw.range then
      local range = raw.range
      local start_col = vim.str_byteindex(line, encoding, range.start.character, false)
      local end_col = vim.str_byteindex(line, encoding, range['end'].character, false)
      if range.start.line ~= row or range['end'].line ~= row or start_col > col then
        ghost = nil -- not an edit at this cursor: nothing honest to draw
      else
        ghost = text.ghost(insert, line:sub(start_col + 1, col))
        replace_end = end_col > col and end_col or nil
      end
    end
    if type(ghost) == 'string' and ghost ~= '' then
      items[#items + 1] = { text = ghost, replace_end = replace_end }
    end
  end
  return items
end

--- Ask the server for candidates at the cursor of the current buffer.
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
  local id ---@type integer|nil
  local ok
  ok, id = state.client:request('textDocument/inlineCompletion', params, function(err, result)
    if state.request_id ~= id or states[bufnr] ~= state then
      return -- superseded or cancelled: an answer for another position
    end
    state.request_id = nil
    if err or not result or not vim.api.nvim_buf_is_valid(bufnr) or vim.b[bufnr].changedtick ~= tick then
      return
    end
    local items = candidates(bufnr, result.items or result, row - 1, col, state.client.offset_encoding)
    state.items, state.index, state.tick, state.row, state.col = items, 1, tick, row - 1, col
    render(bufnr)
  end, bufnr)
  state.request_id = ok and id or nil
end

--- After the text or cursor changed: keep the suggestion when it still fits (typed through or
--- partly accepted), else drop it, cancel its question and ask again after the debounce.
---@param bufnr integer
local function on_change(bufnr)
  local state = states[bufnr]
  if not state then
    return
  end
  local typed = state.typed
  state.typed = nil
  if current(bufnr, state) then
    return render(bufnr)
  end
  if typed and #state.items > 0 and state.tick ~= vim.b[bufnr].changedtick then
    local row, col = unpack(vim.api.nvim_win_get_cursor(0))
    local line = vim.api.nvim_buf_get_lines(bufnr, row - 1, row, true)[1]
    if row - 1 == state.row and col == state.col + #typed and line:sub(state.col + 1, col) == typed then
      advance(bufnr, state, typed)
      if current(bufnr, state) then
        return render(bufnr)
      end
    end
  end
  state.items = {}
  vim.api.nvim_buf_clear_namespace(bufnr, namespace, 0, -1)
  cancel_request(state)
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
  vim.api.nvim_create_autocmd('InsertCharPre', {
    group = augroup,
    buffer = bufnr,
    callback = function()
      local state = states[bufnr]
      if not state then
        return
      end
      local item = current(bufnr, state)
      local char = vim.v.char
      state.typed = item and char ~= '' and item.text:sub(1, #char) == char and char or nil
    end,
  })
  vim.api.nvim_create_autocmd({ 'InsertEnter', 'CursorMovedI', 'TextChangedI' }, {
    group = augroup,
    buffer = bufnr,
    callback = function()
      on_change(bufnr)
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

--- The text of the candidate drawn in `bufnr` (what accepting it all would insert, less any
--- repeated tail), or nil when none is drawn.
---@param bufnr integer
---@return string|nil
function M.shown(bufnr)
  bufnr = bufnr == 0 and vim.api.nvim_get_current_buf() or bufnr
  local state = states[bufnr]
  local item = state and current(bufnr, state)
  if not item or #vim.api.nvim_buf_get_extmarks(bufnr, namespace, 0, -1, { limit = 1 }) == 0 then
    return nil
  end
  return item.text
end

--- Show the candidate `count` places further (wrapping).
---@param bufnr integer
---@param count integer
function M.select(bufnr, count)
  bufnr = bufnr == 0 and vim.api.nvim_get_current_buf() or bufnr
  local state = states[bufnr]
  if not state or not current(bufnr, state) then
    return
  end
  state.index = (state.index - 1 + count) % #state.items + 1
  render(bufnr)
end

--- Insert `piece` of the shown candidate at the cursor (replacing `replace_end` text when the
--- whole candidate goes in) and keep the rest of it on screen.
---@param bufnr integer
---@param state infill.ghost.State
---@param piece string
---@param replace_end integer|nil
local function insert(bufnr, state, piece, replace_end)
  local lines = text.lines(piece)
  vim.api.nvim_buf_set_text(bufnr, state.row, state.col, state.row, replace_end or state.col, lines)
  local row, col = text.end_of_insert(state.row, state.col, lines)
  vim.api.nvim_win_set_cursor(0, { row + 1, col })
  if replace_end then
    state.items = {}
  else
    advance(bufnr, state, piece)
  end
  render(bufnr)
end

--- Accept the candidate shown at the cursor: all of it, or its next line or word (the rest stays
--- as ghost text). False, and nothing changes, when no candidate is valid here.
---@param bufnr integer
---@param kind "all"|"line"|"word"
---@return boolean accepted
function M.accept(bufnr, kind)
  bufnr = bufnr == 0 and vim.api.nvim_get_current_buf() or bufnr
  local state = states[bufnr]
  local item = state and current(bufnr, state)
  if not state or not item then
    return false
  end
  stop_timer(state)
  cancel_request(state)
  local piece = kind == 'line' and text.next_line(item.text)
    or kind == 'word' and text.next_word(item.text)
    or item.text
  local replace_end = piece == item.text and item.replace_end or nil
  -- From an <expr> mapping the text is locked: then insert right after it, at the same place.
  if not pcall(insert, bufnr, state, piece, replace_end) then
    vim.schedule(function()
      if current(bufnr, state) == item then
        insert(bufnr, state, piece, replace_end)
      end
    end)
  end
  return true
end

return M
