"""Host-to-device copies through reusable page-locked (pinned) buffers, optionally on a side CUDA stream.

Shared by ``pinned_transfer`` and ``cuda_streams``, which install a ``HostTransfer`` as the engine's
``host_transfer`` (every input an engine moves to the GPU goes through ``TorchEngine.to_device``). A copy from
pageable memory is staged by the driver through its own pinned bounce buffer and blocks the host; from pinned memory
it is a single DMA the host does not wait for. Pinning memory is slow (a system call and page locking), so buffers
are allocated once and reused; a buffer is reused only after the copy that last read it has finished (an event).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

MAX_BUFFERS_PER_DTYPE = 8  # a call moves a handful of tensors (ids, masks, features); more in flight than this waits


@dataclass
class _Slot:
    buffer: torch.Tensor
    done: torch.cuda.Event | None = None  # recorded after the last copy out of ``buffer``


@dataclass
class PinnedStaging:
    """Pinned host buffers per dtype, grown to the largest tensor seen and recycled once their copy is done."""

    slots: dict[torch.dtype, list[_Slot]] = field(default_factory=dict)

    def acquire(self, tensor: torch.Tensor) -> _Slot:
        slots = self.slots.setdefault(tensor.dtype, [])
        free = [slot for slot in slots if slot.done is None or slot.done.query()]
        fitting = [slot for slot in free if slot.buffer.numel() >= tensor.numel()]
        if fitting:
            return min(fitting, key=lambda slot: slot.buffer.numel())
        if len(slots) >= MAX_BUFFERS_PER_DTYPE:
            oldest = slots.pop(0)  # all busy: wait for the oldest copy, then grow its buffer
            if oldest.done is not None:
                oldest.done.synchronize()
        slot = _Slot(torch.empty(max(tensor.numel(), 1), dtype=tensor.dtype, pin_memory=True))
        slots.append(slot)
        return slot

    def pinned_bytes(self) -> int:
        return sum(slot.buffer.numel() * slot.buffer.element_size() for slots in self.slots.values() for slot in slots)


class HostTransfer:
    """``(tensor, dtype) -> tensor on device``: stage into a pinned buffer, copy without blocking the host, cast there.

    With ``side_stream``, the copy is queued on a stream of its own and the compute stream waits for it by event
    only, so a copy issued while the GPU is still computing (an earlier call, another request) runs alongside it.
    """

    def __init__(self, device: str, side_stream: bool = False):
        self.device = torch.device(device)
        self.staging = PinnedStaging()
        self.stream = torch.cuda.Stream(self.device) if side_stream else None
        self.copies = 0

    def __call__(self, tensor: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        if tensor.device.type != "cpu":
            return tensor.to(self.device, dtype) if dtype is not None else tensor.to(self.device)
        slot = self.staging.acquire(tensor)
        staged = slot.buffer[: tensor.numel()].view(tensor.shape)
        staged.copy_(tensor)
        compute = torch.cuda.current_stream(self.device)
        copy_stream = self.stream or compute
        with torch.cuda.stream(copy_stream):
            moved = staged.to(self.device, non_blocking=True)
            slot.done = torch.cuda.Event()
            slot.done.record(copy_stream)
        if self.stream is not None:
            compute.wait_event(slot.done)
            moved.record_stream(compute)  # allocated on the side stream, used on the compute stream
        self.copies += 1
        return moved.to(dtype) if dtype is not None else moved
