from __future__ import annotations

import os

# Test suites use the cheapest Argon2id cost for vaults made through the CLI; the
# parameter is stored in each keystore, so this changes nothing about the format.
os.environ.setdefault("OWNVAULT_INSECURE_FAST_KDF", "1")
