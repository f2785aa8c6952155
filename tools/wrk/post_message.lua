-- wrk script: POST /v1/messages with a fresh message_id per request, or, with a third
-- argument N, POST /v1/messages:batch with N fresh messages per request.
-- Usage: wrk ... -s post_message.lua URL -- TOKEN CONV_ID[,CONV_ID...] [N]
local counter = 0
local thread_tag = 0
local token, convs

function setup(thread)
  thread_tag = thread_tag + 1
  thread:set("tag", thread_tag)
end

function init(args)
  token = args[1]
  convs = {}
  for id in string.gmatch(args[2], "[^,]+") do convs[#convs + 1] = id end
  batch = tonumber(args[3] or "0")
  math.randomseed(os.time() + (tag or 0) * 7919)
  prefix = string.format("%08x", math.random(0, 0x7fffffff))
end

local function one_message()
  counter = counter + 1
  local id = string.format("%s-%04x-4%03x-8%03x-%012x", prefix, (tag or 0) % 0x10000,
                           math.random(0, 0xfff), math.random(0, 0xfff), counter)
  local conv = convs[(counter % #convs) + 1]
  return '{"message_id":"' .. id .. '","conversation_id":' .. conv ..
         ',"payload":{"type":"text","content":"load test message number ' .. counter .. '"}}'
end

function request()
  local path, body = "/v1/messages", nil
  if batch > 0 then
    local items = {}
    for i = 1, batch do items[i] = one_message() end
    path, body = "/v1/messages:batch", '{"messages":[' .. table.concat(items, ",") .. ']}'
  else
    body = one_message()
  end
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, body)
end

function response(status, headers, body)
  if status ~= 202 then
    errors = (errors or 0) + 1
    if errors < 5 then io.stderr:write("status " .. status .. ": " .. body .. "\n") end
  end
end
