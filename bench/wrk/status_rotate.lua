-- wrk script: GET /api/v1/agents/<prefix><i>/status, i rotating over 0..count-1
-- (5 digits, as bench/driver.py names agents). Each wrk thread starts at a
-- different offset. Env: STATUS_PREFIX (default "st-"), STATUS_COUNT (default 1000).
local prefix = os.getenv("STATUS_PREFIX") or "st-"
local count = tonumber(os.getenv("STATUS_COUNT") or "1000")
local nthreads = 0
i = 0 -- global: setup() gives each thread its own start via thread:set

function setup(thread)
	thread:set("i", nthreads * 397)
	nthreads = nthreads + 1
end

function request()
	i = (i + 1) % count
	return wrk.format("GET", string.format("/api/v1/agents/%s%05d/status", prefix, i))
end
