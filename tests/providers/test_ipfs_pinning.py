"""The Pinning Service API provider against tests/ipfsnode's pinning service over Helia."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from ownvault.providers.ipfs_pinning import PinningProvider
from tests.ipfsnode.node import PIN_TOKEN, HeliaNode

from .contract import ProviderContract, run


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeliaNode]:
    n = HeliaNode(tmp_path_factory.mktemp("pinning") / "repo", pinning=True).start()
    yield n
    n.stop()


def fresh(node: HeliaNode, **kw: object) -> PinningProvider:
    """A provider on its own, empty namespace; blocks go to the node, reads via its gateway."""
    assert node.pinning_url is not None
    return PinningProvider(
        node.pinning_url,
        PIN_TOKEN,
        upload=node.url,
        gateways=[node.url],
        namespace=f"t-{uuid.uuid4().hex[:12]}",
        **kw,  # type: ignore[arg-type]
    )


class TestPinningContract(ProviderContract):
    @pytest.fixture
    def provider(self, node: HeliaNode) -> Iterator[PinningProvider]:
        p = fresh(node)
        yield p
        run(p.close())
