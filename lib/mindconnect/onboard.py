"""Onboarding with the onboarding key (once per key): loaded by the agent on demand, then dropped.

A device onboards once; keeping this code out of the steady wake cycle leaves its heap to the data.
SHARED_SECRET agents register with `{}`; RSA_3072 agents register the public part of the key that
provisioning put on flash (rsa.RSA_KEY) as a JWKS.
"""

import gc
import json
import os

from mindconnect import credentials
from mindconnect.agent import _W, split_url
from mindconnect.compat import fsync_file
from mindconnect.errors import ConfigError, MindConnectError, OnboardingRequired, ProtocolError, msg

_WHOLE = ": copy it whole from Insights Hub"


def parse_key(key):
    """The onboarding key (JSON text or dict) -> its content dict, checked."""
    if isinstance(key, (str, bytes)):
        try:
            key = json.loads(key)
        except ValueError:
            raise ConfigError("the onboarding key is not JSON" + _WHOLE) from None
    content = key.get("content") if isinstance(key, dict) else None
    if not isinstance(content, dict):
        raise ConfigError("the onboarding key has no 'content'" + _WHOLE)
    for name in ("baseUrl", "iat", "clientId", "tenant"):
        if not isinstance(content.get(name), str) or not content[name]:
            raise ConfigError("the onboarding key has no '%s'%s" % (name, _WHOLE))
    profile_of(content)
    split_url(content["baseUrl"])
    return content


def profile_of(content):
    """"SHARED_SECRET" or "RSA_3072": the security profile the onboarding key's agent was created with."""
    profiles = content.get("clientCredentialProfile") or ["SHARED_SECRET"]
    for p in ("SHARED_SECRET", "RSA_3072"):
        if p in profiles:
            return p
    raise ConfigError("this agent supports the SHARED_SECRET and RSA_3072 profiles: create the agent with one")


def base_url(agent):
    """The gateway URL from the agent's onboarding key (before the first onboarding)."""
    if agent.key is None:
        raise OnboardingRequired("not onboarded yet: " + msg(_W, 0))
    return parse_key(agent.key)["baseUrl"]


def onboard(agent):
    """Agent.onboard: register once; True if it registered now, False if already onboarded."""
    store = agent.store
    stuck = store.read(credentials.NEEDS_KEY)
    ids = store.identities()
    if ids and stuck is None:
        return False
    content = fp = None
    if agent.key is not None:
        content = parse_key(agent.key)
        fp = credentials.key_fingerprint(content["iat"])
        if stuck and stuck.get("key_fp") != fp and ids and ids[0].key_fp == fp:
            # this key's registration was saved, and a power cut came before the rest: finish it (the
            # key is spent; without this the node would wait for a third key)
            _settled(store, ids[0].kid)
            agent._bearer = None
            return True
    if stuck and agent.clock.is_set() and (fp is None or fp == stuck.get("key_fp") or fp in [i.key_fp for i in ids]):
        # a day after a refusal the stored identities (or the key) are tried once more: a refusal that
        # was the hub's passing fault must not cost a visit; still refused, NEEDS_KEY is written again.
        # A new key (not the refused one) is registered at once instead.
        now, at = agent.clock.now(), stuck.get("at")
        if not isinstance(at, int) or now < at:
            # written before the clock was set (or by older firmware), or dated by a clock ahead of this
            # one (renew's, corrected from the gateway's, ahead of a board clock running behind it): it is
            # dated now. Taken for a day passed, every boot of such a board tried everything again
            stuck["at"] = now
            store.write(credentials.NEEDS_KEY, stuck)
        elif now - at >= 86400:
            agent._warn("%s a day ago: trying again" % stuck.get("reason"))
            store.clear_needs_key()
            stuck = None
            if ids:
                return False
    if agent.key is None:
        if stuck:
            raise OnboardingRequired("%s: %s" % (stuck.get("reason"), msg(_W, 0)))
        raise OnboardingRequired("not onboarded yet: " + msg(_W, 0))
    if (stuck and stuck.get("key_fp") == fp) or [i for i in ids if i.key_fp == fp]:
        raise OnboardingRequired("onboarding key already used: " + msg(_W, 0))
    kid, body = None, b"{}"
    if profile_of(content) == "RSA_3072":
        from mindconnect import rsa
        key = rsa.load(store.folder + "/" + rsa.RSA_KEY)
        kid, body = key.kid, rsa.jwks_body(key)
        key = None
    # Room for the identity on flash first, taken before the key is sent: the hub's 201 spends the key,
    # and an identity that a full flash (the spools may take all of it) then refused could only be
    # replaced by a new key, a visit to the machine. The file is removed right before the identity is
    # saved, and after any other outcome; one left by a power cut is removed first (its room is not
    # lost, and writing over it could need the room twice). Written here, not in a function of its own:
    # a name is interned for good, and the cycle has few to spare (docs/AGENT.md, "Memory").
    store.remove("onboard.room")
    try:
        bs = os.statvfs(store.folder)[0]  # files take whole blocks (littlefs) or clusters (FAT)
    except (AttributeError, OSError):
        bs = 4096
    try:
        with open(store.folder + "/onboard.room", "wb") as f:
            # zeros up to two files (current, mirror) of up to 2 KB or a block each: littlefs and FAT
            # have no sparse files, they write them out (and a RAM buffer of them is not needed)
            f.seek(2 * max(bs, 2048) - 1)
            f.write(b"\0")
            fsync_file(f)
    except OSError as e:
        store.remove("onboard.room")
        err = MindConnectError("onboarding waits: the flash is full (%s), no room to save the identity; the "
                               "onboarding key was not sent and is tried again later" % e)
        err.retryable = True  # exchange() backs off; the app tries at its next upload
        raise err from None
    gc.collect()  # the file's garbage, before the answer and the identity that outlive onboarding
    try:
        r = agent._call("POST", "/api/agentmanagement/v3/register",
                        {"Authorization": "Bearer " + content["iat"], "Content-Type": "application/json"}, body)
        if r.status in (400, 401, 403):
            reason = "onboarding key refused (%d: used or expired)" % r.status
            c = agent.clock  # at: for the retry a day later
            store.remove("onboard.room")  # its room for NEEDS_KEY
            store.write(credentials.NEEDS_KEY, {"reason": reason, "key_fp": fp, "at": c.now() if c.is_set() else None})
            raise OnboardingRequired("%s: %s" % (reason, msg(_W, 0)))
        if r.status != 201:
            raise agent._failure(r, "onboarding")
        doc = r.json()
        r = None  # the answer's body and the key's content are freed for the identity and its file
        tenant, base = content["tenant"], content["baseUrl"]
        content = None
        try:
            ident = credentials.Identity.from_response(doc, tenant, base, fp, kid)
        except ValueError as e:
            raise ProtocolError("onboarding: %s" % e) from None
        doc = None
    finally:
        store.remove("onboard.room")  # the room reserved goes to the identity (or back to the spools)
    store.save_current(ident)
    agent._mark("onboard:saved")
    _settled(store, kid)
    agent._bearer = None
    return True


def _settled(store, kid):
    """After a registration is saved: what belonged to the identities before it goes, NEEDS_KEY last."""
    store.drop_previous()
    if kid:
        from mindconnect import rsa
        rsa.forget_pending(store)
    store.drop_token()
    store.remove(credentials.MODEL)
    store.clear_needs_key()
