"""Batching: concurrent requests of one model grouped into batches, run one batch at a time."""

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from .model import RequestError

log = logging.getLogger("seqclf.serving")


class Batcher:
    """Groups concurrent requests of one model into batches and runs them one batch at a time.

    Parameters
    ----------
    model : ServedModel
    max_batch_size : int
        Most instances run together (a single larger request still runs, alone).
    max_wait_ms : float
        How long the first request of a batch waits for others, when the previous batch held
        more than one request.
    """

    def __init__(self, model, max_batch_size=64, max_wait_ms=5.0):
        self.model = model
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.queue = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"batch-{model.name}")
        self.task = None

    def start(self):
        self.task = asyncio.get_running_loop().create_task(self._work())

    async def stop(self):
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        self.executor.shutdown(wait=True)

    async def predict(self, instances):
        """Outputs for ``instances`` (already checked), computed in a shared batch."""
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((instances, future))
        return await future

    async def _work(self):
        loop = asyncio.get_running_loop()
        previous = 1
        while True:
            batch = [await self.queue.get()]
            size = len(batch[0][0])
            # Wait for company only under concurrent load (the last batch held several requests):
            # a lone client is not made to wait for others who will not come.
            deadline = loop.time() + (self.max_wait if previous > 1 else 0.0)
            while size < self.max_batch_size:
                remaining = deadline - loop.time()
                try:
                    item = self.queue.get_nowait() if remaining <= 0 else await asyncio.wait_for(self.queue.get(), remaining)
                except (asyncio.TimeoutError, asyncio.QueueEmpty):
                    break
                batch.append(item)
                size += len(item[0])
            previous = len(batch)
            await self._run(loop, batch)

    async def _run(self, loop, batch):
        values = [value for instances, _ in batch for value in instances]
        try:
            outputs = await loop.run_in_executor(self.executor, self.model.run, values)
        except RequestError as error:
            # One bad request must not fail the others: retry each alone to find it.
            if len(batch) > 1:
                for item in batch:
                    await self._run(loop, [item])
            elif not batch[0][1].done():
                batch[0][1].set_exception(error)
            return
        except Exception as error:  # a model failure is reported to every caller of the batch
            log.exception("batch of %d failed", len(values))
            for _, future in batch:
                if not future.done():
                    future.set_exception(RequestError(f"the model failed: {error}", 500))
            return
        start = 0
        for instances, future in batch:
            end = start + len(instances)
            if not future.done():
                future.set_result({key: value[start:end] for key, value in outputs.items()})
            start = end


