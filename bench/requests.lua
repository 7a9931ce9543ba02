-- wrk script: send prepared raw HTTP requests, each once, and report figures as JSON.
-- The file named by BENCH_REQUESTS holds records "<length>\n<raw request bytes>". Each
-- wrk thread takes every n-th record (n = thread count), so no request is sent twice
-- until the file runs out (then it starts over).
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
  if #reqs == 0 then  -- fewer records than threads (one GET, say): every thread sends all
    file = assert(io.open(os.getenv("BENCH_REQUESTS"), "rb"))
    while true do
      local line = file:read("*l")
      if not line then break end
      table.insert(reqs, file:read(tonumber(line)))
    end
    file:close()
  end
  nxt = 1
end

function request()
  local raw = reqs[nxt]
  nxt = nxt + 1
  if nxt > #reqs then nxt = 1 end
  return raw
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
