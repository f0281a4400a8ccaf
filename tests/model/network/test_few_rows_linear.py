"""Few-row linear products: every kernel equals F.linear, the fastest is chosen by measurement, kept."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from visage.model.inference import kernel_store
from visage.model.network import few_rows_linear as frl
from visage.model.network import kernel_choice
from visage.model.network.few_rows_linear import FewRowsLinear, few_rows_linear, forced_kernel, plain_linear
from visage.model.network.kernel_choice import KernelChoices, KernelKey


@pytest.fixture
def fresh_choices(monkeypatch: pytest.MonkeyPatch) -> KernelChoices:
    """An empty choice table for the test (the process-wide one keeps the machine's real choices)."""
    choices = KernelChoices()
    monkeypatch.setattr(frl, "CHOICES", choices)
    return choices


@pytest.fixture
def timed(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """Stand-in timings: each kernel takes the seconds this dict says, and every measurement is counted."""
    seconds = {"linear": 2.0, "weight_left": 1.0, "calls": 0}

    def fake(kernels, rows, weight, bias) -> dict[str, float]:
        seconds["calls"] += len(kernels)  # one per candidate timed
        return {name: seconds[name] for name in kernels}

    monkeypatch.setattr(kernel_choice, "_timings", fake)
    return seconds


@pytest.mark.parametrize("kernel", ["linear", "weight_left"])
@pytest.mark.parametrize("shape", [(1, 48), (2, 48), (3, 1, 48), (4, 5, 48), (64, 48)])
def test_every_kernel_equals_f_linear(shape, kernel) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g)
    weight, bias = torch.randn(40, 48, generator=g), torch.randn(40, generator=g)
    with forced_kernel(kernel):
        out = few_rows_linear(x, weight, bias)
        no_bias = few_rows_linear(x, weight)
    assert out.shape == (*shape[:-1], 40) and out.is_contiguous()
    torch.testing.assert_close(out, F.linear(x, weight, bias), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(no_bias, F.linear(x, weight), rtol=1e-5, atol=1e-5)


def test_a_transposed_input_layout() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(48, 6, generator=g).T  # column-major rows
    weight = torch.randn(40, 48, generator=g)
    with forced_kernel("weight_left"):
        torch.testing.assert_close(few_rows_linear(x, weight), F.linear(x, weight), rtol=1e-5, atol=1e-5)


def test_the_faster_kernel_is_chosen_once_per_kind_of_product(fresh_choices, timed) -> None:
    weight, bias = torch.randn(8, 16), torch.randn(8)
    few_rows_linear(torch.randn(2, 16), weight, bias)
    assert timed["calls"] == 2  # both candidates timed
    key = KernelKey("cpu", "float32", 8, 16, 2, True).text()
    assert fresh_choices.choices() == {key: "weight_left"}
    few_rows_linear(torch.randn(2, 16), weight, bias)  # remembered: not measured again
    assert timed["calls"] == 2
    timed["weight_left"] = 3.0
    few_rows_linear(torch.randn(3, 16), weight, bias)  # another row count is its own choice
    assert fresh_choices.choices()[KernelKey("cpu", "float32", 8, 16, 3, True).text()] == "linear"
    assert timed["calls"] == 4


def test_output_sizes_share_a_choice_up_to_the_next_power_of_two(fresh_choices, timed) -> None:
    x = torch.randn(2, 16)
    for outputs in (5, 6, 8):  # one bucket: out <= 8
        few_rows_linear(x, torch.randn(outputs, 16))
    assert timed["calls"] == 2
    few_rows_linear(x, torch.randn(9, 16))  # the next bucket
    assert timed["calls"] == 4
    assert sorted(fresh_choices.choices()) == [
        "cpu/float32/out<=16x16/rows2/nobias",
        "cpu/float32/out<=8x16/rows2/nobias",
    ]


def test_many_rows_and_plain_linear_skip_the_choice(fresh_choices, timed) -> None:
    weight, bias = torch.randn(8, 16), torch.randn(8)
    few_rows_linear(torch.randn(65, 16), weight, bias)
    with plain_linear():
        x = torch.randn(2, 16)
        assert torch.equal(few_rows_linear(x, weight, bias), F.linear(x, weight, bias))
    assert timed["calls"] == 0 and fresh_choices.choices() == {}


def test_a_real_measurement_picks_a_known_kernel(fresh_choices) -> None:
    few_rows_linear(torch.randn(2, 32), torch.randn(64, 32), torch.randn(64))
    (timings,) = fresh_choices.measured.values()
    assert set(timings) == set(frl.KERNELS) and all(t > 0 for t in timings.values())
    assert set(fresh_choices.choices().values()) <= set(frl.KERNELS)


def test_choices_are_stored_reused_and_remeasured_after_a_torch_upgrade(
    fresh_choices, timed, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "cache" / "linear-kernels.json"
    kernel_store.use_store(store)
    weight = torch.randn(8, 16)
    few_rows_linear(torch.randn(2, 16), weight)
    document = json.loads(store.read_text())
    assert document["machine"] == kernel_choice.machine_identity()
    assert document["choices"] == {KernelKey("cpu", "float32", 8, 16, 2, False).text(): "weight_left"}

    monkeypatch.setattr(frl, "CHOICES", KernelChoices())  # a new process on the same machine
    kernel_store.use_store(store)
    few_rows_linear(torch.randn(2, 16), weight)
    assert timed["calls"] == 2  # reused from the store

    upgraded = {**kernel_choice.machine_identity(), "torch": "99.0.0"}
    monkeypatch.setattr(kernel_choice, "machine_identity", lambda: upgraded)
    monkeypatch.setattr(kernel_store, "machine_identity", lambda: upgraded)
    monkeypatch.setattr(frl, "CHOICES", KernelChoices())  # the next process, after a torch upgrade
    kernel_store.use_store(store)
    few_rows_linear(torch.randn(2, 16), weight)
    assert timed["calls"] == 4  # measured again
    assert json.loads(store.read_text())["machine"]["torch"] == "99.0.0"


def test_an_unreadable_or_foreign_store_is_ignored(tmp_path) -> None:
    store = tmp_path / "linear-kernels.json"
    store.write_text("{not json")
    assert kernel_store.read_store(store) == {}
    store.write_text(json.dumps({"version": 1, "machine": {"cpu": "other"}, "choices": {"k": "linear"}}))
    assert kernel_store.read_store(store) == {}


def test_module_keeps_nn_linear_parameters_and_keys() -> None:
    plain = nn.Linear(16, 8)
    fast = FewRowsLinear(16, 8)
    fast.load_state_dict(plain.state_dict())
    assert list(fast.state_dict()) == ["weight", "bias"]
    x = torch.randn(3, 16)
    torch.testing.assert_close(fast(x), plain(x), rtol=1e-5, atol=1e-5)
    fast(x).sum().backward()  # gradients flow through the few-row path too
    assert fast.weight.grad is not None and fast.weight.grad.shape == (8, 16)
