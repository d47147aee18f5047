-- Unit cases for the pure parts of the plugin (options, wire settings, suggestion text) and for
-- what loading the plugin registers, in the test process itself (no server).

local eq = function(want, got, what)
  if not vim.deep_equal(want, got) then
    error(('%s: want %s, got %s'):format(what or 'value', vim.inspect(want), vim.inspect(got)), 2)
  end
end

local cases = {}

local function case(name, run)
  table.insert(cases, { name = name, run = run })
end

case('defaults are typed and complete', function()
  local config = require('infill.config')
  eq({ 'infill-lsp' }, config.defaults.cmd, 'cmd')
  eq('auto', config.defaults.inline, 'inline')
  eq('<Tab>', config.defaults.keymaps.accept, 'accept key')
  eq(config.defaults, config.resolve(nil), 'resolve(nil)')
end)

case('setup options merge over defaults: dicts merge, lists replace', function()
  local config = require('infill.config')
  local opts = config.resolve({
    cmd = { 'python3', '-m', 'infill_lsp' },
    keymaps = { accept = '<C-y>', dismiss = false },
    settings = { steps = 8 },
  })
  eq({ 'python3', '-m', 'infill_lsp' }, opts.cmd, 'cmd')
  eq('<C-y>', opts.keymaps.accept, 'accept')
  eq(false, opts.keymaps.dismiss, 'dismiss')
  eq('<M-]>', opts.keymaps.next, 'untouched key')
  eq({ steps = 8 }, opts.settings, 'settings')
  local shorter = config.merge({ cmd = { 'a', 'b', 'c' } }, { cmd = { 'x' } })
  eq({ 'x' }, shorter.cmd, 'a shorter list replaces, not overlays')
end)

case('bad options raise one error naming the field', function()
  local config = require('infill.config')
  for _, bad in ipairs({
    { opts = { inline = 'ghost' }, field = 'inline' },
    { opts = { keymaps = { acept = '<Tab>' } }, field = 'acept' },
    { opts = { debounce_ms = '100' }, field = 'debounce_ms' },
    { opts = { cmd = {} }, field = 'cmd' },
  }) do
    local ok, err = pcall(config.resolve, bad.opts)
    eq(false, ok, vim.inspect(bad.opts))
    assert(tostring(err):find(bad.field, 1, true), 'error names ' .. bad.field .. ': ' .. tostring(err))
  end
end)

case('server settings go on the wire in camelCase', function()
  local config = require('infill.config')
  eq({
    modelPath = '/m',
    maxSpanTokens = 32,
    contextTokens = 128,
    debounceMs = 0,
    holeMarker = '???',
    steps = 4,
  }, config.to_wire({
    model_path = '/m',
    max_span_tokens = 32,
    context_tokens = 128,
    debounce_ms = 0,
    hole_marker = '???',
    steps = 4,
  }))
end)

case('settings for a running server reset what is unset to null', function()
  local config = require('infill.config')
  local wire = config.to_wire({ steps = 4 }, true)
  eq(4, wire.steps, 'set value')
  eq(vim.NIL, wire.modelPath, 'unset value')
  eq(vim.NIL, wire.maxSpanTokens, 'unset value')
end)

case('ghost is the untyped rest of a candidate', function()
  local text = require('infill.text')
  eq('return a + b', text.ghost('return a + b', ''), 'empty typed')
  eq('a + b', text.ghost('return a + b', 'return '), 'typed prefix')
  eq('', text.ghost('return a + b', 'print'), 'diverged')
end)

case('accept word and accept line take the right piece', function()
  local text = require('infill.text')
  eq('  foo_bar', text.next_word('  foo_bar(x)'), 'word')
  eq('(', text.next_word('(x)'), 'punctuation')
  eq('\n    ', text.next_word('\n    return'), 'newline with indent')
  eq('é', text.next_word('é+1'), 'utf-8 word')
  eq('x = 1', text.next_line('x = 1\ny = 2'), 'line')
  eq('\ny = 2', text.next_line('\ny = 2\nz'), 'next line at a newline')
  eq({ 'a', 'b', '' }, text.lines('a\nb\n'), 'lines')
  eq({ 3, 2 }, { text.end_of_insert(1, 4, { 'x', '', 'ab' }) }, 'end of multi-line insert')
  eq({ 1, 6 }, { text.end_of_insert(1, 4, { 'xy' }) }, 'end of one-line insert')
end)

case('loading the plugin defines the commands and enables the server config', function()
  vim.cmd.runtime('plugin/infill.lua')
  for _, name in ipairs({ 'InfillRewrite', 'InfillRevise', 'InfillFillHoles', 'InfillStatus', 'InfillToggle' }) do
    eq(2, vim.fn.exists(':' .. name), name)
  end
  assert(vim.lsp.is_enabled('infill'), 'vim.lsp.enable("infill") ran')
  eq(nil, package.loaded['infill.commands'], 'commands module loads lazily')
  local resolved = vim.lsp.config.infill
  eq({ 'infill-lsp' }, resolved.cmd, 'default cmd without setup()')
  eq('{}', vim.json.encode(resolved.init_options), 'no settings without setup(): an empty object')
end)

case('setup() reconfigures the client and keeps user vim.lsp.config on top', function()
  require('infill').setup({ settings = { model_path = '/models/x', steps = 6 }, filetypes = { 'python' } })
  local resolved = vim.lsp.config.infill
  eq({ modelPath = '/models/x', steps = 6 }, resolved.init_options, 'init_options')
  eq({ infill = { modelPath = '/models/x', steps = 6 } }, resolved.settings, 'settings section')
  eq({ 'python' }, resolved.filetypes, 'filetypes')
  vim.lsp.config('infill', { cmd = { 'my-infill' } })
  eq({ 'my-infill' }, vim.lsp.config.infill.cmd, 'user override wins')
  require('infill').setup({ enabled = false })
  assert(not vim.lsp.is_enabled('infill'), 'enabled = false disables the config')
  require('infill').setup({})
end)

case('command range: whole lines, or the characters of a charwise visual selection', function()
  local commands = require('infill.commands')
  local bufnr = vim.api.nvim_create_buf(true, false)
  vim.api.nvim_set_current_buf(bufnr)
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, true, { 'a = 1', 'bé = 2', 'c = 3' })
  local lines = commands.command_range(bufnr, { line1 = 1, line2 = 2, range = 2 }, 'utf-16')
  eq({ start = { line = 0, character = 0 }, ['end'] = { line = 1, character = 6 } }, lines, 'lines')
  vim.api.nvim_win_set_cursor(0, { 2, 1 })
  vim.cmd('normal! vlll\27') -- select "é = " (the é is two bytes)
  local chars = commands.command_range(bufnr, { line1 = 2, line2 = 2, range = 2 }, 'utf-16')
  eq({ start = { line = 1, character = 1 }, ['end'] = { line = 1, character = 5 } }, chars, 'chars')
  vim.api.nvim_buf_delete(bufnr, { force = true })
end)

case('an edit with no text edits is no change', function()
  local commands = require('infill.commands')
  eq(false, commands.has_edits(nil), 'nil')
  eq(false, commands.has_edits({ changes = { ['file:///a'] = {} } }), 'empty changes')
  eq(false, commands.has_edits({ documentChanges = { { textDocument = {}, edits = {} } } }), 'empty document edit')
  eq(true, commands.has_edits({ changes = { ['file:///a'] = { { newText = 'x' } } } }), 'one edit')
end)

return cases
