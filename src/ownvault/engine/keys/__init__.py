"""The keyring (passphrase, guardians, rotation), recovery of a lost vault, shredding."""
