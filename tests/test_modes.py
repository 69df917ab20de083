"""nin_course/modes.py: `evaluating` switches to eval mode without gradients and puts every
module's own mode back."""
import pytest
import torch
from torch import nn

from nin_course.modes import evaluating


def mixed_model():
    """Top module in training mode; its batch norm frozen (eval), its dropout training."""
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5)).train()
    model[1].eval()
    return model


def modes(model):
    return [m.training for m in model.modules()]


def test_every_module_evaluates_inside_and_gets_its_own_mode_back():
    model = mixed_model()
    before = modes(model)
    assert before == [True, True, False, True]
    with evaluating(model) as inside:
        assert inside is model
        assert modes(model) == [False] * 4
    assert modes(model) == before  # not all True, as model.train(model.training) would leave it


def test_modes_come_back_after_an_exception():
    model = mixed_model()
    before = modes(model)
    with pytest.raises(RuntimeError, match="boom"), evaluating(model):
        raise RuntimeError("boom")
    assert modes(model) == before
    assert torch.is_grad_enabled()


def test_gradients_are_off_inside_and_on_after():
    model = mixed_model()
    X = torch.randn(3, 4, requires_grad=True)  # (N, 4)
    with evaluating(model):
        assert not torch.is_grad_enabled()
        out = model(X)  # (3, 4)
    assert not out.requires_grad
    assert torch.is_grad_enabled()


def test_outputs_are_the_eval_mode_outputs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
    X = torch.randn(8, 4)
    stats = model[1].running_mean.clone()
    with evaluating(model):
        got = model(X)
    torch.testing.assert_close(got, model.eval()(X).detach())
    torch.testing.assert_close(model[1].running_mean, stats)  # batch norm's statistics stay put
