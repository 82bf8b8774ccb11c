# Agent logic against an in-process fake hub (test_agent_hub.FakeHub), on both runtimes: onboarding
# once, stored tokens, 401 renewal, rotation with every power-cut point, recovery and the "needs a new
# onboarding key" state, clock from the gateway, skew. The end-to-end tests against tools/mockhub over
# real TLS are in test_agent_e2e.py.
import json

from test_agent_hub import FakeHub, Resp

import dualtest
from mindconnect import agent as agentmod
from mindconnect import credentials
from mindconnect.clock import Clock
from mindconnect.errors import AuthError, OnboardingRequired

# The fake hub shares the interpreter with the agent here; device memory is measured in test_agent_memory.
# Measured minimum, plain .mpy (2026-12-06): the simulated week needs 135-136K over five tmp-path lengths
# (a day of it 107K, four weeks 136K: it levels off, no growth with time), the other tests 93-99K. The cap
# was 136K, the minimum itself: slow runs failed it (a review helper saw two MemoryErrors). The margin
# covers longer tmp paths and layouts; the agent's own budget is test_agent_memory's.
MPY_HEAPSIZE = "144K"


class Cut(Exception):
    """A simulated power cut at a checkpoint."""


def make(hub, folder=None, key=True, board=None, checkpoint=None, **kw):
    folder = folder or dualtest.tmpdir() + "/store"
    src = board or (lambda: hub.now_s * 1000)
    return agentmod.Agent(folder, onboarding_key=hub.key() if key else None, clock=Clock(source=src),
                          http_factory=lambda host, port: hub, checkpoint=checkpoint, **kw)


def test_onboards_once_and_keeps_the_token():
    hub = FakeHub()
    a = make(hub)
    assert a.state == agentmod.NEW
    tok = a.authorize()
    assert a.state == agentmod.READY and tok in hub.tokens and hub.registrations == 1
    # a new boot: no registration, no token request, the token comes from flash
    b = make(hub)
    assert b.authorize() == tok
    assert hub.registrations == 1 and hub.count("POST", "/api/agentmanagement/v3/oauth/token") == 1
    assert "secret" not in repr(b.store.current()) and "rat" not in repr(b.store.current())
    # 5 minutes before expiry a new token is fetched
    hub.now_s += 3600 - 299
    assert make(hub).authorize() != tok


def test_spent_key_gives_a_clear_error_without_spinning():
    hub = FakeHub()
    hub.iats = set()  # the key was used already (by someone else)
    a = make(hub)
    e = dualtest.raises(OnboardingRequired, a.authorize)
    assert "new onboarding key" in e.message and "IAT-1" not in e.message
    calls = len(hub.calls)
    e = dualtest.raises(OnboardingRequired, make(hub).authorize)
    assert "already used" in e.message and len(hub.calls) == calls  # no request with a spent key
    assert a.state == agentmod.NEEDS_KEY
    # a new key gets it going
    hub.iats.add("IAT-2")
    b = agentmod.Agent(a.store.folder, onboarding_key=hub.key("IAT-2"), clock=a.clock,
                       http_factory=lambda h, p: hub)
    assert b.authorize() in hub.tokens and b.state == agentmod.READY


def test_401_mid_session_renews_and_retries_once():
    hub = FakeHub()
    a = make(hub)
    a.authorize()
    hub.tokens.clear()  # the hub forgot every token
    r = a._authed("GET", "/api/agentmanagement/v3/agents/x/dataSourceConfiguration")
    assert r.status == 200
    assert hub.count("POST", "/api/agentmanagement/v3/oauth/token") == 2


def test_unset_clock_takes_the_gateway_time():
    hub = FakeHub()
    board = [7000]  # booted without NTP: 7 s after 1970
    a = make(hub, board=lambda: board[0])
    a.authorize()  # register answered with Server-Time: the clock is set before any signing
    assert a.clock.is_set() and abs(a.clock.now() - hub.now_s) <= 1
    # a board whose only response so far is the token endpoint's: it asks token_key for the time first
    hub2 = FakeHub()
    b = make(hub2, folder=dualtest.tmpdir() + "/s2", board=lambda: 0)
    b.onboard()
    b.clock.offset_ms = 0
    b.authorize()
    assert hub2.calls[1][1] == "/api/agentmanagement/v3/oauth/token_key"


def test_skewed_clock_is_corrected_from_the_gateway():
    hub = FakeHub()
    warnings = []
    a = make(hub, board=lambda: (hub.now_s - 900) * 1000, log=warnings.append)  # NTP-set but 15 min slow
    assert a.authorize() in hub.tokens
    assert warnings and "900" in warnings[-1]


def _rotate_once(hub, folder, cut_at):
    def checkpoint(name):
        if name == cut_at:
            raise Cut(name)
    a = make(hub, folder=folder, checkpoint=checkpoint)
    dualtest.raises(Cut, a.authorize)


def test_rotation_survives_a_power_cut_at_every_step():
    for cut_at in ("rotate:before_put", "rotate:after_put", "rotate:after_save", "rotate:after_token"):
        hub = FakeHub(secret_lifetime=2 * 86400)
        folder = dualtest.tmpdir() + "/" + cut_at.replace(":", "_")
        make(hub, folder=folder).authorize()
        hub.now_s += 86400 - 3600 + 5  # inside the 25 h window
        _rotate_once(hub, folder, cut_at)
        # restart: works without onboarding again, rotated, and the fallback is gone afterwards
        a = make(hub, folder=folder)
        assert a.authorize() in hub.tokens, cut_at
        assert hub.registrations == 1 and a.state == agentmod.READY, cut_at
        cur = a.store.current()
        assert hub.secrets.get(cur.client_secret, 0) > hub.now_s + 86400, cut_at
        assert not a.store.has_previous(), cut_at
        # and keeps working after the old secret expired
        hub.now_s += 86400
        hub.tokens.clear()
        assert make(hub, folder=folder).authorize(force=True) in hub.tokens, cut_at


def test_rotates_by_itself_for_a_simulated_week():
    hub = FakeHub(secret_lifetime=30 * 3600, token_lifetime=3600)
    a = make(hub)
    week_end = hub.now_s + 7 * 86400
    while hub.now_s < week_end:
        assert a.authorize() in hub.tokens
        hub.now_s += 1800
    assert hub.registrations == 1 and hub.rotations >= 7 * 24 // 5


def test_all_secrets_refused_enters_needs_key_and_stays_quiet():
    hub = FakeHub()
    a = make(hub)
    a.authorize()
    hub.secrets.clear()
    hub.rats.clear()
    hub.tokens.clear()
    e = dualtest.raises(OnboardingRequired, a.authorize, True)
    assert "new onboarding key" in e.message
    assert a.state == agentmod.NEEDS_KEY
    calls = len(hub.calls)
    for _ in range(3):
        dualtest.raises(OnboardingRequired, make(hub).authorize)
    assert len(hub.calls) == calls  # no spinning against the hub
    assert "key_fp" in (credentials.CredentialStore(a.store.folder).read(credentials.NEEDS_KEY) or {})


def _refused_everything(kept=None):
    """An onboarded agent's store whose every credential the hub then refused: NEEDS_KEY (kept: gets
    copies of the hub's secrets and RATs from before)."""
    hub = FakeHub()
    folder = dualtest.tmpdir() + "/s"
    make(hub, folder=folder).authorize()
    if kept is not None:
        kept += [dict(hub.secrets), dict(hub.rats)]
    hub.secrets.clear()
    hub.rats.clear()
    hub.tokens.clear()
    dualtest.raises(OnboardingRequired, make(hub, folder=folder).authorize, True)
    return hub, folder


def test_needs_key_is_tried_again_a_day_later():
    # every secret refused for an hour (the hub's passing fault): a day later the stored credentials are
    # tried once more and the node carries on, with no visit and no new key
    kept = []
    hub, folder = _refused_everything(kept)
    hub.secrets.update(kept[0])
    hub.rats.update(kept[1])
    calls = len(hub.calls)
    hub.now_s += 86400 - 60
    dualtest.raises(OnboardingRequired, make(hub, folder=folder).authorize)
    assert len(hub.calls) == calls  # quiet for the rest of the day
    hub.now_s += 60
    warnings = []
    a = make(hub, folder=folder, log=warnings.append)
    assert a.authorize() in hub.tokens and a.state == agentmod.READY
    assert hub.registrations == 1 and [w for w in warnings if "trying again" in w]
    assert credentials.CredentialStore(folder).read(credentials.NEEDS_KEY) is None


def test_needs_key_still_refused_a_day_later_waits_another_day():
    hub, folder = _refused_everything()
    first = credentials.CredentialStore(folder).read(credentials.NEEDS_KEY)["at"]
    hub.now_s += 86400
    calls = len(hub.calls)
    dualtest.raises(OnboardingRequired, make(hub, folder=folder).authorize)
    assert len(hub.calls) > calls  # tried once more
    assert credentials.CredentialStore(folder).read(credentials.NEEDS_KEY)["at"] == first + 86400
    calls = len(hub.calls)
    hub.now_s += 3600
    for _ in range(3):
        dualtest.raises(OnboardingRequired, make(hub, folder=folder).authorize)
    assert len(hub.calls) == calls


def test_a_new_key_given_on_the_retry_day_is_registered_first():
    hub, folder = _refused_everything()
    hub.now_s += 2 * 86400
    hub.iats.add("IAT-2")
    calls = len(hub.calls)
    a = agentmod.Agent(folder, onboarding_key=hub.key("IAT-2"), clock=Clock(source=lambda: hub.now_s * 1000),
                       http_factory=lambda h, p: hub)
    assert a.authorize() in hub.tokens and a.state == agentmod.READY and hub.registrations == 2
    assert hub.calls[calls][1] == "/api/agentmanagement/v3/register"  # not the refused identity first


def test_a_refused_onboarding_key_is_sent_once_more_a_day_later():
    # the hub refused the key with 401 while it was in fact valid (its passing fault); a NEEDS_KEY written
    # without a time (older firmware) is dated at the first boot with a clock and retried a day later
    hub = FakeHub()
    folder = dualtest.tmpdir() + "/s"
    hub.fault("POST", "/api/agentmanagement/v3/register", Resp(401, {"error": "invalid_token"}))
    dualtest.raises(OnboardingRequired, make(hub, folder=folder).authorize)
    store = credentials.CredentialStore(folder)
    doc = store.read(credentials.NEEDS_KEY)
    assert doc["at"] == hub.now_s
    doc.pop("at")
    store.write(credentials.NEEDS_KEY, doc)
    hub.now_s += 3600
    calls = len(hub.calls)
    e = dualtest.raises(OnboardingRequired, make(hub, folder=folder).authorize)
    assert "already used" in e.message and len(hub.calls) == calls
    assert store.read(credentials.NEEDS_KEY)["at"] == hub.now_s
    hub.now_s += 86400
    a = make(hub, folder=folder)
    assert a.authorize() in hub.tokens and a.state == agentmod.READY and hub.registrations == 1


def test_token_refused_right_after_a_rotation_keeps_the_credentials():
    # IAM out of step for two token requests (a new secret not yet everywhere, or an outage answering
    # 400): the hub took the rotation, so the node keeps its credentials and tries again later
    hub = FakeHub()
    a = make(hub)
    a.authorize()
    for _ in range(2):
        hub.fault("POST", "/api/agentmanagement/v3/oauth/token", Resp(400, {"error": "invalid_client"}))
    e = dualtest.raises(AuthError, a.authorize, True)
    assert not isinstance(e, OnboardingRequired) and "again later" in e.message
    assert a.state == agentmod.READY and hub.rotations == 1
    b = make(hub)
    assert b.authorize() in hub.tokens and b.state == agentmod.READY
    assert hub.registrations == 1


def test_power_cut_while_onboarding_with_a_new_key_out_of_needs_key():
    # the hub refused everything (offboarded): a new key is provisioned, registered and saved, and the
    # power goes before NEEDS_KEY is cleared: the next boot finishes it, no third key
    hub, folder = _refused_everything()
    hub.iats.add("IAT-2")

    def checkpoint(name):
        if name == "onboard:saved":
            raise Cut(name)
    a = agentmod.Agent(folder, onboarding_key=hub.key("IAT-2"), clock=Clock(source=lambda: hub.now_s * 1000),
                       http_factory=lambda h, p: hub, checkpoint=checkpoint)
    dualtest.raises(Cut, a.authorize)
    assert a.state == agentmod.NEEDS_KEY and hub.registrations == 2
    b = agentmod.Agent(folder, onboarding_key=hub.key("IAT-2"), clock=Clock(source=lambda: hub.now_s * 1000),
                       http_factory=lambda h, p: hub)
    assert b.authorize() in hub.tokens
    assert b.state == agentmod.READY and hub.registrations == 2


def _nothing_aside(a):
    try:
        open(a.store.folder + "/aside.log").close()
        raise AssertionError("something was set aside")
    except OSError:
        pass


def _spool_for(a, n):
    """A spool of n readings (values 0..n-1) of one DOUBLE point, the agent's data model synced."""
    from mindconnect import items
    from mindconnect.spool import Spool
    model = items.DataModel({"configurationId": "c1", "dataSources": [{"name": "env", "dataPoints": [
        {"id": "t", "name": "Temperature", "type": "DOUBLE", "unit": "C"}]}]})
    a.sync_model(model)
    spool = Spool(dualtest.tmpdir() + "/ts", flush_every=None)
    enc = items.RecordEncoder(model, 128)
    for i in range(n):
        spool.append(enc.encode(1764050571000 + i * 1000, [("t", i)]))
    return spool


def test_413_from_a_lower_body_limit_splits_the_backlog_and_sets_nothing_aside():
    # a proxy or gateway in front of the hub with a body limit far below 10 MB (nginx: 1 MB by default)
    hub = FakeHub()
    hub.max_body = 1000
    warnings = []
    a = make(hub, log=warnings.append)
    spool = _spool_for(a, 30)
    rep = a.exchange(timeseries=spool)
    assert [o.status for o in rep.outcomes] == [agentmod.SENT], rep.outcomes
    assert rep.count(agentmod.SENT) == 30 and not spool.pending()
    sent = []
    for _kind, payload in hub.exchanged_parts():
        sent += [row["values"][0]["value"] for row in json.loads(payload)]
    assert sent == [str(i) for i in range(30)]  # each once, in order
    assert a.body_limit <= 1000 and len(warnings) >= 1 and "too large" in warnings[0]
    _nothing_aside(a)
    spool.close()


class _FullFlash:
    """An aside log on a full flash: every entry refused (AsideLog.add returns False on ENOSPC)."""
    path = "/nowhere/aside.log"

    def add(self, kind, reason, payload=b"", source=None):
        return False


def test_a_refused_batch_the_full_flash_cannot_set_aside_stays_queued():
    hub = FakeHub()
    a = make(hub)
    spool = _spool_for(a, 5)
    a._aside = _FullFlash()
    hub.fault("POST", "/api/mindconnect/v3/exchange", Resp(400, {"message": "bad value"}))
    rep = a.exchange(timeseries=spool)
    assert [o.status for o in rep.outcomes] == [agentmod.RETRY] and spool.pending() == 5
    # room on the flash again: the refusal is set aside this time, and the spool moves on
    a._aside = None
    a.retry_at_ms = None
    hub.fault("POST", "/api/mindconnect/v3/exchange", Resp(400, {"message": "bad value"}))
    rep = a.exchange(timeseries=spool)
    assert [o.status for o in rep.outcomes] == [agentmod.REJECTED] and not spool.pending()
    assert a.aside.count == 1
    spool.close()


class _RefusesEvents(FakeHub):
    """A hub that refuses (400) every exchange that holds an event."""

    def _route(self, method, path, headers, data):
        if path == "/api/mindconnect/v3/exchange" and b'"businessEvent"' in data:
            return Resp(400, {"message": "event refused"})
        return FakeHub._route(self, method, path, headers, data)


def test_a_refused_event_does_not_take_the_readings_of_its_request_aside():
    # readings and events share a request; the hub refuses the request for the event: the readings were
    # set aside with it (out of the spool, never sent, in a bounded log) although the hub takes them
    from mindconnect import items
    from mindconnect.spool import Spool
    hub = _RefusesEvents()
    a = make(hub)
    spool = _spool_for(a, 5)
    ev = items.event_record(1, "overheat", "Alarm", 1764050571000, "1b4e28ba-2fa1-41d2-883f-0016d3cca427")
    rep = a.exchange([items.event_item([ev])], timeseries=spool)  # a caller's item
    assert rep.count(agentmod.SENT) == 5 and not spool.pending(), rep.outcomes
    assert [len(o.items) for o in rep.rejected] == [1], rep.outcomes
    for i in range(5, 8):
        spool.append(items.RecordEncoder(a.model, 128).encode(1764050571000 + i * 1000, [("t", i)]))
    events = Spool(dualtest.tmpdir() + "/ev", flush_every=None)
    events.append(ev)
    rep = a.exchange(timeseries=spool, events=events)  # the app's way: both from spools
    assert rep.count(agentmod.SENT) == 3 and not spool.pending(), rep.outcomes
    assert rep.count(agentmod.REJECTED, "events") == 1 and not events.pending(), rep.outcomes
    assert a.aside.count == 1  # the event batch alone
    sent = []
    for kind, payload in hub.exchanged_parts():
        assert kind == "standardTimeSeries"
        sent += [row["values"][0]["value"] for row in json.loads(payload)]
    assert sent == [str(i) for i in range(8)]
    spool.close()
    events.close()


def test_a_file_changed_or_deleted_after_it_was_queued():
    # a file item is made (its size taken) and sent later: rewritten shorter it failed every attempt
    # (RETRY for ever, with the readings of its request); grown it went cut at the old size; deleted,
    # exchange() raised OSError at every attempt and the readings with it never went
    import os

    from mindconnect import items
    hub = FakeHub()
    a = make(hub)
    spool = _spool_for(a, 3)
    path = dualtest.tmpdir() + "/log.txt"
    for now in (b"x" * 100, b"short", b"y" * 150):
        dualtest.write_bytes(path, b"z" * 100)
        item = items.file_item(path, 1764050571000)
        dualtest.write_bytes(path, now)
        rep = a.exchange([item], timeseries=spool)
        assert [o.status for o in rep.outcomes] == [agentmod.SENT], rep.outcomes
        assert [p for p in hub.exchanged_parts() if p[0] == "file"][-1] == ("file", now)
    dualtest.write_bytes(path, b"z" * 100)
    item = items.file_item(path, 1764050571000)
    os.remove(path)
    spool.append(items.RecordEncoder(a.model, 128).encode(1764050575000, [("t", 3)]))
    rep = a.exchange([item], timeseries=spool)
    assert [o.status for o in rep.outcomes] == [agentmod.REJECTED, agentmod.SENT], rep.outcomes
    assert rep.outcomes[0].items == [item] and path in rep.outcomes[0].reason
    assert rep.count(agentmod.SENT) == 1 and not spool.pending()
    spool.close()


def test_an_answer_that_is_no_verdict_on_the_readings_sets_nothing_aside():
    # only 400/403/413 to the exchange itself judge the data (PROTOCOL.md Part A); the token endpoint
    # answering 404 (or 403) during an exchange, or the exchange answering 404 (a gateway being deployed),
    # set each batch aside in turn: the whole backlog left the spool for the bounded aside log, unsent
    hub = FakeHub()
    a = make(hub, body_limit=1500)
    spool = _spool_for(a, 30)
    hub.now_s += 2 * 3600  # the kept token has run out: the exchange asks for a new one first
    for path in ("/api/agentmanagement/v3/oauth/token", "/api/mindconnect/v3/exchange"):
        for _ in range(6):
            hub.fault("POST", path, Resp(404, {"message": "no route"}))
        rep = a.exchange(timeseries=spool)
        assert [o.status for o in rep.outcomes] == [agentmod.RETRY], (path, rep.outcomes)
        assert spool.pending() == 30
        hub.faults = []
        a.retry_at_ms = None
        a.authorize()
    rep = a.exchange(timeseries=spool)
    assert rep.count(agentmod.SENT) == 30 and not spool.pending(), rep.outcomes
    _nothing_aside(a)
    spool.close()


def test_a_damaged_identity_file_is_read_from_its_mirror():
    # worn flash: one bit of the only copy of the identity cost the node its onboarding (the key is spent)
    hub = FakeHub()
    folder = dualtest.tmpdir() + "/s"
    make(hub, folder=folder).authorize()
    path = folder + "/" + credentials.CURRENT
    data = bytearray(dualtest.read_bytes(path))
    data[10] ^= 0x01
    dualtest.write_bytes(path, bytes(data))
    hub.tokens.clear()
    a = make(hub, folder=folder)
    assert a.state == agentmod.READY and a.authorize(True) in hub.tokens
    assert hub.registrations == 1


def test_rotation_refused_falls_back_to_the_previous_rat():
    hub = FakeHub(secret_lifetime=2 * 86400)
    folder = dualtest.tmpdir() + "/s"
    make(hub, folder=folder).authorize()
    hub.now_s += 86400 - 3600 + 5
    # the answer of a rotation is lost, then the hub refuses the next rotation with the same RAT once
    _rotate_once(hub, folder, "rotate:after_put")
    hub.fault("PUT", "/api/agentmanagement/v3/register/", Resp(500, {"message": "down"}))
    a = make(hub, folder=folder)
    e = dualtest.raises(Exception, a.authorize)
    assert getattr(e, "retryable", False), e
    assert make(hub, folder=folder).authorize() in hub.tokens
    assert hub.registrations == 1

