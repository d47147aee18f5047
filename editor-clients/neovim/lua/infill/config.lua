--- Typed options for the infill plugin: defaults, validation, and the merge done by `setup()`.
--- Knows nothing about LSP clients or buffers; `to_wire()` turns the server settings into the
--- camelCase object the server reads (initializationOptions and the "infill" settings section).

local M = {}

---@class infill.Keymaps
---Insert-mode keys; `false` leaves a key unmapped.
---@field accept string|false Accept the whole suggestion (falls back to the key itself).
---@field accept_line string|false Accept the suggestion up to the end of its first line.
---@field accept_word string|false Accept the next word of the suggestion.
---@field next string|false Show the next candidate.
---@field prev string|false Show the previous candidate.
---@field dismiss string|false Hide the suggestion.

---@class infill.ServerSettings
---Sent to the server; snake_case here, camelCase on the wire. `nil` keeps the server's default.
---@field model_path? string Model directory (default: the server's bundled model).
---@field device? string "cpu", "cuda", ...
---@field threads? integer CPU threads for the model (default: all cores).
---@field steps? integer Denoising steps per request.
---@field threshold? number Commit tokens whose confidence is above this.
---@field temperature? number 0 = greedy.
---@field confidence? "maxprob"|"margin"|"entropy"
---@field remask? boolean Re-mask low-confidence tokens while denoising.
---@field length? "search"|"fillers" How a completion's length is chosen (search: rank every length).
---@field lengths_decoded? integer Searching: how many best-ranked lengths are written and compared.
---@field max_span_tokens? integer
---@field context_tokens? integer
---@field hole_marker? string Marker that `:InfillFillHoles` fills, e.g. "<mask>".
---@field debounce_ms? integer Server-side debounce of inline completion.
---@field languages? string[] languageIds the server serves (empty: all).
---@field hints? boolean Low-confidence hints.
---@field candidates? integer Inline completion candidates per request.

---@class infill.Options
---@field enabled boolean Start the server automatically for matching buffers.
---@field cmd string[] Server command (stdio).
---@field filetypes string[]|nil Filetypes to attach to; `nil` attaches to every file buffer.
---@field settings infill.ServerSettings
---@field inline "auto"|"builtin"|"extmark" Ghost text: the plugin's extmarks ("auto", "extmark") or Neovim's `vim.lsp.inline_completion` ("builtin", 0.12+).
---@field ghost_text boolean Show ghost text automatically while typing (`:InfillToggle` flips it).
---@field debounce_ms integer Delay before the plugin's ghost text asks for a completion.
---@field keymaps infill.Keymaps
---@field health_timeout_ms integer How long `:checkhealth infill` waits for the model to load.

---@class infill.UserOptions
---@field enabled? boolean
---@field cmd? string[]
---@field filetypes? string[]
---@field settings? infill.ServerSettings
---@field inline? "auto"|"builtin"|"extmark"
---@field ghost_text? boolean
---@field debounce_ms? integer
---@field keymaps? table<string, string|false>
---@field health_timeout_ms? integer

---@type infill.Options
M.defaults = {
  enabled = true,
  cmd = { 'infill-lsp' },
  filetypes = nil,
  settings = {},
  inline = 'auto',
  ghost_text = true,
  debounce_ms = 150,
  keymaps = {
    accept = '<Tab>',
    accept_line = '<M-C-Right>',
    accept_word = '<M-Right>',
    next = '<M-]>',
    prev = '<M-[>',
    dismiss = '<C-]>',
  },
  health_timeout_ms = 120000,
}

---@type infill.Options
M.options = vim.deepcopy(M.defaults)

--- Merge `override` over `base`: nested dicts merge, lists and scalars replace.
---@param base table
---@param override table
---@return table
function M.merge(base, override)
  local out = vim.deepcopy(base)
  for key, value in pairs(override) do
    local current = out[key]
    if
      type(value) == 'table'
      and type(current) == 'table'
      and not vim.islist(value)
      and not vim.islist(current)
    then
      out[key] = M.merge(current, value)
    else
      out[key] = vim.deepcopy(value)
    end
  end
  return out
end

--- Check the types of user options; raise one error naming the bad field.
---@param opts infill.UserOptions
function M.validate(opts)
  vim.validate('opts', opts, 'table')
  vim.validate('enabled', opts.enabled, 'boolean', true)
  vim.validate('cmd', opts.cmd, 'table', true)
  vim.validate('filetypes', opts.filetypes, 'table', true)
  vim.validate('settings', opts.settings, 'table', true)
  vim.validate('inline', opts.inline, function(v)
    return v == nil or v == 'auto' or v == 'builtin' or v == 'extmark'
  end, '"auto", "builtin" or "extmark"')
  vim.validate('ghost_text', opts.ghost_text, 'boolean', true)
  vim.validate('debounce_ms', opts.debounce_ms, 'number', true)
  vim.validate('keymaps', opts.keymaps, 'table', true)
  vim.validate('health_timeout_ms', opts.health_timeout_ms, 'number', true)
  for name, key in pairs(opts.keymaps or {}) do
    if M.defaults.keymaps[name] == nil then
      error(('infill: unknown keymap %q'):format(name))
    end
    vim.validate('keymaps.' .. name, key, function(v)
      return v == false or type(v) == 'string'
    end, 'a key string or false')
  end
  if opts.cmd and (#opts.cmd == 0 or type(opts.cmd[1]) ~= 'string') then
    error('infill: cmd must be a non-empty list of strings')
  end
end

--- Validate `opts` and merge them over the defaults (not over earlier `setup()` calls).
---@param opts infill.UserOptions|nil
---@return infill.Options
function M.resolve(opts)
  opts = opts or {}
  M.validate(opts)
  return M.merge(M.defaults, opts)
end

--- `model_path` -> `modelPath`.
---@param name string
---@return string
local function camel(name)
  return (name:gsub('_(%l)', string.upper))
end

--- The server settings the plugin knows (others are passed through as given).
M.setting_names = {
  'model_path', 'device', 'threads', 'steps', 'threshold', 'temperature', 'confidence', 'remask',
  'length', 'lengths_decoded', 'max_span_tokens', 'context_tokens', 'hole_marker', 'debounce_ms',
  'languages', 'hints', 'candidates',
}

--- Server settings as the camelCase object the server reads (`{}` on the wire when empty).
--- With `nulls`, every known setting that is not set goes as null ("back to the default"), for
--- updating a running server.
---@param settings infill.ServerSettings
---@param nulls boolean|nil
---@return table<string, any>
function M.to_wire(settings, nulls)
  local wire = vim.empty_dict()
  if nulls then
    for _, key in ipairs(M.setting_names) do
      wire[camel(key)] = vim.NIL
    end
  end
  for key, value in pairs(settings) do
    wire[camel(key)] = value
  end
  return wire
end

return M
