"""Served predictions awaiting their outcome, kept beside the user's window (`keys.pending_key`).

A sampled share of the predictions served for a user's window is recorded in a small hash
next to the window (bounded per user, with a TTL); when the user's next events are appended,
the append script scores them in the same atomic step (`RESOLVE_LUA`, part of the append
script of `app.store.redis_store`):

- next behavior: the behavior of the earliest new event at or after the prediction time `t`
  (the last event of the window it was made from);
- purchase: 1 when a new buy lies in [t, t + horizon], 0 once the horizon has passed (a new
  event after it, or the server clock past the serving time plus the horizon);
- return: 1 when a new event lies in [t + return gap, t + horizon], 0 likewise.

These are the trainer's label rules (`model.sequences`), so the live figures measure what the
training report measured. A prediction whose outcomes are all known leaves the hash; the
others stay with what is still open. The append script returns what it scored, and the caller
turns it into metrics (`app.monitor`).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from model.features import Behavior


@dataclass(frozen=True)
class PendingPrediction:
    """One served prediction, as kept in Redis until its outcomes arrive."""

    version: str
    t: float  # the prediction time: the window's last event time
    served_at: float  # server clock when it was served
    horizon: int
    return_gap: int
    behavior: tuple[float, ...]  # next-behavior probabilities, BEHAVIOR_NAMES order
    purchase: float
    returns: float

    @property
    def field(self) -> str:
        """The hash field: one entry per model version and window state (a page that asks
        again for the same window does not count twice)."""
        return f"{self.version}|{self.t!r}"

    def encode(self) -> str:
        # n, pp, rp: 1 while the next behavior, the purchase, the return are still open.
        return orjson.dumps({
            "v": self.version, "t": self.t, "s": self.served_at, "h": self.horizon,
            "g": self.return_gap, "b": list(self.behavior), "p": self.purchase,
            "r": self.returns, "n": 1, "pp": 1, "rp": 1,
        }).decode()

    @classmethod
    def decode(cls, text: str) -> PendingPrediction:
        d = orjson.loads(text)
        return cls(str(d["v"]), float(d["t"]), float(d["s"]), int(d["h"]), int(d["g"]),
                   tuple(float(p) for p in d["b"]), float(d["p"]), float(d["r"]))


@dataclass(frozen=True)
class Outcome:
    """What one append learnt about one pending prediction: each field None while open."""

    prediction: PendingPrediction
    next_behavior: int | None
    purchased: bool | None
    returned: bool | None

    @classmethod
    def parse(cls, entry: str, facts: str) -> Outcome:
        """From the append script's pair: the entry as recorded, and "nb,buy,ret" (-1 open)."""
        nb, buy, ret = (int(x) for x in facts.split(","))
        return cls(PendingPrediction.decode(entry), None if nb < 0 else nb,
                   None if buy < 0 else bool(buy), None if ret < 0 else bool(ret))


# A fragment of the append script, run after the new events are in the window. In scope:
# KEYS[3] (the pending hash), `now` (server clock), and `new`, the appended events as
# {ts, behavior} in arrival order. Sets `resolved`: pairs (entry as recorded, "nb,buy,ret").
RESOLVE_LUA = """
local resolved = {}
if #new > 0 and redis.call('EXISTS', KEYS[3]) == 1 then
  local all = redis.call('HGETALL', KEYS[3])
  for i = 1, #all, 2 do
    local p = cjson.decode(all[i + 1])
    local nb, buy, ret, first, passed = -1, -1, -1, nil, now > p.s + p.h
    for _, e in ipairs(new) do
      local ts, b = e[1], e[2]
      if ts >= p.t then
        if p.n == 1 and (first == nil or ts < first) then first = ts; nb = b end
        if ts <= p.t + p.h then
          if p.pp == 1 and b == BUY then buy = 1 end
          if p.rp == 1 and ts >= p.t + p.g then ret = 1 end
        else
          passed = true
        end
      end
    end
    if passed then
      if p.pp == 1 and buy < 0 then buy = 0 end
      if p.rp == 1 and ret < 0 then ret = 0 end
    end
    if nb >= 0 or buy >= 0 or ret >= 0 then
      resolved[#resolved + 1] = all[i + 1]
      resolved[#resolved + 1] = nb .. ',' .. buy .. ',' .. ret
      if nb >= 0 then p.n = 0 end
      if buy >= 0 then p.pp = 0 end
      if ret >= 0 then p.rp = 0 end
      if p.n == 0 and p.pp == 0 and p.rp == 0 then
        redis.call('HDEL', KEYS[3], all[i])
      else
        redis.call('HSET', KEYS[3], all[i], cjson.encode(p))
      end
    end
  end
end
""".replace("BUY", str(int(Behavior.BUY)))

# KEYS: the pending hash. ARGV: capacity, ttl_seconds, then (field, entry) pairs. Keeps the
# `capacity` most recent prediction times (a field ends in "|<t>"). Returns, per pair, 1 if
# it was added (0: that version's prediction for that window state is already kept).
RECORD_LUA = """
local cap = tonumber(ARGV[1])
local added = {}
for i = 3, #ARGV, 2 do
  added[#added + 1] = redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
end
local fields = redis.call('HKEYS', KEYS[1])
if #fields > cap then
  table.sort(fields, function(a, b)
    return tonumber(string.match(a, '|([^|]*)$')) < tonumber(string.match(b, '|([^|]*)$'))
  end)
  for i = 1, #fields - cap do redis.call('HDEL', KEYS[1], fields[i]) end
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return added
"""
