from __future__ import annotations

import ownvault


def test_public_api_is_explicit_and_sorted() -> None:
    assert ownvault.__all__ == sorted(ownvault.__all__)
    for name in ownvault.__all__:
        assert hasattr(ownvault, name), name
    public = {n for n in dir(ownvault) if not n.startswith("_")}
    modules = {"cli", "core", "engine", "errors", "providers", "server", "os", "Any", "annotations"}
    assert public - modules - set(ownvault.__all__) == set()
