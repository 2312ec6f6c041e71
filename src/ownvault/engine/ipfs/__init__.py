"""IPFS: UnixFS DAGs of stored content, publishing, CAR import/export, pinning."""
