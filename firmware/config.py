"""config.json and secrets.json on the flash: load, validate, and hold the settings.

load(flash_dir) reads both files and returns a Config, or raises mindconnect.errors.ConfigError whose
message names the field and the fix ("sensors[2].pin: 35 is input-only on ESP32; ..."). validate()
does the same from dicts. The reading and the checks live in firmware.configcheck, imported for them
and unloaded after (its code would otherwise hold about 20 KB of heap for nothing). Pin rules are the
ESP32's (the config is written for the board); the simulated board ignores pins. Secrets are wrapped
in Secret, whose repr never shows the value. The reference of every setting is docs/FIRMWARE.md.
"""

import firmware


class Secret:
    """A value that must never be printed: repr and str show only that it is set."""

    def __init__(self, value):
        self._value = value

    def reveal(self):
        return self._value

    def __repr__(self):
        return "<secret>"

    __str__ = __repr__


class Config:
    """A validated configuration: attributes with defaults filled in (see docs/FIRMWARE.md).

    board, gateway, ca_file, wifi (dict or None), ntp, sensors (list of dicts, each with its points),
    sample_s, upload_s, mode, rules, mappings, spool, log_level, safe_pin, watchdog_ms; warnings lists
    things that work but deserve a look (strapping pins, short deep-sleep periods). wifi_password and
    onboarding_key are Secret (call reveal()); onboarding_key is None when absent.
    """

    def __init__(self, settings):
        for k in settings:
            setattr(self, k, settings[k])

    def points(self):
        """Every configured data point, in config order, as (sensor entry, point entry)."""
        out = []
        for s in self.sensors:
            for p in s["points"]:
                out.append((s, p))
        return out

    def __repr__(self):
        return "<Config sensors=%d sample_s=%d upload_s=%d mode=%s secrets hidden>" % (
            len(self.sensors), self.sample_s, self.upload_s, self.mode)


def validate(cfg, secrets=None):
    """A Config from already-parsed dicts (an onboarding key must be given as its JSON object)."""
    return firmware._once("configcheck", "validate", cfg, secrets or {})


def load(flash_dir):
    """The Config from flash_dir/config.json and flash_dir/secrets.json (optional); ConfigError if bad."""
    return firmware._once("configcheck", "load", flash_dir)
