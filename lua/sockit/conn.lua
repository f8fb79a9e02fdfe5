--[[
sockit.conn — a buffered stream connection (SPEC §3 "Conn").

Reads are buffered; writes go straight through to the kernel. The buffer
is one string and the position of its first unread byte: a line already
in the buffer is found with one plain find and cut with one sub. A read
that needs more data takes the unread bytes out and collects the
receives in a table, concatenated once: no read is quadratic, whatever
its size. A read that fails or times out puts everything back, so no
byte is lost (SPEC §3). Invariant: an empty buffer is "" at position 1.

Every wait goes through sockit.wait; the core socket has timeout 0.
]]

local M = {}

local addr = require "sockit.addr"
local fdpass = require "sockit.fdpass"
local open = require "sockit.open"
local wait = require "sockit.wait"
local core = require "sockit.core"

local error, pairs, select, setmetatable, tonumber, tostring, type =
  error, pairs, select, setmetatable, tonumber, tostring, type
local byte, find, match, sub = string.byte, string.find, string.match, string.sub
local format_ = string.format
local concat, pack, unpack = table.concat, table.pack, table.unpack
local abs, tointeger, math_type = math.abs, math.tointeger, math.type
local argerror, format = addr.argerror, addr.format
local deadline_of, waitfor = wait.deadline, wait.wait
-- the core's methods as plain functions: a hot path saves the method
-- lookup through the userdata's metatable on every call
local c_recv, c_sendv = core.methods.recv, core.methods.sendv
local c_write = core.methods._write   -- conn:write's common case (socket.c)

local CHUNK = 65536        -- one receive for lines and recv()
local BIG = 262144         -- one receive for "a" and large counts
M.MAX_LINE = 65536         -- the default of opts.max_line


local Conn = {__name = "sockit.conn"}
Conn.__index = Conn
M.Conn = Conn              -- the class of every conn
local UnixConn             -- Conn plus sendfds/recvfds/peercred (the end)


--[[
M.new(sock, opts) -> conn
'sock' a connected core stream socket with timeout 0. opts: timeout
(the default per call), max_line, peer (the peer's address string when
the caller knows it), path (a socket file to remove when closed, if it
still names the file 'fileid': see open.unlink).
]]
function M.new (sock, opts)
  -- A conn's table holds at most eight fields in the usual case (a table
  -- sized for nine or more costs 472 bytes, for up to eight 280: c10k,
  -- bench/README.md): these six, _peer, and _rdl once a read waits. The
  -- fields the hot paths read are never nil: a nil field is looked up
  -- again through the metatable on every read (false means "none").
  local self = setmetatable({
    socket = sock,
    max_line = opts.max_line or M.MAX_LINE,
    _buf = "",
    _pos = 1,
    _closed = false,
    _timeout = opts.timeout or false,   -- false: no timeout
  }, sock:family() == "unix" and UnixConn or Conn)
  if opts.peer ~= nil then self._peer = opts.peer end
  if opts.path ~= nil then
    self._path = opts.path
    self._fileid = opts.fileid
  end
  return self
end


-- raise on a closed conn, at the user's call of the method
local function checkopen (self)
  if self._closed then error("attempt to use a closed socket", 3) end
end


--[[ {=====================================================
Receiving
====================================================== ]]

--[[
One receive of up to 'max' bytes, waiting until the deadline. 'deadline'
true means "the deadline of the current read call", self._rdl, which each
read entry point sets to true and the first wait computes: most receives
never wait, and then no clock is read at all.
]]
local function recv1 (self, max, deadline, waitfirst)
  local sock = self.socket
  while true do
    if waitfirst then          -- the caller's own receive said EAGAIN
      waitfirst = false
    else
      local data, msg, code = c_recv(sock, max)
      if data or code ~= "EAGAIN" then return data, msg, code end
    end
    if deadline == true then
      deadline = self._rdl
      if deadline == true then
        local t = self._timeout            -- false: no timeout, no clock
        if t then deadline = deadline_of(t) else deadline = nil end
        self._rdl = deadline
      end
    end
    -- inside a task, park straight through the loop's hook: one Lua
    -- frame less per wait than wait.wait (whose rules this follows)
    local hook, ok, wmsg, wcode = wait.hook, false, nil, nil
    self._expired = nil
    if hook and deadline ~= false then ok, wmsg, wcode = hook(sock, "r", deadline) end
    if ok == false then ok, wmsg, wcode = waitfor(sock, "r", deadline) end
    if not ok then
      wmsg = "recv: " .. wmsg
      if wcode == "ETIMEDOUT" then self._expired = wmsg end
      return nil, wmsg, wcode
    end
  end
end


-- take every unread byte out of the buffer, as one string
local function takeall (self)
  local buf, pos = self._buf, self._pos
  self._buf, self._pos = "", 1
  if pos == 1 then return buf end
  return sub(buf, pos)
end


-- put parts[1..n] back as the buffer (which slow paths have emptied)
local function putback (self, parts, n)
  self._buf, self._pos = concat(parts, "", 1, n), 1
end


-- up to 'max' buffered bytes, taken out of the buffer; nil if it is empty
local function frombuffer (self, max)
  local buf, pos = self._buf, self._pos
  local have = #buf - pos + 1
  if have <= 0 then return nil end
  if have <= max then
    self._buf, self._pos = "", 1
    return pos == 1 and buf or sub(buf, pos)
  end
  self._pos = pos + max
  return sub(buf, pos, pos + max - 1)
end


local function toolong (self)
  return nil, "read: line longer than max_line (" .. tostring(self.max_line)
              .. " bytes)", "EMSGSIZE"
end


--[[
A line: "l" drops the end of line ("\n" or "\r\n"), "L" keeps it. At the
end of the stream the last line needs no "\n". A line whose text is
longer than max_line is EMSGSIZE, and stays buffered: a read of a count
(or recv) can still take it, and max_line may be raised.
]]
local function readline (self, keep, deadline)
  local buf, pos, max = self._buf, self._pos, self.max_line
  local e = find(buf, "\n", pos, true)
  if e then                                   -- the fast path
    local last = e - 1
    if last >= pos and byte(buf, last) == 13 then last = last - 1 end
    if last - pos + 1 > max then return toolong(self) end
    if e == #buf then self._buf, self._pos = "", 1 else self._pos = e + 1 end
    return sub(buf, pos, keep and e or last)
  end
  local parts, n, total = {}, 0, #buf - pos + 1
  if total > 0 then n = 1; parts[1] = takeall(self) end
  while true do
    -- too long already: more than max bytes, unless the one past max
    -- is a "\r" that a "\n" may follow (it is not the line's then)
    if total > max and (total > max + 1 or byte(parts[n], -1) ~= 13) then
      putback(self, parts, n)
      return toolong(self)
    end
    local chunk, msg, code = recv1(self, CHUNK, deadline)
    if not chunk then
      if code == "EOF" and total > 0 and total <= max then
        return concat(parts, "", 1, n)        -- the last line, no "\n"
      end
      putback(self, parts, n)
      if code == "EOF" and total > 0 then return toolong(self) end
      return nil, msg, code
    end
    e = find(chunk, "\n", 1, true)
    if e then
      n = n + 1
      if e == #chunk then
        parts[n] = chunk
      else
        parts[n] = sub(chunk, 1, e)
        self._buf = sub(chunk, e + 1)         -- the buffer was empty
      end
      local line = concat(parts, "", 1, n)
      local last = #line - 1
      if last >= 1 and byte(line, last) == 13 then last = last - 1 end
      if last > max then
        self._buf = line .. self._buf
        return toolong(self)
      end
      if keep then return line end
      return sub(line, 1, last)
    end
    n = n + 1
    parts[n] = chunk
    total = total + #chunk
  end
end


-- "a": everything until the end of the stream ("" if nothing is left)
local function readall (self, deadline)
  local parts, n = {}, 0
  if self._buf ~= "" then n = 1; parts[1] = takeall(self) end
  while true do
    local chunk, msg, code = recv1(self, BIG, deadline)
    if not chunk then
      if code == "EOF" then return concat(parts, "", 1, n) end
      putback(self, parts, n)
      return nil, msg, code
    end
    n = n + 1
    parts[n] = chunk
  end
end


-- a count: exactly 'want' bytes unless the stream ends first
local function readn (self, want, deadline)
  local buf, pos = self._buf, self._pos
  local have = #buf - pos + 1
  if want == 0 then                 -- file:read(0): "" or nil at the end
    if have > 0 then return "" end
    local chunk, msg, code = recv1(self, CHUNK, deadline)
    if not chunk then return nil, msg, code end
    self._buf = chunk
    return ""
  end
  if have >= want then                        -- the fast path
    if have == want then self._buf, self._pos = "", 1
    else self._pos = pos + want end
    return sub(buf, pos, pos + want - 1)
  end
  local parts, n = {}, 0
  if have > 0 then n = 1; parts[1] = takeall(self) end
  while have < want do
    local need = want - have
    local chunk, msg, code =
      recv1(self, need < CHUNK and CHUNK or (need < BIG and need or BIG),
            deadline)
    if not chunk then
      if code == "EOF" and have > 0 then return concat(parts, "", 1, n) end
      putback(self, parts, n)
      return nil, msg, code
    end
    if #chunk > need then                     -- keep the excess buffered
      self._buf = sub(chunk, need + 1)
      chunk = sub(chunk, 1, need)
    end
    n = n + 1
    parts[n] = chunk
    have = have + #chunk
  end
  return concat(parts, "", 1, n)
end


--[[
"n": a numeral, read as file:read("n") reads one (Lua's liolib
read_number): leading white space skipped, then the longest prefix that
fits Lua's numeral syntax (sign, "0x", digits, ".", exponent), at most
200 characters, converted as tonumber does. White space is consumed as
it is skipped (as stdio does); everything else stays buffered when the
read fails (not a numeral: nil, msg, "EINVAL"), times out or meets an
error. A numeral ends at a character outside its syntax or at the end of
the stream, so the read waits for one of those: "12" at the end of what
has arrived may go on.
]]
local MAXNUMERAL = 200             -- liolib's L_MAXLENNUM

-- the index just past the numeral at s[i...] (the next character, or the
-- end of s, is known to end it)
local function numeral_end (s, i)
  local function test (set)
    local c = sub(s, i, i)
    if c ~= "" and find(set, c, 1, true) then i = i + 1; return true end
    return false
  end
  local function digits (hex)
    local _, e = find(s, hex and "^%x*" or "^%d*", i)
    local k = e - i + 1
    i = e + 1
    return k
  end
  test("-+")
  local count, hex = 0, false
  if test("0") then
    if test("xX") then hex = true else count = 1 end
  end
  count = count + digits(hex)
  if test(".") then count = count + digits(hex) end
  if count > 0 and test(hex and "pP" or "eE") then
    test("-+")
    digits(false)
  end
  return i
end

local function readnumber (self, deadline)
  local ended = false                 -- the stream's end has been seen
  while true do
    local buf, pos = self._buf, self._pos
    local s = find(buf, "[^ \t\n\v\f\r]", pos)
    if not s then
      self._buf, self._pos = "", 1     -- only white space: skipped
      if ended then return nil, "read: end of stream", "EOF" end
    else
      self._pos = s
      -- the numeral is known once something after it has arrived (or
      -- the stream has ended): a scan that stops at the end of the
      -- buffer might go on
      local e = numeral_end(buf, s)
      if e <= #buf or ended or e - s > MAXNUMERAL then
        local v = e - s <= MAXNUMERAL and tonumber(sub(buf, s, e - 1))
        if not v then
          return nil, "read: not a numeral at '" .. sub(buf, s, s + 15) .. "'",
                 "EINVAL"
        end
        if e > #buf then self._buf, self._pos = "", 1 else self._pos = e end
        return v
      end
    end
    -- more is needed (the candidate is at most 200 bytes)
    local chunk, msg, code = recv1(self, CHUNK, deadline)
    if chunk then
      self._buf, self._pos = sub(self._buf, self._pos) .. chunk, 1
    elseif code == "EOF" then
      ended = true
    else
      return nil, msg, code
    end
  end
end


local function read1 (self, f, deadline)
  if f == "l" then return readline(self, false, deadline)
  elseif f == "L" then return readline(self, true, deadline)
  elseif f == "a" then return readall(self, deadline)
  elseif f == "n" then return readnumber(self, deadline)
  else return readn(self, f, deadline) end
end


-- a format of file:read: "l", "L", "a" (optionally "*l" ...), or a count
local function checkformat (f, i, fname)
  local t = type(f)
  if t == "number" then
    local n = tointeger(f)
    if not n then argerror(i, fname, "number has no integer representation", 3) end
    if n < 0 then argerror(i, fname, "negative size", 3) end
    return n
  elseif t == "string" then
    local c = match(f, "^%*?([lLan])")
    if c then return c end
  end
  argerror(i, fname, "invalid format", 3)
end


--[[
conn:read(...) -> values, as file:read (default "l"). One deadline for the
whole call. If a format fails, the values already read come back followed
by nil, msg, code (its bytes stay buffered): "a, nil, msg, code".
]]
function Conn:read (...)
  if self._closed then error("attempt to use a closed socket", 2) end
  self._rdl = true            -- one deadline for the call, made on need
  local nargs = select("#", ...)
  if nargs <= 1 then
    -- the formats of every line protocol first, without checkformat's
    -- pattern match (HTTP heads: bench/README.md)
    local f = ...
    if nargs == 0 or f == "l" then return readline(self, false, true) end
    if f == "L" then return readline(self, true, true) end
    return read1(self, checkformat(f, 1, "read"), true)
  end
  local fmts = {...}
  for i = 1, nargs do fmts[i] = checkformat(fmts[i], i, "read") end
  local deadline = true
  local out = {}
  for i = 1, nargs do
    local v, msg, code = read1(self, fmts[i], deadline)
    if v == nil then
      out[i + 1], out[i + 2] = msg, code
      return unpack(out, 1, i + 2)
    end
    out[i] = v
  end
  return unpack(out, 1, nargs)
end


--[[
conn:recv([max]) -> 1..max bytes (default 65536): from the buffer if it
holds any, otherwise from one receive.
]]
-- max of recv/recvfds: a positive integer, default CHUNK
local function checkmax (max, fname)
  if max == nil then return CHUNK end
  local n = tointeger(max)
  if not n or n <= 0 then
    argerror(1, fname, "max must be a positive integer", 3)
  end
  return n
end

-- conn:recv's wait, once its receive said EAGAIN: recv1 until data, the
-- end, an error or the deadline
local function recvwait (self, max)
  self._rdl = true
  return recv1(self, max, true, true)
end

function Conn:recv (max)
  if self._closed then error("attempt to use a closed socket", 2) end
  if max == nil then max = CHUNK else max = checkmax(max, "recv") end
  if self._buf ~= "" then return frombuffer(self, max) end
  local sock = self.socket
  -- the common case inline: nothing buffered, data ready (one C call)
  local data, msg, code = c_recv(sock, max)
  if data then return data end
  if code == "EAGAIN" then
    -- no timeout: the loop's hook waits and receives (a tail call: in a
    -- task this frame is gone while it waits); outside a task it calls
    -- recvwait
    local hook = wait.recvhook
    if hook and not self._timeout then return hook(sock, max, self, recvwait) end
    return recvwait(self, max)
  end
  return nil, msg, code
end


--[[
conn:lines(...) -> iterator over conn:read(...) (default "l"), as
file:lines: the end of the stream ends the loop (the iterator returns
nothing, as file:lines' does); any other failure (a timeout, a reset),
of any of the formats, raises its message. With "a" alone the loop
ends after the one read that reaches the end.
]]
function Conn:lines (...)
  checkopen(self)
  local n = select("#", ...)
  local fmts = {...}
  for i = 1, n do fmts[i] = checkformat(fmts[i], i, "lines") end
  if n <= 1 then
    local f = fmts[1] or "l"
    local done = false
    return function ()
      if done then return end
      -- (a closed conn raises here, at the loop's line, not in read)
      if self._closed then error("attempt to use a closed socket", 2) end
      local v, msg, code = self:read(f)
      if v ~= nil then
        if f == "a" then done = true end
        return v
      end
      if code == "EOF" then return end
      error(msg, 2)
    end
  end
  return function ()
    if self._closed then error("attempt to use a closed socket", 2) end
    local r = pack(self:read(unpack(fmts, 1, n)))
    -- a failed format is nil, msg, code after the values read before it
    -- (values are never nil): the end of the stream ends the values, as
    -- in file:lines; every other failure raises, whichever format it hit
    for i = 1, r.n do
      if r[i] == nil then
        if r[i + 2] ~= "EOF" then error(r[i + 1], 2) end
        if i == 1 then return end
        break
      end
    end
    return unpack(r, 1, r.n)
  end
end

--[[ }===================================================== ]]


--[[ {=====================================================
Sending
====================================================== ]]

--[[
Wait until 'sock' has room to send. 'deadline' is true until the first
wait of a call computes it from the timeout; the caller keeps the one
returned: ok, msg, code, deadline, where 'msg' starts with 'what' (the
operation, "send: "). A timeout marks the conn for serve (self._expired,
as recv1 does): the latest wait of this conn expired, with that message.
]]
local function waitroom (self, sock, deadline, what)
  if deadline == true then deadline = deadline_of(self._timeout) end
  self._expired = nil
  local ok, msg, code = waitfor(sock, "w", deadline)
  if ok then return ok, nil, nil, deadline end
  msg = what .. msg
  if code == "ETIMEDOUT" then self._expired = msg end
  return ok, msg, code, deadline
end


--[[
Writers take turns. While one write of a conn waits for room (or has sent
part of its bytes) the conn is busy (_wbusy): another task's write, which
would put its bytes in the middle, waits in the conn's line (_wline, see
wait.queue) instead, and the writes go one after the other, whole. A
write that never waits never sets anything: the common case costs one
field read.
]]

-- the running write is done: the next in line goes on
local function writedone (self)
  self._wbusy = nil
  local line = self._wline
  if line and line[1] then wait.handon(line) end
end

--[[
A write that found the conn busy: wait in line until it is not ('what'
names the call for errors, "send: "). Returns true, or nil, msg, code
(the deadline of the call passed; the conn was closed meanwhile). A
caller that is not a task (a coroutine of its own inside one) cannot
wait in line: "EBUSY", as before lines.
]]
local function writeturn (self, what)
  local line = self._wline
  if not line then line = {}; self._wline = line end
  local deadline = deadline_of(self._timeout)
  while self._wbusy do
    local ok, msg, code = wait.queue(line, deadline)
    if ok == false then
      return nil, what .. "another task is already writing this socket", "EBUSY"
    end
    if self._closed then
      if line[1] then wait.handon(line) end
      return nil, what .. "socket closed while waiting", "EBADF"
    end
    if not ok then
      msg = what .. msg
      if code == "ETIMEDOUT" then self._expired = msg end
      return nil, msg, code
    end
  end
  return true
end

-- send the rest of the strings of 'list' (total bytes, 'sent' gone
-- already), waiting for room: what Conn:write returns. The conn is busy
-- meanwhile (writers take turns, above).
local function sendrest1 (self, sock, list, total, sent, deadline)
  while sent < total do
    local k, msg, code = c_sendv(sock, list, sent)
    if k then
      sent = sent + k
    elseif code == "EAGAIN" then
      local ok, wmsg, wcode
      ok, wmsg, wcode, deadline = waitroom(self, sock, deadline, "send: ")
      if not ok then return nil, wmsg, wcode, sent end
    else
      return nil, msg, code, sent
    end
  end
  return self
end

local function sendrest (self, sock, list, total, sent, deadline)
  self._wbusy = true
  local r, msg, code, n = sendrest1(self, sock, list, total, sent, deadline)
  writedone(self)
  if r then return r end      -- conn alone (SPEC: write returns conn)
  return nil, msg, code, n
end

-- a number as file:write writes it: "%d", or "%.14g" (3.0 is "3")
local function numeral (v)
  if math_type(v) == "integer" then return format_("%d", v) end
  return format_("%.14g", v)
end

-- conn:write while another task's write waits: its turn, then the write
local linedwrite
--[[
conn:write(...) -> conn | nil, msg, code, sent
Every argument (strings, numbers) completely: one send for one argument
(what a short send leaves goes by sendmsg, as for several),
one sendmsg (writev) per round for several. Loops on short writes and
waits for room until every byte is with the kernel or the deadline
passes. On failure 'sent' says how many bytes of the concatenated
arguments the kernel had taken (with timeout 0, "EAGAIN" may come after
a part: write the rest later).
]]
function Conn:write (...)
  if self._closed then error("attempt to use a closed socket", 2) end
  if self._wbusy then return linedwrite(self, ...) end
  local sock = self.socket
  -- the common case, one string that the first send takes whole, in one
  -- C call (sock:_write: self, or false, sent, or nil, msg, code, or
  -- false alone for every other case)
  local r, k, code = c_write(sock, self, ...)
  if r then return r end
  if r == nil then return nil, k, code, 0 end
  if k then
    local data = ...
    return sendrest(self, sock, {data}, #data, k, true)
  end
  -- every other case (several arguments, a number, a wrong type, a
  -- socket that may wait): the pieces, checked, through sendv
  local nargs = select("#", ...)
  local list, total = {...}, 0
  for i = 1, nargs do
    local v = list[i]
    if type(v) == "number" then
      v = numeral(v)
      list[i] = v
    elseif type(v) ~= "string" then
      argerror(i, "write", "string expected, got " .. type(v), 2)
    end
    total = total + #v
  end
  -- (the deadline, true until then, is computed by the first wait)
  return sendrest(self, sock, list, total, 0, true)
end

function linedwrite (self, ...)
  local ok, msg, code = writeturn(self, "send: ")
  if not ok then return nil, msg, code, 0 end
  return self:write(...)
end


-- a non-negative integer argument, or the default when nil
local function checkcount (v, n, what, default)
  if v == nil then return default end
  if math_type(v) ~= "integer" then
    v = tointeger(v)
    if not v then argerror(n, "sendfile", what .. " must be an integer", 3) end
  end
  if v < 0 then argerror(n, "sendfile", what .. " must not be negative", 3) end
  return v
end

--[[
conn:sendfile(file, offset, count) -> bytes sent | nil, msg, code, sent
From a Lua file (io.open) or an integer descriptor to the stream, by
sendfile(2): the bytes never pass through Lua. 'offset' (default 0) is
where in the file to start, 'count' (default: to the end of the file)
how many bytes; the file's own position is neither used nor moved, and
what Lua has buffered for it is not seen (flush a file you wrote). Loops,
waiting for room, until 'count' bytes went or the file ended: fewer than
'count' only at the end of the file. One deadline for the whole call, as
write. On failure 'sent' says how many bytes had gone.
]]
local sendfile1   -- the loop of conn:sendfile, below
function Conn:sendfile (file, offset, count)
  checkopen(self)
  file = fdpass.checkfile(file, "sendfile", 2)
  offset = checkcount(offset, 2, "offset", 0)
  count = checkcount(count, 3, "count", nil)
  if self._wbusy then
    local ok, msg, code = writeturn(self, "sendfile: ")
    if not ok then return nil, msg, code, 0 end
  end
  local r, msg, code, sent = sendfile1(self, file, offset, count)
  writedone(self)
  if r then return r end
  return nil, msg, code, sent
end

function sendfile1 (self, file, offset, count)
  local sock = self.socket
  local sent, deadline = 0, true
  while count == nil or sent < count do
    local n, msg, code = sock:sendfile(file, offset + sent,
                                       count and count - sent)
    -- (busy once the core has taken the arguments: a raise leaves none)
    self._wbusy = true
    if n then
      if n == 0 then break end           -- the end of the file
      sent = sent + n
    elseif code == "EAGAIN" then
      local ok, wmsg, wcode
      ok, wmsg, wcode, deadline = waitroom(self, sock, deadline, "sendfile: ")
      if not ok then return nil, wmsg, wcode, sent end
    else
      return nil, msg, code, sent
    end
  end
  return sent
end

--[[ }===================================================== ]]


--[[ {=====================================================
The rest
====================================================== ]]

--[[
M.close(obj) -> true: close for every object holding a core socket (conns
here, listeners and endpoints): idempotent; tells the loop; removes the
socket file the object bound, if the path still names it (open.unlink).
]]
function M.close (self)
  if not self._closed then
    self._closed = true
    wait.close(self.socket)
    if self._path then open.unlink(self._path, self._fileid) end
  end
  return true
end

-- conn:close() -> true (the buffered bytes go too)
function Conn:close ()
  if not self._closed then self._buf, self._pos = "", 1 end
  return M.close(self)
end

Conn.__close = Conn.close


local HOWS = {r = true, w = true, rw = true}

-- conn:shutdown([how]) -> true | nil, msg, code; how "r", "w", "rw" (default)
function Conn:shutdown (how)
  checkopen(self)
  if how == nil then how = "rw" end
  local t = type(how)
  if t ~= "string" and t ~= "number" then   -- as the core's checkstring
    argerror(1, "shutdown", "string expected, got " .. t, 2)
  end
  if not HOWS[how] then
    argerror(1, "shutdown", "invalid option '" .. how .. "'", 2)
  end
  local ok, msg, code = self.socket:shutdown(how)
  if not ok then return nil, msg, code end
  return ok
end


-- t seconds for each later call (nil: no limit; 0: never wait, "EAGAIN")
function M.checktimeout (t, fname)
  if t ~= nil and (type(t) ~= "number" or t < 0 or t ~= t) then
    argerror(1, fname, "timeout must be a non-negative number or nil", 3)
  end
end

--[[
settimeout, gettimeout, peer and addr are the same for every object that
holds a core socket: conns here, and listeners and endpoints, which take
them from this module (M.settimeout, ...) instead of copies.
]]
function Conn:settimeout (t)
  checkopen(self)
  M.checktimeout(t, "settimeout")
  if t == 0 then t = abs(t) end   -- -0.0 is 0
  self._timeout = t or false
  return true
end

function Conn:gettimeout ()
  checkopen(self)
  return self._timeout or nil
end


-- the local or peer address of a core socket, as a string
function M.name (sock, family, peer)
  local a, b, c
  if peer then a, b, c = sock:getpeername() else a, b, c = sock:getsockname() end
  if a == nil then return nil, b, c end
  return format(family, a, b)
end

function Conn:peer ()
  checkopen(self)
  local p = self._peer
  if p then return p end
  local msg, code
  p, msg, code = M.name(self.socket, self.socket:family(), true)
  if not p then return nil, msg, code end
  self._peer = p
  return p
end

function Conn:addr ()
  checkopen(self)
  local a, msg, code = M.name(self.socket, self.socket:family(), false)
  if not a then return nil, msg, code end
  return a
end


--[[
"sockit.socket{...}" of the core, renamed, with the buffered count. The
core shows the peer getpeername gives; once the peer has reset the
connection the kernel has forgotten it (ENOTCONN) and the core prints no
peer and the state "disconnected". Then the peer this object knew
(accept's or connect's address, conn:peer()) is shown. (A unix peer
without a name shows none, connected.)
]]
function M.describe (kind, self, extra)
  if self._closed then return "sockit." .. kind .. "{closed}" end
  local inner = match(tostring(self.socket), "^sockit%.socket{(.*)}$") or "?"
  local head = match(inner, "^(.*) disconnected$")
  if head and not find(head, " -> ", 1, true) then
    local peer = self._peer
    inner = head .. (peer and peer ~= "" and (" -> " .. peer) or "")
            .. " disconnected"
  end
  return "sockit." .. kind .. "{" .. inner .. (extra or "") .. "}"
end

function Conn:__tostring ()
  local n = #self._buf - self._pos + 1
  return M.describe("conn", self, n > 0 and (" buffered=" .. n) or nil)
end

--[[ }===================================================== ]]


--[[ {=====================================================
Unix conns: descriptors and credentials (SPEC §4)

A conn on the "unix" network is a Conn with three more methods (a tcp
conn has none of them: `if conn.sendfds then` tells them apart).

The read buffer and descriptors: the kernel hands descriptors only to a
receive that asks for them (recvmsg with room for control data); a plain
receive that takes bytes which carried descriptors makes the kernel close
them. conn:read and conn:recv take up to 64 KiB at a time, so they can
swallow a message with descriptors that has already arrived. Use recvfds
when the buffer is empty, and design the protocol so that it is: the
peer sends descriptors only after the bytes read before have been
answered, or every message of the connection is read with recvfds.
When the buffer does hold bytes, recvfds returns them first (up to max),
with an empty list and no system call, as recv does: no byte is lost or
reordered, and the next recvfds receives from the kernel. An empty list
where descriptors were expected means they were lost to a plain read.
====================================================== ]]

-- M.derive(class) -> a copy of class, with its own __index, to add to.
-- Metamethods must be in the metatable itself, hence the copy; what is
-- added to class later is still found through the fallback.
function M.derive (class)
  local c = {}
  for k, v in pairs(class) do c[k] = v end
  c.__index = c
  return setmetatable(c, {__index = class})
end

UnixConn = M.derive(Conn)
M.UnixConn = UnixConn


--[[
conn:sendfds(data, fd1 [, ...]) -> #data | nil, msg, code, sent
Sends 'data' (at least one byte) with the descriptors: sockets (core
sockets, or sockit objects holding one: conns, listeners, endpoints),
Lua files (io.open) or integers. Every byte is sent, as write does; the
descriptors go with the first byte.
]]
function UnixConn:sendfds (data, ...)
  checkopen(self)
  if type(data) == "number" then data = tostring(data)
  elseif type(data) ~= "string" then
    argerror(1, "sendfds", "string expected, got " .. type(data), 2)
  end
  if data == "" then
    argerror(1, "sendfds", "a stream needs at least one byte of data with descriptors", 2)
  end
  local fds = fdpass.checkfds("sendfds", 2, ...)
  if self._wbusy then   -- a write waits: take turns (see writeturn)
    local ok, msg, code = writeturn(self, "sendfds: ")
    if not ok then return nil, msg, code, 0 end
  end
  local n, d, code, sent = fdpass.send(self, data, fds)
  if not n then return nil, d, code, sent end         -- d: the message
  local len = #data
  if n < len then   -- the stream took part (with the descriptors): the rest
    local ok, msg
    ok, msg, code, sent = sendrest(self, self.socket, {data}, len, n, d)
    if not ok then return nil, msg, code, sent end
  end
  return len
end


--[[
conn:recvfds(max, maxfds) -> data, {fd, ...} | nil, msg, code
Bytes buffered by an earlier read come first, with {} (see above).
Otherwise one receive of 1..max bytes (default 65536) and the
descriptors that came with them (at most maxfds, default 253; more is
"EMSGSIZE" and those that came are closed), as integers, close-on-exec:
the caller's to close, or to adopt with sockit.core.fromfd.
]]
function UnixConn:recvfds (max, maxfds)
  checkopen(self)
  max = checkmax(max, "recvfds")
  maxfds = fdpass.checkmaxfds(maxfds, "recvfds", 2)
  local buffered = frombuffer(self, max)
  if buffered then return buffered, {} end
  return fdpass.recv(self, max, maxfds)
end


-- conn:peercred() -> pid, uid, gid of the peer process (SO_PEERCRED)
function UnixConn:peercred ()
  checkopen(self)
  return fdpass.cred(self)
end

--[[ }===================================================== ]]

-- shared with listener.lua and dgram.lua (see Conn:settimeout)
M.settimeout, M.gettimeout = Conn.settimeout, Conn.gettimeout
M.peer, M.addr, M.shutdown = Conn.peer, Conn.addr, Conn.shutdown

return M
