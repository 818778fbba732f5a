"""The sandbox carrier's memory, kept in Redis so the web server, the worker and the CLI share it:
calls placed, their transcripts, recordings, text messages, and the scripts of sandbox phones."""

from __future__ import annotations

import json
from typing import Any

from redis import Redis

from ivr.sandbox import script as scripts
from ivr.sandbox.interpreter import Transcript, queue_sid

PREFIX = "ivr:sandbox:"
TTL = 7 * 86400  # sandbox traffic is for trying things out; it expires after a week


class SandboxStore:
    """Typed access to the sandbox's keys in Redis."""

    def __init__(self, redis: Redis, recordings_base_url: str) -> None:
        self.redis, self.recordings_base_url = redis, recordings_base_url.rstrip("/")

    def _set(self, key: str, value: Any) -> None:
        self.redis.set(PREFIX + key, json.dumps(value), ex=TTL)

    def _get(self, key: str) -> Any:
        raw = self.redis.get(PREFIX + key)
        return None if raw is None else json.loads(raw)

    # phones: how the phone at a number behaves when the sandbox rings it

    def set_phone(self, number: str, script: scripts.Script) -> None:
        self._set(f"phone:{number}", script.as_dict())
        self.redis.delete(PREFIX + f"text-replies:{number}")  # a new script replies from its start

    def has_phone(self, number: str) -> bool:
        """Whether the phone at a number was given a script."""
        return bool(self.redis.exists(PREFIX + f"phone:{number}"))

    def forget_phone(self, number: str) -> None:
        """The phone at a number goes back to answering and staying silent."""
        self.redis.delete(PREFIX + f"phone:{number}", PREFIX + f"text-replies:{number}")

    def phone(self, number: str) -> scripts.Script:
        """The number's script; an unknown phone answers and stays silent."""
        data = self._get(f"phone:{number}")
        return scripts.parse(data) if data is not None else scripts.Script()

    # calls and transcripts

    def save_call(self, call: dict[str, Any]) -> None:
        self._set(f"call:{call['sid']}", call)
        self.redis.rpush(PREFIX + "calls", call["sid"])
        self.redis.expire(PREFIX + "calls", TTL)

    def call(self, sid: str) -> dict[str, Any] | None:
        return self._get(f"call:{sid}")

    def update_call(self, sid: str, **changes: Any) -> dict[str, Any] | None:
        call = self.call(sid)
        if call is not None:
            call.update(changes)
            self._set(f"call:{sid}", call)
        return call

    def calls(self) -> list[dict[str, Any]]:
        """Every call placed through the sandbox, oldest first."""
        sids = [s.decode() for s in self.redis.lrange(PREFIX + "calls", 0, -1)]
        return [c for c in (self.call(sid) for sid in sids) if c is not None]

    def save_transcript(self, transcript: Transcript, done: bool) -> None:
        self._set(f"transcript:{transcript.sid}", {**transcript.as_dict(), "done": done})

    def transcript(self, sid: str) -> dict[str, Any] | None:
        return self._get(f"transcript:{sid}")

    # REST updates to a live call

    def request_update(self, sid: str, changes: dict[str, str]) -> None:
        self._set(f"update:{sid}", changes)

    def pending_update(self, sid: str) -> dict[str, str] | None:
        raw = self.redis.getdel(PREFIX + f"update:{sid}")
        return None if raw is None else json.loads(raw)

    # queues: callers waiting (<Enqueue>), taken by staff (<Dial><Queue>)

    _TAKE_HEAD = """
        local sid = redis.call('LPOP', KEYS[1])
        if sid then redis.call('SET', ARGV[1] .. sid, ARGV[2], 'EX', ARGV[3]) end
        return sid"""

    def join_queue(self, name: str, sid: str) -> None:
        """A caller joins a queue, which exists from then on until it is deleted."""
        self.redis.rpush(PREFIX + f"queue:{name}", sid)
        self.redis.expire(PREFIX + f"queue:{name}", TTL)
        self.redis.set(PREFIX + f"queue-sid:{queue_sid(name)}", name, ex=TTL)

    def queue_sids(self) -> list[str]:
        """Every queue that exists (was joined and not deleted)."""
        return sorted(key.decode()[len(PREFIX + "queue-sid:"):]
                      for key in self.redis.scan_iter(match=PREFIX + "queue-sid:*"))

    def delete_queue(self, sid: str) -> str:
        """Delete a queue as Twilio does: 'deleted', 'missing', or 'not empty' (refused)."""
        name = self.redis.get(PREFIX + f"queue-sid:{sid}")
        if name is None:
            return "missing"
        if self.redis.llen(PREFIX + f"queue:{name.decode()}"):
            return "not empty"
        self.redis.delete(PREFIX + f"queue-sid:{sid}")
        return "deleted"

    def leave_queue(self, name: str, sid: str) -> None:
        self.redis.lrem(PREFIX + f"queue:{name}", 0, sid)

    def queue_place(self, name: str, sid: str) -> tuple[int, int] | None:
        """(position from 1, size) of a caller in a queue, or None when they are not in it."""
        members = [m.decode() for m in self.redis.lrange(PREFIX + f"queue:{name}", 0, -1)]
        return (members.index(sid) + 1, len(members)) if sid in members else None

    def take_from_queue(self, name: str, by: str) -> str | None:
        """Take the first caller of a queue and bridge them to call `by`, at once (one script,
        so a waiting caller never sees themselves gone but not yet bridged)."""
        sid = self.redis.eval(self._TAKE_HEAD, 1, PREFIX + f"queue:{name}", PREFIX + "bridged:", by, TTL)
        return sid.decode() if sid is not None else None

    def bridged_to(self, sid: str) -> str | None:
        """The call a queued caller was bridged to, if any."""
        found = self.redis.get(PREFIX + f"bridged:{sid}")
        return found.decode() if found is not None else None

    # recordings and messages

    def save_recording(self, call_sid: str, recording_sid: str, audio: bytes) -> str:
        self.redis.set(PREFIX + f"recording:{recording_sid}", audio, ex=TTL)
        self._set(f"recording-meta:{recording_sid}", {"call_sid": call_sid, "bytes": len(audio)})
        self.redis.sadd(PREFIX + "recordings", recording_sid)
        self.redis.expire(PREFIX + "recordings", TTL)
        return f"{self.recordings_base_url}/{recording_sid}"

    def delete_recording(self, recording_sid: str) -> bool:
        """Forget a recording's audio and details; False when there was no such recording."""
        removed = self.redis.srem(PREFIX + "recordings", recording_sid)
        self.redis.delete(PREFIX + f"recording:{recording_sid}", PREFIX + f"recording-meta:{recording_sid}")
        return bool(removed)

    def recording_sids(self) -> list[str]:
        """Every recording the sandbox still holds, in no particular order."""
        return sorted(sid.decode() for sid in self.redis.smembers(PREFIX + "recordings"))

    def recording(self, recording_sid: str) -> bytes | None:
        return self.redis.get(PREFIX + f"recording:{recording_sid}")

    def recording_meta(self, recording_sid: str) -> dict[str, Any] | None:
        return self._get(f"recording-meta:{recording_sid}")

    def save_message(self, message: dict[str, Any]) -> None:
        """A text through the carrier, either way (direction outbound-api or inbound)."""
        self._set(f"message:{message['sid']}", message)
        self.redis.rpush(PREFIX + "messages", message["sid"])
        self.redis.expire(PREFIX + "messages", TTL)

    def message(self, sid: str) -> dict[str, Any] | None:
        return self._get(f"message:{sid}")

    def update_message(self, sid: str, **changes: Any) -> None:
        message = self.message(sid)
        if message is not None:
            message.update(changes)
            self._set(f"message:{sid}", message)

    def messages(self, number: str | None = None) -> list[dict[str, Any]]:
        """Every text, oldest first; with a number, only those to or from it."""
        found = [self.message(s.decode()) for s in self.redis.lrange(PREFIX + "messages", 0, -1)]
        return [m for m in found if m and number in (None, m["to"], m["from"])]

    # the carrier's own opt-outs: a phone that texted STOP to a number gets nothing from it

    def set_carrier_opt_out(self, phone: str, number: str, out: bool) -> None:
        key = PREFIX + f"opted-out:{phone}:{number}"
        if out:
            self.redis.set(key, 1, ex=TTL)
        else:
            self.redis.delete(key)

    def carrier_opted_out(self, phone: str, number: str) -> bool:
        return bool(self.redis.exists(PREFIX + f"opted-out:{phone}:{number}"))

    def next_text_reply(self, phone: str, script: scripts.Script) -> str | None:
        """What the phone texts back to the text it just got, if its script says anything more."""
        used = self.redis.incr(PREFIX + f"text-replies:{phone}") - 1
        self.redis.expire(PREFIX + f"text-replies:{phone}", TTL)
        return script.text_replies[used] if used < len(script.text_replies) else None
