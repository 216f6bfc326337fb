-- wrk script: POST /api/v1/agents/<INFER_AGENT>/inference with a JSON body, the
-- prompt rotating over a few fixed prompts. Env: INFER_AGENT (required).
local agent = os.getenv("INFER_AGENT") or "python_expert"
local path = "/api/v1/agents/" .. agent .. "/inference"
local prompts = {
	"How do I create a REST API with Flask?",
	"What is the difference between a list and a tuple in Python?",
	"How should I handle exceptions and errors?",
	"Explain decorators with an example",
	"How can I make database queries faster?",
	"What is the best way to test my code?",
}
local bodies = {}
for k, p in ipairs(prompts) do
	bodies[k] = '{"prompt": "' .. p .. '"}'
end
local headers = { ["Content-Type"] = "application/json" }
local i = 0

function request()
	i = i % #bodies + 1
	return wrk.format("POST", path, headers, bodies[i])
end
