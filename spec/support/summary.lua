-- spec/support/summary.lua — a busted output handler (busted 2.1).
--
-- Prints one line per test as it ends:
--     ok    core stream inet: sends and receives (3 ms)
--     FAIL  core errors ECONNREFUSED ... (1 ms)
--           <message>
--           <trace>
--     skip  netns ...: <reason>
-- errors outside a test (a spec file that does not load, a failing
-- setup/teardown) as `ERROR <where>` with their message; and, as the LAST
-- line of the whole output, exactly
--     N passed, N failed[, N skipped]
-- where errors count as failed.
--
-- Used by tools/test.sh as `busted -o spec/support/summary.lua`.

local io_write, io_flush = io.write, io.flush
local string_format = string.format

return function(options)  -- luacheck: ignore options
  local busted = require 'busted'
  local handler = require 'busted.outputHandlers.base'()

  local passed, failed, skipped = 0, 0, 0
  local failed_names = {}

  local function out(s)
    io_write(s, '\n')
    io_flush()
  end

  -- indent every line of a multi-line text
  local function indent(text, prefix)
    return (prefix .. tostring(text):gsub('\n', '\n' .. prefix))
  end

  local function message_of(msg)
    if msg == nil then return 'Nil error' end
    if type(msg) == 'string' then return msg end
    local ok, pretty = pcall(require, 'pl.pretty')
    if ok then return pretty.write(msg) end
    return tostring(msg)
  end

  -- the traceback without busted's and luassert's own frames
  local function trace_of(trace)
    if type(trace) ~= 'table' then return nil end
    local lines = {}
    if trace.short_src and trace.currentline then
      lines[#lines + 1] = string_format('at %s:%s', trace.short_src, trace.currentline)
    end
    if type(trace.traceback) == 'string' then
      for line in trace.traceback:gmatch('[^\n]+') do
        if not line:find('/busted/', 1, true) and not line:find('/luassert/', 1, true)
           and not line:find('/pl/', 1, true) and not line:find('[C]: in ', 1, true)
           and not line:find('stack traceback:', 1, true)
           and not line:find('/usr/bin/busted', 1, true) then
          lines[#lines + 1] = line:gsub('^%s+', '')
        end
      end
    end
    if #lines == 0 then return nil end
    return table.concat(lines, '\n')
  end

  local function duration(element)
    if element.duration then
      return string_format(' (%d ms)', math.floor(element.duration * 1000 + 0.5))
    end
    return ''
  end

  local function report(tag, name, message, trace)
    out(string_format('%-6s%s', tag, name))
    if message then out(indent(message_of(message), '      ')) end
    local t = trace_of(trace)
    if t then out(indent(t, '        ')) end
  end

  -- test ends: success, pending, failure or error (message kept by base)
  local pending_msg = {}
  handler.pending = function(element, _, message)
    pending_msg[element] = message
    return nil, true
  end

  local last_problem = {}
  local function remember(element, _, message, trace)
    last_problem[element] = { message = message, trace = trace }
    return nil, true
  end

  handler.testEnd = function(element, _, status)
    local name = handler.getFullName(element)
    if status == 'success' then
      passed = passed + 1
      out(string_format('%-6s%s%s', 'ok', name, duration(element)))
    elseif status == 'pending' then
      skipped = skipped + 1
      local why = pending_msg[element] or element.message
      if type(why) == 'string' then why = why:gsub('^[^\n]-:%d+: ', '') end
      if type(why) == 'string' and why ~= '' and why ~= name then
        out(string_format('%-6s%s: %s', 'skip', name, why))
      else
        out(string_format('%-6s%s', 'skip', name))
      end
    else
      failed = failed + 1
      failed_names[#failed_names + 1] = name
      local p = last_problem[element] or {}
      report(status == 'error' and 'ERROR' or 'FAIL', name .. duration(element),
        p.message, p.trace)
    end
    last_problem[element] = nil
    pending_msg[element] = nil
    return nil, true
  end

  -- an error outside any test: a file that does not load, a failing
  -- setup/teardown/before_each/after_each; each counts as one failure
  handler.outsideError = function(element, _, message, trace)
    if element.descriptor == 'it' then return nil, true end
    failed = failed + 1
    local where = element.name or element.descriptor or '?'
    if element.descriptor and element.descriptor ~= 'file' and element.descriptor ~= 'describe' then
      local parent = busted.parent(element)
      where = (parent and handler.getFullName(parent) .. ' ' or '') .. element.descriptor
    elseif element.descriptor == 'describe' then
      where = handler.getFullName(element)
    end
    failed_names[#failed_names + 1] = where
    report('ERROR', where, message, trace)
    return nil, true
  end

  handler.suiteEnd = function()
    if #failed_names > 0 then
      out('')
      out('failed:')
      for _, n in ipairs(failed_names) do out('  ' .. n) end
    end
    local line = string_format('%d passed, %d failed', passed, failed)
    if skipped > 0 then line = line .. string_format(', %d skipped', skipped) end
    out(line)
    return nil, true
  end

  busted.subscribe({ 'test', 'end' }, handler.testEnd, { predicate = handler.cancelOnPending })
  busted.subscribe({ 'pending' }, handler.pending)
  busted.subscribe({ 'failure', 'it' }, remember)
  busted.subscribe({ 'error', 'it' }, remember)
  busted.subscribe({ 'error' }, handler.outsideError)
  busted.subscribe({ 'failure' }, handler.outsideError)
  busted.subscribe({ 'suite', 'end' }, handler.suiteEnd)

  return handler
end
