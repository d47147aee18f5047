-- Headless test runner: `nvim --headless --clean -l tests/run.lua [unit|e2e]...`
-- Runs the table-driven cases of tests/unit.lua and tests/e2e.lua, prints one line per case and
-- "N passed, N failed", and exits non-zero on any failure. The e2e cases need INFILL_SERVER_CMD
-- (a JSON list) and INFILL_MODEL_PATH; without them they are reported as skipped.
-- INFILL_TEST_ONLY=text runs only the cases whose name contains text.

local root = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h')
vim.opt.rtp:prepend(root)
package.path = root .. '/tests/?.lua;' .. package.path

local suites = #_G.arg > 0 and _G.arg or { 'unit', 'e2e' }
local only = vim.env.INFILL_TEST_ONLY -- run only the cases whose name contains this (plain text)
local passed, failed, skipped = 0, 0, {}

for _, suite in ipairs(suites) do
  local cases = require(suite)
  for _, case in ipairs(cases) do
    local name = suite .. ': ' .. case.name
    if only and not name:find(only, 1, true) then
      -- not asked for
    elseif case.skip then
      table.insert(skipped, name .. ' (' .. case.skip .. ')')
    else
      local start = vim.uv.hrtime()
      local ok, err = xpcall(case.run, debug.traceback)
      local ms = (vim.uv.hrtime() - start) / 1e6
      if ok then
        passed = passed + 1
        io.stdout:write(('ok   %s (%d ms)\n'):format(name, ms))
      else
        failed = failed + 1
        io.stdout:write(('FAIL %s (%d ms)\n%s\n'):format(name, ms, err))
      end
    end
  end
  if cases.teardown then
    pcall(cases.teardown)
  end
end

for _, name in ipairs(skipped) do
  io.stdout:write('skip ' .. name .. '\n')
end
io.stdout:write(('%d passed, %d failed\n'):format(passed, failed))
io.stdout:flush()
os.exit(failed > 0 and 1 or 0)
