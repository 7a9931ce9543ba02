-- wrk script for the soak (bench/soak.py): send every prepared request exactly once,
-- count the answers by status, and tell the driver when this thread has them all.
-- BENCH_REQUESTS holds records "<length>\n<raw request bytes>"; thread n of t takes every
-- record i with i % t == n. Once a thread has sent its share, its connections send a
-- cheap filler (GET of a path that answers 404 without touching the database) every
-- 200 ms, which is not counted; when every request of its share is answered, the thread
-- writes "<SOAK_DONE_DIR>/<id>" and stops. The driver interrupts wrk (SIGINT) once every
-- thread is done, and wrk's done() prints the counts as one JSON line.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  local file = assert(io.open(os.getenv("BENCH_REQUESTS"), "rb"))
  reqs = {}
  local i = 0
  while true do
    local line = file:read("*l")
    if not line then break end
    local raw = file:read(tonumber(line))
    if i % nthreads == id then table.insert(reqs, raw) end
    i = i + 1
  end
  file:close()
  total = #reqs
  nxt = 1
  answered, accepted, duplicate = 0, 0, 0
  s400, s401, s413, s429, s5xx, sother = 0, 0, 0, 0, 0, 0
  filler = "GET /soak/filler HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
  finished = false
  -- wrk calls request() of the first thread once before the run, to count the requests
  -- it returns (pipelining); that call gets the filler so no prepared request is lost.
  verified = id ~= 0
  if total == 0 then finish() end
end

function finish()
  if finished then return end
  finished = true
  local marker = assert(io.open(os.getenv("SOAK_DONE_DIR") .. "/" .. id, "w"))
  marker:write(answered)
  marker:close()
  wrk.thread:stop()
end

function delay()
  if nxt > total then return 200 end
  return 0
end

function request()
  if not verified then
    verified = true
    return filler
  end
  if nxt > total then return filler end
  local raw = reqs[nxt]
  nxt = nxt + 1
  return raw
end

function response(status, headers, body)
  if status == 404 then return end  -- a filler: the ingest never answers 404
  answered = answered + 1
  if status == 200 then
    if string.find(body, '"duplicate"', 1, true) then
      duplicate = duplicate + 1
    else
      accepted = accepted + 1
    end
  elseif status == 400 then s400 = s400 + 1
  elseif status == 401 then s401 = s401 + 1
  elseif status == 413 then s413 = s413 + 1
  elseif status == 429 then s429 = s429 + 1
  elseif status >= 500 then s5xx = s5xx + 1
  else sother = sother + 1
  end
  if answered >= total then finish() end
end

function done(summary, latency, requests)
  local sums = {}
  local names = {"total", "answered", "accepted", "duplicate", "s400", "s401", "s413",
                 "s429", "s5xx", "sother"}
  for _, name in ipairs(names) do sums[name] = 0 end
  for _, thread in ipairs(threads) do
    for _, name in ipairs(names) do sums[name] = sums[name] + (thread:get(name) or 0) end
  end
  local e = summary.errors
  local parts = {}
  for _, name in ipairs(names) do table.insert(parts, string.format('"%s":%d', name, sums[name])) end
  io.write(string.format(
    'SOAK_JSON {%s,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d}\n',
    table.concat(parts, ","), summary.duration, latency:percentile(50),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout))
end
