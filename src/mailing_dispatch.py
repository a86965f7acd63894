"""Mailing dispatch, run by queue workers only (tasks.dispatch_mailings): makes, expires, claims and sends
messages through the external send API, and records every outcome.

One dispatcher per worker process owns an asyncio loop in a thread of its own with ONE httpx.AsyncClient;
at most SEND_CONCURRENCY requests are in flight in the process. The client's transport is a few small
connection pools (SHARD_CONNECTIONS each) rather than one of SEND_CONCURRENCY: httpcore scans every
connection of its pool (a readability syscall per idle one) twice per request, so a pool of 20 cost
~3.5 ms CPU per request, and four pools of 5 ~1.3 ms (measured against the bench's send server).
A round (one queue task) runs until no message is due; a second round that arrives in the same process
while one runs returns at once (the running one takes the new work). Several worker processes dispatch
side by side: claims are atomic.

A message is claimed for SEND_TIMEOUT_SECONDS + CLAIM_MARGIN_SECONDS and only as many are claimed as
there are free request slots, so a claim never runs out while its message waits. A request never runs past
the mailing's end_time or the client's window: its timeout is cut to what is left of both.

Every log line about a message carries mailing_id=, message_id= and client_id=.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import smtplib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from urllib.parse import unquote, urlparse

import httpx

import metrics
from config import Config
from domain.mailings import (
    SendOutcome,
    client_matches,
    in_window,
    judge_answer,
    next_window_opening,
    report_day,
    report_message,
    retry_delay_seconds,
    window_closing,
)
from repository import db, leases
from repository import mailings as mailings_repo
from repository.mailings import ClaimedMessage, Outcome

log = logging.getLogger("joi.mailings")
# httpx logs every request at INFO without the ids; the dispatcher logs each attempt itself.
logging.getLogger("httpx").setLevel(logging.WARNING)

CLAIM_MARGIN_SECONDS = 10.0
# A request with less time than this before its deadline is not started.
MIN_REQUEST_SECONDS = 0.05
# Inside a long round, new messages are made and ended mailings expired this often.
UPKEEP_SECONDS = 2.0
DB_THREADS = 4
RECORD_BATCH = 200
UNSET_URL_WARNING_SECONDS = 300
REPORT_LEASE_SECONDS = 2 * 86_400
SMTP_TIMEOUT_SECONDS = 30
SHARD_CONNECTIONS = 5


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class RoundResult:
    ran: bool
    sent: int = 0
    failed: int = 0
    made: int = 0
    expired: int = 0


@contextlib.contextmanager
def _connection():
    opened = db.database.is_closed()
    if opened:
        db.connect()
    try:
        yield
    finally:
        if opened:
            db.close()


def _with_connection(fn, *args):
    with _connection():
        return fn(*args)


def _ids(message: ClaimedMessage) -> str:
    client_id = message.client.id if message.client else None
    return f"mailing_id={message.mailing.id} message_id={message.id} client_id={client_id}"


class Dispatcher:
    def __init__(self, settings: Config):
        self.settings = settings
        self.claim_seconds = settings.send_timeout_seconds + CLAIM_MARGIN_SECONDS
        self._round_lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._db_pool = ThreadPoolExecutor(DB_THREADS, thread_name_prefix="joi-mailings-db")
        self._thread = threading.Thread(target=self._loop.run_forever, name="joi-mailings-loop", daemon=True)
        self._thread.start()
        self._client: httpx.AsyncClient | None = None
        self._unrecorded: list[tuple[Outcome, asyncio.Future]] = []
        self._recording = False
        self._warned_at = -UNSET_URL_WARNING_SECONDS

    # --- entry point (called from a worker thread) ---

    def run_round(self) -> RoundResult:
        if not self._round_lock.acquire(blocking=False):
            return RoundResult(ran=False)
        try:
            return asyncio.run_coroutine_threadsafe(self._round(), self._loop).result()
        finally:
            self._round_lock.release()

    def close(self) -> None:
        if self._client is not None:
            asyncio.run_coroutine_threadsafe(self._client.aclose(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._db_pool.shutdown(wait=False)

    # --- inside the loop ---

    async def _db(self, fn, *args):
        return await self._loop.run_in_executor(self._db_pool, _with_connection, fn, *args)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            headers = (
                {"Authorization": f"Bearer {self.settings.send_api_token}"} if self.settings.send_api_token else {}
            )
            self._client = httpx.AsyncClient(
                headers=headers,
                timeout=self.settings.send_timeout_seconds,
                transport=ShardedTransport(self.settings.send_concurrency),
                follow_redirects=False,
                trust_env=False,
            )
        return self._client

    async def _upkeep(self, result: RoundResult) -> None:
        now = utcnow()
        for mailing_id, count in (await self._db(mailings_repo.make_messages, now)).items():
            log.info("mailing_id=%d: %d new messages for matching clients", mailing_id, count)
            result.made += count
        for mailing_id, count in (await self._db(mailings_repo.expire_messages, now)).items():
            log.info("mailing_id=%d: %d unsent messages EXPIRED at end_time", mailing_id, count)
            result.expired += count
            metrics.mailing_message_finished("expired", count=count)

    async def _round(self) -> RoundResult:
        result = RoundResult(ran=True)
        await self._upkeep(result)
        if not self.settings.send_api_url:
            quiet = time.monotonic() - self._warned_at < UNSET_URL_WARNING_SECONDS
            if not quiet and await self._db(mailings_repo.has_due_work, utcnow()):
                log.warning("SEND_API_URL is not set: due messages wait unsent")
                self._warned_at = time.monotonic()
            return result
        concurrency = self.settings.send_concurrency
        in_flight: set[asyncio.Task] = set()
        more = True
        last_upkeep = time.monotonic()
        while True:
            if time.monotonic() - last_upkeep >= UPKEEP_SECONDS:
                await self._upkeep(result)
                last_upkeep = time.monotonic()
                more = True
            free = concurrency - len(in_flight)
            if more and free and (not in_flight or free >= max(1, concurrency // 2)):
                claimed = await self._db(mailings_repo.claim_due, utcnow(), free, self.claim_seconds)
                in_flight.update(asyncio.create_task(self._handle(message, result)) for message in claimed)
                more = len(claimed) == free
            if not in_flight:
                return result
            done, in_flight = await asyncio.wait(in_flight, timeout=UPKEEP_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task.exception() is not None:
                    log.error("a send failed unexpectedly", exc_info=task.exception())
            if done:
                more = True

    async def _handle(self, message: ClaimedMessage, result: RoundResult) -> None:
        now = utcnow()
        mailing, client = message.mailing, message.client
        if client is None or not client_matches(mailing, client):
            await self._db(mailings_repo.drop, message)
            metrics.mailing_message_finished("dropped")
            log.info("%s dropped unsent: the client no longer matches the mailing's filters", _ids(message))
            return
        if now >= mailing.end_time:
            await self._db(mailings_repo.expire, message)
            metrics.mailing_message_finished("expired")
            log.info("%s EXPIRED: end_time %s passed", _ids(message), mailing.end_time.isoformat())
            return
        window = mailing.window
        if not in_window(now, window, client.timezone):
            opening = next_window_opening(now, window, client.timezone)
            await self._db(mailings_repo.postpone, message, opening)
            metrics.mailing_message_finished("postponed")
            log.info("%s waits for the client's window (%s local): next at %s", _ids(message), client.timezone, opening)
            return
        deadline = min(d for d in (mailing.end_time, window_closing(now, window, client.timezone)) if d is not None)
        budget = min(self.settings.send_timeout_seconds, (deadline - now).total_seconds())
        if budget < MIN_REQUEST_SECONDS:
            await self._db(mailings_repo.postpone, message, deadline)
            metrics.mailing_message_finished("postponed")
            return
        started = time.perf_counter()
        outcome = await self._send(message, budget)
        send_seconds = time.perf_counter() - started
        finished = utcnow()
        attempts = message.attempts + 1
        if outcome.ok:
            recorded = await self._record(Outcome(message, client.phone, now, sent_at=finished))
            result.sent += recorded
            log.info("%s SENT attempt=%d answer=%s", _ids(message), attempts, outcome.detail)
        else:
            delay = retry_delay_seconds(
                attempts, self.settings.send_retry_base_seconds, self.settings.send_retry_max_seconds
            )
            retry_at = next_window_opening(finished + timedelta(seconds=delay), window, client.timezone)
            recorded = await self._record(Outcome(message, client.phone, now, error=outcome.detail, retry_at=retry_at))
            result.failed += recorded
            log.info(
                "%s FAILED attempt=%d error=%s retry_at=%s",
                _ids(message),
                attempts,
                outcome.detail,
                retry_at.isoformat(),
            )
        metrics.mailing_message_finished(("sent" if outcome.ok else "failed") if recorded else "lost", send_seconds)
        if not recorded:
            log.warning("%s: the claim was lost before the outcome was recorded", _ids(message))

    async def _record(self, outcome: Outcome) -> bool:
        """Record the outcome as soon as possible: the outcomes that arrive while a record transaction
        runs share the next one (one commit for many messages)."""
        future = self._loop.create_future()
        self._unrecorded.append((outcome, future))
        if not self._recording:
            self._recording = True
            self._loop.create_task(self._flush_records())
        return await future

    async def _flush_records(self) -> None:
        try:
            while self._unrecorded:
                batch, self._unrecorded = self._unrecorded[:RECORD_BATCH], self._unrecorded[RECORD_BATCH:]
                try:
                    results = await self._db(mailings_repo.record_outcomes, [outcome for outcome, _ in batch])
                except Exception as error:  # noqa: BLE001 - each waiting send gets the error
                    for _, future in batch:
                        future.set_exception(error)
                    continue
                for (_, future), recorded in zip(batch, results, strict=True):
                    future.set_result(recorded)
        finally:
            self._recording = False

    async def _send(self, message: ClaimedMessage, budget: float) -> SendOutcome:
        url = f"{self.settings.send_api_url.rstrip('/')}/send/{message.id}"
        body = {"id": message.id, "phone": int(message.client.phone), "text": message.mailing.text}
        log.debug("%s POST %s phone=%s timeout=%.2fs", _ids(message), url, message.client.phone, budget)
        client = self._http()  # made on first use: outside the request's time budget
        try:
            async with asyncio.timeout(budget):
                response = await client.post(url, json=body, timeout=budget)
        except (TimeoutError, httpx.TimeoutException):
            return SendOutcome(False, f"no answer within {budget:.2f}s")
        except httpx.HTTPError as error:
            return SendOutcome(False, f"{type(error).__name__}: {error}"[:300])
        return judge_answer(response.status_code, response.content)


class ShardedTransport(httpx.AsyncBaseTransport):
    """Several httpx connection pools of at most `per_shard` connections behind one transport; each
    request goes to the pool with the fewest requests in flight (a request is in flight until its
    answer is closed), so `connections` requests at once never wait while a pool has room."""

    def __init__(self, connections: int, per_shard: int = SHARD_CONNECTIONS):
        count = max(1, -(-connections // per_shard))
        sizes = [connections // count + (1 if n < connections % count else 0) for n in range(count)]
        tls = httpx.create_ssl_context(trust_env=False)  # one for all: loading the CA bundle takes a while
        self._pools = [
            httpx.AsyncHTTPTransport(
                verify=tls, limits=httpx.Limits(max_connections=size, max_keepalive_connections=size), trust_env=False
            )
            for size in sizes
        ]
        self._in_flight = [0] * count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        shard = min(range(len(self._pools)), key=self._in_flight.__getitem__)
        self._in_flight[shard] += 1
        try:
            response = await self._pools[shard].handle_async_request(request)
        except BaseException:
            self._in_flight[shard] -= 1
            raise
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_ReleasingStream(response.stream, lambda: self._release(shard)),
            extensions=response.extensions,
        )

    def _release(self, shard: int) -> None:
        self._in_flight[shard] -= 1

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


class _ReleasingStream(httpx.AsyncByteStream):
    """An answer's body that tells its pool's counter once it is closed (read, failed or cancelled)."""

    def __init__(self, stream, release):
        self._stream = stream
        self._release = release

    async def __aiter__(self):
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        release, self._release = self._release, None
        try:
            await self._stream.aclose()
        finally:
            if release is not None:
                release()


def start_mailing(mailing_id: int) -> int:
    """Make a mailing's messages now (the task its creation enqueues when it has started), rather than at
    the next round's upkeep; the round sends them. Returns how many were made (0 when a round made them
    first, or the mailing has not started or has ended)."""
    with _connection():
        made = mailings_repo.make_messages(utcnow(), mailing_id).get(mailing_id, 0)
    log.info("mailing_id=%d started: %d new messages for matching clients", mailing_id, made)
    return made


_dispatchers: dict[int, Dispatcher] = {}
_dispatchers_lock = threading.Lock()


def dispatcher(settings: Config) -> Dispatcher:
    """This process's dispatcher (made on first use; a forked child makes its own)."""
    with _dispatchers_lock:
        current = _dispatchers.get(os.getpid())
        if current is None:
            current = _dispatchers[os.getpid()] = Dispatcher(settings)
        return current


# --- The daily report ------------------------------------------------------------------------------


def send_daily_report(settings: Config, now: datetime, holder: str) -> bool:
    """E-mail yesterday's statistics once (per deployment and day) after MAILING_REPORT_AT; True when sent.

    The lease `mailing-report:<day>` makes it once: whoever takes it sends; a failed send releases it, so
    the next minute's run tries again."""
    if not (settings.smtp_url and settings.mailing_report_to):
        return False
    day = report_day(now, settings.mailing_report_at)
    if day is None:
        return False
    lease = f"mailing-report:{day.isoformat()}"
    with _connection():
        if not leases.try_acquire(lease, holder, REPORT_LEASE_SECONDS):
            return False
        try:
            start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
            subject, body = report_message(day, mailings_repo.day_report(start, start + timedelta(days=1)))
            _mail(settings, subject, body)
        except Exception:
            leases.release(lease, holder)
            log.exception("the mailing report for %s could not be sent; retrying in a minute", day)
            raise
    log.info("mailing report for %s sent to %s", day, settings.mailing_report_to)
    return True


def _mail(settings: Config, subject: str, body: str) -> None:
    url = urlparse(settings.smtp_url)
    recipients = [address.strip() for address in settings.mailing_report_to.split(",") if address.strip()]
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = subject, settings.mailing_report_from, ", ".join(recipients)
    message.set_content(body)
    smtp_class = smtplib.SMTP_SSL if url.scheme == "smtps" else smtplib.SMTP
    default_port = 465 if url.scheme == "smtps" else 587 if url.scheme == "smtp+starttls" else 25
    with smtp_class(url.hostname or "127.0.0.1", url.port or default_port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
        if url.scheme == "smtp+starttls":
            smtp.starttls()
        if url.username:
            smtp.login(unquote(url.username), unquote(url.password or ""))
        smtp.send_message(message, to_addrs=recipients)
