"""Dynamic batching: requests share runs up to the batch size, each gets its own rows
back, the queue is bounded, the client's cancellation drops a queued request, and closing
finishes what is queued."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from deploy_helpers import SlowDoubler

from mlc.deploy.batching import DynamicBatcher, QueueFullError, ShuttingDownError
from mlc.deploy.metrics import Metrics


def _rows(seed: int, rows: int = 1) -> np.ndarray:
    return np.full((rows, 4), seed, np.float32)


def test_concurrent_requests_share_batches_and_get_their_own_rows() -> None:
    model = SlowDoubler(delay=0.01)
    metrics = Metrics()

    async def main() -> list[list[np.ndarray]]:
        batcher = DynamicBatcher(model.run, max_batch_size=8, max_delay_s=0.005, metrics=metrics)
        sizes = [1, 2, 3, 1, 1, 2, 1, 1, 3, 1] * 3
        outs = await asyncio.gather(
            *(batcher.submit([_rows(i, n)], n) for i, n in enumerate(sizes))
        )
        await batcher.close()
        return outs

    outs = asyncio.run(main())
    for i, (y,) in enumerate(outs):
        assert (y == 2 * i).all() and y.shape[1] == 4
    assert max(model.runs) <= 8 and len(model.runs) < 30 / 2  # batched, never over the limit
    assert sum(model.runs) == sum(y.shape[0] for (y,) in outs)
    text = metrics.render()[0].decode()
    assert f'mlc_batch_size_count{{model="model"}} {float(len(model.runs))}' in text


def test_without_batching_every_request_runs_alone() -> None:
    model = SlowDoubler()

    async def main() -> None:
        batcher = DynamicBatcher(model.run, max_batch_size=8, batched=False)
        await asyncio.gather(*(batcher.submit([_rows(i)], 1) for i in range(10)))
        await batcher.close()

    asyncio.run(main())
    assert model.runs == [1] * 10


def test_a_full_queue_refuses_and_recovers() -> None:
    model = SlowDoubler(delay=0.05)

    async def main() -> tuple[int, int]:
        batcher = DynamicBatcher(model.run, max_batch_size=1, max_queue=3)
        tasks = [asyncio.ensure_future(batcher.submit([_rows(i)], 1)) for i in range(10)]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        refused = sum(isinstance(r, QueueFullError) for r in results)
        later = await batcher.submit([_rows(5)], 1)  # the queue drained: accepted again
        await batcher.close()
        assert (later[0] == 10).all()
        return refused, len(results) - refused

    refused, served = asyncio.run(main())
    assert refused >= 6 and served >= 3 and refused + served == 10


def test_cancelled_requests_are_dropped_and_errors_reach_their_batch() -> None:
    model = SlowDoubler(delay=0.05)

    def failing(inputs: list[np.ndarray]) -> list[np.ndarray]:
        if (inputs[0] < 0).any():
            raise ValueError("negative input")
        return model.run(inputs)

    async def main() -> None:
        batcher = DynamicBatcher(failing, max_batch_size=1)
        first = asyncio.ensure_future(batcher.submit([_rows(1)], 1))
        await asyncio.sleep(0.01)  # first is running; the next one waits in the queue
        gone = asyncio.ensure_future(batcher.submit([_rows(2)], 1))
        await asyncio.sleep(0.001)
        gone.cancel()
        assert (await first)[0][0, 0] == 2
        with pytest.raises(ValueError, match="negative"):
            await batcher.submit([_rows(-1)], 1)
        assert (await batcher.submit([_rows(3)], 1))[0][0, 0] == 6
        await batcher.close()

    asyncio.run(main())
    assert model.runs == [1, 1]  # the cancelled request never ran


def test_close_finishes_queued_requests_then_refuses() -> None:
    model = SlowDoubler(delay=0.02)

    async def main() -> None:
        batcher = DynamicBatcher(model.run, max_batch_size=2)
        tasks = [asyncio.ensure_future(batcher.submit([_rows(i)], 1)) for i in range(6)]
        await asyncio.sleep(0.001)
        await batcher.close()
        assert all(t.done() and (t.result()[0] == 2 * i).all() for i, t in enumerate(tasks))
        with pytest.raises(ShuttingDownError):
            await batcher.submit([_rows(1)], 1)

    asyncio.run(main())
