"""GRBL driver against its simulator over a real pty (115200 8N1): every public method, checked
against the simulated gantry's machine position and state."""

from __future__ import annotations

import time

import pytest

from drivers import GrblAlarm, GrblError
from tests.hil.helpers import open_driver, running_cell

# Homing enabled ($22=1): the controller powers up locked in Alarm, as a real homing machine does.
GANTRY = {"gantry": {"kind": "grbl", "settings": {22: 1}}}


def test_unlock_moves_work_offsets_and_homing() -> None:
    with running_cell(GANTRY) as cell, open_driver(cell, "gantry") as gantry:
        sim = cell.sims["gantry"]
        st = gantry.status()
        assert st.state == "Alarm"
        assert gantry.banner == "Grbl 1.1h ['$' for help]"
        assert "[MSG:'$H'|'$X' to unlock]" in gantry.messages
        with pytest.raises(GrblError) as info:
            gantry.send_line("G91 G1 X1 F100")  # G-code is locked out in Alarm
        assert info.value.error == 9
        assert gantry.unlock() == ["[MSG:Caution: Unlocked]"]
        assert gantry.status().state == "Idle"

        gantry.move_to(x=-10.0, y=-5.0, feed=600.0)
        st = gantry.wait_idle(timeout=5.0)
        assert st.mpos == (-10.0, -5.0, 0.0) == tuple(sim.mpos)
        gantry.move_by(dz=-2.0, feed=300.0)
        st = gantry.wait_idle(timeout=5.0)
        assert st.mpos == (-10.0, -5.0, -2.0) == tuple(sim.mpos)

        # Work coordinates: G92 makes here the work origin; move_to is in work coordinates.
        assert gantry.send_line("G92 X0 Y0 Z0") == []
        st = gantry.status()
        assert st.wpos == (0.0, 0.0, 0.0) and st.mpos == (-10.0, -5.0, -2.0)
        gantry.move_to(x=3.0, feed=600.0)
        st = gantry.wait_idle(timeout=5.0)
        assert st.wpos == (3.0, 0.0, 0.0)
        assert st.mpos == (-7.0, -5.0, -2.0) == tuple(sim.mpos)
        gantry.send_line("G92.1")

        gantry.home(timeout=5.0)  # "ok" arrives when homing is done
        st = gantry.status()
        assert st.state == "Idle" and st.mpos == (0.0, 0.0, 0.0)
        assert sim.homed


def test_information_lines_and_errors() -> None:
    with running_cell(GANTRY) as cell, open_driver(cell, "gantry") as gantry:
        # Feedback that arrives before "ok" is returned too: the power-up unlock message.
        assert gantry.send_line("$G")[0] == "[MSG:'$H'|'$X' to unlock]"
        assert gantry.send_line("$I") == ["[VER:1.1h.20190830:]", "[OPT:VL,15,128]"]
        settings = gantry.send_line("$$")
        assert "$22=1" in settings and "$110=500.000" in settings
        gantry.unlock()
        with pytest.raises(GrblError) as info:
            gantry.send_line("G5")  # unsupported G-code
        assert info.value.error == 20 and info.value.code == "20"
        with pytest.raises(ValueError):
            gantry.send_line("G0 X1?")  # a real-time byte inside a line is refused locally
        assert cell.sims["gantry"].state() == "Idle"


def test_feed_hold_resume_and_soft_reset_during_motion() -> None:
    with running_cell(GANTRY) as cell, open_driver(cell, "gantry") as gantry:
        sim = cell.sims["gantry"]
        gantry.unlock()
        gantry.move_to(x=-100.0, feed=10.0)  # 10 simulated minutes: 0.3 s real
        assert gantry.status().state == "Run"
        gantry.feed_hold()
        st = gantry.status()
        assert (st.state, st.substate) == ("Hold", 0)
        held_at = st.mpos
        time.sleep(0.02)  # 40 simulated s: a held gantry does not move
        assert gantry.status().mpos == held_at
        assert -100.0 < held_at[0] < 0.0
        gantry.resume()
        time.sleep(0.01)  # '~' and '?' could otherwise arrive in one read, at one instant
        st = gantry.status()
        assert st.state == "Run"
        assert st.mpos[0] < held_at[0]
        # Ctrl-X during motion: stop at once, ALARM:3 (position possibly lost), then the banner.
        assert gantry.soft_reset() == "Grbl 1.1h ['$' for help]"
        assert gantry.last_alarm == 3
        st = gantry.status()
        assert st.state == "Alarm"
        stopped_at = st.mpos
        gantry.unlock()
        time.sleep(0.02)
        st = gantry.wait_idle(timeout=2.0)
        assert st.mpos == stopped_at == pytest.approx(tuple(sim.mpos), abs=5e-4)
        assert -100.0 < stopped_at[0] < held_at[0]


def test_cancel_motion_abandons_the_move_and_leaves_the_controller_ready() -> None:
    with running_cell(GANTRY) as cell, open_driver(cell, "gantry") as gantry:
        sim = cell.sims["gantry"]
        gantry.unlock()
        gantry.move_to(x=-100.0, feed=10.0)  # 10 simulated minutes: 0.3 s real
        gantry.move_to(y=-50.0, feed=10.0)  # queued behind it
        time.sleep(0.02)
        st = gantry.cancel_motion()
        assert st.state == "Idle" and gantry.last_alarm is None  # no ALARM:3: position kept
        assert -100.0 < st.mpos[0] < 0.0 and st.mpos[1] == 0.0
        time.sleep(0.02)
        assert gantry.status().mpos == st.mpos == pytest.approx(tuple(sim.mpos), abs=5e-4)
        gantry.move_to(x=-1.0, feed=3000.0)  # the next move on the same connection runs
        assert gantry.wait_idle(timeout=2.0).mpos == (-1.0, 0.0, 0.0)  # the dropped one did not
        assert gantry.cancel_motion().state == "Idle"  # when idle: held, reset, idle again
        assert gantry.status().mpos == (-1.0, 0.0, 0.0)


def test_cancel_motion_does_not_unlock_an_alarm() -> None:
    with running_cell(GANTRY) as cell, open_driver(cell, "gantry") as gantry:
        with pytest.raises(GrblAlarm):  # homing enabled: locked in Alarm since power-up
            gantry.cancel_motion()
        assert gantry.status().state == "Alarm" and cell.sims["gantry"].alarm_locked
