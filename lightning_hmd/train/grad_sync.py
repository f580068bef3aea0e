"""The discriminator's backward pass under DDP, reduced on its own.

The training step runs two backward passes per batch, each reaching one network (the
generator step with the discriminator frozen, the discriminator step on detached fakes). DDP
runs with ``find_unused_parameters=True`` (``train/fit.py``), so in each backward it marks
the parameters the pass does not reach as ready and all-reduces every bucket anyway: the
discriminator step would send the whole generator's zero gradients again (98M parameters of
the paper config against the discriminator's 1.8M; ``benchmarks/ddp_allreduce.py`` counts
the bytes). DDP has no way to reduce a chosen subset of its parameters in one backward, so
the discriminator step runs under ``no_sync`` and its gradients are averaged here by hand,
in one flat all-reduce.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel


def average_gradients(params: Iterable[nn.Parameter], world_size: int) -> int:
    """All-reduce the gradients of ``params`` to their mean over the ranks, in place, as one
    flat tensor; a parameter without a gradient counts as zeros (every rank sends the same
    layout). Returns the number of elements reduced. Every rank must call it with the same
    parameters in the same order."""
    params = [p for p in params if p.requires_grad]
    if not params:
        return 0
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world_size
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
        offset += n
    return flat.numel()


def define_gradients(wrapper: nn.Module, network: nn.Module) -> None:
    """Zero gradients for ``network``'s parameters that have none, when ``wrapper`` is DDP.

    DDP counts a parameter that took a gradient under ``no_sync`` as used at the next
    synchronised backward and all-reduces its gradient there, which must then exist: the
    generator step's backward follows the discriminator step's under ``no_sync`` and reaches
    no discriminator parameter. The discriminator's optimiser clears these before its own
    backward, so the zeros never reach an update."""
    if not isinstance(wrapper, DistributedDataParallel):
        return
    for p in network.parameters():
        if p.grad is None:
            p.grad = torch.zeros_like(p)


def backward_one_network(
    wrapper: nn.Module, backward: Callable[[Tensor], None], loss: Tensor, network: nn.Module
) -> None:
    """``backward(loss)`` whose gradients reach ``network`` only, reduced over the ranks for
    ``network``'s parameters alone when ``wrapper`` (the trainer's model) is DDP; a plain
    backward otherwise."""
    if not isinstance(wrapper, DistributedDataParallel):
        backward(loss)
        return
    with wrapper.no_sync():
        backward(loss)
    # A backward under no_sync also turns off the next forward's buffer broadcast
    # (Lightning's prepare_for_backward); the generator's next step expects it on.
    wrapper.require_forward_param_sync = True
    average_gradients(network.parameters(), dist.get_world_size())
