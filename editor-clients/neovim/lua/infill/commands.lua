--- The user commands: :InfillRewrite, :InfillRevise, :InfillFillHoles (server commands run on a
--- range and applied as one undo step), :InfillStatus and :InfillToggle.

local lsp = require('infill.lsp')

local M = {}

local next_token = 0

---@param message string
---@param level integer|nil
local function notify(message, level)
  vim.notify('infill: ' .. message, level or vim.log.levels.INFO)
end

local DOING = { rewrite = 'rewriting', revise = 'revising', ['fill holes'] = 'filling holes' }
local CONTENT_MODIFIED = -32801 -- the server's answer when the file changed under the command

--- Say that an edit was dropped because the file changed while the command ran.
local function changed_while(verb)
  notify(('the file changed while %s; nothing applied'):format(DOING[verb] or verb), vim.log.levels.WARN)
end

--- The infill client for the current buffer, or nil after telling the user why not.
---@param bufnr integer
---@return vim.lsp.Client|nil
local function client_or_warn(bufnr)
  local client = lsp.client(bufnr)
  if not client then
    notify('no infill-lsp server attached to this buffer (see :checkhealth infill)', vim.log.levels.WARN)
  end
  return client
end

--- LSP position of a buffer row (0-based) and byte col.
---@param bufnr integer
---@param row integer
---@param col integer
---@param encoding string
---@return lsp.Position
local function position(bufnr, row, col, encoding)
  local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
  col = math.min(col, #line)
  return { line = row, character = vim.str_utfindex(line, encoding, col, false) }
end

--- The LSP range of a command's range: the characters of the last charwise visual selection
--- when the command was given exactly its lines, else whole lines `line1`..`line2`.
---@param bufnr integer
---@param args vim.api.keyset.create_user_command.command_args
---@param encoding string
---@return lsp.Range
function M.command_range(bufnr, args, encoding)
  local first, last = args.line1 - 1, args.line2 - 1
  local vstart, vend = vim.fn.getpos("'<"), vim.fn.getpos("'>")
  if
    vim.fn.visualmode() == 'v'
    and vstart[2] == args.line1
    and vend[2] == args.line2
    and vstart[2] > 0
  then
    local end_line = vim.api.nvim_buf_get_lines(bufnr, last, last + 1, false)[1] or ''
    -- '> is inclusive and points at the first byte of the last character.
    local end_col = vend[3] - 1
    if end_col < #end_line then
      end_col = end_col + #vim.fn.strcharpart(end_line:sub(end_col + 1), 0, 1)
    end
    return {
      start = position(bufnr, first, vstart[3] - 1, encoding),
      ['end'] = position(bufnr, last, end_col, encoding),
    }
  end
  local last_line = vim.api.nvim_buf_get_lines(bufnr, last, last + 1, false)[1] or ''
  return {
    start = { line = first, character = 0 },
    ['end'] = position(bufnr, last, #last_line, encoding),
  }
end

--- True when a WorkspaceEdit holds at least one text edit.
---@param edit lsp.WorkspaceEdit|nil
---@return boolean
function M.has_edits(edit)
  if type(edit) ~= 'table' then
    return false
  end
  for _, edits in pairs(edit.changes or {}) do
    if #edits > 0 then
      return true
    end
  end
  for _, change in ipairs(edit.documentChanges or {}) do
    if change.kind or (change.edits and #change.edits > 0) then
      return true
    end
  end
  return false
end

--- Apply a returned WorkspaceEdit as one undo step, unless the buffer changed meanwhile.
---@param bufnr integer
---@param client vim.lsp.Client
---@param edit lsp.WorkspaceEdit
---@param tick integer
---@param verb string
---@return "applied"|"unchanged"|"discarded"
local function apply(bufnr, client, edit, tick, verb)
  if not vim.api.nvim_buf_is_valid(bufnr) then
    return 'discarded'
  end
  if vim.b[bufnr].changedtick ~= tick then
    changed_while(verb)
    return 'discarded'
  end
  if not M.has_edits(edit) then
    notify(verb .. ': no change')
    return 'unchanged'
  end
  vim.api.nvim_buf_call(bufnr, function()
    -- Setting 'undolevels' starts a new undo block, so `u` undoes exactly this edit.
    vim.cmd('let &l:undolevels = &l:undolevels')
  end)
  vim.lsp.util.apply_workspace_edit(edit, client.offset_encoding)
  notify(verb .. ' done')
  return 'applied'
end

--- Run server command `command` on the current buffer (and range) and apply its edit.
---@param command string
---@param verb string
---@param args vim.api.keyset.create_user_command.command_args
---@param range_optional boolean
local function run(command, verb, args, range_optional)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = client_or_warn(bufnr)
  if not client then
    return
  end
  ---@type table<string, any>
  local argument = { uri = vim.uri_from_bufnr(bufnr), apply = false }
  if args.range > 0 or not range_optional then
    argument.range = M.command_range(bufnr, args, client.offset_encoding)
  end
  next_token = next_token + 1
  local tick = vim.b[bufnr].changedtick
  lsp.busy[client.id] = (lsp.busy[client.id] or 0) + 1
  vim.api.nvim_echo({ { ('infill: %s…'):format(verb) } }, false, {})
  client:request('workspace/executeCommand', {
    command = command,
    arguments = { argument },
    workDoneToken = ('infill-%s-%d'):format(command, next_token),
  }, function(err, result)
    lsp.busy[client.id] = math.max((lsp.busy[client.id] or 1) - 1, 0)
    local outcome = 'failed'
    if err and err.code == CONTENT_MODIFIED then
      changed_while(verb)
      outcome = 'discarded'
    elseif err then
      notify(('%s failed: %s'):format(verb, err.message or vim.inspect(err)), vim.log.levels.ERROR)
    else
      outcome = apply(bufnr, client, result, tick, verb)
    end
    vim.api.nvim_exec_autocmds('User', {
      pattern = 'InfillCommandDone',
      data = { command = command, bufnr = bufnr, outcome = outcome },
      modeline = false,
    })
  end, bufnr)
end

---@param args vim.api.keyset.create_user_command.command_args
function M.rewrite(args)
  run('infill.rewrite', 'rewrite', args, false)
end

---@param args vim.api.keyset.create_user_command.command_args
function M.revise(args)
  run('infill.revise', 'revise', args, false)
end

---@param args vim.api.keyset.create_user_command.command_args
function M.fill_holes(args)
  run('infill.fillHoles', 'fill holes', args, true)
end

--- Print the server's state, model and message.
function M.status()
  local client = lsp.client(vim.api.nvim_get_current_buf()) or lsp.client(nil)
  if not client then
    local cmd = lsp.resolved().cmd
    local shown = type(cmd) == 'table' and table.concat(cmd, ' ') or '?'
    if lsp.starting() then
      notify('starting (command: ' .. shown .. ')')
    else
      notify('not running (command: ' .. shown .. ')')
    end
    return
  end
  local status, err = lsp.request_status(client, 5000)
  if not status then
    notify('no status: ' .. (err or '?'), vim.log.levels.WARN)
    return
  end
  local inline = require('infill.inline')
  notify(
    ('%s, model %s%s; ghost text %s (%s)'):format(
      status.state,
      status.model ~= '' and status.model or '?',
      (status.message or '') ~= '' and (' — ' .. status.message) or '',
      inline.enabled == false and 'off' or 'on',
      inline.backend()
    )
  )
end

--- Flip automatic ghost text.
function M.toggle()
  local on = require('infill.inline').toggle()
  notify('ghost text ' .. (on and 'on' or 'off'))
end

return M
