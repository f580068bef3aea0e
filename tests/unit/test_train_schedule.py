"""Learning-rate schedules: hand-computed factors, and LambdaLR state that loads with
weights_only."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR

from lightning_hmd.modes import Schedule
from lightning_hmd.train.schedule import LRFactor, lr_factor


def test_constant_with_warmup():
    f = LRFactor("constant", total=100, warmup=4)
    assert [f(b) for b in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_cosine_hand_values():
    f = LRFactor("cosine", total=10, warmup=0, min_factor=0.1)
    assert f(0) == pytest.approx(1.0)
    assert f(5) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))  # 0.55
    assert f(10) == pytest.approx(0.1) and f(50) == pytest.approx(0.1)
    warm = LRFactor("cosine", total=12, warmup=2)
    assert warm(0) == pytest.approx(0.5) and warm(2) == pytest.approx(1.0)
    assert warm(7) == pytest.approx(0.5)  # half way through the 10 cosine batches


def test_step_schedule():
    f = LRFactor("step", total=100, step_every=3, gamma=0.5)
    assert [f(b) for b in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]


def test_unknown_schedule_names_the_key():
    with pytest.raises(ValueError, match="optim.schedule"):
        lr_factor(0, LRFactor("linear"))


def test_lambda_lr_state_round_trips_with_weights_only():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=1e-3)
    sched = LambdaLR(opt, LRFactor("cosine", total=10))
    for _ in range(4):
        opt.step()
        sched.step()
    buf = io.BytesIO()
    torch.save(sched.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    opt2 = torch.optim.Adam([p], lr=1e-3)
    again = LambdaLR(opt2, LRFactor("cosine", total=10))
    again.load_state_dict(state)
    assert again.last_epoch == 4
    assert again.get_last_lr() == pytest.approx(sched.get_last_lr())


def test_a_schedule_member_is_stored_as_its_plain_value():
    """A config read from the schema gives optim.schedule as a Schedule; the factor keeps the
    plain string, so the scheduler state it lands in still loads with weights_only."""
    f = LRFactor(Schedule.cosine, total=10)
    assert type(f.schedule) is str and f.schedule == "cosine"
    assert [f(b) for b in range(10)] == [LRFactor("cosine", total=10)(b) for b in range(10)]
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    buf = io.BytesIO()
    torch.save(LambdaLR(opt, f).state_dict(), buf)
    buf.seek(0)
    assert torch.load(buf, weights_only=True)["lr_lambdas"][0]["schedule"] == "cosine"
