-- wrk script of ./build.sh soak (t/soak/soak.pl): mixed traffic against
-- the Clockchain jobs API, one wrk thread's share at a time.
--
--   wrk -t2 -c64 -d600s --timeout 30s -s t/soak/soak.lua http://127.0.0.1:PORT -- \
--       IDS_FILE SERVICE_KEY ADMIN_KEY POST_RPS BULK_RPS WAIT_RPS THREADS
--
-- IDS_FILE holds the ids of finished jobs (one a line).  The rates are for
-- the whole run and split between the threads; a token bucket per thread
-- (refilled once a second: os.time() is all LuaJIT has) keeps POSTs, bulk
-- POSTs and long-polls at those rates, every other request is a GET:
--
--   GET /api/jobs/{finished id}          ~78 % of the GETs
--   GET /api/jobs/{id this thread made}  ~14 %   (pending, processing, finished)
--   GET /api/jobs/{random uuid v4}       ~ 7 %   (404)
--   GET /api/jobs/not-a-uuid             ~ 1 %   (404)
--   GET /api/jobs/{recent id}?wait=5     WAIT_RPS a second (long-poll)
--   POST /api/generate                   POST_RPS a second (X-User-Id on some)
--   POST /api/bulk-generate, 5-20 jobs   BULK_RPS a second
--
-- Each query carries a [flash:...] token for the stand-in (t/flash/README.md):
-- a delay of 0.5-2 s, and for a few a 429 or 500 first (retried), a garbage
-- or 422 answer (fails the job) or a 500 every time (fails after the
-- attempts).  done() prints "SOAK ..." lines that soak.pl parses.

local threads = {}
local nthread = 0

function setup(thread)
   nthread = nthread + 1
   thread:set("tid", nthread)
   table.insert(threads, thread)
end

-- per thread (globals: done() reads them with thread:get)
counts = {}      -- status -> n
fivexx = {}      -- "status detail" -> n
sent = {}        -- kind -> n
states = {}      -- job state in 200 job answers -> n
bulk_ok = 0
bulk_jobs = 0

local ids = {}
local recent, nrecent, rpos, seen = {}, 0, 0, {}
local RECENT_MAX = 512
local key, admin
local rate = {}
local tokens = { post = 0, bulk = 0, wait = 0 }
local last_sec = 0
local serial = 0
local get_h, post_h, post_user_h, bulk_h

local TOPICS = {
   "signing of the declaration of independence 1776",
   "fall of the berlin wall 1989",
   "coronation of charlemagne 800",
   "first flight at kitty hawk 1903",
   "opening of the suez canal 1869",
   "assassination of julius caesar 44 bc",
   "moon landing 1969",
   "printing of the gutenberg bible 1455",
   "battle of hastings 1066",
   "premiere of the rite of spring 1913",
}

function init(args)
   local file = args[1]
   key, admin = args[2], args[3]
   local n = tonumber(args[7]) or 1
   rate.post = (tonumber(args[4]) or 0) / n
   rate.bulk = (tonumber(args[5]) or 0) / n
   rate.wait = (tonumber(args[6]) or 0) / n
   for line in io.lines(file) do
      if #line > 0 then ids[#ids + 1] = line end
   end
   math.randomseed(os.time() * 7919 + (tid or 0) * 104729)
   local host = wrk.host .. ":" .. tostring(wrk.port)
   get_h = { ["Host"] = host, ["X-Service-Key"] = key }
   post_h = { ["Host"] = host, ["X-Service-Key"] = key,
              ["Content-Type"] = "application/json" }
   post_user_h = { ["Host"] = host, ["X-Service-Key"] = key,
                   ["Content-Type"] = "application/json",
                   ["X-User-Id"] = "soak-user-" .. tostring(tid or 0) }
   bulk_h = { ["Host"] = host, ["X-Service-Key"] = key,
              ["X-Admin-Key"] = admin, ["Content-Type"] = "application/json" }
end

local function count(t, k)
   t[k] = (t[k] or 0) + 1
end

local function remember(id)
   if seen[id] then return end
   seen[id] = true
   rpos = rpos % RECENT_MAX + 1
   recent[rpos] = id
   if nrecent < RECENT_MAX then nrecent = nrecent + 1 end
end

local HEX = "0123456789abcdef"

local function hex(n)
   local t = {}
   for i = 1, n do
      local k = math.random(1, 16)
      t[i] = HEX:sub(k, k)
   end
   return table.concat(t)
end

local function uuid4()
   local v = math.random(9, 12)    -- 8, 9, a, b
   return hex(8) .. "-" .. hex(4) .. "-4" .. hex(3) .. "-"
      .. HEX:sub(v, v) .. hex(3) .. "-" .. hex(12)
end

-- a query with its stand-in token: 0.5-2 s, and a few failures
local function query()
   serial = serial + 1
   local mode = string.format("delay=%.2f", 0.5 + math.random() * 1.5)
   local r = math.random()
   if r < 0.04 then mode = mode .. ",fail429=1"      -- 429 once, then a scene
   elseif r < 0.08 then mode = mode .. ",fail=1"     -- 500 once, then a scene
   elseif r < 0.11 then mode = mode .. ",garbage"    -- fails: not JSON
   elseif r < 0.13 then mode = mode .. ",422"        -- fails at once
   elseif r < 0.15 then mode = mode .. ",500"        -- fails after the attempts
   end
   return string.format("soak %d-%d %s [flash:%s]", tid or 0, serial,
                        TOPICS[math.random(1, #TOPICS)], mode)
end

local function refill()
   local now = os.time()
   if now == last_sec then return end
   local dt = last_sec == 0 and 1 or (now - last_sec)
   last_sec = now
   for k, v in pairs(tokens) do
      -- at most two seconds' worth banked
      tokens[k] = math.min(v + rate[k] * dt, math.max(1, rate[k] * 2))
   end
end

local function get(path, kind)
   count(sent, kind)
   return wrk.format("GET", path, get_h)
end

function request()
   refill()
   if tokens.bulk >= 1 then
      tokens.bulk = tokens.bulk - 1
      local n = math.random(5, 20)
      local q = {}
      for i = 1, n do
         q[i] = string.format('{"query":"%s"}', query())
      end
      count(sent, "bulk")
      sent.bulk_entries = (sent.bulk_entries or 0) + n
      return wrk.format("POST", "/api/bulk-generate", bulk_h,
                        '{"queries":[' .. table.concat(q, ",") .. ']}')
   end
   if tokens.post >= 1 then
      tokens.post = tokens.post - 1
      count(sent, "generate")
      local body
      if math.random() < 0.2 then
         body = string.format('{"query":"%s","preset":"hd","visibility":"public"}', query())
      else
         body = string.format('{"query":"%s"}', query())
      end
      return wrk.format("POST", "/api/generate",
                        math.random() < 0.3 and post_user_h or post_h, body)
   end
   if tokens.wait >= 1 and nrecent > 0 then
      tokens.wait = tokens.wait - 1
      return get("/api/jobs/" .. recent[math.random(1, nrecent)] .. "?wait=5", "get_wait")
   end
   local r = math.random()
   if r < 0.78 and #ids > 0 then
      return get("/api/jobs/" .. ids[math.random(1, #ids)], "get_finished")
   elseif r < 0.92 and nrecent > 0 then
      return get("/api/jobs/" .. recent[math.random(1, nrecent)], "get_recent")
   elseif r < 0.99 then
      return get("/api/jobs/" .. uuid4(), "get_unknown")
   end
   return get("/api/jobs/not-a-job-id", "get_invalid")
end

function response(status, headers, body)
   count(counts, status)
   if status >= 500 then
      local d = body and body:match('"detail"%s*:%s*"([^"]*)"')
      if not d then
         d = "(not a module answer) " .. (body or ""):sub(1, 60):gsub("%s+", " ")
      end
      count(fivexx, tostring(status) .. " " .. d)
      return
   end
   if status ~= 200 or not body then return end
   if body:sub(1, 1) == "[" then
      bulk_ok = bulk_ok + 1
      for id in body:gmatch('"job_id":"([0-9a-f%-]+)"') do
         bulk_jobs = bulk_jobs + 1
         remember(id)
      end
      return
   end
   local st = body:match('"status":"(%a+)"')
   if st then count(states, st) end
   if st == "pending" then
      local id = body:match('"job_id":"([0-9a-f%-]+)"')
      if id then remember(id) end
   end
end

local function add(into, from)
   for k, v in pairs(from or {}) do into[k] = (into[k] or 0) + v end
end

function done(summary, latency, requests)
   local c, f, s, st = {}, {}, {}, {}
   local bo, bj = 0, 0
   for _, t in ipairs(threads) do
      add(c, t:get("counts"))
      add(f, t:get("fivexx"))
      add(s, t:get("sent"))
      add(st, t:get("states"))
      bo = bo + (t:get("bulk_ok") or 0)
      bj = bj + (t:get("bulk_jobs") or 0)
   end
   local e = summary.errors
   io.write(string.format("SOAK requests %d\n", summary.requests))
   io.write(string.format("SOAK duration_us %d\n", summary.duration))
   io.write(string.format("SOAK errors %d %d %d %d %d\n", e.connect, e.read,
                          e.write, e.status, e.timeout))
   io.write(string.format("SOAK latency_us %d %d %d %d %d\n",
                          latency:percentile(50), latency:percentile(90),
                          latency:percentile(99), latency:percentile(99.9),
                          latency.max))
   for k, v in pairs(c) do io.write(string.format("SOAK status %s %d\n", k, v)) end
   for k, v in pairs(s) do io.write(string.format("SOAK sent %s %d\n", k, v)) end
   for k, v in pairs(st) do io.write(string.format("SOAK state %s %d\n", k, v)) end
   for k, v in pairs(f) do io.write(string.format("SOAK 5xx %d %s\n", v, k)) end
   io.write(string.format("SOAK bulk %d %d\n", bo, bj))
end
