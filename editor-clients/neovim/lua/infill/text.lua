--- Pure string helpers for suggestions: what part of a candidate is still ghost text, and how much
--- of it "accept word" and "accept line" take. Knows nothing about buffers or LSP.

local M = {}

--- The part of `insert_text` not yet typed: `typed` is the buffer text from the start of the
--- item's range to the cursor (empty when the range starts at the cursor).
---@param insert_text string
---@param typed string
---@return string
function M.ghost(insert_text, typed)
  if typed == '' then
    return insert_text
  end
  if insert_text:sub(1, #typed) == typed then
    return insert_text:sub(#typed + 1)
  end
  return ''
end

--- The next word of `ghost`: leading blanks plus a run of word characters, or a run of
--- punctuation; a leading newline is a word of its own (with the next line's indent).
---@param ghost string
---@return string
function M.next_word(ghost)
  local newline = ghost:match('^\n[ \t]*')
  if newline then
    return newline
  end
  return ghost:match('^[ \t]*[%w_\128-\255]+')
    or ghost:match('^[ \t]*[^%w_%s\128-\255]+')
    or ghost:match('^[ \t]+')
    or ghost:sub(1, 1)
end

--- The rest of the current line of `ghost` (without its newline); at a newline, the newline and
--- the next line.
---@param ghost string
---@return string
function M.next_line(ghost)
  local rest = ghost:match('^[^\n]*')
  if rest ~= '' then
    return rest
  end
  return ghost:match('^\n[^\n]*') or ''
end

--- Split `text` into buffer lines (for `nvim_buf_set_text`).
---@param text string
---@return string[]
function M.lines(text)
  return vim.split(text, '\n', { plain = true })
end

--- The cursor position `{row, col}` (0-based row, byte col) after inserting `lines` at `row, col`.
---@param row integer
---@param col integer
---@param lines string[]
---@return integer, integer
function M.end_of_insert(row, col, lines)
  if #lines == 1 then
    return row, col + #lines[1]
  end
  return row + #lines - 1, #lines[#lines]
end

return M
