"""A worker killed (SIGKILL, the whole process group: job and work horse) while the carrier is
still answering its dial: the call was placed and rings, but nobody on our side learned its SID,
and the carrier's callbacks are lost too. The reconcile finds the touch stuck, asks the carrier
for its calls to that number, and attaches the one it placed: nothing lost, nothing placed twice."""

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from ivr.models import Call, Touch, utcnow
from ivr.sandbox import calling, script as scripts
from ivr.sandbox.carrier import SandboxCarrier
from outbound.queueing import enqueue_touch, outbound_queue
from outbound.reconciler import reconcile_all
from tests.support import AUTH_TOKEN, seed_demo_touch

EVERY_CALLBACK = ["initiated", "ringing", "answered", "completed"]


def wait_for(condition, timeout=30.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what} never held")


def test_a_worker_killed_mid_dial_leaves_a_call_that_is_found_and_attached_not_placed_again(
        sandbox_app_factory, database_url, redis_url, redis, tmp_path):
    with calling.serve(sandbox_app_factory) as (app, base):
        services = app.extensions["ivr"]
        sessions = services.sessions
        demo = seed_demo_touch(sessions)
        store = SandboxCarrier.store_for(services.settings, redis)
        store.set_phone(demo.patient_phone, scripts.parse(
            {"replies": ["1", "1"], "dial_delay": 20, "callbacks": {"lose": EVERY_CALLBACK}}))
        enqueue_touch(outbound_queue(redis), demo.touch_id)
        environment = {**{k: v for k, v in os.environ.items() if not k.startswith("IVR_")},
                       "IVR_ENV": "development", "IVR_DATABASE_URL": database_url, "IVR_REDIS_URL": redis_url,
                       "IVR_CARRIER": "sandbox", "IVR_PUBLIC_BASE_URL": base,
                       "IVR_TWILIO_API_URL": f"{base}/sandbox", "IVR_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                       "IVR_INSTANCE_PATH": str(tmp_path / "worker-instance")}
        worker = subprocess.Popen([str(Path(sys.executable).with_name("ivr")), "worker"], env=environment,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            # The carrier has placed the call (it rings, and is answered), and is slow to say so.
            placed = wait_for(lambda: [c for c in store.calls() if c["to"] == demo.patient_phone],
                              what="a call to the patient at the carrier")
            with sessions() as session:
                touch = session.get(Touch, demo.touch_id)
                assert (touch.status, touch.call_sid) == ("dialing", None)
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        (call,) = placed
        calling.wait_for_transcript(store, call["sid"], timeout=30)   # the patient answered and confirmed
        with sessions() as session:
            touch = session.get(Touch, demo.touch_id)
            assert (touch.status, touch.call_sid) == ("dialing", None)   # as the dead worker left it
        # Eleven minutes on, the worker's periodic reconcile: stuck, so uncertain; asked, found.
        with app.app_context():
            report = reconcile_all(services, utcnow() + dt.timedelta(minutes=11))
        assert (report.stuck, report.found, report.redialled) == (1, 1, 0)
        with sessions() as session:
            touch = session.get(Touch, demo.touch_id)
            calls = session.scalars(select(Call).where(Call.touch_id == demo.touch_id)).all()
        assert (touch.status, touch.call_sid, touch.attempts) == ("completed", call["sid"], 1)
        assert [c.call_sid for c in calls] == [call["sid"]]
        # Nothing placed twice: the carrier holds one call to the patient.
        assert [c["sid"] for c in store.calls() if c["to"] == demo.patient_phone] == [call["sid"]]
