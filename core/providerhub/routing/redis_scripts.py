"""The Lua scripts of the shared health store (`redis_health.RedisHealthStore`), by name.

Each is one atomic operation on one provider's three keys: KEYS[1] its state hash, KEYS[2] the
tickets in flight and KEYS[3] the trials (sorted sets of tokens scored by expiry, in Redis's
milliseconds). Every script that reads the sets first drops the expired tokens. A ticket's
report (success, failure, release) counts only while its token is in flight, and an admit whose
token is already in flight answers as it did, so sending either again (a round trip that timed
out after Redis ran it) changes nothing; a first chunk's latency sample may count twice then.
The rules are `health.MemoryHealthStore`'s; a change to one is a change to both.
"""

from __future__ import annotations

import hashlib

__all__ = ["SCRIPTS", "SHAS"]

_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
"""

_FREE = """
local token = ARGV[1]
local held = redis.call('ZREM', KEYS[2], token) == 1
redis.call('ZREM', KEYS[3], token)
local probe = redis.call('HGET', KEYS[1], 'probe')
local was_probe = probe == token
if was_probe then redis.call('HDEL', KEYS[1], 'probe', 'probe_until') end
"""

_ADMIT = (
    _PRELUDE
    + """
local limit, last_resort, threshold = tonumber(ARGV[1]), ARGV[2] == '1', tonumber(ARGV[3])
local token, expiry = ARGV[4], now + tonumber(ARGV[5])
local s = redis.call('HMGET', KEYS[1], 'open_until', 'probe', 'probe_until', 'why',
  'rate_limited', 'last', 'answered', 'latency', 'failures')
local latency = s[8] or ''
if redis.call('ZSCORE', KEYS[2], token) then  -- this admit ran before: its reply was lost
  return {'ok', s[2] == token and '1' or '0', latency}
end
local probe = false
if s[1] then
  local left = tonumber(s[1]) - now
  local held = s[2] and tonumber(s[3]) > now
  if left > 0 or held then
    return {'cooling', tostring(left), s[4] or '', s[5] or '0', s[6] or '', latency}
  end
  probe = true
end
if limit >= 0 and redis.call('ZCARD', KEYS[2]) >= limit then
  return {'full', tostring(limit), latency}
end
local answered = s[7] == '1'
if not (probe or last_resort or answered) then
  local trials = redis.call('ZCARD', KEYS[3])
  if trials + tonumber(s[9] or '0') >= threshold then
    return {'unproven', tostring(trials), latency}
  end
end
if probe then redis.call('HSET', KEYS[1], 'probe', token, 'probe_until', expiry) end
redis.call('ZADD', KEYS[2], expiry, token)
if not answered then redis.call('ZADD', KEYS[3], expiry, token) end
return {'ok', probe and '1' or '0', latency}
"""
)

_FIRST_CHUNK = """
local old = tonumber(redis.call('HGET', KEYS[1], 'latency') or '')
local seconds = tonumber(ARGV[1])
local new = seconds
if old then new = old + tonumber(ARGV[2]) * (seconds - old) end
redis.call('HSET', KEYS[1], 'latency', tostring(new), 'answered', '1')
redis.call('DEL', KEYS[3])
return tostring(new)
"""

_SUCCESS = (
    _FREE
    + """
if not held then return -1 end
redis.call('HSET', KEYS[1], 'failures', 0, 'opened', 0, 'answered', '1')
redis.call('HDEL', KEYS[1], 'open_until', 'why', 'last', 'rate_limited', 'probe', 'probe_until')
redis.call('DEL', KEYS[3])
return 1
"""
)

_FAILURE = (
    _PRELUDE
    + _FREE
    + """
if not held then return -1 end
local retry_after, reason, threshold = ARGV[2], ARGV[3], tonumber(ARGV[4])
local cooldown, max_cooldown, max_retry_after = tonumber(ARGV[5]), tonumber(ARGV[6]),
  tonumber(ARGV[7])
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'answered', '0')
if reason ~= '' then redis.call('HSET', KEYS[1], 'last', reason) end
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '')
if retry_after ~= '' then
  local wait = math.min(math.max(tonumber(retry_after), 0), max_retry_after)
  local until_ = math.max(now + wait, open_until or now)
  redis.call('HSET', KEYS[1], 'open_until', until_, 'why', ARGV[8], 'rate_limited', '1')
elseif was_probe or (not open_until and failures >= threshold) then
  local opened = redis.call('HINCRBY', KEYS[1], 'opened', 1)
  local wait = math.min(cooldown * 2 ^ (opened - 1), max_cooldown)
  redis.call('HSET', KEYS[1], 'open_until', now + wait, 'rate_limited', '0',
    'why', 'circuit open after ' .. failures .. ' consecutive failures')
end
return failures
"""
)

_RELEASE = _FREE + "return 1\n"

_REFRESH = (
    _PRELUDE
    + """
local expiry = now + tonumber(ARGV[1])
local probe = redis.call('HGET', KEYS[1], 'probe')
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[2], 'XX', expiry, ARGV[i])
  redis.call('ZADD', KEYS[3], 'XX', expiry, ARGV[i])
  if probe == ARGV[i] then redis.call('HSET', KEYS[1], 'probe_until', expiry) end
end
return 1
"""
)

_SNAPSHOT = (
    _PRELUDE
    + """
local s = redis.call('HMGET', KEYS[1], 'open_until', 'why', 'last', 'latency', 'failures')
local left = ''
if s[1] then left = tostring(tonumber(s[1]) - now) end
return {left, s[2] or '', s[3] or '', s[4] or '', s[5] or '0',
  tostring(redis.call('ZCARD', KEYS[2]))}
"""
)


SCRIPTS = {
    "admit": _ADMIT,
    "first_chunk": _FIRST_CHUNK,
    "success": _SUCCESS,
    "failure": _FAILURE,
    "release": _RELEASE,
    "snapshot": _SNAPSHOT,
    "refresh": _REFRESH,
}
"""Each operation's script."""
SHAS = {name: hashlib.sha1(text.encode()).hexdigest() for name, text in SCRIPTS.items()}
"""Each script's SHA-1, as `EVALSHA` names it once `SCRIPT LOAD` has given it to Redis."""
